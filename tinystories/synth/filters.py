"""Quality filters for generated stories (required words in any inflection, words outside the vocabulary, length,
exact and MinHash near duplicates after stripping stock openers, against every story screened before: ``dedup``) and
the report of what they removed and why, which adds up exactly over shards."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .dedup import (  # noqa: F401  (re-exported: the filters' public names)
    EXACT_DUPLICATE,
    KEPT,
    NEAR_DUPLICATE,
    STOCK_OPENERS,
    WORD_RE,
    DedupIndex,
    MinHashDeduplicator,
    exact_hash,
    strip_openers,
    words_of,
)
from .vocabulary import Vocabulary

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


@functools.lru_cache(maxsize=65536)  # the same ~1,500 vocabulary words are asked for in every story
def word_forms(word: str) -> frozenset[str]:
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
    return frozenset(forms)


#: Words as the released vocabulary spells them: letters and digits, with inner hyphens or apostrophes
#: ("x-ray", "T-shirt", "3D", "don't").
SPELLED_WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def missing_words(story: str, required: Sequence[str]) -> list[str]:
    """The required words that appear in ``story`` in no form (any spelling the vocabulary allows)."""
    present = set(words_of(story)) | set(SPELLED_WORD_RE.findall(story.lower()))
    return [w for w in required if not (word_forms(w) & present)]


def _missing_of(record: dict) -> list[str]:
    """The record's missing required words: as the generator recorded them, else found in its story."""
    if "missing_words" in record:
        return record["missing_words"]
    return missing_words(record["story"], record["instruction"]["words"])


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


@dataclass
class FilterConfig:
    min_words: int = 50
    max_words: int = 600
    max_out_of_vocabulary: float = 0.2
    require_words: bool = True
    dedup_threshold: float = 0.7


@dataclass
class FilterReport:
    """What the filters kept and removed, with corpus statistics, for the dataset card. Its ``state()`` (plain JSON:
    full counters, sums, the set of required words) adds up over shards with ``merge``, so the report of a run
    made of many shards is exactly that of one pass over all of them."""

    total: int = 0
    kept: int = 0
    removed: Counter = field(default_factory=Counter)
    openers: Counter = field(default_factory=Counter)
    feature_counts: Counter = field(default_factory=Counter)
    required_words: set = field(default_factory=set)
    words_sum: int = 0
    oov_sum: float = 0.0
    oov_count: int = 0

    @property
    def distinct_required_words(self) -> int:
        return len(self.required_words)

    @property
    def mean_words(self) -> float:
        return self.words_sum / self.kept if self.kept else 0.0

    @property
    def mean_out_of_vocabulary(self) -> float:
        return self.oov_sum / self.oov_count if self.oov_count else 0.0

    def count_kept(self, records: Sequence[dict], words: Sequence[list[str]] | None = None) -> None:
        """Count ``records`` as kept; ``words``: each one's ``words_of`` its story, when the caller has them."""
        if words is None:
            words = [words_of(record["story"]) for record in records]
        for record, story_words in zip(records, words):
            self.kept += 1
            self.words_sum += len(story_words)
            self.openers[" ".join(story_words[:3])] += 1
            self.feature_counts.update(record["instruction"].get("features") or [])
            self.required_words.update(record["instruction"]["words"])

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "kept": self.kept,
            "removed": {k: v for k, v in self.removed.items() if v},
            "top_openers": dict(self.openers.most_common(10)),
            "feature_counts": dict(self.feature_counts),
            "distinct_required_words": self.distinct_required_words,
            "mean_words": round(self.mean_words, 1),
            "mean_out_of_vocabulary": round(self.mean_out_of_vocabulary, 4),
        }

    def state(self) -> dict:
        return {
            "total": self.total,
            "kept": self.kept,
            "removed": dict(self.removed),
            "openers": dict(self.openers),
            "feature_counts": dict(self.feature_counts),
            "required_words": sorted(self.required_words),
            "words_sum": self.words_sum,
            "oov_sum": self.oov_sum,
            "oov_count": self.oov_count,
        }

    @classmethod
    def from_state(cls, state: dict) -> FilterReport:
        values = dict(state)
        for name in ("removed", "openers", "feature_counts"):
            values[name] = Counter(values.get(name) or {})
        values["required_words"] = set(values.get("required_words") or ())
        return cls(**values)

    def merge(self, other: FilterReport) -> FilterReport:
        self.total += other.total
        self.kept += other.kept
        self.removed.update(other.removed)
        self.openers.update(other.openers)
        self.feature_counts.update(other.feature_counts)
        self.required_words |= other.required_words
        self.words_sum += other.words_sum
        self.oov_sum += other.oov_sum
        self.oov_count += other.oov_count
        return self


@dataclass
class Screened:
    """One block through the filters: the kept records, and the *candidates* (records that passed the quality
    filters, the kept among them) with their exact hashes, MinHash signatures, dedup outcome (``dedup.KEPT``...) and
    shares of words outside the vocabulary."""

    kept: list[dict]
    candidates: list[dict]
    hashes: list[int]
    signatures: np.ndarray
    status: np.ndarray
    shares: list[float]
    report: FilterReport


class StoryFilter:
    """The filters over a stream of blocks (chunks): quality per story, duplicates against every candidate of
    every block before (``index``, a ``DedupIndex``, restorable from the shards written so far)."""

    def __init__(self, vocabulary: Vocabulary, config: FilterConfig | None = None, index: DedupIndex | None = None):
        self.vocabulary = vocabulary
        self.config = config or FilterConfig()
        self.index = index if index is not None else DedupIndex(threshold=self.config.dedup_threshold)

    def quality_problem(self, record: dict, words: list[str] | None = None) -> tuple[str | None, float]:
        """The reason ``record`` fails a quality filter (None if it passes), and its out-of-vocabulary share;
        ``words``: ``words_of`` its story, when the caller has them."""
        story, config = record["story"], self.config
        n_words = len(words_of(story) if words is None else words)
        if n_words < config.min_words:
            return "too short", 0.0
        if n_words > config.max_words:
            return "too long", 0.0
        if config.require_words and _missing_of(record):
            return "missing required words", 0.0
        share = out_of_vocabulary_share(story, self.vocabulary)
        if share > config.max_out_of_vocabulary:
            return "too many words outside the vocabulary", share
        return None, share

    def screen(self, records: Sequence[dict], add: bool = True) -> Screened:
        """Filter one block; with ``add`` its candidates join the index (the next blocks are checked against them)."""
        report = FilterReport(total=len(records))
        candidates, shares, words = [], [], []
        for record in records:
            story_words = words_of(record["story"])
            problem, share = self.quality_problem(record, story_words)
            if problem:
                report.removed[problem] += 1
            else:
                candidates.append(record)
                shares.append(share)
                words.append(story_words)
        hashes = [exact_hash(r["story"], w) for r, w in zip(candidates, words)]
        signatures = self.index.signatures_of([r["story"] for r in candidates])
        status = self.index.classify(hashes, signatures)
        if add:
            self.index.add(hashes, signatures, status)
        report.removed["exact duplicate"] += int((status == EXACT_DUPLICATE).sum())
        report.removed["near duplicate"] += int((status == NEAR_DUPLICATE).sum())
        unique = [s for s, st in zip(shares, status) if st != EXACT_DUPLICATE]
        report.oov_sum, report.oov_count = float(sum(unique)), len(unique)
        kept = [r for r, st in zip(candidates, status) if st == KEPT]
        report.count_kept(kept, [w for w, st in zip(words, status) if st == KEPT])
        return Screened(kept, candidates, hashes, signatures, status, shares, report)


def filter_stories(
    records: Sequence[dict], vocabulary: Vocabulary, config: FilterConfig | None = None
) -> tuple[list[dict], FilterReport]:
    """Keep the records (``story``, ``instruction.words``, ``instruction.features``) that pass every filter."""
    screened = StoryFilter(vocabulary, config).screen(records)
    return screened.kept, screened.report
