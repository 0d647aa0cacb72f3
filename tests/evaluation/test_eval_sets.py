from tinystories.evaluation.eval_sets import (
    PROBE_CATEGORIES,
    load_instruct_prompts,
    load_probes,
    load_story_beginnings,
    probe_passed,
)
from tinystories.story_formats import FEATURES


def test_story_beginnings_stop_mid_sentence():
    beginnings = load_story_beginnings()
    assert len(beginnings) == 50 and len({b["id"] for b in beginnings}) == 50
    assert all(b["beginning"].rstrip()[-1].isalpha() for b in beginnings)  # no final punctuation
    assert all(20 <= len(b["beginning"].split()) <= 90 for b in beginnings)


def test_probes_cover_the_three_categories_with_answers():
    probes = load_probes()
    assert {p["category"] for p in probes} == set(PROBE_CATEGORIES)
    assert all(sum(p["category"] == c for p in probes) == 10 for c in PROBE_CATEGORIES)
    assert all(p["answer"] and all(a == a.lower() for a in p["answer"]) for p in probes)


def test_instruct_prompts_use_known_features():
    prompts = load_instruct_prompts()
    assert len(prompts) == 50
    assert all(len(p["words"]) == 3 and set(p["features"]) <= set(FEATURES) for p in prompts)


def test_probe_check_looks_at_the_first_words():
    assert probe_passed(" sky. It was a nice day.", ["sky"])
    assert not probe_passed(" garden, and then she looked at the sky.", ["sky"])
    assert probe_passed(" 1 apple left.", ["one", "1"])
