"""The child vocabulary: the bundled word list is the right size and kind, and the loader rejects malformed lists."""

import json
import os
import re
from itertools import combinations

import pytest

from tinystories.synth.vocabulary import CATEGORIES, Vocabulary, default_vocabulary_path, load_vocabulary

KEYS = ("nouns", "verbs", "adjectives")


@pytest.fixture(scope="module")
def bundled() -> Vocabulary:
    return load_vocabulary()


@pytest.fixture(scope="module")
def bundled_raw() -> dict:
    with open(default_vocabulary_path(), encoding="utf-8") as f:
        return json.load(f)


def write(tmp_path, name: str, content) -> str:
    """Write ``content`` (a string as is, anything else as JSON) to ``tmp_path/name``; return the path."""
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def good() -> dict:
    return {"nouns": ["dog", "ball", "hug"], "verbs": ["run", "hug"], "adjectives": ["red", "happy"]}


# The bundled vocabulary


def test_default_path_points_at_the_bundled_json():
    path = default_vocabulary_path()
    assert path.endswith(os.path.join("resources", "vocabulary.json"))
    assert os.path.isfile(path)


def test_bundled_size(bundled):
    assert 1400 <= len(bundled) <= 1700
    assert len(bundled.nouns) >= 700
    assert len(bundled.verbs) >= 350
    assert len(bundled.adjectives) >= 250


def test_bundled_file_has_exactly_the_categories_and_an_about_line(bundled_raw):
    assert set(bundled_raw) == {"_about", *KEYS}
    assert isinstance(bundled_raw["_about"], str) and "\n" not in bundled_raw["_about"]


@pytest.mark.parametrize("key", KEYS)
def test_bundled_lists_are_sorted_unique_lowercase_alphabetic(bundled_raw, key):
    words = bundled_raw[key]
    assert words == sorted(set(words)), f"{key} is not sorted or has duplicates"
    bad = [w for w in words if not re.fullmatch(r"[a-z]+", w)]
    assert not bad, f"{key} has words that are not lowercase alphabetic: {bad}"


def test_bundled_overlaps_between_categories_are_few(bundled):
    overlap = sum(len(set(a) & set(b)) for a, b in combinations((bundled.nouns, bundled.verbs, bundled.adjectives), 2))
    assert overlap < 60
    assert len(bundled) == len(bundled.nouns) + len(bundled.verbs) + len(bundled.adjectives) - overlap


@pytest.mark.parametrize(
    "category, word",
    [("noun", "dog"), ("noun", "ball"), ("noun", "mom"), ("verb", "run"), ("verb", "jump"), ("verb", "play")]
    + [("adjective", "happy"), ("adjective", "big"), ("adjective", "red")],
)
def test_bundled_has_sanity_words_in_the_right_category(bundled, category, word):
    assert word in bundled.words(category)


@pytest.mark.parametrize(
    "category, word", [("verb", "dog"), ("adjective", "ball"), ("noun", "jump"), ("noun", "happy"), ("verb", "big")]
)
def test_bundled_keeps_sanity_words_out_of_other_categories(bundled, category, word):
    assert word not in bundled.words(category)


@pytest.mark.parametrize(
    "word", ["mortgage", "democracy", "algorithm", "taxes", "election", "cigarette", "beer", "gun", "kill", "blood"]
)
def test_bundled_excludes_non_child_words(bundled, word):
    assert word not in bundled.all_words


# The Vocabulary class


def test_words_by_category_and_distinct_count():
    vocab = Vocabulary(nouns=("dog", "hug"), verbs=("hug", "run"), adjectives=("red",))
    assert vocab.words("noun") == ("dog", "hug")
    assert vocab.words("verb") == ("hug", "run")
    assert vocab.words("adjective") == ("red",)
    assert vocab.all_words == frozenset({"dog", "hug", "run", "red"})
    assert len(vocab) == 4


@pytest.mark.parametrize("category", ["nouns", "adverb", ""])
def test_words_rejects_unknown_category_naming_valid_ones(category):
    vocab = Vocabulary(nouns=("dog",), verbs=("run",), adjectives=("red",))
    with pytest.raises(ValueError, match="verb, noun, adjective"):
        vocab.words(category)


def test_vocabulary_is_frozen():
    vocab = Vocabulary(nouns=("dog",), verbs=("run",), adjectives=("red",))
    with pytest.raises(AttributeError):
        vocab.nouns = ("cat",)  # type: ignore[misc]


# Loading user files


def test_load_json_sorts_words_and_ignores_underscore_keys(tmp_path):
    vocab = load_vocabulary(write(tmp_path, "mine.json", {"_about": "mine", **good()}))
    assert vocab == Vocabulary(nouns=("ball", "dog", "hug"), verbs=("hug", "run"), adjectives=("happy", "red"))
    assert len(vocab) == 6


TXT = """\
# my words for bedtime stories
noun: dog, ball

verb: run, hug
adjective: red, happy
  # an indented comment
noun: hug,
"""


def test_txt_loads_like_the_equivalent_json(tmp_path):
    from_txt = load_vocabulary(write(tmp_path, "mine.txt", TXT))
    from_json = load_vocabulary(write(tmp_path, "mine.json", good()))
    assert from_txt == from_json
    assert from_txt.nouns == ("ball", "dog", "hug")


def test_txt_accepts_plural_labels(tmp_path):
    vocab = load_vocabulary(write(tmp_path, "mine.txt", "nouns: dog\nverbs: run\nadjectives: red\n"))
    assert vocab == Vocabulary(nouns=("dog",), verbs=("run",), adjectives=("red",))


def test_load_accepts_path_objects(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(good()), encoding="utf-8")
    assert load_vocabulary(path).verbs == ("hug", "run")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vocabulary(str(tmp_path / "nowhere.json"))


def _with(**changes) -> dict:
    data = good()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


JSON_CASES = [
    ("not json", '{"nouns": ["dog",', r"not valid JSON"),
    ("top level list", '["dog", "run"]', r"expected a JSON object .*got list"),
    ("missing key", _with(verbs=None), r"missing category 'verbs'"),
    ("unknown key", _with(adverbs=["slowly"]), r"unknown key\(s\) 'adverbs'"),
    (
        "not a list",
        _with(nouns="dog, ball"),
        r"category 'nouns' must be a list of words \(or an object of word -> count\), got str",
    ),
    ("empty", _with(adjectives=[]), r"category 'adjectives' is empty"),
    ("non-string", _with(nouns=["dog", 42]), r"nouns contains 42, which is not a string"),
    ("null word", _with(verbs=["run", None]), r"verbs contains None, which is not a string"),
    ("space", _with(nouns=["teddy bear"]), r"nouns contains 'teddy bear', which is not a word \(letters and digits"),
    ("padded", _with(nouns=[" dog"]), r"nouns contains ' dog'"),
    ("empty word", _with(nouns=["dog", ""]), r"nouns contains '', which is not a word"),
    ("leading hyphen", _with(nouns=["-ray"]), r"nouns contains '-ray'"),
    ("trailing hyphen", _with(adjectives=["well-"]), r"adjectives contains 'well-'"),
    ("double hyphen", _with(nouns=["x--ray"]), r"nouns contains 'x--ray'"),
    ("punctuation", _with(nouns=["dog!"]), r"nouns contains 'dog!'"),
    ("underscore", _with(verbs=["run_fast"]), r"verbs contains 'run_fast'"),
    ("negative count", _with(nouns={"dog": 3, "cat": -1}), r"nouns gives 'cat' the count -1, which is not a non-neg"),
    ("fractional count", _with(verbs={"run": 1.5}), r"verbs gives 'run' the count 1.5"),
    ("boolean count", _with(verbs={"run": True}), r"verbs gives 'run' the count True"),
    ("text count", _with(adjectives={"red": "3"}), r"adjectives gives 'red' the count '3'"),
    ("empty counts", _with(adjectives={}), r"category 'adjectives' is empty"),
    ("bad count word", _with(nouns={"teddy bear": 2}), r"nouns contains 'teddy bear'"),
    ("duplicates", _with(verbs=["run", "hop", "run", "hop", "sit"]), r"duplicate words in verbs: 'hop', 'run'$"),
]


@pytest.mark.parametrize("content, message", [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_malformed_json_raises_naming_file_and_problem(tmp_path, content, message):
    path = write(tmp_path, "bad_vocab.json", content)
    with pytest.raises(ValueError, match=r"bad_vocab\.json.*" + message):
        load_vocabulary(path)


TXT_CASES = [
    ("no colon", "noun: dog\nverb run\nadjective: red\n", r"line 2: expected 'category: word, word, \.\.\.'"),
    ("unknown category", "noun: dog\nadverb: slowly\n", r"line 2: unknown category 'adverb'"),
    ("missing category", "noun: dog\nverb: run\n", r"missing category 'adjective'"),
    ("empty category", "noun: dog\nverb:\nadjective: red\n", r"category 'verbs' is empty"),
    ("punctuation", "noun: dog.\nverb: run\nadjective: red\n", r"nouns contains 'dog\.'"),
    ("two words", "noun: teddy bear\nverb: run\nadjective: red\n", r"nouns contains 'teddy bear'"),
    (
        "duplicates across lines",
        "noun: dog\nverb: run\nadjective: red\nnoun: cat, dog\n",
        r"duplicate words in nouns: 'dog'",
    ),
    ("only comments", "# nothing here\n\n", r"missing category 'verb'"),
]


@pytest.mark.parametrize("content, message", [c[1:] for c in TXT_CASES], ids=[c[0] for c in TXT_CASES])
def test_malformed_txt_raises_naming_file_and_problem(tmp_path, content, message):
    path = write(tmp_path, "bad_vocab.txt", content)
    with pytest.raises(ValueError, match=r"bad_vocab\.txt.*" + message):
        load_vocabulary(path)


def test_non_utf8_file_raises_value_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"nouns": ["caf\u00e9"]}'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.json.*not UTF-8"):
        load_vocabulary(str(path))


# Spellings of the released data's words, and counts (what `tinystories vocabulary` writes)

RELEASED_SPELLINGS = {
    "nouns": ["TV", "x-ray", "T-shirt", "7"],
    "verbs": ["don't", "hug"],
    "adjectives": ["3D", "café"],
}


def test_released_spellings_load_as_is(tmp_path):
    vocab = load_vocabulary(write(tmp_path, "released.json", RELEASED_SPELLINGS))
    assert vocab.nouns == ("7", "T-shirt", "TV", "x-ray")
    assert vocab.verbs == ("don't", "hug")
    assert vocab.adjectives == ("3D", "café")
    assert vocab.counts is None and vocab.count("noun", "TV") is None
    text = "noun: TV, x-ray, T-shirt, 7\nverb: don't, hug\nadjective: 3D, café\n"
    assert load_vocabulary(write(tmp_path, "released.txt", text)) == vocab


def test_counts_format_loads_with_its_counts(tmp_path):
    counts = {"nouns": {"TV": 12, "dog": 40}, "verbs": {"run": 7, "x-ray": 0}, "adjectives": {"red": 3}}
    vocab = load_vocabulary(write(tmp_path, "counted.json", {"_summary": {"records": 62}, **counts}))
    assert vocab == Vocabulary(nouns=("TV", "dog"), verbs=("run", "x-ray"), adjectives=("red",))
    assert vocab.count("noun", "dog") == 40 and vocab.count("noun", "TV") == 12
    assert vocab.count("verb", "x-ray") == 0 and vocab.count("adjective", "blue") == 0
    assert vocab.counts == {"noun": {"TV": 12, "dog": 40}, "verb": {"run": 7, "x-ray": 0}, "adjective": {"red": 3}}
    assert hash(vocab) == hash(Vocabulary(nouns=("TV", "dog"), verbs=("run", "x-ray"), adjectives=("red",)))
    with pytest.raises(ValueError, match="unknown word category 'nouns'"):
        vocab.count("nouns", "dog")


def test_lists_and_counts_mix(tmp_path):
    vocab = load_vocabulary(write(tmp_path, "mixed.json", {**good(), "verbs": {"run": 2, "hug": 1}}))
    assert vocab.verbs == ("hug", "run") and vocab.nouns == ("ball", "dog", "hug")
    assert vocab.count("verb", "run") == 2
    assert vocab.count("noun", "dog") is None  # that category has no counts


@pytest.mark.parametrize(
    "category, word",
    # the paper's own examples (its prompt and its GPT-3.5 example) and the released records the issue quotes
    [("adjective", "ancient"), ("adjective", "comfortable"), ("verb", "disagree"), ("noun", "network")]
    + [("verb", "decorate"), ("noun", "thunder"), ("verb", "hope"), ("noun", "search")],
)
def test_bundled_has_the_papers_example_words(bundled, category, word):
    assert word in bundled.words(category)


def test_bundled_has_a_card_saying_how_it_differs_from_the_released_one():
    card = os.path.join(os.path.dirname(default_vocabulary_path()), "VOCABULARY.md")
    with open(card, encoding="utf-8") as f:
        text = f.read()
    assert "tinystories vocabulary roneneldan/TinyStories" in text
    assert f"{len(load_vocabulary())} distinct words" in text.replace(",", "")


def test_categories_constant():
    assert CATEGORIES == ("verb", "noun", "adjective")
