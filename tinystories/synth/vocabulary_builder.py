"""``tinystories vocabulary DATA --output vocab.json``: the noun/verb/adjective vocabulary of data in the released
schema, rebuilt from each record's ``instruction.words`` with the category of each word read from the record's
``instruction["prompt:"]`` text (``the verb "X"``, ``the noun "Y"``, ``the adjective "Z"``: the GPT-4, paper and
GPT-3.5 wordings all say so), with the number of records that used each word (docs/generation.md).

Records that cannot be used (not an object, no ``instruction``, no ``words`` list) are counted as skipped, with a
warning per file, and a word its prompt does not name is counted, not guessed: the released data's 2.7M records
should not fail on one odd record. A file that is not valid JSON is a ``DataError`` (a truncated download is
something to fix), and so is data from which a category comes out empty (the file would not load).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

from ..errors import DataError, RecipeError
from ..recipes import RecipeParser
from .released_records import RELEASED_ARCHIVE, iter_records, resolve_sources
from .vocabulary import CATEGORIES, Vocabulary, is_valid_word, load_vocabulary

logger = logging.getLogger("tinystories.vocabulary")

#: ``the verb "X"`` in a prompt, with straight or typographic quotes (the paper's PDF prints ”decorate”).
NAMED_WORD = re.compile(r"\bthe (verb|noun|adjective)\s+[\"“”„]([^\"“”„]+)[\"“”„]", re.IGNORECASE)
USAGE = "tinystories vocabulary DATA --output vocab.json [--min_count N] [--max_records N] [--hub_filename F]"
DESCRIPTION = """Rebuild the noun/verb/adjective vocabulary of data in the released TinyStories schema: the words of each record's
instruction.words, the category of each read from its instruction["prompt:"] ('the verb "X"', 'the noun "Y"',
'the adjective "Z"'), with the number of records that used each. The output loads with --vocabulary_file of
tinystories generate. Example, the released data (downloads ~1.5 GB once):
  tinystories vocabulary roneneldan/TinyStories --output released_vocab.json"""


@dataclass
class VocabularyArguments:
    """Options of ``tinystories vocabulary`` (DATA is the first argument, or ``--data``)."""

    data: str = field(
        default="",
        metadata={
            "help": "Records in the released schema: a JSON (list or lines), JSONL or Parquet file, a .tar.gz of "
            "JSON files (the release's TinyStories_all_data.tar.gz), a folder or glob of them, an "
            "hf://datasets/owner/name/path, or a Hub dataset id (roneneldan/TinyStories: downloads hub_filename)."
        },
    )
    output: str = field(default="vocab.json", metadata={"help": "The vocabulary file to write (JSON)."})
    min_count: int = field(default=1, metadata={"help": "Drop words used by fewer records than this."})
    max_records: int | None = field(default=None, metadata={"help": "Stop after this many records (all: None)."})
    hub_filename: str = field(
        default=RELEASED_ARCHIVE, metadata={"help": "The file of a Hub dataset id to read (its records' archive)."}
    )

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise RecipeError(f"min_count must be at least 1, got {self.min_count}")
        if self.max_records is not None and self.max_records < 1:
            raise RecipeError(f"max_records must be at least 1, got {self.max_records}")


@dataclass
class VocabularyCounts:
    """What reading the records found: words per category with the records that used them, and what was skipped."""

    counts: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CATEGORIES})
    records: int = 0
    used: int = 0
    skipped: Counter = field(default_factory=Counter)
    unnamed_records: int = 0
    unnamed_words: Counter = field(default_factory=Counter)
    invalid_words: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)

    def add(self, record: object) -> str | None:
        """Count one record; the reason it was skipped, if it was."""
        self.records += 1
        if not isinstance(record, dict):
            return "not a JSON object"
        instruction = record.get("instruction")
        if not isinstance(instruction, dict):
            return "no instruction"
        words = instruction.get("words")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            return "no instruction.words list"
        prompt = instruction.get("prompt:", instruction.get("prompt"))
        named = _named_categories(prompt if isinstance(prompt, str) else "")
        self.used += 1
        if isinstance(record.get("source"), str):
            self.sources[record["source"]] += 1
        unnamed = False
        for word in words:
            word = word.strip()
            categories = named.get(word) or named.get(word.lower()) or ()
            if not categories:
                unnamed = True
                self.unnamed_words[word] += 1
            elif not is_valid_word(word):
                self.invalid_words[word] += 1
            for category in categories:
                self.counts[category][word] += 1
        self.unnamed_records += unnamed
        return None

    def vocabulary(self, min_count: int = 1) -> dict[str, dict[str, int]]:
        """``{"verbs": {word: count}, ...}``, most used first, valid spellings only, at least ``min_count`` each."""
        return {
            f"{c}s": {
                w: n
                for w, n in sorted(self.counts[c].items(), key=lambda item: (-item[1], item[0]))
                if n >= min_count and is_valid_word(w)
            }
            for c in CATEGORIES
        }


def _named_categories(prompt: str) -> dict[str, list[str]]:
    """word -> the categories the prompt gives it (also under the lowercased word)."""
    named: dict[str, list[str]] = {}
    for category, word in NAMED_WORD.findall(prompt):
        for key in dict.fromkeys((word.strip(), word.strip().lower())):
            named.setdefault(key, [])
            if category.lower() not in named[key]:
                named[key].append(category.lower())
    return named


def count_words(data: str, max_records: int | None = None, hub_filename: str = RELEASED_ARCHIVE, exclude=None):
    """Read every record of ``data`` (see ``resolve_sources``) with a progress bar; the ``VocabularyCounts``."""
    from tqdm.auto import tqdm

    sources = resolve_sources(data, hub_filename, exclude=exclude)
    result = VocabularyCounts()
    skipped_here: Counter = Counter()
    current = None
    with tqdm(total=sum(s.size for s in sources), unit="B", unit_scale=True, desc="vocabulary") as bar:
        for name, record in iter_records(sources, bar.update):
            if name != current:
                _warn_skipped(current, skipped_here)
                current, skipped_here = name, Counter()
            reason = result.add(record)
            if reason:
                result.skipped[reason] += 1
                skipped_here[reason] += 1
            if max_records is not None and result.records >= max_records:
                break
    _warn_skipped(current, skipped_here)
    return result, sources


def _warn_skipped(name: str | None, skipped: Counter) -> None:
    if name and skipped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in skipped.most_common())
        logger.warning("%s: %d record(s) skipped (%s)", name, sum(skipped.values()), reasons)


def overlap(vocabulary: dict[str, dict[str, int]], other: Vocabulary) -> dict:
    """Words in common with ``other`` (the bundled vocabulary): distinct words whatever their category, and per
    category; with the sizes of both."""
    rebuilt = {w for words in vocabulary.values() for w in words}
    return {
        "shared_words": len(rebuilt & other.all_words),
        "rebuilt_words": len(rebuilt),
        "other_words": len(other),
        "shared_in_category": {f"{c}s": len(set(vocabulary[f"{c}s"]) & set(other.words(c))) for c in CATEGORIES},
    }


def summary_line(summary: dict, output: str) -> str:
    sizes = ", ".join(f"{n:,} {name}" for name, n in summary["words"].items())
    shared = summary["overlap_with_bundled"]
    line = (
        f"Read {summary['records']:,} records ({summary['records_used']:,} with instruction.words): {sizes} "
        f"({summary['distinct_words']:,} distinct words); {summary['records_with_unnamed_category']:,} record(s) whose "
        f"prompt did not name a word's category"
    )
    if summary["records_skipped"]:
        line += f"; {sum(summary['records_skipped'].values()):,} record(s) skipped"
    if summary["invalid_word_count"]:
        line += f"; {summary['invalid_word_count']:,} word(s) of spellings the loader refuses left out"
    line += (
        f"; {shared['shared_words']:,} of the {shared['rebuilt_words']:,} words are in the bundled vocabulary "
        f"({shared['other_words']:,} words)"
    )
    return f"{line}. Wrote {output}"


def build_vocabulary(args: VocabularyArguments) -> dict:
    """Count, write ``args.output`` (the format ``load_vocabulary`` reads, with counts) and return the summary."""
    output = os.path.abspath(args.output)
    result, sources = count_words(args.data, args.max_records, args.hub_filename, exclude=output)
    if not result.used:
        raise DataError(f"No records with instruction.words in {args.data} ({result.records:,} values read)")
    vocabulary = result.vocabulary(args.min_count)
    empty = [c for c in CATEGORIES if not vocabulary[f"{c}s"]]
    if empty:
        raise DataError(
            f"No {' or '.join(empty)} found in the prompts of {args.data} ({result.used:,} records; the category of "
            'a word is read from \'the verb "X"\', \'the noun "Y"\', \'the adjective "Z"\' in instruction["prompt:"])'
        )
    summary = {
        "data": args.data,
        "files": [s.name for s in sources],
        "records": result.records,
        "records_used": result.used,
        "records_skipped": dict(result.skipped),
        "records_with_unnamed_category": result.unnamed_records,
        "unnamed_words": dict(result.unnamed_words.most_common(20)),
        "invalid_words": dict(result.invalid_words.most_common(20)),
        "invalid_word_count": len(result.invalid_words),
        "sources": dict(result.sources),
        "min_count": args.min_count,
        "words": {f"{c}s": len(vocabulary[f"{c}s"]) for c in CATEGORIES},
        "distinct_words": len({w for words in vocabulary.values() for w in words}),
        "overlap_with_bundled": overlap(vocabulary, load_vocabulary()),
    }
    document = {
        "_about": f"Rebuilt by `tinystories vocabulary` from {args.data}: each word with the number of records that "
        "used it in that category (the category read from the record's prompt); the loader ignores keys starting "
        "with '_'.",
        "_summary": summary,
        **vocabulary,
    }
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, ensure_ascii=False)
        f.write("\n")
    summary["line"] = summary_line(summary, args.output)
    return summary


def parse_vocabulary_args(argv: list[str]) -> VocabularyArguments:
    """``DATA [--key value ...]`` (or ``--data DATA``); ``--help`` lists the options (exit 0)."""
    parser = RecipeParser((VocabularyArguments,), "tinystories vocabulary", DESCRIPTION)
    parser.parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.parser.usage = USAGE
    if any(a in ("-h", "--help") for a in argv):
        parser.parser.print_help()
        raise SystemExit(0)
    values = {"data": argv[0]} if argv and not argv[0].startswith("--") else {}
    merged = parser.merge(values, argv[1:] if values else argv)
    if not merged.get("data"):
        raise RecipeError(f"DATA is required: {USAGE}")
    (args,) = parser.parse_dict(merged)
    return args


def main(argv: list[str] | None = None) -> dict:
    """The command: parse, rebuild, print the summary line; the summary as a dict."""
    args = parse_vocabulary_args(list(sys.argv[1:] if argv is None else argv))
    summary = build_vocabulary(args)
    print(summary["line"])
    return summary
