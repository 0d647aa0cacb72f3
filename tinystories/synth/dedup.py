"""Exact and near-duplicate detection against everything generated so far, in bounded memory, restorable from disk.

``MinHashDeduplicator`` signs a story (MinHash over word 5-grams after the stock-opener strip: 59% of TinyStories
open with "Once upon a time"). ``DedupIndex`` holds, for every story that passed the quality filters so far (a
*candidate*), an 8-byte hash of its normalised words (exact duplicates) and the LSH band keys of its signature, in sorted NumPy runs merged like an LSM tree; the signatures
themselves, needed only to confirm a band collision, stay on disk (one ``.npy`` per shard, memory-mapped). A story is
a duplicate when it matches *any* earlier candidate, whether that one was kept or not (datatrove's rule: one story
per cluster), so the decision depends only on the stories of earlier prompt indices: the same whatever the chunking
or the split over workers, which is what lets ``--merge`` replay it across workers exactly (docs/generation.md).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import numpy as np

WORD_RE = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")

STOCK_OPENERS = (
    "once upon a time",
    "one day",
    "there was a",
    "there once was",
    "in a small town",
    "in a big forest",
)


def words_of(text: str) -> list[str]:
    return [word.lower() for word in WORD_RE.findall(text)]


def strip_openers(text: str) -> str:
    lowered = text.lower().lstrip()
    for opener in STOCK_OPENERS:
        if lowered.startswith(opener):
            return lowered[len(opener) :]
    return lowered


def _shingle_hashes(text: str, n: int) -> np.ndarray:
    """The 8-byte blake2b hashes (little-endian uint64) of the text's distinct word ``n``-grams after the stock
    opener (one gram, maybe empty, for a text shorter than ``n`` words)."""
    words = words_of(strip_openers(text))
    grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    digests = b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


#: Shingles hashed at once by ``MinHashDeduplicator.signatures`` (a ``num_perm`` x this uint64 array: 4 MB).
_SHINGLES_AT_ONCE = 4096


class MinHashDeduplicator:
    """Near-duplicate detection: MinHash signatures of word n-grams, LSH banding, Jaccard estimate threshold."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, bands: int = 32, ngram: int = 5, seed: int = 0):
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        rng = np.random.default_rng(seed)
        # multiply-shift universal hashing: (a * h + b) mod 2**64, top 32 bits; a odd
        self.a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
        self.threshold, self.bands, self.rows, self.ngram = threshold, bands, num_perm // bands, ngram

    def signature(self, text: str) -> np.ndarray:
        return self.signatures([text])[0]

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), num_perm)`` uint64 MinHash signatures: for each permutation ``(a * h + b) >> 32``, the
        minimum over the text's shingle hashes ``h``, computed for several texts side by side (each text's minimum
        taken over its own columns)."""
        out = np.empty((len(texts), len(self.a)), np.uint64)
        shingles = [_shingle_hashes(t, self.ngram) for t in texts]
        start = 0
        while start < len(texts):  # a group of texts with at most _SHINGLES_AT_ONCE shingles (at least one text)
            end, size = start + 1, len(shingles[start])
            while end < len(texts) and size + len(shingles[end]) <= _SHINGLES_AT_ONCE:
                size += len(shingles[end])
                end += 1
            hashes = np.concatenate(shingles[start:end])
            offsets = np.cumsum([0] + [len(h) for h in shingles[start : end - 1]])
            with np.errstate(over="ignore"):
                values = (self.a[:, None] * hashes[None, :] + self.b[:, None]) >> np.uint64(32)
            out[start:end] = np.minimum.reduceat(values, offsets, axis=1).T
            start = end
        return out

    def duplicates(self, texts: Sequence[str]) -> dict[int, int]:
        """``{index: index of the earlier text it duplicates}`` for every near duplicate (first one kept)."""
        signatures = self.signatures(texts)
        buckets: dict[tuple, list[int]] = {}
        found: dict[int, int] = {}
        for i, sig in enumerate(signatures):
            candidates = set()
            for band in range(self.bands):
                key = (band, sig[band * self.rows : (band + 1) * self.rows].tobytes())
                candidates.update(buckets.setdefault(key, []))
                buckets[key].append(i)
            for j in sorted(candidates):
                if j not in found and np.mean(signatures[j] == sig) >= self.threshold:
                    found[i] = j
                    break
        return found


#: Stories whose matches in the index are gathered at once, and pairs of signatures compared at once, by
#: ``DedupIndex.classify`` (what bounds its memory when a band key is shared by thousands of stories).
_QUERIES_AT_ONCE, _PAIRS_AT_ONCE = 16, 16384

#: A candidate's outcome, as stored per shard.
KEPT, EXACT_DUPLICATE, NEAR_DUPLICATE = 0, 1, 2
_MIX = np.uint64(0x9E3779B97F4A7C15)


def exact_hash(story: str, words: Sequence[str] | None = None) -> int:
    """8 bytes of blake2b over the story's lowercased words (what counts as an exact duplicate); ``words``: the
    story's ``words_of``, when the caller has them already."""
    digest = hashlib.blake2b(" ".join(words_of(story) if words is None else words).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class SortedRuns:
    """A multiset of ``uint64`` keys, each with an ``int64`` id, as sorted runs merged when a run grows as large as
    the one before it (amortised O(log n) merges per key); ``lookup`` finds every stored id of each query key."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self.runs)

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        if not len(keys):
            return
        order = np.argsort(keys, kind="stable")
        self.runs.append((keys[order], ids[order]))
        while len(self.runs) > 1 and len(self.runs[-1][0]) * 2 >= len(self.runs[-2][0]):
            (k2, i2), (k1, i1) = self.runs.pop(), self.runs.pop()
            keys, ids = np.concatenate([k1, k2]), np.concatenate([i1, i2])
            order = np.argsort(keys, kind="stable")
            self.runs.append((keys[order], ids[order]))

    def first(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(query positions, stored ids)``: at most one match per query and run (the cheap first look, whatever
        the number of stored ids a key has)."""
        positions, found = [], []
        for keys, ids in self.runs:
            lo = np.searchsorted(keys, queries, "left")
            hit = np.nonzero(lo < len(keys))[0]
            hit = hit[keys[lo[hit]] == queries[hit]]
            positions.append(hit)
            found.append(ids[lo[hit]])
        if not positions:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(positions), np.concatenate(found)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(query positions, stored ids)``: one pair per match."""
        positions, found = [], []
        for keys, ids in self.runs:
            lo = np.searchsorted(keys, queries, "left")
            hi = np.searchsorted(keys, queries, "right")
            counts = hi - lo
            hit = np.nonzero(counts)[0]
            if not len(hit):
                continue
            repeats = counts[hit]
            starts = np.repeat(lo[hit] - np.cumsum(repeats) + repeats, repeats) + np.arange(repeats.sum())
            positions.append(np.repeat(hit, repeats))
            found.append(ids[starts])
        if not positions:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(positions), np.concatenate(found)


class DedupIndex:
    """Every candidate so far: exact hashes and band keys in memory (~0.4 KB a story), signatures on disk."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, bands: int = 32, ngram: int = 5):
        self.minhash = MinHashDeduplicator(threshold=threshold, num_perm=num_perm, bands=bands, ngram=ngram)
        self.threshold, self.bands, self.rows = threshold, bands, num_perm // bands
        rng = np.random.default_rng(12345)
        self._row_mix = rng.integers(1, 2**63, (bands, self.rows), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.exact, self.near = SortedRuns(), SortedRuns()
        self.signatures: list[np.ndarray] = []  # per added block, memory-mapped once it is on disk
        self._starts: list[int] = []  # global id of each block's first candidate
        self.size = 0

    def signatures_of(self, stories: Sequence[str]) -> np.ndarray:
        if not stories:
            return np.zeros((0, self.bands * self.rows), np.uint32)
        return self.minhash.signatures(stories).astype(np.uint32)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """``(n, bands)`` uint64 keys: each band's rows hashed together with the band's number."""
        sig = signatures.astype(np.uint64).reshape(len(signatures), self.bands, self.rows)
        with np.errstate(over="ignore"):
            keys = (sig * self._row_mix[None]).sum(axis=2, dtype=np.uint64)
            keys ^= np.arange(self.bands, dtype=np.uint64)[None] * _MIX
        return keys

    def _signature_rows(self, ids: np.ndarray) -> np.ndarray:
        blocks = np.searchsorted(np.asarray(self._starts), ids, "right") - 1
        out = np.empty((len(ids), self.bands * self.rows), np.uint32)
        for block in np.unique(blocks):
            where = np.nonzero(blocks == block)[0]
            out[where] = self.signatures[block][ids[where] - self._starts[block]]
        return out

    def classify(self, hashes: Sequence[int], signatures: np.ndarray) -> np.ndarray:
        """The outcome (``KEPT``, ``EXACT_DUPLICATE``, ``NEAR_DUPLICATE``) of each of a block of candidates, in
        order, against the index and the candidates before it in the block. Does not add them: ``add`` does."""
        n = len(hashes)
        status = np.full(n, KEPT, np.int8)
        if not n:
            return status
        hashes = np.asarray(hashes, dtype=np.uint64)
        positions, _ = self.exact.lookup(hashes)
        status[np.unique(positions)] = EXACT_DUPLICATE
        first = np.zeros(n, bool)
        first[np.unique(hashes, return_index=True)[1]] = True
        status[~first] = EXACT_DUPLICATE  # the same words as a story before it in the block
        candidates = np.nonzero(status != EXACT_DUPLICATE)[0]
        keys = self.band_keys(signatures)
        near = np.zeros(n, bool)
        self._near_earlier_blocks(near, keys, signatures, candidates)
        self._near_in_block(near, keys, signatures, candidates)
        status[near] = NEAR_DUPLICATE
        return status

    def _near_earlier_blocks(self, near, keys, signatures, candidates) -> None:
        """Mark the ``candidates`` similar to a story of the index with which they share a band key: first one
        stored story per key and run each, then, for those still unmatched, every one (in parts of
        ``_QUERIES_AT_ONCE`` stories: a key shared by many stored stories costs time, not memory)."""
        if not len(candidates) or not self.size:
            return
        positions, ids = self.near.first(keys[candidates].reshape(-1))
        self._mark_similar(near, candidates[positions // self.bands], ids, signatures, self._signature_rows)
        for start in range(0, len(candidates), _QUERIES_AT_ONCE):
            part = candidates[start : start + _QUERIES_AT_ONCE]
            part = part[~near[part]]
            if len(part):
                positions, ids = self.near.lookup(keys[part].reshape(-1))
                self._mark_similar(near, part[positions // self.bands], ids, signatures, self._signature_rows)

    def _near_in_block(self, near, keys, signatures, candidates) -> None:
        """Mark the ``candidates`` similar to a candidate before them in the block with which they share a band
        key: the first candidate of each key first, then every earlier one for those still unmatched."""
        if len(candidates) < 2:
            return
        flat = keys[candidates].reshape(-1)
        owners = np.repeat(candidates, self.bands)
        order = np.argsort(flat, kind="stable")  # by key, then by position in the block
        flat, owners = flat[order], owners[order]
        run_start = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        run_of = np.repeat(np.arange(len(run_start)), np.diff(np.r_[run_start, len(flat)]))
        heads = owners[run_start[run_of]]  # the first candidate of each entry's key
        later = owners != heads
        self._mark_similar(near, owners[later], heads[later], signatures, lambda rows: signatures[rows])
        lengths = np.diff(np.r_[run_start, len(flat)])
        seen: set[bytes] = set()  # the stories of a key shared by 3 or more (near-identical ones share every band)
        for start, length in zip(run_start[lengths > 2].tolist(), lengths[lengths > 2].tolist()):
            members = np.unique(owners[start : start + length])
            if len(members) < 3 or members.tobytes() in seen:
                continue
            seen.add(members.tobytes())
            pending = members[~near[members]][1:]  # not the first: it has no earlier story in the key
            step = max(1, _PAIRS_AT_ONCE // len(members))
            for part in (pending[i : i + step] for i in range(0, len(pending), step)):
                later, earlier = np.repeat(part, len(members)), np.tile(members, len(part))
                before = earlier < later
                self._mark_similar(near, later[before], earlier[before], signatures, lambda r: signatures[r])

    def _mark_similar(self, near, later, earlier, signatures, rows_of) -> None:
        """``near[l] = True`` for each pair ``(later l, earlier e)`` whose signatures agree on at least
        ``threshold`` of their rows (``rows_of(e)``: e's signatures); pairs of an ``l`` already near are skipped,
        and the pairs are compared ``_PAIRS_AT_ONCE`` at a time."""
        keep = ~near[later]
        later, earlier = later[keep], earlier[keep]
        if not len(later):
            return
        span = int(earlier.max()) + 1
        pairs = np.unique(later.astype(np.int64) * span + earlier)  # each pair once, by later then earlier
        for start in range(0, len(pairs), _PAIRS_AT_ONCE):
            later, earlier = np.divmod(pairs[start : start + _PAIRS_AT_ONCE], span)
            keep = ~near[later]
            later, earlier = later[keep], earlier[keep]
            if len(later):
                similar = (rows_of(earlier) == signatures[later]).mean(axis=1) >= self.threshold
                near[later[similar]] = True

    def add(self, hashes: Sequence[int], signatures: np.ndarray, status: np.ndarray) -> None:
        """Add a block of candidates (all but the exact duplicates enter the near-duplicate index)."""
        n = len(hashes)
        ids = np.arange(self.size, self.size + n, dtype=np.int64)
        self.exact.add(np.asarray(hashes, dtype=np.uint64), ids)
        unique = np.asarray(status) != EXACT_DUPLICATE
        keys = self.band_keys(signatures[unique])
        self.near.add(keys.reshape(-1), np.repeat(ids[unique], self.bands))
        self._starts.append(self.size)
        self.signatures.append(signatures)
        self.size += n

    def swap_last_block(self, path: str) -> None:
        """Replace the last block's in-memory signatures by the memory-mapped file ``path`` holding them."""
        self.signatures[-1] = np.load(path, mmap_mode="r")


def save_block(folder: str, name: str, hashes, signatures: np.ndarray, status, splits, rows, shares) -> str:
    """A shard's candidates on disk (atomically): ``NAME.sig.npy`` (signatures) and ``NAME.npz`` (exact hashes,
    outcome, split 0/1, row in the split's shard or -1 when removed, share of words outside the vocabulary);
    returns the signatures' path."""
    os.makedirs(folder, exist_ok=True)
    sig_path = os.path.join(folder, f"{name}.sig.npy")
    _atomic_save(sig_path, lambda f: np.save(f, np.asarray(signatures, np.uint32)))
    arrays = {
        "hashes": np.asarray(hashes, np.uint64),
        "status": np.asarray(status, np.int8),
        "splits": np.asarray(splits, np.int8),
        "rows": np.asarray(rows, np.int64),
        "shares": np.asarray(shares, np.float64),
    }
    _atomic_save(os.path.join(folder, f"{name}.npz"), lambda f: np.savez(f, **arrays))
    return sig_path


def load_block(folder: str, name: str) -> dict[str, np.ndarray]:
    """What ``save_block`` wrote, the signatures memory-mapped."""
    with np.load(os.path.join(folder, f"{name}.npz")) as data:
        block = {key: data[key] for key in data.files}
    block["signatures"] = np.load(os.path.join(folder, f"{name}.sig.npy"), mmap_mode="r")
    return block


def _atomic_save(path: str, write) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


__all__ = [
    "EXACT_DUPLICATE",
    "KEPT",
    "NEAR_DUPLICATE",
    "STOCK_OPENERS",
    "DedupIndex",
    "MinHashDeduplicator",
    "SortedRuns",
    "exact_hash",
    "load_block",
    "save_block",
    "strip_openers",
    "words_of",
]
