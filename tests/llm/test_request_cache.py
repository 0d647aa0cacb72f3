"""The request cache's own operations: what a run asks it once (``known``), and replies stored as received."""

import json

from tinystories.llm.request_cache import RequestCache


def test_known_finds_accepted_and_rejected_keys_over_many_queries(tmp_path):
    cache = RequestCache.in_folder(str(tmp_path))
    accepted = [f"a{i:04d}" for i in range(1200)]  # more than one query's worth of keys
    for key in accepted:
        cache.put(key, "m", {"choices": []})
    cache.put_rejected("r1", "m", {"choices": []}, "empty reply")
    asked = [*accepted[::3], "r1", "missing", "r1", accepted[0]]
    assert cache.known(asked) == {*accepted[::3], "r1"}
    assert cache.known([]) == set()
    cache.close()


def test_a_reply_is_stored_as_received_when_its_json_is_given(tmp_path):
    cache = RequestCache.in_folder(str(tmp_path))
    raw = '{"id": "x",  "choices": [{"message": {"content": "caf\\u00e9", "refusal": null}}]}'
    cache.put("k", "m", json.loads(raw), raw=raw)
    cache.put("k2", "m", {"id": "y"})
    stored = dict(cache.db.execute("SELECT key, response FROM replies"))
    assert stored["k"] == raw and json.loads(stored["k2"]) == {"id": "y"}
    assert cache.get("k")["choices"][0]["message"] == {"content": "café", "refusal": None}
    cache.close()
