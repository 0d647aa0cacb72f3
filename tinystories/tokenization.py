"""Tokenizers: train a small byte-level BPE, or prune an existing one (GPT-Neo's) to its most frequent tokens as the
paper does, keeping a valid BPE that round-trips any text (docs/training.md: how pruning keeps the merges closed)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Literal, overload

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"

_BATCH_SIZE = 1000  # texts per batch fed to the Rust tokenizers library
_NUM_BYTES = 256


def _batches(texts: Iterable[str], batch_size: int, counter: list[int]) -> Iterator[list[str]]:
    """Group ``texts`` into lists of ``batch_size``, counting non-empty texts in ``counter[0]`` as they pass.

    Lets a (possibly huge) generator be streamed once while still detecting afterwards that it was empty.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not a single string (wrap it in a list)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[str] = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must contain strings, got {type(text).__name__}")
        if text:
            counter[0] += 1
        batch.append(text)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    min_frequency: int = 2,
    show_progress: bool = False,
    model_max_length: int = 2048,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2 style byte-level BPE tokenizer on ``texts``.

    The vocabulary is ``<|endoftext|>`` (id 0, used as eos, bos, unk and pad token like GPT-Neo), the 256
    byte-level symbols (so any text encodes, nothing is ever unknown), then the learned merges. Pre-tokenization
    is GPT-2's ByteLevel with ``add_prefix_space=False`` so decoding gives back the exact input text.

    Args:
        texts: training texts, a list or a generator (streamed in batches, so it may be large).
        vocab_size: total vocabulary size including the special token and the 256 bytes (>= 257). The result
            can be smaller if the corpus has too few pairs seen ``min_frequency`` times (a warning is logged).
        min_frequency: minimum count of a pair to be merged.
        show_progress: show the progress bar of the ``tokenizers`` trainer.
        model_max_length: maximum sequence length recorded in the returned tokenizer (the model's context).

    Raises:
        ValueError: ``vocab_size`` < 257, or ``texts`` holds no non-empty text.
    """
    min_size = _NUM_BYTES + 1
    if vocab_size < min_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {min_size} tokens "
            f"({_NUM_BYTES} byte tokens + {EOS_TOKEN})"
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # Like GPT-2: only fixes offsets, adds no token (so `tok(text)` encodes exactly the text).
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=show_progress,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    n_texts = [0]
    tokenizer.train_from_iterator(_batches(texts, _BATCH_SIZE, n_texts), trainer=trainer)
    if n_texts[0] == 0:
        raise ValueError("no text to train the tokenizer on: texts is empty or holds only empty strings")

    actual = tokenizer.get_vocab_size()
    if actual < vocab_size:
        logger.warning(
            "Tokenizer vocabulary has %d tokens, fewer than the requested %d: the corpus has no more pairs "
            "seen at least min_frequency=%d times",
            actual,
            vocab_size,
            min_frequency,
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def _is_byte_level(pre_tokenizer: dict[str, Any] | None) -> bool:
    """Whether a serialized pre-tokenizer is ByteLevel or a Sequence containing one."""
    if not pre_tokenizer:
        return False
    if pre_tokenizer.get("type") == "ByteLevel":
        return True
    if pre_tokenizer.get("type") == "Sequence":
        return any(_is_byte_level(p) for p in pre_tokenizer.get("pretokenizers", []))
    return False


def _parse_merges(raw: list[Any]) -> tuple[list[tuple[str, str]], bool]:
    """Merges of a serialized BPE as (left, right) pairs, and whether they were stored as "a b" strings.

    Older ``tokenizers`` versions (and many tokenizer.json on the Hub, e.g. GPT-Neo's) store merges as
    ``"a b"`` strings, newer ones as ``["a", "b"]`` pairs.
    """
    merges: list[tuple[str, str]] = []
    as_strings = bool(raw) and isinstance(raw[0], str)
    for merge in raw:
        parts = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(parts) != 2:
            raise ValueError(f"cannot parse BPE merge {merge!r}: expected two tokens")
        merges.append((parts[0], parts[1]))
    return merges, as_strings


def _remap_post_processor(processor: dict[str, Any] | None, new_vocab: dict[str, int]) -> None:
    """Rewrite, in place, the token ids a serialized post-processor hard-codes, using the tokens' strings."""
    if not processor:
        return

    def new_id(token: str) -> int:
        if token not in new_vocab:
            raise ValueError(f"post-processor token {token!r} is not in the pruned vocabulary")
        return new_vocab[token]

    kind = processor.get("type")
    if kind == "Sequence":
        for sub in processor.get("processors", []):
            _remap_post_processor(sub, new_vocab)
    elif kind == "TemplateProcessing":
        for spec in processor.get("special_tokens", {}).values():
            spec["ids"] = [new_id(token) for token in spec["tokens"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            token, _ = processor[key]
            processor[key] = [token, new_id(token)]


def _closure(token: str, kept: set[str], parents: dict[str, tuple[str, str]]) -> set[str]:
    """``token`` and every not-yet-kept token its merge is (recursively) built from."""
    needed: set[str] = set()
    stack = [token]
    while stack:
        current = stack.pop()
        if current in kept or current in needed:
            continue
        needed.add(current)
        if current in parents:
            stack.extend(parents[current])
    return needed


def _copy_settings(tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """Special-token and length settings of a transformers tokenizer, as constructor keyword arguments."""
    settings: dict[str, Any] = dict(tokenizer.special_tokens_map)
    extra = getattr(tokenizer, "extra_special_tokens", None)
    if extra:
        settings["extra_special_tokens"] = extra if isinstance(extra, dict) else [str(t) for t in extra]
    for name in (
        "model_max_length",
        "padding_side",
        "truncation_side",
        "model_input_names",
        "clean_up_tokenization_spaces",
        "split_special_tokens",
        "chat_template",
    ):
        value = getattr(tokenizer, name, None)
        if value is not None:
            settings[name] = value
    for name in ("add_bos_token", "add_eos_token"):
        if getattr(tokenizer, name, False) is True:
            settings[name] = True
    return settings


@overload
def prune_tokenizer(
    tokenizer: PreTrainedTokenizerFast,
    texts: Iterable[str],
    vocab_size: int,
    batch_size: int = ...,
    return_id_map: Literal[False] = ...,
) -> PreTrainedTokenizerFast: ...


@overload
def prune_tokenizer(
    tokenizer: PreTrainedTokenizerFast,
    texts: Iterable[str],
    vocab_size: int,
    batch_size: int = ...,
    *,
    return_id_map: Literal[True],
) -> tuple[PreTrainedTokenizerFast, dict[int, int]]: ...


def prune_tokenizer(
    tokenizer: PreTrainedTokenizerFast,
    texts: Iterable[str],
    vocab_size: int,
    batch_size: int = 1000,
    return_id_map: bool = False,
) -> PreTrainedTokenizerFast | tuple[PreTrainedTokenizerFast, dict[int, int]]:
    """Keep only the ``vocab_size`` most useful tokens of a byte-level BPE tokenizer (TinyStories' recipe).

    Counts how often each token occurs when ``tokenizer`` encodes ``texts``, then keeps, for exactly
    ``vocab_size`` tokens in total: the added/special tokens, the 256 byte-level base tokens (so every text still
    encodes), then merged tokens by decreasing frequency (ties: lower original id first), each together with
    the tokens its merge is built from, recursively, so the kept tokens stay reachable by the kept merges. A
    token whose closure does not fit in the remaining budget is skipped for a later one that fits.

    The new vocabulary has contiguous ids: specials first (in original id order), then the byte tokens, then
    the kept merged tokens in their original merge order. Only merges whose result (and parts) are kept are
    kept, in their original relative order. Pre-tokenizer, normalizer, decoder, post-processor (ids remapped),
    added tokens and special-token settings of the original are kept, so decoding still gives back the input.
    Rare words get split into more, smaller pieces: encodings are (in practice) at least as long as before.

    Args:
        tokenizer: a fast tokenizer with a byte-level BPE model (GPT-2, GPT-Neo, :func:`train_tokenizer`, ...).
        texts: the corpus to count token frequencies on (list or generator, streamed in batches).
        vocab_size: size of the pruned vocabulary, specials and byte tokens included.
        batch_size: texts encoded per batch while counting.
        return_id_map: also return ``{old_id: new_id}`` for the kept tokens, e.g. to slice the rows of a
            pretrained embedding matrix.

    Raises:
        ValueError: not a byte-level BPE tokenizer; ``vocab_size`` below specials + 256 or not below the
            original size (nothing to prune); ``texts`` holds no non-empty text.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise ValueError("prune_tokenizer needs a fast tokenizer (PreTrainedTokenizerFast with a backend_tokenizer)")
    state = json.loads(backend.to_str())
    model = state["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"prune_tokenizer needs a BPE tokenizer, got a {model.get('type')} model")
    if not _is_byte_level(state.get("pre_tokenizer")):
        raise ValueError("prune_tokenizer needs a byte-level BPE (ByteLevel pre-tokenizer, like GPT-2/GPT-Neo)")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise ValueError("prune_tokenizer does not support BPE with continuing_subword_prefix/end_of_word_suffix")

    vocab: dict[str, int] = model["vocab"]
    added = state.get("added_tokens") or []
    base = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda t: vocab.get(t, -1))
    missing = [t for t in base if t not in vocab]
    if missing:
        raise ValueError(f"not a byte-level BPE: {len(missing)} of the {_NUM_BYTES} byte tokens are not in the vocab")

    # Specials: added tokens, plus the model's unk and named special tokens found in the vocab, by original id.
    special_ids = {entry["id"]: entry["content"] for entry in added}
    named = [model.get("unk_token"), *getattr(tokenizer, "all_special_tokens", [])]
    for token in named:
        if token is not None and str(token) in vocab:
            special_ids.setdefault(vocab[str(token)], str(token))
    specials = [special_ids[i] for i in sorted(special_ids)]
    special_set = set(specials)
    base = [t for t in base if t not in special_set]
    min_size = len(specials) + len(base)
    original_size = len(tokenizer)
    if vocab_size < min_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the pruned tokenizer keeps the {len(specials)} special "
            f"token(s) and the {len(base)} byte tokens, so it needs at least {min_size}"
        )
    if vocab_size >= original_size:
        raise ValueError(f"vocab_size={vocab_size} would not prune: the tokenizer has only {original_size} tokens")

    merges, merges_as_strings = _parse_merges(model.get("merges") or [])
    parents: dict[str, tuple[str, str]] = {}
    merge_rank: dict[str, int] = {}
    for rank, (left, right) in enumerate(merges):
        result = left + right
        if result not in parents:
            parents[result] = (left, right)
            merge_rank[result] = rank

    # Count token frequencies with a private copy of the backend (no truncation/padding, no added bos/eos).
    counter_backend = Tokenizer.from_str(backend.to_str())
    counter_backend.no_truncation()
    counter_backend.no_padding()
    encode = getattr(counter_backend, "encode_batch_fast", counter_backend.encode_batch)
    counts: Counter[int] = Counter()
    n_texts = [0]
    for batch in _batches(texts, batch_size, n_texts):
        for encoding in encode(batch, add_special_tokens=False):
            counts.update(encoding.ids)
    if n_texts[0] == 0:
        raise ValueError("no text to count token frequencies on: texts is empty or holds only empty strings")

    # Greedy selection by frequency with merge closure; repeat passes in case skipped tokens fit later.
    kept: set[str] = special_set | set(base)
    budget = vocab_size - len(kept)
    candidates = sorted((t for t in vocab if t not in kept), key=lambda t: (-counts.get(vocab[t], 0), vocab[t]))
    while budget > 0:
        skipped: list[str] = []
        for token in candidates:
            if budget == 0:
                break
            if token in kept:
                continue
            needed = _closure(token, kept, parents)
            if len(needed) <= budget:
                kept |= needed
                budget -= len(needed)
            else:
                skipped.append(token)
        if budget > 0 and len(skipped) == len(candidates):  # cannot happen for a consistent BPE
            raise ValueError("cannot reach the requested vocab_size with closed sets of merges")
        candidates = skipped

    merged = sorted(
        (t for t in kept if t not in special_set and t not in base),
        key=lambda t: (merge_rank.get(t, len(merges)), vocab[t]),
    )
    new_vocab = {token: new_id for new_id, token in enumerate(specials + base + merged)}
    if len(new_vocab) != vocab_size:  # duplicate token strings in the original vocabulary
        raise ValueError(f"could only keep {len(new_vocab)} distinct tokens instead of {vocab_size}")
    old_vocab = {**vocab, **{entry["content"]: entry["id"] for entry in added}}
    id_map = {old_vocab[token]: new_id for token, new_id in new_vocab.items()}

    kept_merges = [
        (left, right)
        for left, right in merges
        if left + right in new_vocab and left in new_vocab and right in new_vocab
    ]
    model["vocab"] = new_vocab
    model["merges"] = [f"{a} {b}" for a, b in kept_merges] if merges_as_strings else [list(m) for m in kept_merges]
    for entry in added:
        entry["id"] = new_vocab[entry["content"]]
    _remap_post_processor(state.get("post_processor"), new_vocab)
    if state.get("padding"):
        state["padding"]["pad_id"] = new_vocab.get(state["padding"]["pad_token"], 0)

    pruned = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)), **_copy_settings(tokenizer)
    )
    if len(pruned) != vocab_size:  # e.g. a special token in the settings that was not an added token
        raise ValueError(f"pruned tokenizer has {len(pruned)} tokens instead of {vocab_size}")
    logger.info("Pruned tokenizer from %d to %d tokens (%d merges kept)", original_size, vocab_size, len(kept_merges))
    if return_id_map:
        return pruned, id_map
    return pruned
