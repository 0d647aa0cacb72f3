"""The duplicate index against a brute-force reference, and a teacher that keeps writing the same story."""

import random

import numpy as np
from conftest import make_stories

from tinystories.synth.dedup import EXACT_DUPLICATE, KEPT, NEAR_DUPLICATE, DedupIndex, exact_hash


def brute_force(index: DedupIndex, blocks: list[list[str]]) -> list[list[int]]:
    """Each story against every candidate before it, one pair at a time: the rule the index implements."""
    hashes, signatures, status, out = [], [], [], []
    for block in blocks:
        outcome = []
        for story in block:
            h, sig = exact_hash(story), index.signatures_of([story])[0]
            keys = index.band_keys(sig[None])[0]
            if h in hashes:
                result = EXACT_DUPLICATE
            else:
                result = KEPT
                for j, other in enumerate(signatures):
                    shares_band = (index.band_keys(other[None])[0] == keys).any()
                    if status[j] != EXACT_DUPLICATE and shares_band and np.mean(other == sig) >= index.threshold:
                        result = NEAR_DUPLICATE
                        break
            hashes.append(h)
            signatures.append(sig)
            status.append(result)
            outcome.append(result)
        out.append(outcome)
    return out


def variants(stories: list[str], n: int, seed: int) -> list[str]:
    """Copies of ``stories`` with one word changed, a sentence added or nothing changed (exact copies)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        story = rng.choice(stories)
        kind = rng.randrange(3)
        if kind == 0:
            words = story.split()
            words[rng.randrange(len(words))] = rng.choice(["blue", "tiny", "happy", "sad"])
            story = " ".join(words)
        elif kind == 1:
            story += " Then they went home and slept."
        out.append(story)
    return out


def test_the_index_decides_as_the_brute_force_reference_over_blocks():
    originals = make_stories(60, seed=7)
    stories = originals + variants(originals, 90, seed=1)
    random.Random(2).shuffle(stories)
    blocks = [stories[:50], stories[50:51], stories[51:120], stories[120:]]
    for threshold in (0.5, 0.8):
        index = DedupIndex(threshold=threshold)
        got = []
        for block in blocks:
            hashes = [exact_hash(s) for s in block]
            signatures = index.signatures_of(block)
            status = index.classify(hashes, signatures)
            index.add(hashes, signatures, status)
            got.append(status.tolist())
        expected = brute_force(DedupIndex(threshold=threshold), blocks)
        assert got == expected
        flat = [s for block in got for s in block]
        assert flat.count(EXACT_DUPLICATE) > 5 and flat.count(NEAR_DUPLICATE) > 5  # both kinds were exercised


def test_signatures_of_many_stories_at_once_equal_the_minhash_formula_one_story_at_a_time(monkeypatch):
    from tinystories.synth import dedup

    monkeypatch.setattr(dedup, "_SHINGLES_AT_ONCE", 100)  # several groups of stories side by side
    stories = make_stories(40, seed=3) + ["", "Dog.", "Once upon a time"]
    index = DedupIndex()
    a, b = index.minhash.a, index.minhash.b
    with np.errstate(over="ignore"):
        expected = [
            ((a[:, None] * dedup._shingle_hashes(s, 5)[None] + b[:, None]) >> np.uint64(32)).min(axis=1)
            for s in stories
        ]
    assert np.array_equal(index.signatures_of(stories), np.stack(expected).astype(np.uint32))


def test_a_teacher_repeating_itself_leaves_one_story_of_thousands():
    base = "Once upon a time, a little dog named Max ran to the big park with his red ball and played all day. " * 3
    rng = random.Random(0)
    words = ["tree", "cat", "sun", "hat", "cake", "boat", "bird", "frog", "moon", "star", "fish", "bell"]
    index = DedupIndex(threshold=0.7)
    kept = 0
    for _ in range(3):  # 3 blocks of 1,500 stories that differ in their last three words
        block = [base + " ".join(rng.sample(words, 3)) + "." for _ in range(1500)]
        hashes = [exact_hash(s) for s in block]
        signatures = index.signatures_of(block)
        status = index.classify(hashes, signatures)
        index.add(hashes, signatures, status)
        kept += int((status == KEPT).sum())
    assert kept == 1
