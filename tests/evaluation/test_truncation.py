"""The paper's truncation of baseline completions at their first repeated word 4-gram."""

import pytest

from tinystories.evaluation.truncation import truncate_repeated_ngram


@pytest.mark.parametrize(
    "text, n, expected",
    [
        # "the dog ran to" repeats: cut where its second occurrence starts
        (" park. The dog ran to the tree. The dog ran to the tree.", 4, " park. The dog ran to the tree."),
        # case and punctuation between words do not matter; the kept text ends without trailing space
        (" The cat sat down. the cat, sat down again", 4, " The cat sat down."),
        # overlapping repetition: "a a a a" at word 1 repeats the 4-gram at word 0
        ("a a a a a a", 4, "a"),
        # a 3-gram repeated is not a 4-gram repeated
        ("Tom ran fast. Tom ran fast too, and then home.", 4, "Tom ran fast. Tom ran fast too, and then home."),
        ("Tom ran fast. Tom ran fast too, and then home.", 3, "Tom ran fast."),
        ("Sue said don't go. Sue said don't go.", 4, "Sue said don't go."),
        ("Short text.", 4, "Short text."),
        ("Tom ran. Tom ran. Tom ran.", None, "Tom ran. Tom ran. Tom ran."),
        ("Tom ran. Tom ran. Tom ran.", 0, "Tom ran. Tom ran. Tom ran."),
    ],
)
def test_cut_at_the_first_repeated_ngram(text, n, expected):
    assert truncate_repeated_ngram(text, n) == expected


def test_the_kept_text_has_no_repeated_ngram_and_is_a_prefix():
    text = " and they played. They were happy. They were happy. They were happy and they played all day."
    kept = truncate_repeated_ngram(text, 4)
    assert text.startswith(kept) and kept == " and they played. They were happy."
    assert truncate_repeated_ngram(kept, 4) == kept
