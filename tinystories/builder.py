"""The TinyStories generator as a ``datasets`` builder (the public face of ``tinystories.synth.builder``)."""

from .synth.builder import FEATURES, TinyStoriesConfig, TinyStoriesGenerator

__all__ = ["FEATURES", "TinyStoriesConfig", "TinyStoriesGenerator"]
