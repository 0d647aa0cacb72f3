"""Rouge-n precision between stories, and an exact nearest-neighbour index over a training set.

Rouge-n precision here is the clipped n-gram precision of a candidate against one reference: the share of the
candidate's word n-grams (with multiplicity) found in the reference, each counted at most as often as the
reference has it. ``NgramIndex`` finds the training story with the highest score for a query without a loop over
all stories, with the same answer (docs/evaluation.md says how).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SATURATED = 65535  # n-gram counts per story are stored as uint16


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
