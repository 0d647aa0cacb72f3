"""The Jinja templates of the Hub cards (``hub_cards/``, installed as the package data ``tinystories.hub_cards``),
and the bits of Markdown the cards share (links to the Hub)."""

from __future__ import annotations

import os
from typing import Any

HUB = "https://huggingface.co"


def card_template(name: str) -> str:
    """Text of the template ``name`` of ``hub_cards/``: the installed package data, else (a source checkout, an
    editable install) the repository's ``hub_cards/`` beside the package."""
    from importlib import resources

    resource = resources.files("tinystories").joinpath("hub_cards", name)
    if resource.is_file():
        return resource.read_text(encoding="utf-8")
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(repository, "hub_cards", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Card template {name} is neither installed (tinystories.hub_cards) nor at {path}: reinstall tinystories"
        )
    with open(path, encoding="utf-8") as f:
        return f.read()


def render(template: str, **values: Any) -> str:
    """``template`` of ``hub_cards/`` rendered with ``values`` (for files that are not cards: the Space's
    ``app.py`` and ``requirements.txt``; cards go through huggingface_hub's ``from_template``)."""
    import jinja2

    return jinja2.Template(card_template(template), keep_trailing_newline=True).render(**values)


def hub_link(repo_id: str, repo_type: str = "datasets") -> str:
    """A Markdown link to a repository: ``repo_type`` is the URL prefix (``datasets``, ``spaces``; ``""``: a model)."""
    return f"[`{repo_id}`]({HUB}/{repo_type + '/' if repo_type else ''}{repo_id})"
