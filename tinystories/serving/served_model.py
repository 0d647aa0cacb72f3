"""The served model: a causal LM and its tokenizer loaded for left-padded batched generation, its context length,
and the text helpers replies need (token texts and bytes for logprobs, the chat prompt)."""

import json
import os
import time

import torch
from transformers import AutoTokenizer, GenerationConfig

from ..errors import ServeError
from ..modeling import load_model
from .settings import ServeSettings

PLAIN_CHAT_STOP = "\nUser:"
PLAIN_ROLES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable character table (byte-level BPE vocabularies are written with it)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def space_marker(tokenizer) -> str | None:
    """The character a SentencePiece-style vocabulary writes a leading space with (``▁``), if its decoder maps it
    back to a space (a ``Metaspace`` decoder, or a ``Replace`` of it); None for other tokenizers."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        decoder = json.loads(backend.to_str()).get("decoder") or {}
    except (AttributeError, TypeError, ValueError):
        return None
    parts = (decoder.get("decoders") or []) if decoder.get("type") == "Sequence" else [decoder]
    for part in parts:
        if part.get("type") == "Metaspace":
            return part.get("replacement") or "\u2581"
        if part.get("type") == "Replace" and (part.get("pattern") or {}).get("String") == "\u2581":
            return "\u2581"
    return None


def _load(settings: ServeSettings):
    path = os.path.expanduser(settings.model)
    looks_local = path.startswith((".", "/")) or path.count("/") > 1 or "\\" in path
    if looks_local and not os.path.isdir(path):
        raise ServeError(f"cannot load {settings.model!r}: the model folder does not exist")
    dtype = settings.dtype if settings.dtype == "auto" else getattr(torch, settings.dtype)
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ServeError(f"device must be cpu, cuda, cuda:1, ..., got {device!r}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ServeError(f"device {device!r}: torch finds no CUDA device on this machine")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = load_model(path, attn_implementation=settings.attn_implementation, dtype=dtype, device=device)
    except (OSError, ValueError, RuntimeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ServeError(f"cannot load {settings.model!r}: {first_line}") from e
    return tokenizer, model, device


class ServedModel:
    """A causal LM and its tokenizer, ready for left-padded batched generation, and their text helpers."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.name = settings.served_model_name
        self.tokenizer, self.model, self.device = _load(settings)
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tok.eos_token_id is not None and tok.eos_token_id not in eos:
            eos.append(tok.eos_token_id)
        self.eos_ids = frozenset(eos)
        if tok.pad_token_id is None:
            if tok.eos_token_id is not None:
                tok.pad_token = tok.eos_token
            else:
                tok.pad_token_id = 0
        tok.padding_side = "left"
        self.pad_id = tok.pad_token_id
        self.start_ids = [tok.bos_token_id if tok.bos_token_id is not None else eos[0] if eos else self.pad_id]
        # the server applies the request's parameters only: no model-author defaults (repetition penalty, ...)
        self.model.generation_config = GenerationConfig(
            bos_token_id=tok.bos_token_id, eos_token_id=eos or None, pad_token_id=self.pad_id
        )
        self.context = self._context_length(settings.max_model_len)
        self.vocab_size = self.model.get_output_embeddings().weight.shape[0]
        self.chat_template = getattr(tok, "chat_template", None)
        decoder = getattr(getattr(tok, "backend_tokenizer", None), "decoder", None)
        self._byte_level = type(decoder).__name__ == "ByteLevel"
        self._byte_of = {c: b for b, c in bytes_to_unicode().items()}
        self._space_marker = space_marker(tok)
        self._token_text: dict[int, str] = {}
        self._token_bytes: dict[int, list[int]] = {}
        self.created = int(time.time())

    def _context_length(self, cap: int | None) -> int:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                break
        else:
            value = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1_000_000 else 2048
        return min(value, cap) if cap else value

    def serves(self, name: str | None) -> bool:
        """Whether requests for model ``name`` are this model's (no name: yes)."""
        return name is None or name in (self.name, self.settings.model)

    # -- text -------------------------------------------------------------------------------------------------
    def encode(self, text: str, special: bool = True) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return list(ids) or list(self.start_ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        """One token's text for logprobs: special tokens with their text (``<|endoftext|>``), a SentencePiece word
        with its leading space (`` word``), a part of a UTF-8 character as U+FFFD (its bytes are ``token_bytes``)."""
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            if self._space_marker:
                piece = self.tokenizer.convert_ids_to_tokens(token_id) or ""
                missing = len(piece) - len(piece.lstrip(self._space_marker)) - (len(text) - len(text.lstrip(" ")))
                text = " " * missing + text if missing > 0 else text
            self._token_text[token_id] = text
        return text

    def token_bytes(self, token_id: int) -> list[int]:
        """The token's raw bytes (a byte-level token can be part of a UTF-8 character: its text is then U+FFFD)."""
        raw = self._token_bytes.get(token_id)
        if raw is None:
            piece = self.tokenizer.convert_ids_to_tokens(token_id)
            if self._byte_level and piece is not None and all(c in self._byte_of for c in piece):
                raw = [self._byte_of[c] for c in piece]
            else:
                raw = list(self.token_text(token_id).encode("utf-8"))
            self._token_bytes[token_id] = raw
        return raw

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """Token ids of a dialogue ready for the assistant's turn, and the stop strings the format needs."""
        if self.chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return self.encode(text, special=False), []
        lines = [f"{PLAIN_ROLES[m['role']]}: {m['content']}" for m in messages]
        return self.encode("\n".join(lines) + "\nAssistant:"), [PLAIN_CHAT_STOP]
