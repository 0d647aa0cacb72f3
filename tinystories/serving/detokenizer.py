"""Incremental detokenization (vLLM's): the text of a reply, token by token, decoded after the prompt's last tokens
and without ever emitting half of a multi-byte character."""

from collections.abc import Callable

CONTEXT_TOKENS = 5  # prompt tokens a reply is decoded after (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET)
MAX_CHAR_TOKENS = 4  # a UTF-8 character has at most 4 bytes: after 4 more tokens a U+FFFD is the model's own


def reply_context(ids: list[int], decode: Callable[[list[int]], str]) -> tuple[list[int], str]:
    """The prompt's last tokens a reply is decoded after, and their text (none if it ends inside a character)."""
    context = ids[-CONTEXT_TOKENS:]
    text = decode(context)
    return (context, text) if not text.endswith("\ufffd") else ([], "")


class Detokenizer:
    """The text of the tokens appended after ``context`` (prompt tokens whose text is ``context_text``).

    A SentencePiece decoder drops the leading space of the first word of a text, not of a word that follows others:
    decoding after the context keeps it. ``append(token, decode=True)`` decodes a short window (the previous
    token's and the new ones) and adds only complete characters to ``text``; rows nobody reads while they are
    generated append without decoding and get their text once, from ``final_text``.
    """

    def __init__(self, decode: Callable[[list[int]], str], context: list[int], context_text: str):
        self.decode = decode
        self.context, self.context_text = context, context_text
        self.tokens = list(context)  # context + appended ids
        self.text = ""
        self._prefix, self._read = 0, len(context)

    @property
    def ids(self) -> list[int]:
        return self.tokens[len(self.context) :]

    def append(self, token_id: int, decode: bool) -> None:
        self.tokens.append(token_id)
        if decode:
            self._step(len(self.tokens))

    def _step(self, end: int) -> None:
        """Append the text of ``tokens[_read:end]``: decode a short window, emit only complete characters."""
        prefix = self.decode(self.tokens[self._prefix : self._read])
        window = self.decode(self.tokens[self._prefix : end])
        if len(window) > len(prefix) and (not window.endswith("\ufffd") or end - self._read >= MAX_CHAR_TOKENS):
            self.text += window[len(prefix) :]
            self._prefix, self._read = self._read, end

    def offsets(self) -> list[int]:
        """Where each appended token's text starts, replaying the incremental decoding (for rows that skipped it)."""
        self.text, self._prefix, self._read = "", 0, len(self.context)
        offsets = []
        for end in range(len(self.context) + 1, len(self.tokens) + 1):
            offsets.append(len(self.text))
            self._step(end)
        return offsets

    def final_text(self) -> str:
        """The exact text of the appended tokens, a trailing partial character included."""
        ids = self.ids
        if self.context:
            text = self.decode(self.context + ids)
            if text.startswith(self.context_text):
                return text[len(self.context_text) :]
        return self.decode(ids)
