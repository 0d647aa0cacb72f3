"""The paper's treatment of GPT-Neo/GPT-2 baselines before grading (Eldan & Li 2023, Figure 4): a completion is cut
at its first repeated word n-gram (n = 4), so that the judge does not grade a loop of repetitions."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+(?:'\w+)*")


def truncate_repeated_ngram(text: str, n: int | None) -> str:
    """``text`` cut before its first repeated word ``n``-gram (``n`` None or 0: unchanged).

    Words are runs of letters, digits and underscores with inner apostrophes (``don't``), compared lowercased;
    punctuation and white space between them are ignored. Scanning the word n-grams left to right, the first one
    equal to an n-gram that starts at an earlier word (overlaps included) marks the cut: the text is kept up to the
    start of that n-gram's first word, without trailing white space. A text with no repeated n-gram is unchanged.
    """
    if not n:
        return text
    if n < 1:
        raise ValueError(f"truncate_repeated_ngram must be >= 1 (or 0/None: off), got {n}")
    matches = list(_WORD.finditer(text))
    words = [m.group(0).lower() for m in matches]
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            return text[: matches[i].start()].rstrip()
        seen.add(gram)
    return text
