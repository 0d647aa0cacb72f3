"""The child vocabulary that TinyStories prompts draw their three words from (a verb, a noun, an adjective): the
bundled ``resources/vocabulary.json`` (its card: ``resources/VOCABULARY.md``) or a user's own list as JSON or plain
text, validated when loaded (docs/generation.md: the formats). A JSON category may be a list of words or an object of
word -> count (what ``tinystories vocabulary`` writes); words are spelled as the released data spells them."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..resources import VOCABULARY, resource_path

CATEGORIES = ("verb", "noun", "adjective")

#: A word as the released data spells them: letters and digits, with inner hyphens or apostrophes ("TV", "x-ray",
#: "don't"); no spaces, nothing around it.
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_WORD_RULE = "letters and digits, with inner hyphens or apostrophes: 'TV', 'x-ray', \"don't\""
_TEXT_SUFFIX = ".txt"


def _plural(category: str) -> str:
    """The JSON key and field name of a category: ``"noun"`` -> ``"nouns"``."""
    return f"{category}s"


def is_valid_word(word: object) -> bool:
    """Whether ``word`` is a string the loader accepts as a vocabulary word."""
    return isinstance(word, str) and _WORD.fullmatch(word) is not None


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"unknown word category {category!r}: expected one of {', '.join(CATEGORIES)}")


@dataclass(frozen=True)
class Vocabulary:
    """Words to build story prompts from, by category; each tuple is sorted so seeded sampling is reproducible.

    ``counts`` (category -> word -> count), from a file that has them, is kept for reading only: it takes no part in
    equality, hashing or sampling (prompts draw words uniformly, whatever the counts).
    """

    nouns: tuple[str, ...]
    verbs: tuple[str, ...]
    adjectives: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]] | None = field(default=None, compare=False, hash=False, repr=False)

    def words(self, category: str) -> tuple[str, ...]:
        """The words of one category, ``category`` being one of ``CATEGORIES`` ("verb", "noun", "adjective")."""
        _check_category(category)
        return getattr(self, _plural(category))

    @property
    def all_words(self) -> frozenset[str]:
        """Every distinct word, whatever its category (a word in two categories counts once)."""
        return frozenset(self.nouns) | frozenset(self.verbs) | frozenset(self.adjectives)

    def __len__(self) -> int:
        """The number of distinct words over all categories."""
        return len(self.all_words)

    def count(self, category: str, word: str) -> int | None:
        """How many records used ``word`` in ``category`` in the data the file was rebuilt from (None: the file has
        no counts for that category)."""
        _check_category(category)
        if self.counts is None or category not in self.counts:
            return None
        return self.counts[category].get(word, 0)


def default_vocabulary_path() -> str:
    """The path of the vocabulary bundled with the package (``tinystories/resources/vocabulary.json``)."""
    return resource_path(VOCABULARY)


def load_vocabulary(path: str | os.PathLike[str] | None = None) -> Vocabulary:
    """Read and validate a vocabulary: JSON, or the plain-text format when the file name ends in ``.txt``.

    ``path`` defaults to the bundled vocabulary. Raises ``ValueError`` (naming the file and the problem) for a file
    that is not valid JSON or not in the text format, a missing or empty category, a word that is not spelled as a
    word (letters and digits, inner hyphens and apostrophes allowed: "TV", "x-ray", "don't"), a count that is not a
    non-negative integer, or a word repeated within a category; ``FileNotFoundError`` if the file does not exist.
    """
    source = default_vocabulary_path() if path is None else os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not UTF-8 text ({err})") from err
    if source.lower().endswith(_TEXT_SUFFIX):
        lists = _parse_text(text, source)
    else:
        lists = _parse_json(text, source)
    counts = {c: _validated_counts(lists[c], c, source) for c in CATEGORIES if isinstance(lists[c], Mapping)}
    words = {_plural(c): _validated_words(list(lists[c]) if c in counts else lists[c], c, source) for c in CATEGORIES}
    return Vocabulary(**words, counts=counts or None)


def _parse_json(text: str, source: str) -> dict[str, object]:
    """The raw value of each category in a JSON vocabulary, keyed by category; checks the keys, not the words."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: not valid JSON ({err})") from err
    keys = ", ".join(repr(_plural(c)) for c in CATEGORIES)
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a JSON object with the keys {keys}, got {type(data).__name__}")
    unknown = sorted(k for k in data if not str(k).startswith("_") and k not in {_plural(c) for c in CATEGORIES})
    if unknown:
        raise ValueError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))}: expected {keys} (keys starting with '_' are "
            "ignored)"
        )
    lists: dict[str, object] = {}
    for category in CATEGORIES:
        if _plural(category) not in data:
            raise ValueError(f"{source}: missing category {_plural(category)!r}")
        lists[category] = data[_plural(category)]
    return lists


def _parse_text(text: str, source: str) -> dict[str, object]:
    """The words of each category in a plain-text vocabulary (``noun: dog, ball``), keyed by category."""
    lists: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, colon, rest = line.partition(":")
        if not colon:
            raise ValueError(
                f"{source}, line {number}: expected 'category: word, word, ...' (category one of "
                f"{', '.join(CATEGORIES)}), got {line!r}"
            )
        label = label.strip().lower()
        category = label[:-1] if label.endswith("s") and label[:-1] in CATEGORIES else label
        if category not in CATEGORIES:
            raise ValueError(
                f"{source}, line {number}: unknown category {label!r}: expected one of {', '.join(CATEGORIES)}"
            )
        lists.setdefault(category, []).extend(word.strip() for word in rest.split(",") if word.strip())
    for category in CATEGORIES:
        if category not in lists:
            raise ValueError(f"{source}: missing category {category!r} (add a line '{category}: word, word, ...')")
    return dict(lists)


def _validated_counts(counts: Mapping, category: str, source: str) -> dict[str, int]:
    """A category written as word -> count: each count a non-negative integer."""
    for word, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(
                f"{source}: {_plural(category)} gives {word!r} the count {count!r}, which is not a non-negative integer"
            )
    return dict(counts)


def _validated_words(words: object, category: str, source: str) -> tuple[str, ...]:
    """``words`` checked (a non-empty list of distinct strings spelled as words) and sorted."""
    name = _plural(category)
    if not isinstance(words, list):
        raise ValueError(
            f"{source}: category {name!r} must be a list of words (or an object of word -> count), got "
            f"{type(words).__name__}"
        )
    if not words:
        raise ValueError(f"{source}: category {name!r} is empty")
    for word in words:
        if not isinstance(word, str):
            raise ValueError(f"{source}: {name} contains {word!r}, which is not a string")
        if not _WORD.fullmatch(word):
            raise ValueError(f"{source}: {name} contains {word!r}, which is not a word ({_WORD_RULE})")
    duplicates = sorted(word for word, count in Counter(words).items() if count > 1)
    if duplicates:
        raise ValueError(f"{source}: duplicate words in {name}: {', '.join(map(repr, duplicates))}")
    return tuple(sorted(words))
