"""An ``evaluate`` metric module as a Gradio Space: its card (the Space YAML and the module's own README) and the
staged folder (the module, ``app.py``, ``requirements.txt``). Why a Space, and why the requirement: docs/hub.md."""

from __future__ import annotations

import os
import shutil
from typing import Any

from ..errors import PushError
from .templates import card_template, render

#: ``PATH`` of ``push metric`` meaning the GPT-Eval module bundled with the package.
BUNDLED_METRIC = ("-", "default", "gpt_eval")
#: What ``--space_requirement`` looks like: tinystories is not on PyPI, so a bare ``tinystories`` line would not build.
SPACE_REQUIREMENT_EXAMPLE = "tinystories @ git+https://github.com/OWNER/tinystories"
#: ``requirements.txt`` line of a Space staged without ``--space_requirement`` (a dry run only): a comment, so
#: nothing named ``tinystories`` is ever installed from PyPI.
SPACE_REQUIREMENT_PLACEHOLDER = (
    f"# PLACEHOLDER (dry run): no --space_requirement given. The Space cannot build without a line that installs "
    f'tinystories, e.g. "{SPACE_REQUIREMENT_EXAMPLE}"'
)


def metric_folder(path: str) -> str:
    """The folder of an ``evaluate`` metric module: ``-``/``default``/``gpt_eval`` is the bundled GPT-Eval."""
    if path in BUNDLED_METRIC:
        from ..metrics import GPT_EVAL

        return GPT_EVAL
    folder = os.path.abspath(path)
    name = os.path.basename(folder)
    if not os.path.isfile(os.path.join(folder, f"{name}.py")):
        raise PushError(
            f"{path} is not a metric module folder (no {name}.py inside, the layout evaluate.load expects); "
            f"use one of {', '.join(repr(p) for p in BUNDLED_METRIC)} for the bundled GPT-Eval"
        )
    return folder


def check_space_requirement(requirement: str | None) -> None:
    """A ``PushError`` without the ``requirements.txt`` line that installs tinystories in the Space."""
    if not requirement:
        raise PushError(
            "push metric needs --space_requirement, the requirements.txt line that installs tinystories in the Space "
            f'(it is not on PyPI), e.g. --space_requirement "{SPACE_REQUIREMENT_EXAMPLE}"'
        )


def render_metric_card(metric_dir: str, repo_id: str | None = None, module_file: str | None = None):
    """The ``SpaceCard`` of a metric: the Space YAML (title, emoji, colours, ``sdk: gradio``, ``app_file: app.py``,
    tags ``evaluate``/``metric``, description; the module README's own values where it has them) and the module's
    README body (``hub_cards/metric_card.md``)."""
    from huggingface_hub import RepoCard, SpaceCard, SpaceCardData

    name = os.path.basename(os.path.abspath(metric_dir))
    readme = os.path.join(metric_dir, "README.md")
    meta: dict[str, Any] = {}
    body = f"# {name}\n"
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8") as f:
            own = RepoCard(f.read(), ignore_metadata_errors=True)
        meta, body = own.data.to_dict(), own.text.strip()
    tags = ["evaluate", "metric"] + [t for t in meta.get("tags") or [] if t not in ("evaluate", "metric")]
    card_data = SpaceCardData(
        title=meta.get("title") or name,
        sdk="gradio",
        app_file="app.py",
        license=meta.get("license") or "apache-2.0",
        tags=tags,
        emoji=meta.get("emoji") or "📚",
        colorFrom=meta.get("colorFrom") or "indigo",
        colorTo=meta.get("colorTo") or "pink",
        pinned=bool(meta.get("pinned", False)),
        description=meta.get("description") or f"The {name} metric (evaluate module).",
    )
    return SpaceCard.from_template(
        card_data,
        template_str=card_template("metric_card.md"),
        body=body,
        module_file=module_file or f"{name}.py",
        repo_id=repo_id or f"OWNER/{name}",
    )


def stage_metric(metric_dir: str, staging_dir: str, repo_id: str, requirement: str | None = None) -> None:
    """Write the Space's files into ``staging_dir``: the module as ``<space name>.py`` (the file that
    ``evaluate.load("owner/space")`` downloads), its sibling ``.py`` files, ``README.md``, ``app.py`` and
    ``requirements.txt`` (``requirement`` installs tinystories; None writes ``SPACE_REQUIREMENT_PLACEHOLDER``)."""
    name = os.path.basename(os.path.abspath(metric_dir))
    module_file = f"{repo_id.split('/')[-1]}.py"
    for entry in sorted(os.listdir(metric_dir)):
        if entry.endswith(".py") and entry != "app.py":
            target = module_file if entry == f"{name}.py" else entry
            shutil.copyfile(os.path.join(metric_dir, entry), os.path.join(staging_dir, target))
    render_metric_card(metric_dir, repo_id, module_file).save(os.path.join(staging_dir, "README.md"))
    with open(os.path.join(staging_dir, "app.py"), "w", encoding="utf-8") as f:
        f.write(render("metric_app.py", module_file=module_file))
    with open(os.path.join(staging_dir, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write(render("metric_requirements.txt", requirement=requirement or SPACE_REQUIREMENT_PLACEHOLDER))
