"""Quality filters for generated stories (required words in any inflection, words outside the vocabulary, length,
exact and MinHash near duplicates after stripping stock openers) and the report of what they removed and why."""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .vocabulary import Vocabulary

WORD_RE = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")

# Irregular forms a 3-4 year old's stories use: base -> forms.
IRREGULAR: dict[str, tuple[str, ...]] = {
    "be": ("is", "are", "was", "were", "been", "am"),
    "begin": ("began", "begun"),
    "bite": ("bit", "bitten"),
    "blow": ("blew", "blown"),
    "break": ("broke", "broken"),
    "bring": ("brought",),
    "build": ("built",),
    "buy": ("bought",),
    "catch": ("caught",),
    "choose": ("chose", "chosen"),
    "come": ("came",),
    "dig": ("dug",),
    "do": ("did", "done", "does"),
    "draw": ("drew", "drawn"),
    "dream": ("dreamt",),
    "drink": ("drank", "drunk"),
    "drive": ("drove", "driven"),
    "eat": ("ate", "eaten"),
    "fall": ("fell", "fallen"),
    "feed": ("fed",),
    "feel": ("felt",),
    "fight": ("fought",),
    "find": ("found",),
    "fly": ("flew", "flown", "flies"),
    "forget": ("forgot", "forgotten"),
    "freeze": ("froze", "frozen"),
    "get": ("got", "gotten"),
    "give": ("gave", "given"),
    "go": ("went", "gone", "goes"),
    "grow": ("grew", "grown"),
    "hang": ("hung",),
    "have": ("had", "has"),
    "hear": ("heard",),
    "hide": ("hid", "hidden"),
    "hit": ("hit",),
    "hold": ("held",),
    "hurt": ("hurt",),
    "keep": ("kept",),
    "know": ("knew", "known"),
    "lay": ("laid",),
    "lead": ("led",),
    "leave": ("left",),
    "lend": ("lent",),
    "let": ("let",),
    "lie": ("lay", "lain", "lying"),
    "lose": ("lost",),
    "make": ("made",),
    "mean": ("meant",),
    "meet": ("met",),
    "pay": ("paid",),
    "put": ("put",),
    "read": ("read",),
    "ride": ("rode", "ridden"),
    "ring": ("rang", "rung"),
    "rise": ("rose", "risen"),
    "run": ("ran",),
    "say": ("said",),
    "see": ("saw", "seen"),
    "sell": ("sold",),
    "send": ("sent",),
    "shake": ("shook", "shaken"),
    "shine": ("shone",),
    "shoot": ("shot",),
    "shut": ("shut",),
    "sing": ("sang", "sung"),
    "sink": ("sank", "sunk"),
    "sit": ("sat",),
    "sleep": ("slept",),
    "slide": ("slid",),
    "speak": ("spoke", "spoken"),
    "spend": ("spent",),
    "spin": ("spun",),
    "spill": ("spilt",),
    "stand": ("stood",),
    "steal": ("stole", "stolen"),
    "stick": ("stuck",),
    "sting": ("stung",),
    "swim": ("swam", "swum"),
    "swing": ("swung",),
    "take": ("took", "taken"),
    "teach": ("taught",),
    "tear": ("tore", "torn"),
    "tell": ("told",),
    "think": ("thought",),
    "throw": ("threw", "thrown"),
    "wake": ("woke", "woken"),
    "wear": ("wore", "worn"),
    "win": ("won",),
    "write": ("wrote", "written"),
    "child": ("children",),
    "mouse": ("mice",),
    "foot": ("feet",),
    "tooth": ("teeth",),
    "man": ("men",),
    "woman": ("women",),
    "person": ("people",),
    "goose": ("geese",),
    "fish": ("fish",),
    "sheep": ("sheep",),
    "leaf": ("leaves",),
    "wolf": ("wolves",),
    "knife": ("knives",),
    "good": ("better", "best"),
    "bad": ("worse", "worst"),
    "far": ("farther", "further"),
}

# Function words and other words every story needs that the content vocabulary does not list.
FUNCTION_WORDS = frozenset(
    """a an the and or but so if then than because when while as at by for from in into of off on onto out over
    to up down with without about after before under around through near next again all any some every each no not
    never very too also just only more most much many few lots lot little i me my mine you your yours he him his she
    her hers it its we us our they them their this that these those there here what who whom whose which why how
    where is am are was were be been being do does did done have has had can could will would shall should may
    might must one two three four five six seven eight nine ten first last once upon time day yes oh wow please
    thank thanks hello hi bye okay ok let's let s t don't didn't can't won't isn't wasn't it's i'm he's she's
    that's they're we're you're i'll we'll together always sometimes soon now later today tomorrow yesterday""".split()
)

STOCK_OPENERS = (
    "once upon a time",
    "one day",
    "there was a",
    "there once was",
    "in a small town",
    "in a big forest",
)


def word_forms(word: str) -> set[str]:
    """The word and its regular and irregular inflections (plural, 3rd person, past, -ing, comparative)."""
    w = word.lower()
    forms = {w, w + "s", w + "ed", w + "ing", w + "er", w + "est", w + "'s"}
    if w.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(w + "es")
    if w.endswith("e"):
        forms |= {w + "d", w[:-1] + "ing", w + "r", w + "st"}
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
        stem = w[:-1]
        forms |= {stem + "ies", stem + "ied", stem + "ier", stem + "iest", stem + "ily"}
    if w.endswith("f"):
        forms.add(w[:-1] + "ves")
    if w.endswith("fe"):
        forms.add(w[:-2] + "ves")
    if len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou":
        forms |= {w + w[-1] + "ed", w + w[-1] + "ing", w + w[-1] + "er", w + w[-1] + "est"}  # hop -> hopped
    if w.endswith("c"):
        forms |= {w + "ked", w + "king"}  # picnic -> picnicked
    forms |= set(IRREGULAR.get(w, ()))
    forms.add(w + "ly")
    return forms


def words_of(text: str) -> list[str]:
    return [m.group(0).lower() for m in WORD_RE.finditer(text)]


def missing_words(story: str, required: Sequence[str]) -> list[str]:
    """The required words that appear in ``story`` in no form."""
    present = set(words_of(story))
    return [w for w in required if not (word_forms(w) & present)]


def out_of_vocabulary_share(story: str, vocabulary: Vocabulary) -> float:
    """Share of the story's words that are neither function words, names, nor a form of a vocabulary word."""
    known = _known_forms(vocabulary)
    tokens = [m.group(0) for m in WORD_RE.finditer(story)]
    if not tokens:
        return 1.0
    outside = 0
    for i, token in enumerate(tokens):
        lower = token.lower()
        if lower in FUNCTION_WORDS or lower in known:
            continue
        if token[0].isupper() and i > 0:  # a capitalised word inside the story: a name (Lily, Max)
            continue
        outside += 1
    return outside / len(tokens)


@functools.lru_cache(maxsize=4)
def _known_forms(vocabulary: Vocabulary) -> frozenset[str]:
    return frozenset(f for w in vocabulary.all_words for f in word_forms(w))


def strip_openers(text: str) -> str:
    lowered = text.lower().lstrip()
    for opener in STOCK_OPENERS:
        if lowered.startswith(opener):
            return lowered[len(opener) :]
    return lowered


def _shingles(text: str, n: int) -> set[int]:
    words = words_of(strip_openers(text))
    grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams}


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
        hashes = np.fromiter(_shingles(text, self.ngram), dtype=np.uint64)
        with np.errstate(over="ignore"):
            values = (self.a[:, None] * hashes[None, :] + self.b[:, None]) >> np.uint64(32)
        return values.min(axis=1)

    def duplicates(self, texts: Sequence[str]) -> dict[int, int]:
        """``{index: index of the earlier text it duplicates}`` for every near duplicate (first one kept)."""
        signatures = [self.signature(t) for t in texts]
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


@dataclass
class FilterConfig:
    min_words: int = 50
    max_words: int = 600
    max_out_of_vocabulary: float = 0.2
    require_words: bool = True
    dedup_threshold: float = 0.7


@dataclass
class FilterReport:
    """What the filters kept and removed, with corpus statistics, for the dataset card."""

    total: int = 0
    kept: int = 0
    removed: Counter = field(default_factory=Counter)
    openers: Counter = field(default_factory=Counter)
    feature_counts: Counter = field(default_factory=Counter)
    distinct_required_words: int = 0
    mean_words: float = 0.0
    mean_out_of_vocabulary: float = 0.0

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "kept": self.kept,
            "removed": dict(self.removed),
            "top_openers": dict(self.openers.most_common(10)),
            "feature_counts": dict(self.feature_counts),
            "distinct_required_words": self.distinct_required_words,
            "mean_words": round(self.mean_words, 1),
            "mean_out_of_vocabulary": round(self.mean_out_of_vocabulary, 4),
        }


def filter_stories(
    records: Sequence[dict], vocabulary: Vocabulary, config: FilterConfig | None = None
) -> tuple[list[dict], FilterReport]:
    """Keep the records (``story``, ``instruction.words``, ``instruction.features``) that pass every filter."""
    config = config or FilterConfig()
    report = FilterReport(total=len(records))
    survivors: list[dict] = []
    seen_exact: set[str] = set()
    oov_shares: list[float] = []
    for record in records:
        story = record["story"]
        n_words = len(words_of(story))
        if n_words < config.min_words:
            report.removed["too short"] += 1
            continue
        if n_words > config.max_words:
            report.removed["too long"] += 1
            continue
        if config.require_words and missing_words(story, record["instruction"]["words"]):
            report.removed["missing required words"] += 1
            continue
        share = out_of_vocabulary_share(story, vocabulary)
        if share > config.max_out_of_vocabulary:
            report.removed["too many words outside the vocabulary"] += 1
            continue
        normalised = " ".join(words_of(story))
        if normalised in seen_exact:
            report.removed["exact duplicate"] += 1
            continue
        seen_exact.add(normalised)
        oov_shares.append(share)
        survivors.append(record)
    near = MinHashDeduplicator(threshold=config.dedup_threshold).duplicates([r["story"] for r in survivors])
    kept = [r for i, r in enumerate(survivors) if i not in near]
    report.removed["near duplicate"] += len(near)
    report.kept = len(kept)
    for record in kept:
        report.openers[" ".join(words_of(record["story"])[:3])] += 1
        report.feature_counts.update(record["instruction"].get("features", []))
    report.distinct_required_words = len({w for r in kept for w in r["instruction"]["words"]})
    report.mean_words = float(np.mean([len(words_of(r["story"])) for r in kept])) if kept else 0.0
    report.mean_out_of_vocabulary = float(np.mean(oov_shares)) if oov_shares else 0.0
    report.removed = Counter({k: v for k, v in report.removed.items() if v})
    return kept, report
