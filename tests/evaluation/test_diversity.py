import doctest
import json
import math
import random

import numpy as np
import pytest
from conftest import assert_png_of, make_stories

import tinystories.evaluation.ngram_index
from tinystories.evaluation.diversity import (
    MEASURES,
    DiversityReport,
    cut_story,
    diversity_figure,
    diversity_report,
    plot_diversity,
)
from tinystories.evaluation.ngram_index import NgramIndex, rouge_n_precision, tokenize_words


def random_stories(count: int, seed: int, vocabulary_size: int = 25) -> list[str]:
    """Stories of random words from a small vocabulary: many shared bigrams, many ties."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary_size)]
    return [" ".join(rng.choices(words, k=rng.randint(0, 60))) for _ in range(count)]


def brute_force(text: str, stories: list[str], n: int = 2, exclude: int | None = None) -> list[tuple[int, float]]:
    scores = [(i, rouge_n_precision(text, story, n)) for i, story in enumerate(stories) if i != exclude]
    return sorted((pair for pair in scores if pair[1] > 0), key=lambda pair: (-pair[1], pair[0]))


def test_docstring_examples():
    assert doctest.testmod(tinystories.evaluation.ngram_index).failed == 0


def test_tokenize_words_keeps_letters_digits_and_inner_apostrophes():
    assert tokenize_words("Lily's dog didn't run! It ran 2 miles.") == [
        "lily's",
        "dog",
        "didn't",
        "run",
        "it",
        "ran",
        "2",
        "miles",
    ]
    assert tokenize_words("\"Yes,\" said 'Tom' \u2014 Tom\u2019s.") == ["yes", "said", "tom", "tom's"]
    assert tokenize_words(" ... ") == []


@pytest.mark.parametrize(
    "candidate, reference, n, expected",
    [
        ("the cat sat on the mat", "the cat sat down", 2, 2 / 5),
        ("The cat, sat.", "the cat sat", 2, 1.0),  # case and punctuation do not count
        ("a a a a", "a a a", 2, 2 / 3),  # 3 x "a a" clipped to the reference's 2
        ("a a a", "a a a a", 2, 1.0),
        ("the the cat", "the cat", 1, 2 / 3),
        ("one two three four", "zero one two three", 3, 1 / 2),
        ("hello", "hello world", 2, 0.0),  # no bigram in the candidate
        ("", "anything", 2, 0.0),
        ("a b", "", 2, 0.0),
    ],
)
def test_rouge_n_precision_hand_computed(candidate, reference, n, expected):
    assert rouge_n_precision(candidate, reference, n) == pytest.approx(expected)


def test_rouge_n_precision_accepts_tokens():
    assert rouge_n_precision(["the", "cat", "sat"], "The cat sat down.") == 1.0
    with pytest.raises(ValueError, match="n must be"):
        rouge_n_precision("a b", "a b", n=0)


def test_cut_story_splits_mid_sentence_inside_the_fraction_range():
    for i, story in enumerate(make_stories(200, seed=4)):
        beginning, continuation = cut_story(story, random.Random(i))
        assert beginning + continuation == story
        assert continuation[0] == " " and beginning and not beginning[-1].isspace()
        assert not beginning.rstrip("\"'").endswith((".", "!", "?"))
        num_words = len(story.split())
        assert math.ceil(0.3 * num_words) <= len(beginning.split()) <= math.floor(0.7 * num_words)


def test_cut_story_is_deterministic_given_the_rng_and_varies_with_it():
    story = make_stories(1, seed=2)[0]
    assert cut_story(story, random.Random(7)) == cut_story(story, random.Random(7))
    assert len({cut_story(story, random.Random(seed)) for seed in range(20)}) > 1


def test_cut_story_fallbacks():
    # no mid-sentence word boundary in the range: the nearest one outside it
    story = "Hi. Yo. Ok. We. Go. Up now. End."
    beginning, continuation = cut_story(story, random.Random(0))
    assert (beginning, continuation) == ("Hi. Yo. Ok. We. Go. Up", " now. End.")
    # no mid-sentence boundary at all: still a word boundary
    beginning, continuation = cut_story("Hi. Yo. Ok.", random.Random(0))
    assert beginning + continuation == "Hi. Yo. Ok." and continuation.startswith(" ")
    # never after a line break
    beginning, continuation = cut_story("One two three\nfour five six", random.Random(0), 0.5, 0.5)
    assert "\n" not in continuation[:1]
    assert cut_story("  two words \n", random.Random(0)) == ("  two", " words \n")
    with pytest.raises(ValueError, match="fewer than two words"):
        cut_story("Word.", random.Random(0))
    with pytest.raises(ValueError, match="min_fraction"):
        cut_story("a b c", random.Random(0), 0.8, 0.2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_index_matches_brute_force(n):
    stories = random_stories(300, seed=n)
    index = NgramIndex(stories, n=n)
    rng = random.Random(10 + n)
    queries = random_stories(40, seed=100 + n) + [rng.choice(stories) for _ in range(10)]
    for query in queries:
        expected = brute_force(query, stories, n)
        got = index.closest(query, top_k=5, candidates=3)
        assert [score for _, score in got] == pytest.approx([score for _, score in expected[:5]])
        assert got == expected[:5]  # same ties too: lowest index first
        excluded = expected[0][0] if expected else None
        assert index.closest(query, exclude=excluded) == brute_force(query, stories, n, exclude=excluded)[:1]


def test_ngram_index_stays_exact_when_its_bounds_are_loose():
    """The exact re-scoring pass, not the counting pass, decides: bounds that overestimate still give brute force."""

    class LooseIndex(NgramIndex):
        def bounds(self, tokens, exclude=None):
            bounds = super().bounds(tokens, exclude)
            noise = np.random.default_rng(len(tokens)).integers(0, 4, len(bounds))
            return np.where(bounds > 0, bounds + noise, bounds)

    stories = random_stories(300, seed=8)
    index = LooseIndex(stories)
    for query in random_stories(20, seed=9):
        assert index.closest(query, top_k=3, candidates=2) == brute_force(query, stories)[:3]


def test_ngram_index_bound_survives_count_saturation():
    """Counts stored as uint16 saturate at 65,535; the bound must still not undercount a story repeating a bigram."""
    stories = ["a " * 66_000, "a " * 70_001, "a b"]
    assert NgramIndex(stories).closest("a " * 70_001) == [(1, 1.0)]


def test_cut_story_on_real_stories(v2_sample):
    with open(v2_sample, encoding="utf-8") as f:
        stories = [story.strip() for story in f.read().split("<|endoftext|>") if len(story.split()) > 1]
    rng = random.Random(0)
    for story in stories:
        beginning, continuation = cut_story(story, rng)
        assert beginning + continuation == story and continuation[:1].isspace()


def test_ngram_index_finds_the_story_a_completion_copies():
    stories = make_stories(300, seed=5)
    index = NgramIndex(stories)
    assert index.closest(stories[123]) == [(123, 1.0)]
    _, continuation = cut_story(stories[42], random.Random(0))
    (found, score), *_ = index.closest(continuation)
    assert score == 1.0 and rouge_n_precision(continuation, stories[found]) == 1.0
    assert (42, 1.0) in index.closest(continuation, top_k=300)


def test_ngram_index_edge_cases():
    index = NgramIndex(["alpha beta gamma", "beta gamma", ""])
    assert index.closest("unknown words only") == []
    assert index.closest("beta") == []  # no bigram in the query
    # 4 bigrams, "beta gamma" twice: clipped to once in each story
    assert index.closest("beta gamma unknown beta gamma", top_k=3) == [(0, 0.25), (1, 0.25)]
    assert index.closest("beta gamma", exclude=0) == [(1, 1.0)]
    assert NgramIndex([]).closest("a b") == []
    assert len(index) == 3


def make_report_inputs():
    training = make_stories(150, seed=6)
    rng = random.Random(0)
    sources = rng.sample(range(len(training)), 20)
    cuts = [cut_story(training[i], rng) for i in sources]
    truths = [continuation for _, continuation in cuts]
    # half the completions recite their story, half borrow another prompt's continuation
    completions = truths[:10] + [truths[(i + 1) % 20] for i in range(10, 20)]
    return training, sources, truths, completions


def test_diversity_report_measures():
    training, sources, truths, completions = make_report_inputs()
    report = diversity_report(completions, truths, training, source_indices=sources, progress=False)
    assert len(report) == 20
    for values in (report.rouge_vs_truth, report.max_rouge_vs_others, report.closest_train_rouge):
        assert len(values) == 20 and all(0.0 <= value <= 1.0 for value in values)
    assert report.rouge_vs_truth[:10] == [1.0] * 10
    assert report.closest_train_rouge == [1.0] * 20  # every completion is training text
    for i, completion in enumerate(completions):
        others = max(rouge_n_precision(completion, other) for j, other in enumerate(completions) if j != i)
        assert report.max_rouge_vs_others[i] == pytest.approx(others)
        assert report.closest_train_rouge[i] == rouge_n_precision(completion, training[report.closest_train_index[i]])
    assert report.max_rouge_vs_others[19] == 1.0  # completions 0 and 19 are the same text

    summary = report.summary()
    assert summary["num_samples"] == 20 and len(summary["histogram_bin_edges"]) == 11
    for measure in ("rouge_vs_truth", "max_rouge_vs_others", "closest_train_rouge"):
        stats = summary[measure]
        assert sum(stats["histogram"]) == 20 and len(stats["histogram"]) == 10
        assert stats["mean"] <= stats["max"] and stats["median"] <= stats["p90"] <= stats["max"]
    assert summary["closest_train_rouge"]["histogram"][-1] == 20  # 1.0 lands in the last bin
    loaded = json.loads(report.to_json())
    assert loaded["rouge_vs_truth"] == report.rouge_vs_truth and loaded["summary"]["num_samples"] == 20


def test_diversity_report_can_exclude_the_source_story():
    training, sources, truths, completions = make_report_inputs()
    index = NgramIndex(training)
    report = diversity_report(
        completions, truths, training, sources, progress=False, exclude_source=True, training_index=index
    )
    assert all(found != source for found, source in zip(report.closest_train_index, sources))
    assert report.summary()["closest_is_source_fraction"] == 0.0
    with pytest.raises(ValueError, match="needs source_indices"):
        diversity_report(completions, truths, training, progress=False, exclude_source=True)
    with pytest.raises(ValueError, match="20 completions but 19 true continuations"):
        diversity_report(completions, truths[:19], training, progress=False)
    with pytest.raises(ValueError, match="training_index"):
        diversity_report(completions, truths, training[:10], progress=False, training_index=index)


def test_summary_of_an_empty_report():
    summary = DiversityReport().summary()
    assert summary["num_samples"] == 0 and summary["rouge_vs_truth"]["mean"] is None
    assert summary["rouge_vs_truth"]["histogram"] == [0] * 10


def test_plot_diversity_draws_each_measure_histogram_and_mean(tmp_path):
    training, sources, truths, completions = make_report_inputs()
    report = diversity_report(completions, truths, training, sources, progress=False)
    summary = report.summary()
    figure = diversity_figure(report, title="test")
    assert figure._suptitle.get_text() == "test (20 completions)"
    panels = figure.axes
    assert len(panels) == 3
    for ax, measure in zip(panels, MEASURES):
        assert [bar.get_height() for bar in ax.patches] == summary[measure]["histogram"]  # one bar per bin
        assert [bar.get_x() for bar in ax.patches] == pytest.approx(summary["histogram_bin_edges"][:-1])
        (mean_line,) = ax.get_lines()
        mean = summary[measure]["mean"]
        assert list(mean_line.get_xdata()) == pytest.approx([mean, mean])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"mean {mean:.2f}"]
    assert "closest training story" in panels[2].get_xlabel()
    path = plot_diversity(report, str(tmp_path / "plots" / "diversity.png"), title="test")
    assert_png_of(path, figure, dpi=100)

    empty = diversity_figure(DiversityReport())
    assert all(bar.get_height() == 0 for ax in empty.axes for bar in ax.patches)
    assert not any(ax.get_lines() or ax.get_legend() for ax in empty.axes)  # no mean of nothing
    assert_png_of(plot_diversity(DiversityReport(), str(tmp_path / "empty.png")), empty, dpi=100)
