"""Synthetic TinyStories data from a teacher LLM: the child vocabulary, prompts of three random words and story
features, TinyStories-Instruct examples, quality filters and near-duplicate removal, the ``tinystories generate``
pipeline and its dataset folder, and the same pipeline as a ``datasets`` builder."""

from .arguments import GenerateArguments, TeacherArguments, parse_generate_args
from .builder import TinyStoriesConfig, TinyStoriesGenerator
from .dataset_folder import CONFIGS
from .pipeline import main, run

__all__ = [
    "CONFIGS",
    "GenerateArguments",
    "TeacherArguments",
    "TinyStoriesConfig",
    "TinyStoriesGenerator",
    "main",
    "parse_generate_args",
    "run",
]
