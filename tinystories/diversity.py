"""The paper's diversity check: are a model's completions new stories, or copies of its training data?

Eldan & Li (2023) cut training stories in the middle of a sentence, let the model complete them, and measure for each
completion (histograms over the samples):

1. the Rouge-2 precision of the completion against the story's true continuation (a low value: the model did not
   recite the story it was prompted with);
2. the maximum Rouge-2 precision of the completion against the completions of the *other* prompts (a low value: the
   model does not write one story whatever the prompt);
3. the Rouge-2 precision of the completion against the closest training story, the one with the highest score over
   the whole training set (a low value: the completion is not copied from anywhere in the training data).

Rouge-n precision here is the clipped n-gram precision of the candidate against one reference: the share of the
candidate's word n-grams (with multiplicity) found in the reference, each counted at most as often as the reference
has it. Words are lowercase letters, digits and inner apostrophes; punctuation is dropped.

Measures 2 and 3 are nearest-neighbour searches. :class:`NgramIndex` answers them with an inverted index from n-gram
to the stories holding it (and how often): the clipped overlap with every story sharing an n-gram is counted in one
vectorised pass over the posting lists of the query's n-grams, and exact scores are computed only for the best
candidates, with a bound that guarantees the result equals a brute-force loop over all stories.

Limits: Rouge-2 precision rewards reusing common phrases ("once upon a time", "wanted to play"), which every
TinyStories story does, so no measure is near 0 even for novel stories; read the histograms against those of held-out
stories, not against 0. Ties between equally close stories go to the lowest index.

Citation: Ronen Eldan and Yuanzhi Li, *TinyStories: How Small Can Language Models Be and Still Speak Coherent
English?*, arXiv:2305.07759, 2023.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# Whitespace between two words, the only places a story is cut (the continuation starts with it).
_GAP_RE = re.compile(r"\s+")
# A word ending a sentence: . ! ? (or an ellipsis) possibly followed by closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_HIST_BINS = 10
_SATURATED = 65535  # n-gram counts per story are stored as uint16
MEASURES = ("rouge_vs_truth", "max_rouge_vs_others", "closest_train_rouge")


def tokenize_words(text: str) -> list[str]:
    """Lowercase word tokens of ``text``: runs of letters and digits, with inner apostrophes kept ("don't", "lily's");
    punctuation and whitespace are dropped. Typographic apostrophes count as ``'``."""
    return WORD_RE.findall(text.lower().replace("\u2019", "'"))


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _clipped_overlap(candidate: Counter, reference: Counter) -> int:
    if len(reference) < len(candidate):
        candidate, reference = reference, candidate
    return sum(min(count, reference[gram]) for gram, count in candidate.items() if gram in reference)


def rouge_n_precision(candidate: str | list[str], reference: str | list[str], n: int = 2) -> float:
    """Clipped n-gram precision of ``candidate`` against ``reference`` (texts or :func:`tokenize_words` tokens).

    The share of the candidate's n-grams, counted with multiplicity, that the reference also has, each n-gram counted
    at most as many times as it occurs in the reference; 0.0 when the candidate has fewer than ``n`` words.

    >>> rouge_n_precision("the cat sat on the mat", "the cat sat down")
    0.4
    """
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    candidate = tokenize_words(candidate) if isinstance(candidate, str) else candidate
    reference = tokenize_words(reference) if isinstance(reference, str) else reference
    total = len(candidate) - n + 1
    if total <= 0:
        return 0.0
    return _clipped_overlap(_ngrams(candidate, n), _ngrams(reference, n)) / total


def cut_story(story: str, rng: random.Random, min_fraction: float = 0.3, max_fraction: float = 0.7) -> tuple[str, str]:
    """Cut ``story`` in the middle of a sentence into ``(beginning, true_continuation)``, the paper's prompts.

    The cut is at the whitespace after a word drawn uniformly among those between ``min_fraction`` and
    ``max_fraction`` of the story's words that do not end a sentence (a word ending in ``.``, ``!``, ``?`` or ``…``,
    possibly followed by a closing quote or bracket) and are not followed by a line break. When the range has no such
    word, the nearest one outside it is used; when the story has none at all, the nearest gap of any kind. The
    continuation starts with the whitespace, so ``beginning + continuation == story``; the same ``rng`` state gives
    the same cut.
    """
    if not 0.0 <= min_fraction <= max_fraction <= 1.0:
        raise ValueError(f"need 0 <= min_fraction <= max_fraction <= 1, got {min_fraction} and {max_fraction}")
    body = story.rstrip()
    # gaps[k - 1] is the whitespace after the k-th word (leading whitespace belongs to the first word)
    gaps = [gap for gap in _GAP_RE.finditer(body) if gap.start() > 0]
    if not gaps:
        raise ValueError(f"cannot cut a story of fewer than two words: {story[:80]!r}")
    num_words = len(gaps) + 1
    low = max(1, math.ceil(min_fraction * num_words))
    high = min(num_words - 1, math.floor(max_fraction * num_words))
    if low > high:  # a short story: the fraction range holds no word boundary, take the nearest one
        low = high = min(max(1, round((min_fraction + max_fraction) / 2 * num_words)), num_words - 1)

    def mid_sentence(words_before: int) -> bool:
        gap = gaps[words_before - 1]
        word = body[gaps[words_before - 2].end() if words_before > 1 else 0 : gap.start()]
        return "\n" not in gap.group() and not _SENTENCE_END_RE.search(word)

    in_range = [k for k in range(low, high + 1) if mid_sentence(k)]
    if in_range:
        words_before = rng.choice(in_range)
    else:
        elsewhere = [k for k in range(1, num_words) if mid_sentence(k)] or list(range(1, num_words))
        words_before = min(elsewhere, key=lambda k: (max(low - k, k - high), k))
    cut = gaps[words_before - 1].start()
    return story[:cut], story[cut:]


class NgramIndex:
    """An inverted index from word n-gram to the stories holding it, for the closest story to a text by Rouge-n
    precision without a loop over all stories.

    Words get integer ids and n-grams 64-bit keys, distinct while the vocabulary has fewer than ``2 ** (64 // n)``
    words (4 billion for bigrams, 2 million for trigrams); beyond that some n-grams share a key, which only loosens
    the candidate bound. Posting lists live in flat numpy arrays (story id, count, per-key offsets): 6 bytes per
    distinct n-gram of each story, ~90 MB for 100K TinyStories. The stories are referenced, not copied: exact scores
    re-tokenize the few candidates.

    >>> index = NgramIndex(["the cat sat on the mat", "a dog sat on a log"])
    >>> index.closest("the dog sat on the mat")
    [(0, 0.6)]
    """

    def __init__(self, stories: Sequence[str], n: int = 2, progress: bool = False, chunk_size: int = 5000):
        if n < 1:
            raise ValueError(f"n must be a positive integer, got {n}")
        from tqdm.auto import tqdm

        self.stories = stories
        self.n = n
        self.vocabulary: dict[str, int] = {}
        # bits per word in an n-gram key: exact while the vocabulary has fewer than 2 ** bits words
        self._bits = 64 // n
        lookup = self.vocabulary.setdefault
        # per chunk of stories: its distinct keys, then per distinct (story, n-gram) pair (story-major): the key's
        # position among the chunk's keys, the story, the count (10 bytes a pair)
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for begin in tqdm(range(0, len(stories), chunk_size), desc="n-gram index", disable=not progress):
            lengths, ids = [], []
            for story in stories[begin : begin + chunk_size]:
                words = tokenize_words(story)
                lengths.append(len(words))
                ids.extend(lookup(word, len(self.vocabulary)) for word in words)
            keys, owners = self._story_ngram_keys(
                np.asarray(ids, dtype=np.uint64), np.asarray(lengths, dtype=np.int64), begin
            )
            order = np.lexsort((keys, owners))
            keys, owners = keys[order], owners[order]
            first = np.ones(len(order), dtype=bool)
            first[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
            starts = np.flatnonzero(first)
            counts = np.minimum(np.diff(np.append(starts, len(order))), _SATURATED).astype(np.uint16)
            chunk_keys, local = np.unique(keys[starts], return_inverse=True)
            chunks.append((chunk_keys, local.astype(np.int32), owners[starts].astype(np.int32), counts))
        # posting lists in three flat arrays, grouped by key, each in story order (a counting sort, chunk by chunk)
        self._keys = np.unique(np.concatenate([chunk[0] for chunk in chunks])) if chunks else np.zeros(0, np.uint64)
        sizes = np.zeros(len(self._keys), dtype=np.int64)
        for keys, local, _, _ in chunks:  # chunk-local key positions -> global ones, in place
            np.take(np.searchsorted(self._keys, keys).astype(np.int32), local, out=local)
            sizes += np.bincount(local, minlength=len(self._keys))
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._postings = np.empty(self._offsets[-1], dtype=np.int32)
        self._counts = np.empty(self._offsets[-1], dtype=np.uint16)
        cursor = self._offsets[:-1].copy()
        while chunks:
            _, ids, owners, counts = chunks.pop(0)  # freed as placed
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            group_sizes = np.bincount(ids, minlength=len(self._keys))
            rank = np.arange(len(ids)) - (np.cumsum(group_sizes) - group_sizes)[ids]
            destination = cursor[ids] + rank
            self._postings[destination] = owners[order]
            self._counts[destination] = counts[order]
            cursor += group_sizes

    def __len__(self) -> int:
        return len(self.stories)

    def _story_ngram_keys(self, ids: np.ndarray, lengths: np.ndarray, begin: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """64-bit keys of every n-gram inside one of the stories whose word ids are concatenated in ``ids``, and the
        index of each key's story."""
        story_of_word = np.repeat(np.arange(begin, begin + len(lengths), dtype=np.int64), lengths)
        num = len(ids) - self.n + 1
        if num <= 0:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        keys = ids[:num].copy()
        for offset in range(1, self.n):  # ids of 2 ** bits and more overlap the next word's bits: keys may collide
            keys = (keys << np.uint64(self._bits)) | ids[offset : offset + num]
        inside = story_of_word[:num] == story_of_word[self.n - 1 :]
        return keys[inside], story_of_word[:num][inside]

    def bounds(self, tokens: Sequence[str], exclude: int | None = None) -> np.ndarray:
        """The clipped n-gram overlap of ``tokens`` with every story, as counted from the index: exact unless n-gram
        keys collide (see the class docstring) or a story repeats an n-gram 65,535 times, an upper bound always.
        ``exclude`` gets -1."""
        bounds = np.zeros(len(self.stories), dtype=np.int64)
        ids = np.asarray([self.vocabulary.get(word, -1) for word in tokens], dtype=np.int64)
        known = np.flatnonzero(ids >= 0)
        if len(ids) >= self.n and len(known):
            # n-grams made of indexed words only: split the query into runs of known words, one "story" per run
            runs = np.split(ids, np.flatnonzero(ids < 0))
            runs = [run[run >= 0] for run in runs]
            lengths = np.asarray([len(run) for run in runs], dtype=np.int64)
            keys, _ = self._story_ngram_keys(np.concatenate(runs).astype(np.uint64), lengths)
            keys, query_counts = np.unique(keys, return_counts=True)
            slots = np.searchsorted(self._keys, keys)
            found = slots < len(self._keys)
            found[found] = self._keys[slots[found]] == keys[found]
            slots, query_counts = slots[found], query_counts[found]
            starts, ends = self._offsets[slots], self._offsets[slots + 1]
            lengths = ends - starts
            if lengths.sum():
                # positions of all postings of the query's n-grams, without a Python loop
                run_starts = np.cumsum(lengths) - lengths
                positions = np.arange(lengths.sum()) - np.repeat(run_starts - starts, lengths)
                query_counts = np.repeat(query_counts, lengths)
                story_counts = self._counts[positions]
                # a saturated count means "at least": assume the story has as many as the query (still a bound)
                weights = np.where(story_counts == _SATURATED, query_counts, np.minimum(query_counts, story_counts))
                bounds = np.bincount(self._postings[positions], weights=weights, minlength=len(self.stories))
                bounds = bounds.astype(np.int64)
        if exclude is not None and 0 <= exclude < len(bounds):
            bounds[exclude] = -1
        return bounds

    def closest(
        self, text: str | list[str], top_k: int = 1, candidates: int = 50, exclude: int | None = None
    ) -> list[tuple[int, float]]:
        """The ``top_k`` stories with the highest Rouge-n precision of ``text`` against them, as ``(story index,
        score)`` best first (ties: lowest index first), skipping story ``exclude``.

        Overlaps counted from the index bound the exact scores from above (and equal them for bigrams). The ``top_k``
        best stories by bound are scored exactly, then ``candidates`` more at a time, best bound first, while a story
        not yet scored could still beat the ``top_k``-th exact score, so the answer is the brute-force one. Stories
        sharing no n-gram with ``text`` are not returned: an empty list means no story shares any.
        """
        if top_k < 1 or candidates < 1:
            raise ValueError(f"top_k and candidates must be positive, got {top_k} and {candidates}")
        tokens = tokenize_words(text) if isinstance(text, str) else list(text)
        total = len(tokens) - self.n + 1
        if total <= 0 or not len(self.stories):
            return []
        bounds = self.bounds(tokens, exclude)
        # one sortable integer per story: bound first, then lower index first among equal bounds
        order_keys = bounds * (len(bounds) + 1) + (len(bounds) - np.arange(len(bounds)))
        num_positive = int((bounds > 0).sum())
        query = _ngrams(tokens, self.n)
        overlaps: dict[int, int] = {}  # exact clipped overlaps of the stories scored so far
        wanted = min(top_k, num_positive)
        while True:
            # the `wanted` best stories by bound, best first, then the best of the rest
            if wanted < len(bounds):
                head = np.argpartition(-order_keys, wanted)[: wanted + 1]
            else:
                head = np.arange(len(bounds))
            head = head[np.argsort(-order_keys[head])].tolist()
            for story in head[:wanted]:
                if story not in overlaps:
                    overlaps[story] = _clipped_overlap(query, _ngrams(tokenize_words(self.stories[story]), self.n))
            best = sorted(overlaps.items(), key=lambda item: (-item[1], item[0]))[:top_k]
            if wanted >= num_positive:
                break
            # every story not scored yet has at most the next story's bound and, at an equal bound, a higher index
            next_story = head[wanted]
            last_story, last_overlap = best[-1] if len(best) == top_k else (-1, -1)
            next_bound = int(bounds[next_story])
            if last_overlap > next_bound or (last_overlap == next_bound and last_story < next_story):
                break
            wanted = min(wanted + candidates, num_positive)
        return [(story, overlap / total) for story, overlap in best if overlap > 0]


def _stats(values: Sequence[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    histogram = np.histogram(array, bins=_HIST_BINS, range=(0.0, 1.0))[0].tolist()
    if not len(array):
        return {"mean": None, "median": None, "p90": None, "max": None, "histogram": histogram}
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "p90": float(np.percentile(array, 90)),
        "max": float(array.max()),
        "histogram": histogram,
    }


@dataclass
class DiversityReport:
    """Per-completion results of :func:`diversity_report`, in the order of the completions.

    ``closest_train_index`` is -1 where no training story shares an n-gram with the completion (score 0.0).
    """

    rouge_vs_truth: list[float] = field(default_factory=list)
    max_rouge_vs_others: list[float] = field(default_factory=list)
    closest_train_rouge: list[float] = field(default_factory=list)
    closest_train_index: list[int] = field(default_factory=list)
    source_indices: list[int] | None = None
    n: int = 2

    def __len__(self) -> int:
        return len(self.rouge_vs_truth)

    def summary(self) -> dict:
        """Mean, median, 90th percentile, max and the counts of 10 equal bins over [0, 1] of each measure."""
        summary: dict = {"num_samples": len(self), "n": self.n, "histogram_bin_edges": _bin_edges()}
        for measure in MEASURES:
            summary[measure] = _stats(getattr(self, measure))
        if self.source_indices is not None and len(self):
            same = sum(a == b for a, b in zip(self.closest_train_index, self.source_indices))
            summary["closest_is_source_fraction"] = same / len(self)
        return summary

    def to_dict(self) -> dict:
        """The per-sample lists and the summary, JSON-serialisable."""
        return {**asdict(self), "summary": self.summary()}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _bin_edges() -> list[float]:
    return [round(edge, 10) for edge in np.linspace(0.0, 1.0, _HIST_BINS + 1).tolist()]


def diversity_report(
    completions: Sequence[str],
    true_continuations: Sequence[str],
    training_stories: Sequence[str],
    source_indices: Sequence[int] | None = None,
    n: int = 2,
    progress: bool = True,
    exclude_source: bool = False,
    training_index: NgramIndex | None = None,
) -> DiversityReport:
    """The paper's three measures for each completion (see the module docstring).

    ``completions[i]`` is the model's continuation of a training story cut by :func:`cut_story` (the generated text
    only, not the prompt, which would match its source story), ``true_continuations[i]`` the rest of that story and
    ``source_indices[i]`` (optional) its index in ``training_stories``. The closest training story may be the source
    itself, which is the point: a completion reciting its own story is a copy. ``exclude_source=True`` skips it.
    Pass ``training_index`` (an :class:`NgramIndex` of ``training_stories``) to reuse one across reports.
    """
    from tqdm.auto import tqdm

    if len(completions) != len(true_continuations):
        raise ValueError(
            f"got {len(completions)} completions but {len(true_continuations)} true continuations; need one each"
        )
    if source_indices is not None and len(source_indices) != len(completions):
        raise ValueError(f"got {len(source_indices)} source indices for {len(completions)} completions")
    if exclude_source and source_indices is None:
        raise ValueError("exclude_source=True needs source_indices")
    if training_index is None:
        training_index = NgramIndex(training_stories, n=n, progress=progress)
    elif training_index.n != n or len(training_index) != len(training_stories):
        raise ValueError(
            f"training_index is a {training_index.n}-gram index of {len(training_index)} stories, not a "
            f"{n}-gram index of the {len(training_stories)} training stories"
        )
    completions_index = NgramIndex(completions, n=n)
    report = DiversityReport(source_indices=None if source_indices is None else [int(i) for i in source_indices], n=n)
    for i in tqdm(range(len(completions)), desc="diversity", unit="completion", disable=not progress):
        tokens = tokenize_words(completions[i])
        report.rouge_vs_truth.append(rouge_n_precision(tokens, true_continuations[i], n))
        others = completions_index.closest(tokens, top_k=1, exclude=i)
        report.max_rouge_vs_others.append(others[0][1] if others else 0.0)
        exclude = int(source_indices[i]) if exclude_source else None
        closest = training_index.closest(tokens, top_k=1, exclude=exclude)
        report.closest_train_index.append(closest[0][0] if closest else -1)
        report.closest_train_rouge.append(closest[0][1] if closest else 0.0)
    return report


def plot_diversity(report: DiversityReport, path: str, title: str = "Diversity of completions (TinyStories)") -> str:
    """Save the three histograms of ``report`` side by side as a PNG at ``path``; returns ``path``.

    Uses a bare matplotlib ``Figure`` (no pyplot), so no backend is selected and interactive sessions are untouched.
    """
    from matplotlib.figure import Figure

    labels = {
        "rouge_vs_truth": f"Rouge-{report.n} precision vs the true continuation",
        "max_rouge_vs_others": f"max Rouge-{report.n} precision vs other completions",
        "closest_train_rouge": f"Rouge-{report.n} precision vs the closest training story",
    }
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    axes = figure.subplots(1, 3, sharey=True)
    for ax, measure in zip(axes, MEASURES):
        values = getattr(report, measure)
        ax.hist(values, bins=np.linspace(0.0, 1.0, _HIST_BINS + 1), color="tab:blue", edgecolor="white")
        if values:
            mean = float(np.mean(values))
            ax.axvline(mean, color="tab:red", linestyle="--", label=f"mean {mean:.2f}")
            ax.legend(loc="best")
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(labels[measure])
    axes[0].set_ylabel("completions")
    figure.suptitle(f"{title} ({len(report)} completions)")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
