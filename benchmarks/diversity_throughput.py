"""Closest-training-story search for the diversity check: the n-gram index against a brute-force loop, one run.

Corpus: the TinyStories V2 sample (../shared/data/tinystories_v2_sample.txt beside the repository) when present, else
synthetic stories; grown to --stories by splicing stories at sentence boundaries (the first sentences of one, the
last ones of another, shuffled), so the corpus is not hundreds of exact copies. Queries, like model completions:
half are true continuations of cut corpus stories (their story scores 1.0), half splice sentences of several stories
(a plausible new story whose phrases all occur somewhere).

Paths, each over the same queries, Rouge-2 precision of the query against every story, top-1 kept:
  (a) brute force: loop over all stories, their bigram Counters precomputed once (the fastest plain-Python loop;
      preparing them is timed apart)
  (b) tinystories.evaluation.ngram_index.NgramIndex.closest: inverted index, vectorised candidate counting, exact re-scoring
Both must agree on every top-1 score; the ratio a/b is the speedup.

    python benchmarks/diversity_throughput.py                       # 20K stories, 200 queries
    python benchmarks/diversity_throughput.py --stories 100000 --queries 50
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections import Counter

from tinystories.evaluation.diversity import cut_story
from tinystories.evaluation.ngram_index import NgramIndex, tokenize_words

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V2_SAMPLE = os.path.join(REPO, "..", "shared", "data", "tinystories_v2_sample.txt")
SENTENCE_RE = re.compile(r"(?<=[.!?\"])\s+")

NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna", "Tim", "Lucy"]
FRIENDS = ["a little dog", "a red bird", "a big bear", "a small cat", "a kind frog", "an old owl", "a shy fox"]
PLACES = ["the park", "the garden", "the big tree", "the pond", "the beach", "the farm", "the forest"]
THINGS = ["a shiny ball", "a blue kite", "a soft hat", "a yummy cake", "a tiny boat", "a funny box", "a red car"]
FEELINGS = ["happy", "sad", "scared", "excited", "proud", "angry", "sleepy"]


def synthetic_stories(count: int, seed: int) -> list[str]:
    """Simple template stories (no dataset needed), varied enough that few are identical."""
    rng = random.Random(seed)
    stories = []
    for _ in range(count):
        name, other = rng.sample(NAMES, 2)
        friend, place, thing, feeling = (
            rng.choice(FRIENDS),
            rng.choice(PLACES),
            rng.choice(THINGS),
            rng.choice(FEELINGS),
        )
        sentences = [
            f"Once upon a time, {name} went to {place} with {other}.",
            f"There {name} met {friend} who had {thing}.",
            f'"Can I play with {thing}?" asked {name}.',
            f'"Yes, let us play together," said {friend}.',
            f"{name} felt {feeling} and ran to {place} to find {other}.",
            f"{other} wanted {thing} too, so they shared it.",
            "They were very happy and played all day.",
            f"From that day on, {name} and {friend} were best friends.",
        ]
        rng.shuffle(sentences[1:-1])
        stories.append(" ".join(sentences[: rng.randint(4, len(sentences))]))
    return stories


def load_base(seed: int) -> tuple[list[str], str]:
    if os.path.isfile(V2_SAMPLE):
        with open(V2_SAMPLE, encoding="utf-8") as f:
            stories = [story.strip() for story in f.read().split("<|endoftext|>") if story.strip()]
        return stories, f"TinyStories V2 sample ({len(stories)} stories)"
    return synthetic_stories(2000, seed), "synthetic stories (the V2 sample is not there)"


def splice(first: str, second: str, rng: random.Random) -> str:
    a, b = SENTENCE_RE.split(first), SENTENCE_RE.split(second)
    return " ".join(a[: rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1) :])


def build_corpus(base: list[str], size: int, rng: random.Random) -> list[str]:
    corpus = list(base[:size])
    while len(corpus) < size:
        corpus.append(splice(rng.choice(base), rng.choice(base), rng))
    rng.shuffle(corpus)
    return corpus


def build_queries(corpus: list[str], count: int, rng: random.Random) -> list[str]:
    queries = []
    for i in range(count):
        if i % 2 == 0:
            queries.append(cut_story(rng.choice(corpus), rng)[1])
        else:
            sentences = [rng.choice(SENTENCE_RE.split(rng.choice(corpus))) for _ in range(rng.randint(3, 8))]
            queries.append(" ".join(sentences))
    return queries


def bigrams(text: str) -> Counter:
    words = tokenize_words(text)
    return Counter(zip(words, words[1:]))


def brute_force_top1(query: str, story_bigrams: list[Counter]) -> float:
    grams = bigrams(query)
    total = sum(grams.values())
    best = 0
    for reference in story_bigrams:
        overlap = sum(min(count, reference[gram]) for gram, count in grams.items() if gram in reference)
        best = max(best, overlap)
    return best / total if total else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=20_000, help="Corpus size.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=50, help="NgramIndex.closest's exact re-scoring batch.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    base, source = load_base(args.seed)
    corpus = build_corpus(base, args.stories, rng)
    queries = build_queries(corpus, args.queries, rng)
    words = sum(len(tokenize_words(story)) for story in corpus)
    print(f"corpus: {len(corpus)} stories, {words / len(corpus):.0f} words each on average, from the {source}")
    print(f"queries: {len(queries)} (half true continuations of cut stories, half spliced sentences)\n")

    start = time.perf_counter()
    index = NgramIndex(corpus, n=2)
    index_build = time.perf_counter() - start
    start = time.perf_counter()
    indexed = [index.closest(query, top_k=1, candidates=args.candidates) for query in queries]
    index_time = time.perf_counter() - start

    start = time.perf_counter()
    story_bigrams = [bigrams(story) for story in corpus]
    brute_prep = time.perf_counter() - start
    start = time.perf_counter()
    brute = [brute_force_top1(query, story_bigrams) for query in queries]
    brute_time = time.perf_counter() - start

    index_scores = [found[0][1] if found else 0.0 for found in indexed]
    mismatches = sum(a != b for a, b in zip(index_scores, brute))
    perfect = sum(score == 1.0 for score in index_scores)
    postings = len(index._postings)
    print(f"{'path':<44}{'prep s':>9}{'query s':>10}{'ms/query':>10}")
    print(
        f"{'(a) brute force, precomputed Counters':<44}{brute_prep:>9.2f}{brute_time:>10.2f}{brute_time / len(queries) * 1e3:>10.2f}"
    )
    print(
        f"{'(b) NgramIndex.closest':<44}{index_build:>9.2f}{index_time:>10.2f}{index_time / len(queries) * 1e3:>10.2f}"
    )
    print(
        f"\nindex: {len(index._keys)} distinct bigrams, {postings} postings "
        f"(~{(postings * 6 + len(index._keys) * 16) / 2**20:.0f} MiB of arrays)"
    )
    print(
        f"top-1 scores identical: {mismatches == 0} ({mismatches} mismatches of {len(queries)}); {perfect} score 1.0"
    )
    print(f"ratio a/b = {brute_time / index_time:.1f}x per query (index vs brute force)")
    print(
        f"with preparation: a/b = {(brute_prep + brute_time) / (index_build + index_time):.1f}x "
        f"({brute_prep + brute_time:.1f} s vs {index_build + index_time:.1f} s)"
    )
    if mismatches:
        raise SystemExit("the index disagrees with brute force")


if __name__ == "__main__":
    main()
