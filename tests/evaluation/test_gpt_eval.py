"""GPT-Eval through evaluate.load against a local judge server that replies in many formats, some broken."""

import re

import evaluate
import pytest
from openai_server import FakeOpenAIServer, canonical_json

import tinystories.metrics
from tinystories.evaluation.grade_parsing import parse_grades
from tinystories.evaluation.judge import bootstrap_ci

GRADE_REPLIES = {
    "c0": "Grammar: 8/10, Creativity: 6/10, Consistency: 7/10, Age group: B",
    "c1": "**Grammar**: 9/10\n**Creativity**: 5/10\n**Consistency**: 8/10\n**Age group**: C (6-7)",
    "c2": '{"grammar": 6, "creativity": 4, "consistency": 5, "age_group": "A"}',
    "c3": "grammar - 7\ncreativity - 7\nconsistency - 6\nage: 4-5 years",
    "c4": "Grammar: 10 out of 10. Creativity: 8 out of 10. Consistency: 9 out of 10. Age group: B (4-5).",
}


def judge(request):
    """Assessment on the first turn; on the grade turn, a reply whose format depends on the completion's tag.
    c5 answers gibberish once, then properly when asked again; c6 never gives grades."""
    messages = request["messages"]
    tag = re.search(r"\*\*\*(c\d)", messages[0]["content"]).group(1)
    if len(messages) == 1:
        return f"The completion {tag} is fine and mostly consistent."
    if tag == "c5":
        return "Grammar: 5/10, Creativity: 5/10, Consistency: 5/10, Age group: D" if len(messages) == 5 else "Nice!"
    if tag == "c6":
        return "I would rather not grade this."
    return GRADE_REPLIES[tag]


PREDICTIONS = [f"c{i} park. They played all day." for i in range(7)]
REFERENCES = ["Once upon a time, Lily went to the"] * 7


@pytest.fixture
def metric(tmp_path):
    return evaluate.load(
        tinystories.metrics.GPT_EVAL, judge_model="fake-judge", cache_dir=str(tmp_path / "c"), progress=False
    )


def test_exact_grades_reasks_and_ungraded(metric):
    with FakeOpenAIServer(responder=judge) as server:
        scores = metric.compute(
            predictions=PREDICTIONS, references=REFERENCES, base_url=server.base_url, return_samples=True
        )
        sent = server.num_requests
    grades = [s["grades"] for s in scores["samples"]]
    assert grades[:5] == [
        {"grammar": 8.0, "creativity": 6.0, "consistency": 7.0, "age_group": "B"},
        {"grammar": 9.0, "creativity": 5.0, "consistency": 8.0, "age_group": "C"},
        {"grammar": 6.0, "creativity": 4.0, "consistency": 5.0, "age_group": "A"},
        {"grammar": 7.0, "creativity": 7.0, "consistency": 6.0, "age_group": "B"},
        {"grammar": 10.0, "creativity": 8.0, "consistency": 9.0, "age_group": "B"},
    ]
    assert grades[5] == {"grammar": 5.0, "creativity": 5.0, "consistency": 5.0, "age_group": "D"}  # after a re-ask
    assert grades[6] is None and scores["samples"][6]["asks"] == 3  # 1 ask + 2 re-asks, then ungraded
    assert scores["num_graded"] == 6 and scores["num_ungraded"] == 1
    assert scores["grammar"] == pytest.approx((8 + 9 + 6 + 7 + 10 + 5) / 6)
    assert scores["consistency"] == pytest.approx((7 + 8 + 5 + 6 + 9 + 5) / 6)
    low, high = scores["grammar_ci"]
    assert low < scores["grammar"] < high and 5 <= low and high <= 10
    assert scores["grammar_ci"] == bootstrap_ci([8, 9, 6, 7, 10, 5])  # seeded: the same interval every run
    assert scores["age_group"] == pytest.approx({"A": 1 / 6, "B": 3 / 6, "C": 1 / 6, "D": 1 / 6, "E": 0, "F": 0})
    assert sent == 7 + 7 + 2 + 1  # assessments, grade turns, c5 and c6 re-asked, c6 once more
    assert scores["usage"]["requests_sent"] == sent


def test_a_second_identical_run_sends_nothing(metric):
    with FakeOpenAIServer(responder=judge) as server:
        first = metric.compute(predictions=PREDICTIONS, references=REFERENCES, base_url=server.base_url)
        sent = server.num_requests
        second = metric.compute(predictions=PREDICTIONS, references=REFERENCES, base_url=server.base_url)
        assert server.num_requests == sent
    assert first == {**second, "usage": first["usage"]} and second["usage"]["requests_sent"] == 0


def test_instruct_config_adds_plot(tmp_path):
    def instruct_judge(request):
        if len(request["messages"]) == 1:
            assert "The story should contain the words: run, park, big." in request["messages"][0]["content"]
            return "It follows the instructions."
        assert "whether the plot makes sense" in request["messages"][-1]["content"]
        return "Grammar: 8/10, Creativity: 7/10, Consistency: 9/10, Plot: 6/10, Age group: B"

    metric = evaluate.load("tinystories/metrics/gpt_eval", config_name="instruct", cache_dir=str(tmp_path))
    with FakeOpenAIServer(responder=instruct_judge) as server:
        scores = metric.compute(
            predictions=["Tom ran to the park."],
            references=["Words: run, park, big"],
            base_url=server.base_url,
            judge_model="fake-judge",
            progress=False,
        )
    assert scores["plot"] == 6.0 and scores["plot_ci"] == [6.0, 6.0] and scores["num_graded"] == 1


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Grammar: 8/10, Creativity: 6/10, Consistency: 7/10, Age group: B", (8, 6, 7, "B")),
        ("__Grammar__ = 8 points; Creativity 6; Consistency: 7. Age group: E: 10-12", (8, 6, 7, "E")),
        (
            '```json\n{"Grammar": "8/10", "Creativity": 6, "Consistency": 7, "Age group": "B (4-5)"}\n```',
            (8, 6, 7, "B"),
        ),
        ("Grammar: 8/10 Creativity: 6/10 Consistency: 7/10 (the writer seems 8-9)", (8, 6, 7, "D")),
        ("Grammar: 8/10, Creativity: 6/10", None),
        ("Grammar: 18/10, Creativity: 6/10, Consistency: 7/10", None),
        ("", None),
    ],
)
def test_parse_grades_formats(reply, expected):
    parsed = parse_grades(reply)
    if expected is None:
        assert parsed is None
    else:
        assert (parsed["grammar"], parsed["creativity"], parsed["consistency"], parsed["age_group"]) == expected


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_data():
    small = bootstrap_ci([5, 7, 9, 6])
    large = bootstrap_ci([5, 7, 9, 6] * 25)
    assert small[0] < 6.75 < small[1] and large[0] < 6.75 < large[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_structured_output_sends_a_schema_and_reads_json(tmp_path):
    def json_judge(request):
        if len(request["messages"]) == 1:
            assert "response_format" not in request  # the free assessment stays free text
            return "Fine."
        schema = request["response_format"]["json_schema"]["schema"]
        # the paper's grade turn asks for the plot too, so the schema does
        assert schema["required"] == ["grammar", "creativity", "consistency", "plot", "age_group"]
        return '{"grammar": 7, "creativity": 6, "consistency": 8, "plot": 5, "age_group": "C"}'

    metric = evaluate.load(tinystories.metrics.GPT_EVAL, cache_dir=str(tmp_path), structured_output=True)
    with FakeOpenAIServer(responder=json_judge) as server:
        scores = metric.compute(
            predictions=["c0 park."],
            references=["Lily went to the"],
            base_url=server.base_url,
            judge_model="fake-judge",
            progress=False,
        )
    assert (scores["grammar"], scores["consistency"], scores["age_group"]["C"]) == (7.0, 8.0, 1.0)
    assert scores["plot"] == 5.0 and scores["num_plot"] == 1


def chat_logprobs(text: str, alternatives: dict[str, dict[str, float]]) -> dict:
    """Chat ``logprobs`` of ``text`` cut into word/number/punctuation tokens (each with its leading spaces); the
    k-th number token gets the top alternatives ``alternatives[str(k)]`` ({token: probability}) when given."""
    import math

    tokens = re.findall(r"\s*\d+|\s*[A-Za-z]+|\s*[^\sA-Za-z\d]|\s+", text)
    assert "".join(tokens) == text
    content, number = [], 0
    for token in tokens:
        entry = {"token": token, "logprob": -0.01, "bytes": list(token.encode()), "top_logprobs": []}
        if token.strip().isdigit():
            dist = alternatives.get(str(number))
            number += 1
            if dist:
                entry["top_logprobs"] = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in dist.items()]
                entry["logprob"] = math.log(dist.get(token.strip(), 1e-9))
        content.append(entry)
    return {"content": content}


def test_probability_weighted_grades_from_logprobs(tmp_path):
    reply = "**Grammar**: 8/10\nCreativity: 6/10\nConsistency: 7/10\nAge group: B"
    # number tokens in order: 8, 10, 6, 10, 7, 10
    alternatives = {
        "0": {" 8": 0.6, " 9": 0.3, " 7": 0.1},
        "2": {" 6": 0.5, " 5": 0.4, " six": 0.1},  # a non-numeric alternative is not a grade: renormalised
    }

    def responder(request):
        if len(request["messages"]) == 1:
            return "A fine completion."
        assert request["logprobs"] is True and request["top_logprobs"] == 20
        return {"content": reply, "logprobs": chat_logprobs(reply, alternatives)}

    metric = evaluate.load(tinystories.metrics.GPT_EVAL, cache_dir=str(tmp_path / "c"), progress=False)
    with FakeOpenAIServer(responder=responder) as server:
        scores = metric.compute(
            predictions=["park."], references=["Lily went to the"], base_url=server.base_url, return_samples=True
        )
    weighted = scores["samples"][0]["weighted_grades"]
    assert weighted["grammar"] == pytest.approx(0.6 * 8 + 0.3 * 9 + 0.1 * 7)
    assert weighted["grammar_mass"] == pytest.approx(1.0)
    assert weighted["creativity"] == pytest.approx((0.5 * 6 + 0.4 * 5) / 0.9)
    assert weighted["creativity_mass"] == pytest.approx(0.9)
    assert weighted["consistency"] == pytest.approx(7.0)  # no alternatives: the sampled token alone
    assert scores["grammar"] == 8.0 and scores["grammar_weighted"] == pytest.approx(8.2)
    assert scores["creativity_num_weighted"] == 1


def test_json_reply_weighted_grades_find_their_tokens():
    from tinystories.evaluation.grade_parsing import locate_grades, weighted_grades

    reply = '{"grammar": 9, "creativity": 4, "consistency": 6, "age_group": "C"}'
    grades, spans = locate_grades(reply)
    assert grades == {"grammar": 9.0, "creativity": 4.0, "consistency": 6.0, "age_group": "C"}
    assert [reply[spans[a]] for a in ("grammar", "creativity", "consistency")] == ["9", "4", "6"]
    logprobs = chat_logprobs(reply, {"1": {"4": 0.5, "3": 0.5}})
    assert weighted_grades(logprobs, spans)["creativity"] == pytest.approx(3.5)
    assert weighted_grades(None, spans) == {}
    assert weighted_grades(logprobs, spans, reply)["creativity"] == pytest.approx(3.5)
    assert weighted_grades(logprobs, spans, " " + reply) == {}  # tokens that do not spell the reply: not used
    split = chat_logprobs(reply, {})  # a tokenizer that writes 9 as "0" + "9": no weighted grade, never a wrong one
    first = next(i for i, t in enumerate(split["content"]) if t["token"].strip() == "9")
    split["content"][first : first + 1] = [
        {"token": " 0", "logprob": -0.1, "top_logprobs": [{"token": " 0", "logprob": -0.1}]},
        {"token": "9", "logprob": -0.1, "top_logprobs": []},
    ]
    grades, spans = locate_grades("".join(t["token"] for t in split["content"]))
    assert grades["grammar"] == 9.0 and "grammar" not in weighted_grades(split, spans)


def test_a_judge_that_refuses_logprobs_is_asked_without(tmp_path):
    metric = evaluate.load(tinystories.metrics.GPT_EVAL, cache_dir=str(tmp_path / "c"), progress=False)
    with FakeOpenAIServer(responder=judge, reject_params=("logprobs",)) as server:
        scores = metric.compute(predictions=PREDICTIONS[:2], references=REFERENCES[:2], base_url=server.base_url)
        refused, answered = server.rejected_requests, server.requests
    assert scores["num_graded"] == 2 and scores["grammar"] == 8.5
    assert "grammar_weighted" not in scores
    # each grade turn was first asked with logprobs and refused with a 400 naming them (not retried as such) ...
    assert [(r["status"], r["param"]) for r in refused] == [(400, "logprobs")] * 2
    assert all(r["request"]["logprobs"] is True and len(r["request"]["messages"]) == 3 for r in refused)
    # ... then asked again, the same request without the logprobs parameters, and answered
    without = [{k: v for k, v in r["request"].items() if k not in ("logprobs", "top_logprobs")} for r in refused]
    grade_turns = [r for r in answered if len(r["messages"]) == 3]
    assert sorted(map(canonical_json, grade_turns)) == sorted(map(canonical_json, without))


def test_ungraded_replies_are_counted_by_reason_with_one_example_each(tmp_path):
    def replies(request):
        messages = request["messages"]
        tag = re.search(r"\*\*\*(c\d)", messages[0]["content"]).group(1)
        if len(messages) == 1:
            return "Fine."
        return {"c0": GRADE_REPLIES["c0"], "c1": "I would rather not.", "c2": "No grades from me."}[tag]

    metric = evaluate.load(tinystories.metrics.GPT_EVAL, judge_model="fake-judge", progress=False)
    fast = {"max_retries": 0, "max_content_retries": 0, "max_reasks": 1}
    runs = {}
    with FakeOpenAIServer(responder=replies) as server:  # two unparseable, one graded
        runs["parse"] = metric.compute(
            predictions=PREDICTIONS[:3],
            references=REFERENCES[:3],
            base_url=server.base_url,
            cache_dir=str(tmp_path / "a"),
            return_samples=True,
            **fast,
        )
    for name, fault in (("500", "500"), ("cut", "length"), ("timeout", "timeout")):
        with FakeOpenAIServer(responder=replies, fail_first={fault: 1}) as server:
            runs[name] = metric.compute(
                predictions=PREDICTIONS[:2],
                references=REFERENCES[:2],
                base_url=server.base_url,
                cache_dir=str(tmp_path / name),
                return_samples=True,
                request_timeout=1.0 if fault == "timeout" else 30.0,
                **fast,
            )
    parse = runs["parse"]
    assert parse["num_graded"] == 1 and parse["ungraded_reasons"] == {"unparseable grades": 2}
    first, second = parse["samples"][1:]
    assert first["ungraded_reason"] == second["ungraded_reason"] == "unparseable grades"
    assert first["ungraded_example"] == "I would rather not." and "ungraded_example" not in second
    assert first["failed_turn"] == "grades" and first["asks"] == 2
    assert "ungraded_reason" not in parse["samples"][0]
    assert runs["500"]["ungraded_reasons"] == {"HTTP 500": 2}
    assert runs["500"]["samples"][0]["failed_turn"] == "assessment"
    assert runs["500"]["samples"][0]["ungraded_example"].startswith("HTTP 500")  # no reply: the error
    (cut,) = runs["cut"]["ungraded_reasons"]
    assert "max_tokens" in cut and runs["cut"]["ungraded_reasons"][cut] == 2
    assert runs["timeout"]["ungraded_reasons"] == {"timeout": 2}
    assert all(run["num_ungraded"] == sum(run["ungraded_reasons"].values()) for run in runs.values())


def test_truncated_completions_are_what_the_judge_sees(tmp_path):
    looping = " park. The dog ran to the tree. The dog ran to the tree. The dog ran"
    metric = evaluate.load(tinystories.metrics.GPT_EVAL, judge_model="fake-judge", progress=False)
    with FakeOpenAIServer(responder=judge) as server:
        scores = metric.compute(
            predictions=["c0" + looping, "c1 park."],
            references=REFERENCES[:2],
            base_url=server.base_url,
            cache_dir=str(tmp_path),
            truncate_repeated_ngram=4,
            return_samples=True,
        )
        shown = [r["messages"][0]["content"] for r in server.requests if len(r["messages"]) == 1]
    kept = "c0 park. The dog ran to the tree."
    assert any(f"***{kept}\n\n" in text for text in shown) and not any("tree. The dog" in text for text in shown)
    assert scores["samples"][0]["graded_completion"] == kept and "graded_completion" not in scores["samples"][1]
    assert scores["num_truncated"] == 1 and scores["num_graded"] == 2
