"""TinyStories generation prompts: three random words and a random set of story features per story, in the wording
of the released GPT-4 data (or the paper's, or the released GPT-3.5 data's); story ``i`` of seed ``s`` always gets
the same ones."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from ..story_formats import FEATURES
from .vocabulary import Vocabulary

_OPENING = "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
_CLOSING = "Remember to only use simple words!"


@dataclass(frozen=True)
class PromptTemplate:
    """One wording of the generation prompt: the opening, the words sentence, the features sentence (left out when a
    story has no features) and the closing, joined by single spaces (docs/generation.md shows each in full)."""

    opening: str
    words: str  # with {verb}, {noun} and {adjective}
    features: str  # with {features}: the feature sentences joined by ", "
    closing: str

    def render(self, verb: str, noun: str, adjective: str, features: tuple[str, ...] | list[str] = ()) -> str:
        parts = [self.opening, self.words.format(verb=verb, noun=noun, adjective=adjective)]
        if features:
            parts.append(self.features.format(features=", ".join(FEATURES[f] for f in features)))
        return " ".join(parts) + " " + self.closing


TEMPLATES: dict[str, PromptTemplate] = {
    # the released TinyStories GPT-4 records' instruction["prompt:"]
    "gpt4": PromptTemplate(
        _OPENING + "understand.",
        'The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".',
        "The story has the following features: {features}.",
        _CLOSING + "\n\nPossible story:",
    ),
    # the paper's example prompt (section 2)
    "paper": PromptTemplate(
        _OPENING + "likely understand.",
        'The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".',
        "The story should have the following features: {features}.",
        _CLOSING,
    ),
    # the released GPT-3.5 records' instruction["prompt:"]; their features sentence could not be checked here, so it
    # is the GPT-4 records' one (docs/generation.md)
    "gpt3.5": PromptTemplate(
        _OPENING + "understand.",
        'In the story, try to at some point use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".',
        "The story has the following features: {features}.",
        _CLOSING,
    ),
}


@dataclass(frozen=True)
class StoryPrompt:
    """One generation request: the words and features it constrains, and the prompt text sent to the teacher."""

    index: int
    verb: str
    noun: str
    adjective: str
    features: tuple[str, ...]
    prompt: str

    @property
    def words(self) -> list[str]:
        """[verb, noun, adjective], the order of the released data's ``instruction.words``."""
        return [self.verb, self.noun, self.adjective]

    def instruction(self) -> dict:
        """The released schema's ``instruction`` record (note the key ``prompt:``, with its colon)."""
        return {"prompt:": self.prompt, "words": self.words, "features": list(self.features)}


@dataclass
class PromptSampler:
    """Draws reproducible story prompts: ``sampler.prompt(i)`` depends only on the seed, ``i`` and the settings.

    ``feature_probability`` is the chance of each feature independently (the released data has stories with none
    and with several).
    """

    vocabulary: Vocabulary
    seed: int = 0
    template: str = "gpt4"
    feature_probability: float = 0.3
    features: tuple[str, ...] = field(default_factory=lambda: tuple(FEATURES))

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"Unknown prompt template {self.template!r}; choose one of: {', '.join(TEMPLATES)}")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"Unknown story features {unknown}; choose from: {', '.join(FEATURES)}")
        if not 0.0 <= self.feature_probability <= 1.0:
            raise ValueError(f"feature_probability must be in [0, 1], got {self.feature_probability}")

    def _rng(self, index: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}:{index}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def prompt(self, index: int) -> StoryPrompt:
        rng = self._rng(index)
        verb = rng.choice(self.vocabulary.verbs)
        noun = rng.choice(self.vocabulary.nouns)
        adjective = rng.choice(self.vocabulary.adjectives)
        chosen = tuple(f for f in self.features if rng.random() < self.feature_probability)
        return StoryPrompt(
            index, verb, noun, adjective, chosen, render_prompt(verb, noun, adjective, chosen, self.template)
        )

    def prompts(self, count: int, start: int = 0) -> list[StoryPrompt]:
        return [self.prompt(i) for i in range(start, start + count)]


def render_prompt(
    verb: str, noun: str, adjective: str, features: tuple[str, ...] | list[str], template: str = "gpt4"
) -> str:
    """The prompt text for given words and features in one of ``TEMPLATES``."""
    if template not in TEMPLATES:
        raise ValueError(f"Unknown prompt template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"Unknown story features {unknown}; choose from: {', '.join(FEATURES)}")
    return TEMPLATES[template].render(verb, noun, adjective, features)
