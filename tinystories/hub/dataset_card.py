"""The card of a generated dataset (``hub_cards/dataset_card.md``), rendered from the run's plain summary
(``generation.json`` of ``tinystories generate``), and the check that a card's ``configs`` name files that exist."""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from ..errors import PushError
from ..llm.failures import failure_table
from ..recipes import GENERATION_FILE  # the summary tinystories generate writes, from which the card is rendered
from .model_folder import read_json
from .templates import card_template

DEFAULT_DATASET_LICENSE = "cdla-sharing-1.0"


def dataset_card(summary: dict[str, Any], repo_id: str | None = None, license: str = DEFAULT_DATASET_LICENSE):
    """The ``DatasetCard`` of a generation summary (keys ``arguments``, ``counts``, ``engine``, ``filters``,
    ``metadata``, ``title``, ``vocabulary_size``, ``example_prompt``): configs, schema, teacher, prompt template,
    counts, cost, the failure reasons (``llm.failure_table``) and filter report, with ``repo_id`` (a Hub id, or
    None) in its ``load_dataset`` examples."""
    from huggingface_hub import DatasetCard, DatasetCardData

    args, counts, stats, report = summary["arguments"], summary["counts"], summary["engine"], summary["filters"]
    metadata = summary["metadata"]
    title = summary.get("title") or "TinyStories-style synthetic stories"
    card_data = DatasetCardData(
        language="en",
        license=license,
        task_categories=["text-generation"],
        size_categories=metadata["size_categories"],
        pretty_name=title,
        configs=metadata["configs"],
        dataset_info=metadata["dataset_info"],
        tags=["tinystories", "synthetic"],
    )
    story_stats = stats.get("stories", {})
    summary_stats = stats.get("summaries", {})
    cost = sum(s.get("cost_usd", 0.0) for s in stats.values())
    filter_rows = ["| step | stories |", "| --- | --- |", f"| generated | {report['total']} |"]
    filter_rows += [f"| removed: {reason} | {count} |" for reason, count in report["removed"].items()]
    filter_rows += [f"| kept | {report['kept']} |"]
    filter_rows += [
        "",
        f"Mean length {report['mean_words']} words; mean share of words outside the vocabulary "
        f"{report['mean_out_of_vocabulary']:.2%}; {report['distinct_required_words']} distinct required words; "
        f"features: {json.dumps(report['feature_counts'])}; most common openers: "
        f"{json.dumps(report['top_openers'])}.",
    ]
    return DatasetCard.from_template(
        card_data,
        template_str=card_template("dataset_card.md"),
        repo_id=repo_id,
        pretty_name=title,
        teacher=args["model"],
        vocabulary_size=summary["vocabulary_size"],
        counts=counts,
        instruct=args["instruct"],
        ood=args["ood"],
        temperature=args["temperature"],
        max_tokens=args["max_tokens"],
        seed=args["seed"],
        template_name=args["template"],
        example_prompt=summary["example_prompt"],
        requests=story_stats.get("sent", 0) + summary_stats.get("sent", 0),
        cached=story_stats.get("cached", 0) + summary_stats.get("cached", 0),
        failed=story_stats.get("failed", 0),
        failure_reasons=", ".join(f"{k}: {v}" for k, v in story_stats.get("failures", {}).items()) or "none",
        failure_table=failure_table({name: s for name, s in stats.items() if isinstance(s, dict)}, markdown=True),
        prompt_tokens=sum(s.get("prompt_tokens", 0) for s in stats.values()),
        completion_tokens=sum(s.get("completion_tokens", 0) for s in stats.values()),
        cost=f"{cost:.4f}",
        filter_table="\n".join(filter_rows),
    )


def write_dataset_card(dataset_dir: str, summary: dict[str, Any] | None = None) -> str:
    """Write the card of a generated dataset folder (``README.md``) from its summary (default: the folder's
    ``generation.json``); returns the card's path."""
    summary = summary if summary is not None else read_json(os.path.join(dataset_dir, GENERATION_FILE))
    if not summary:
        raise PushError(f"{dataset_dir} has no {GENERATION_FILE}: is it the output_dir of tinystories generate?")
    path = os.path.join(dataset_dir, "README.md")
    dataset_card(summary).save(path)
    return path


def render_dataset_card(
    dataset_dir: str, repo_id: str | None = None, license: str | None = None, revision: str | None = None
):
    """The card of a ``tinystories generate`` folder, rendered again from its ``generation.json`` (as when it was
    generated) with the Hub id in its examples (and ``revision=`` in its ``load_dataset`` calls for a branch); a
    folder without ``generation.json`` keeps its README card. Either way the card must declare ``configs`` whose
    files exist."""
    from huggingface_hub import DatasetCard

    summary_path = os.path.join(dataset_dir, GENERATION_FILE)
    readme = os.path.join(dataset_dir, "README.md")
    if os.path.isfile(summary_path):
        summary = read_json(summary_path) or {}
        try:
            card = dataset_card(summary, repo_id=repo_id, **({"license": license} if license else {}))
        except (KeyError, TypeError, ValueError) as e:
            raise PushError(f"{summary_path} is not a generation summary of tinystories generate ({e!r})") from None
    elif os.path.isfile(readme):
        card = DatasetCard.load(readme)
        if license:
            card.data.license = license
    else:
        raise PushError(
            f"{dataset_dir} is not a dataset folder: it has neither generation.json nor a README.md card "
            "(pass the output_dir of tinystories generate)"
        )
    check_dataset_card(dataset_dir, card)
    if repo_id and revision and revision != "main":
        card.text = _with_revision(card.text, repo_id, revision)
    return card


def _with_revision(text: str, repo_id: str, revision: str) -> str:
    """``load_dataset("repo_id"[, "config"])`` calls of a card's snippets with ``revision="..."`` added."""
    pattern = re.compile(r'load_dataset\("' + re.escape(repo_id) + r'"((?:, "[^"]*")?)\)')
    return pattern.sub(lambda m: f'load_dataset("{repo_id}"{m.group(1)}, revision={json.dumps(revision)})', text)


def _missing_data_files(dataset_dir: str, configs: list[dict[str, Any]]) -> list[str]:
    missing = []
    for config in configs:
        files = config.get("data_files") or []
        if isinstance(files, (str, dict)):
            files = [files]
        for entry in files:
            paths = entry.get("path") if isinstance(entry, dict) else entry
            for path in [paths] if isinstance(paths, str) else paths or []:
                if not glob.glob(os.path.join(dataset_dir, path), recursive=True):
                    missing.append(path)
    return missing


def check_dataset_card(dataset_dir: str, card) -> None:
    """A ``PushError`` unless ``card`` declares ``configs`` whose data files are in ``dataset_dir``."""
    configs = card.data.to_dict().get("configs")
    if not configs:
        raise PushError(f"The card of {dataset_dir} declares no configs: load_dataset could not find its files")
    missing = _missing_data_files(dataset_dir, configs)
    if missing:
        raise PushError(f"The card of {dataset_dir} lists data files that are not in the folder: {', '.join(missing)}")
