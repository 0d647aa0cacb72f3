import random

from tinystories.synth.instruct import instruct_example, story_sentences

RECORD = {
    "story": 'Once upon a time, Tom had a red ball. He said, "Let us play!" They played all day. Tom was happy.',
    "summary": "Tom plays with his red ball and is happy.",
    "instruction": {"words": ["play", "ball", "red"], "features": ["Dialogue"]},
}


def test_layout_is_instructions_then_story():
    rng = random.Random(0)
    for _ in range(50):
        text = instruct_example(RECORD, rng)
        head, story = text.split("Story: \n")
        assert story == RECORD["story"]
        lines = head.strip().split("\n")
        assert 1 <= len(lines) <= 4
        assert all(line.split(": ")[0] in {"Summary", "Features", "Random sentence", "Words"} for line in lines)
        for line in lines:
            if line.startswith("Random sentence: "):
                sentence = line.removeprefix("Random sentence: ")
                assert sentence in story_sentences(RECORD["story"])[1:]  # never the first sentence


def test_all_parts_and_orders_occur_and_ood_never_pairs_summary_with_words():
    rng = random.Random(1)
    texts = [instruct_example(RECORD, rng) for _ in range(300)]
    assert any("Summary:" in t and "Words:" in t for t in texts)
    assert any(t.startswith("Words:") for t in texts) and any(t.startswith("Summary:") for t in texts)
    ood = [instruct_example(RECORD, rng, ood=True) for _ in range(300)]
    assert not any("Summary:" in t and "Words:" in t for t in ood)
    assert any("Summary:" in t for t in ood) and any("Words:" in t for t in ood)


def test_sentences_split_after_closing_quotes():
    assert story_sentences('He said, "Go!" Then he ran. The end.') == ['He said, "Go!"', "Then he ran.", "The end."]
