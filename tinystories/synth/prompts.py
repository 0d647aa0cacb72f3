"""TinyStories generation prompts: three random words and a random set of story features per story, in the wording
of the released GPT-4 data (or the paper's, or GPT-3.5's); story ``i`` of seed ``s`` always gets the same ones."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from ..story_formats import FEATURES
from .vocabulary import Vocabulary

# {words} is replaced by the words sentence, {features} by the features sentence (or nothing).
TEMPLATES: dict[str, str] = {
    # the released TinyStories GPT-4 data
    "gpt4": (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        "understand. {words}{features} Remember to only use simple words!\n\nPossible story:"
    ),
    # the paper's figure
    "paper": (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        "likely understand. {words}{features} Remember to only use simple words!"
    ),
    # the GPT-3.5 part of the first release
    "gpt3.5": (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        "understand. {words}{features} Remember to only use simple words!"
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
    words = f'The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".'
    features_text = ""
    if features:
        features_text = " The story has the following features: " + ", ".join(FEATURES[f] for f in features) + "."
    return TEMPLATES[template].format(words=words, features=features_text)
