"""Package data written for this project: the child vocabulary, the example stories and the evaluation sets.

``resource_path("vocabulary.json")`` is the installed path of a file of this folder (``eval/probes.jsonl`` for the
evaluation sets); what each file holds is said in ``eval/README.md`` and in the modules that read them.
"""

from __future__ import annotations

from importlib import resources

VOCABULARY = "vocabulary.json"
EXAMPLE_STORIES = "example_stories.txt"
STORY_BEGINNINGS = "eval/story_beginnings.jsonl"
PROBES = "eval/probes.jsonl"
INSTRUCT_PROMPTS = "eval/instruct_prompts.jsonl"


def resource_path(name: str) -> str:
    """The path of the bundled file ``name`` (relative to this folder, ``/``-separated)."""
    return str(resources.files(__name__).joinpath(*name.split("/")))


__all__ = ["EXAMPLE_STORIES", "INSTRUCT_PROMPTS", "PROBES", "STORY_BEGINNINGS", "VOCABULARY", "resource_path"]
