"""Tests of tinystories.tokenization: training a byte-level BPE and pruning one to its most frequent tokens."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from tinystories.tokenization import EOS_TOKEN, _parse_merges, prune_tokenizer, train_tokenizer

SENTENCES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the sunshine with her dog, Max.",
    "One day, Lily found a shiny red ball under a big tree.",
    "Tom was a happy boy who liked to build castles in the sand.",
    "The cat jumped over the fence and ran into the garden.",
    'Mom said, "Be careful, the stove is very hot!"',
    "Ben and his friend Sam went to the park to fly a kite.",
    "The wind was strong, and the kite went up, up, up into the sky.",
    "A little bird sang a sweet song from the top of the tree.",
    "Sue felt sad because her toy car was broken.",
    "Her dad helped her fix it with some glue and tape.",
    "They were very proud and gave each other a big hug.",
    "The bunny hopped across the meadow looking for carrots.",
    "Grandma baked cookies, and the whole house smelled warm and yummy.",
    "Timmy did not want to share his blocks with his sister.",
    "Later he learned that sharing makes everyone happy.",
    "At night, the moon was bright and the stars twinkled.",
    'The little frog said, "I can jump higher than you!"',
    "The elephant laughed and splashed water with its long trunk.",
    "Anna wanted to paint a picture of a purple dragon.",
    "She used blue, green, yellow and orange paint.",
    "The dragon in her picture had big wings and a friendly smile.",
    "It started to rain, so the children played inside.",
    "They built a fort with pillows and blankets in the living room.",
    "The puppy was scared of the loud thunder.",
    'Lucy held him close and whispered, "Don\'t worry, I am here."',
    "The next morning, the sun came out and everything was wet and shiny.",
    "Jack climbed the hill to see the boats on the lake.",
    "He waved at the sailors, and they waved back.",
    "The old owl was wise and knew many stories.",
    "Every evening, the animals gathered to listen to him.",
    "Mia lost her favorite teddy bear at the zoo.",
    "A kind zookeeper found it near the monkeys and gave it back.",
    "Mia said thank you and smiled all the way home.",
    "The squirrel gathered acorns for the long, cold winter.",
    "Max the dog barked at the mailman every single day.",
    "One day, the mailman brought Max a treat, and they became friends.",
    "Sara and her brother planted seeds in a small pot.",
    "They watered them every day, and soon a tiny flower grew.",
    "The fish swam in circles in the clear blue pond.",
    "Why is the sky blue? asked Ollie, and his mom explained.",
    "The clown at the circus juggled five balls and made everyone laugh.",
    "Lily and Tom shared their lunch: sandwiches, apples and juice.",
    "The brave knight helped the princess find her lost crown.",
    "After the party, they cleaned up the toys together.",
    "A curious kitten explored the dusty attic and discovered an old treasure chest.",
    "Inside the chest were golden coins, sparkling jewels and a mysterious map.",
    "The penguin waddled slowly across the icy beach toward the ocean.",
    "Freddie the giraffe could reach the juiciest leaves at the very top.",
    "On Saturday, the family drove to the countryside for a picnic.",
    "Daisy giggled when the butterfly landed gently on her nose.",
    "The robot beeped, blinked its lights and offered everybody lemonade.",
    "Peter practiced the piano until his fingers were tired.",
    "Rosie wore her new rainbow boots and splashed in every puddle.",
    "The hungry caterpillar munched through strawberries, plums and pears.",
    "Grandpa told them about the pirates who sailed across the stormy seas.",
    "The snowman wore a scarf, a hat and a carrot nose.",
    "Emma's balloon floated away, higher and higher, until it disappeared.",
    "The turtle and the rabbit decided to race to the big oak tree.",
    "Nobody expected the slow turtle to win, but he never stopped trying.",
    "The teacher showed the class how seeds become beautiful sunflowers.",
    "Oscar the octopus waved eight arms to greet his neighbors.",
    "The firefighters rescued a frightened kitten from the chimney.",
    "Jenny counted: one, two, three, four, five little ducklings!",
    "The magical unicorn galloped through the enchanted forest.",
    "The end.",
]

HELD_OUT = "xylophone zebra quizzically Supercalifragilistic 123456 émoji 🐉"
TRICKY = [
    "café naïve 日本 🐶",
    "tab\tseparated\tvalues",
    "double  spaces   and    more",
    "line one\nline two\n\nline four\n",
    "  leading and trailing spaces  ",
    f"first story{EOS_TOKEN}second story",
    "",
    HELD_OUT,
]


def make_corpus(repeats: int = 3) -> list[str]:
    """Stories of 3 sentences, combined in varied orders and repeated to give the trainer some volume."""
    n = len(SENTENCES)
    stories = []
    for r in range(repeats):
        for i in range(n):
            stories.append(" ".join(SENTENCES[(i * (r + 1) + k * (r + 2)) % n] for k in range(3)))
    return stories


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="module")
def trained(corpus: list[str]) -> PreTrainedTokenizerFast:
    return train_tokenizer(corpus, vocab_size=1000, min_frequency=2)


@pytest.fixture(scope="module")
def pruned(trained: PreTrainedTokenizerFast, corpus: list[str]) -> tuple[PreTrainedTokenizerFast, dict[int, int]]:
    return prune_tokenizer(trained, corpus, vocab_size=400, return_id_map=True)


def ids(tok: PreTrainedTokenizerFast, text: str) -> list[int]:
    return tok(text)["input_ids"]


def merges_of(tok: PreTrainedTokenizerFast) -> list[tuple[str, str]]:
    raw = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in raw]


# --- train_tokenizer ---------------------------------------------------------------------------------------


def test_train_vocab_size_and_special_tokens(trained: PreTrainedTokenizerFast) -> None:
    assert len(trained) == 1000
    assert trained.backend_tokenizer.get_vocab_size() == 1000
    for name in ("eos_token", "bos_token", "unk_token", "pad_token"):
        assert getattr(trained, name) == EOS_TOKEN
    assert trained.eos_token_id == trained.bos_token_id == trained.pad_token_id == trained.unk_token_id == 0
    assert trained.model_max_length == 2048
    # every one of the 256 byte-level symbols is in the vocabulary
    vocab = trained.get_vocab()
    assert all(ch in vocab for ch in pre_tokenizers.ByteLevel.alphabet())


def test_train_learns_frequent_words(trained: PreTrainedTokenizerFast) -> None:
    assert len(ids(trained, " the")) == 1
    assert len(ids(trained, " and")) == 1
    assert trained.convert_ids_to_tokens(ids(trained, " Lily")) == ["ĠLily"]
    # no bos/eos added automatically
    assert 0 not in ids(trained, "Once upon a time")


@pytest.mark.parametrize("text", TRICKY)
def test_train_round_trip(trained: PreTrainedTokenizerFast, text: str) -> None:
    assert trained.decode(ids(trained, text)) == text


def test_train_eos_literal_is_one_token(trained: PreTrainedTokenizerFast) -> None:
    assert ids(trained, EOS_TOKEN) == [0]
    encoded = ids(trained, f"The end.{EOS_TOKEN}Once upon a time")
    assert encoded.count(0) == 1
    assert trained.decode(encoded, skip_special_tokens=True) == "The end.Once upon a time"


def test_train_save_load(trained: PreTrainedTokenizerFast, tmp_path) -> None:
    trained.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(trained)
    assert loaded.eos_token == EOS_TOKEN and loaded.eos_token_id == 0
    assert loaded.pad_token == EOS_TOKEN and loaded.bos_token == EOS_TOKEN
    assert loaded.model_max_length == 2048
    for text in TRICKY + SENTENCES[:5]:
        assert ids(loaded, text) == ids(trained, text)
        assert loaded.decode(ids(loaded, text)) == text


def test_train_from_generator_and_options(corpus: list[str]) -> None:
    tok = train_tokenizer((s for s in corpus), vocab_size=500, model_max_length=512)
    assert len(tok) == 500
    assert tok.model_max_length == 512
    # the trainer is deterministic: a generator gives the same vocabulary as a list
    assert tok.get_vocab() == train_tokenizer(corpus, vocab_size=500).get_vocab()


def test_train_minimal_vocab_is_bytes_only(corpus: list[str]) -> None:
    tok = train_tokenizer(corpus, vocab_size=257)
    assert len(tok) == 257
    text = "Lily 🐶"
    assert len(ids(tok, text)) == len(text.encode("utf-8"))
    assert tok.decode(ids(tok, text)) == text


def test_train_errors(corpus: list[str]) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(corpus, vocab_size=256)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer([], vocab_size=300)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer((s for s in []), vocab_size=300)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer(["", ""], vocab_size=300)


# --- prune_tokenizer ---------------------------------------------------------------------------------------


def test_prune_size_and_specials(pruned: tuple[PreTrainedTokenizerFast, dict[int, int]]) -> None:
    tok, _ = pruned
    assert len(tok) == 400
    assert tok.backend_tokenizer.get_vocab_size() == 400
    assert sorted(tok.get_vocab().values()) == list(range(400))
    assert tok.eos_token == tok.bos_token == tok.pad_token == tok.unk_token == EOS_TOKEN
    assert tok.eos_token_id == 0
    assert tok.model_max_length == 2048
    # new ids: special first, then the 256 byte tokens
    vocab = tok.get_vocab()
    assert {vocab[ch] for ch in pre_tokenizers.ByteLevel.alphabet()} == set(range(1, 257))


@pytest.mark.parametrize("text", TRICKY + SENTENCES[:3])
def test_prune_round_trip_and_ids_in_range(pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], text: str) -> None:
    tok, _ = pruned
    encoded = ids(tok, text)
    assert all(0 <= i < 400 for i in encoded)
    assert tok.decode(encoded) == text


def test_prune_held_out_rare_text(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast
) -> None:
    tok, _ = pruned
    encoded = ids(tok, HELD_OUT)
    assert encoded and max(encoded) < 400
    assert tok.decode(encoded) == HELD_OUT
    assert len(encoded) >= len(ids(trained, HELD_OUT))


def test_prune_keeps_most_frequent_tokens(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast, corpus: list[str]
) -> None:
    tok, _ = pruned
    for word in (" the", " and", " Lily", " was"):
        assert len(ids(tok, word)) == 1, word
    counts = Counter(i for text in corpus for i in ids(trained, text))
    top = [trained.convert_ids_to_tokens(i) for i, _ in counts.most_common(30)]
    vocab = tok.get_vocab()
    assert all(token in vocab for token in top)
    # and a rare token of the original vocabulary was dropped
    assert len(vocab.keys() & trained.get_vocab().keys()) == 400
    assert set(trained.get_vocab()) - set(vocab)


def test_prune_merge_closure(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast
) -> None:
    tok, _ = pruned
    vocab = tok.get_vocab()
    kept_merges = merges_of(tok)
    assert kept_merges
    for left, right in kept_merges:
        assert left in vocab and right in vocab and left + right in vocab
    # every kept merged token has its merge kept, and merges keep their original relative order
    results = {a + b for a, b in kept_merges}
    merged_tokens = [t for t, i in vocab.items() if i >= 257]
    assert all(t in results for t in merged_tokens)
    original = merges_of(trained)
    assert kept_merges == [m for m in original if m in set(kept_merges)]
    # merged tokens are numbered in merge order
    assert [vocab[a + b] for a, b in kept_merges] == sorted(vocab[a + b] for a, b in kept_merges)


def test_prune_never_shorter(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast, corpus: list[str]
) -> None:
    tok, _ = pruned
    total_old = total_new = 0
    for text in corpus + TRICKY:
        old, new = ids(trained, text), ids(tok, text)
        assert len(new) >= len(old)
        total_old += len(old)
        total_new += len(new)
    assert total_new > total_old  # pruning did remove useful merges


def test_prune_id_map(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast, corpus: list[str]
) -> None:
    tok, id_map = pruned
    assert len(id_map) == 400
    assert sorted(id_map.values()) == list(range(400))
    for old_id, new_id in id_map.items():
        assert trained.convert_ids_to_tokens(old_id) == tok.convert_ids_to_tokens(new_id)
    # words whose original tokens are all kept encode to the same tokens, under new ids
    words = {" " + w for text in corpus for w in text.split()}
    fully_kept = [w for w in words if all(i in id_map for i in ids(trained, w))]
    assert len(fully_kept) > 20
    for word in fully_kept:
        assert [id_map[i] for i in ids(trained, word)] == ids(tok, word), word


def test_prune_save_load(pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], tmp_path) -> None:
    tok, _ = pruned
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == 400
    assert loaded.eos_token == EOS_TOKEN and loaded.eos_token_id == 0
    for text in TRICKY + SENTENCES[:5]:
        assert ids(loaded, text) == ids(tok, text)
        assert loaded.decode(ids(loaded, text)) == text


def test_prune_deterministic_and_generator(
    pruned: tuple[PreTrainedTokenizerFast, dict[int, int]], trained: PreTrainedTokenizerFast, corpus: list[str]
) -> None:
    tok, _ = pruned
    again = prune_tokenizer(trained, (s for s in corpus), vocab_size=400, batch_size=7)
    assert again.backend_tokenizer.to_str() == tok.backend_tokenizer.to_str()


def test_prune_to_bytes_only(trained: PreTrainedTokenizerFast, corpus: list[str]) -> None:
    tok = prune_tokenizer(trained, corpus, vocab_size=257)
    assert len(tok) == 257 and merges_of(tok) == []
    text = "Lily café 🐶"
    assert len(ids(tok, text)) == len(text.encode("utf-8"))
    assert tok.decode(ids(tok, text)) == text


def _gpt_neo_like(corpus: list[str]) -> PreTrainedTokenizerFast:
    """A GPT-Neo-shaped tokenizer: EOS as the *last* id and a post-processor appending EOS (hard-coded id)."""
    base = train_tokenizer(corpus, vocab_size=700)
    state = json.loads(base.backend_tokenizer.to_str())
    vocab = state["model"]["vocab"]
    vocab.pop(EOS_TOKEN)
    vocab = {t: i - 1 for t, i in vocab.items()}
    eos_id = len(vocab)
    vocab[EOS_TOKEN] = eos_id
    state["model"]["vocab"] = vocab
    state["added_tokens"][0]["id"] = eos_id
    backend = Tokenizer.from_str(json.dumps(state))
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}", special_tokens=[(EOS_TOKEN, eos_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TOKEN, model_max_length=2048)


def test_prune_string_merges_last_eos_and_post_processor(corpus: list[str]) -> None:
    original = _gpt_neo_like(corpus)
    assert original.eos_token_id == 699
    assert ids(original, "The end.")[-1] == 699
    tok, id_map = prune_tokenizer(original, corpus, vocab_size=350, return_id_map=True)
    assert len(tok) == 350
    assert tok.eos_token == EOS_TOKEN and tok.eos_token_id == 0 and id_map[699] == 0
    assert merges_of(tok) and set(merges_of(tok)) <= set(merges_of(original))
    encoded = ids(tok, "The end.")
    assert encoded[-1] == 0  # post-processor id remapped
    assert tok.decode(encoded, skip_special_tokens=True) == "The end."
    assert all(i < 350 for i in ids(tok, HELD_OUT))


def test_parse_merges_both_formats() -> None:
    # tokenizer.json files store merges as "a b" strings (older tokenizers, e.g. GPT-Neo's) or [a, b] pairs
    assert _parse_merges(["Ġ t", "h e"]) == ([("Ġ", "t"), ("h", "e")], True)
    assert _parse_merges([["Ġ", "t"], ["h", "e"]]) == ([("Ġ", "t"), ("h", "e")], False)
    with pytest.raises(ValueError, match="merge"):
        _parse_merges(["a b c"])


def test_prune_errors(trained: PreTrainedTokenizerFast, corpus: list[str]) -> None:
    with pytest.raises(ValueError, match="too small"):
        prune_tokenizer(trained, corpus, vocab_size=256)
    with pytest.raises(ValueError, match="would not prune"):
        prune_tokenizer(trained, corpus, vocab_size=1000)
    with pytest.raises(ValueError, match="would not prune"):
        prune_tokenizer(trained, corpus, vocab_size=5000)
    with pytest.raises(ValueError, match="no text"):
        prune_tokenizer(trained, [], vocab_size=400)
    with pytest.raises(ValueError, match="no text"):
        prune_tokenizer(trained, (s for s in []), vocab_size=400)

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="BPE"):
        prune_tokenizer(PreTrainedTokenizerFast(tokenizer_object=word_level), corpus, vocab_size=1)

    not_byte_level = Tokenizer.from_str(trained.backend_tokenizer.to_str())
    not_byte_level.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="byte-level"):
        prune_tokenizer(PreTrainedTokenizerFast(tokenizer_object=not_byte_level), corpus, vocab_size=400)
