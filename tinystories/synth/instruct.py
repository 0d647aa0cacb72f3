"""TinyStories-Instruct examples: a story preceded by a random subset of its instructions, in the released layout.

Each example is a random non-empty subset of Summary / Features / Random sentence (any sentence of the story but the
first) / Words, in random order, one per line, then ``Story:`` and the story. The out-of-distribution variant
(``ood=True``) never puts Summary together with Words, the paper's check that a model follows an unseen
combination of instructions.
"""

from __future__ import annotations

import random
import re

from ..story_formats import INSTRUCT_PARTS, instruct_text

_SENTENCE_RE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"']))\s+")  # after . ! ? and a closing quote


def story_sentences(story: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(story.strip()) if s.strip()]


def instruct_example(record: dict, rng: random.Random, ood: bool = False) -> str:
    """The instruct text of one record (``story``, ``summary``, ``instruction.words``, ``instruction.features``)."""
    story = record["story"].strip()
    sentences = story_sentences(story)
    available = {
        "Summary": (record.get("summary") or "").strip(),
        "Features": ", ".join(record["instruction"].get("features") or []),
        "Random sentence": rng.choice(sentences[1:]) if len(sentences) > 1 else "",
        "Words": ", ".join(record["instruction"]["words"]),
    }
    candidates = [part for part in INSTRUCT_PARTS if available[part]]
    chosen = [part for part in candidates if rng.random() < 0.5] or [rng.choice(candidates)]
    if ood and "Summary" in chosen and "Words" in chosen:
        chosen.remove(rng.choice(["Summary", "Words"]))
    rng.shuffle(chosen)
    return instruct_text({part: available[part] for part in chosen}, story)


def summary_messages(story: str) -> list[dict[str, str]]:
    """The second request of each Instruct story: a 1-2 line summary in simple words."""
    return [
        {
            "role": "user",
            "content": "Summarize the following story in one or two short sentences, using only very simple words "
            f"that a 3 year old child would understand.\n\nStory:\n{story}\n\nSummary:",
        }
    ]


__all__ = ["instruct_example", "story_sentences", "summary_messages"]
