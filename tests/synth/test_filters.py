import pytest
from conftest import make_stories

from tinystories.synth.filters import (
    FilterConfig,
    MinHashDeduplicator,
    filter_stories,
    missing_words,
    out_of_vocabulary_share,
    word_forms,
)
from tinystories.synth.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary()


@pytest.mark.parametrize(
    "word, form",
    [
        ("jump", "jumped"),
        ("jump", "jumping"),
        ("puppy", "puppies"),
        ("big", "bigger"),
        ("hop", "hopped"),
        ("run", "ran"),
        ("share", "sharing"),
        ("box", "boxes"),
        ("mouse", "mice"),
        ("happy", "happily"),
        ("cry", "cried"),
    ],
)
def test_inflections_count_as_the_word(word, form):
    assert form in word_forms(word)
    assert missing_words(f"One day the {form} thing.", [word]) == []


def test_missing_words_are_named():
    assert missing_words("Tom jumped over the puppies. He ran.", ["jump", "puppy", "run", "share"]) == ["share"]
    assert missing_words("A cat sat.", ["cater"]) == ["cater"]  # no substring matches


def test_out_of_vocabulary_share_ignores_names_and_function_words(vocabulary):
    simple = "Once upon a time, there was a little dog named Max. Max liked to run in the park with his red ball."
    assert out_of_vocabulary_share(simple, vocabulary) == 0.0
    hard = "The quantum algorithm optimized the mortgage portfolio with stochastic gradient heuristics."
    assert out_of_vocabulary_share(hard, vocabulary) > 0.5


def test_minhash_finds_near_duplicates_after_stripping_openers():
    a = (
        "Once upon a time, Lily went to the park with her mom. She saw a big red ball under the tree and wanted "
        "to play with it. Her mom said yes and they played all day until the sun went down."
    )
    b = a.replace("Once upon a time", "One day").replace("the sun went down", "the moon came up")
    c = "Tom had a small boat. He took it to the pond and watched it float. A duck swam by and quacked at the boat."
    assert MinHashDeduplicator().duplicates([a, b, c]) == {1: 0}
    stories = make_stories(200, seed=2)  # template stories differing in 4 slots: distinct enough at 0.9
    assert MinHashDeduplicator(threshold=0.9).duplicates(stories) == {}


def test_filter_stories_report(vocabulary):
    def record(story, words, features=()):
        return {"story": story, "instruction": {"words": list(words), "features": list(features)}}

    good = make_stories(30, seed=4)
    records = [record(s, ["play", "ball" if "ball" in s else "park", "happy"], ["Dialogue"]) for s in good]
    records = [r for r in records if not missing_words(r["story"], r["instruction"]["words"])]
    n_good = len(records)
    records.append(record("Too short.", ["run", "dog", "big"]))
    records.append(dict(records[0]))  # exact duplicate of the first
    records.append(record(good[1] + " The zebra juggled.", ["juggle", "zebra", "purple"]))  # missing 'purple'
    kept, report = filter_stories(records, vocabulary, FilterConfig(min_words=20, dedup_threshold=0.95))
    assert report.total == n_good + 3
    assert report.removed["too short"] == 1
    assert report.removed["missing required words"] == 1
    assert report.removed["exact duplicate"] + report.removed["near duplicate"] >= 1
    assert report.kept == len(kept) <= n_good
    summary = report.as_dict()
    assert summary["feature_counts"] == {"Dialogue": report.kept}
    assert "once upon a" in summary["top_openers"]


def test_missing_words_finds_the_released_spellings():
    story = "Tom saw an X-ray of his arm. He wore a T-shirt, watched a 3D film at the café and jumped. Don't cry!"
    required = ["x-ray", "T-shirt", "3D", "café", "jump", "don't", "TV"]
    assert missing_words(story, required) == ["TV"]
