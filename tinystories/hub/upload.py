"""One push to the Hub, the same for every kind: ``PushOptions``, the files a folder contributes (never
checkpoints, caches or secrets), and the commit (or a dry run that lists it). What and why: docs/hub.md."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import PushError
from .templates import HUB

KINDS = ("model", "dataset", "metric")
#: The Hub repository type of each kind: a metric is published as a Gradio Space.
REPO_TYPES = {"model": "model", "dataset": "dataset", "metric": "space"}
#: The commit message of each kind when ``PushOptions.commit_message`` is None.
COMMIT_MESSAGES = {
    "model": "Upload TinyStories model with tinystories push",
    "dataset": "Upload TinyStories dataset with tinystories push",
    "metric": "Upload metric Space with tinystories push",
}

# fnmatch patterns on paths relative to the folder ('*' also matches '/'; a trailing '/' means the whole folder)
COMMON_IGNORE_PATTERNS = [
    ".cache/",
    "*/.cache/*",
    ".shards/",  # tinystories generate's completion markers and dedup signatures: bookkeeping, not data
    ".tinystories.lock*",  # a run's lock and its owner's pid/host/command (run_lock.py), left by a killed run
    "*.sqlite",
    "*.sqlite3",
    "*.sqlite-*",
    "*.sqlite3-*",
    "*.db",
    ".env",
    "*.env",
    "*.log",
    "__pycache__/",
    "*/__pycache__/*",
    "*.pyc",
    ".ipynb_checkpoints/",
    "*/.ipynb_checkpoints/*",
    "wandb/",
]
MODEL_IGNORE_PATTERNS = COMMON_IGNORE_PATTERNS + [
    "checkpoint-*/",
    "*/checkpoint-*/*",
    "training_args.bin",
    "*optimizer.pt",
    "*optimizer.bin",
    "*scheduler.pt",
    "*scaler.pt",
    "*rng_state*.pth",
]
DATASET_IGNORE_PATTERNS = COMMON_IGNORE_PATTERNS


@dataclass(frozen=True)
class PushOptions:
    """How a push is committed, whatever it publishes (the ``tinystories push`` flags of the same names).

    ``private``: create the repository private, and refuse an existing public one (visibility is never changed).
    ``revision``: the branch to commit to (created if missing; None or ``main``: the default branch).
    ``commit_message``: None for the kind's default. ``token``: None for ``HF_TOKEN`` or the login's token.
    ``dry_run``: list the files and render the card; no token, no network."""

    private: bool = False
    revision: str | None = None
    commit_message: str | None = None
    token: str | None = field(default=None, repr=False)  # never in a log line or a traceback's repr
    dry_run: bool = False

    @property
    def branch(self) -> str | None:
        """The revision when it is a branch other than ``main``, else None."""
        return self.revision if self.revision and self.revision != "main" else None


def files_to_upload(folder: str, ignore_patterns: list[str]) -> list[str]:
    """The paths of ``folder`` that ``upload_folder`` would send with ``ignore_patterns`` (its own selection:
    huggingface_hub's ``filter_repo_objects`` with its default ignore patterns, ``.git`` and its cache)."""
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    paths = [
        os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
        for root, _, names in os.walk(folder)
        for name in names
    ]
    return sorted(filter_repo_objects(paths, ignore_patterns=ignore_patterns + list(DEFAULT_IGNORE_PATTERNS)))


def plan_upload(
    folder: str,
    ignore_patterns: list[str],
    files: dict[str, bytes] | None = None,
    exclude: tuple[str, ...] = (),
) -> dict[str, str | bytes]:
    """What one push commits: ``{path in the repo: local path or bytes}``. The folder's files (``files_to_upload``)
    but ``exclude``, with ``files`` (made in memory: the rendered card, a sanitized recipe...) added or replacing
    the folder's own; nothing is written into ``folder``."""
    plan: dict[str, str | bytes] = {
        name: os.path.join(folder, name) for name in files_to_upload(folder, ignore_patterns) if name not in exclude
    }
    plan.update(files or {})
    return dict(sorted(plan.items()))


def require_token(token: str | None = None) -> None:
    """A ``PushError`` unless ``token``, ``HF_TOKEN`` or a login gives a token."""
    from huggingface_hub import get_token

    if not (token or get_token()):
        raise PushError("No Hugging Face token: set HF_TOKEN or run `hf auth login`")


def upload(
    plan: dict[str, str | bytes],
    repo_id: str,
    repo_type: str,
    options: PushOptions | None = None,
    *,
    space_sdk: str | None = None,
) -> dict[str, Any]:
    """``create_repo(exist_ok=True)``; with ``private``, refuse an existing public repository; ``create_branch``
    for a branch; then one ``create_commit`` of ``plan`` (``plan_upload``)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    options = options or PushOptions()
    require_token(options.token)
    api = HfApi(token=options.token)  # None: HF_TOKEN or the login's token, resolved by huggingface_hub itself
    url = api.create_repo(
        repo_id,
        repo_type=repo_type,
        private=True if options.private else None,  # None: public, unless the organisation's default is private
        exist_ok=True,
        **({"space_sdk": space_sdk} if space_sdk else {}),
    )
    repo_id = url.repo_id or repo_id  # a bare name is created in the token owner's namespace
    if options.private and not api.repo_info(repo_id, repo_type=repo_type).private:
        raise PushError(
            f"{repo_id} exists and is public; --private would not make it private: change its visibility on the "
            "Hub or drop --private"
        )
    if options.branch:
        api.create_branch(repo_id, branch=options.branch, repo_type=repo_type, exist_ok=True)
    info = api.create_commit(
        repo_id,
        [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source) for name, source in plan.items()],
        repo_type=repo_type,
        revision=options.revision,
        commit_message=options.commit_message or "Upload with tinystories push",
    )
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    tree = f"/tree/{options.branch}" if options.branch else ""
    return {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "url": f"{HUB}/{prefix}{repo_id}{tree}",
        "commit_url": getattr(info, "commit_url", None),
        "files": list(plan),
    }


def publish(
    plan: dict[str, str | bytes], repo_id: str, kind: str, card: str | None, options: PushOptions
) -> dict[str, Any]:
    """``upload`` of a push of ``kind`` (its repository type and default commit message), or with ``dry_run``
    the same result without a network call (``url`` and ``commit_url`` None); ``card``: the README uploaded."""
    if options.dry_run:
        result: dict[str, Any] = {"repo_id": repo_id, "repo_type": REPO_TYPES[kind], "url": None, "commit_url": None}
        result["files"] = list(plan)
    else:
        options = dataclasses.replace(options, commit_message=options.commit_message or COMMIT_MESSAGES[kind])
        result = upload(plan, repo_id, REPO_TYPES[kind], options, space_sdk="gradio" if kind == "metric" else None)
    result["card"] = card
    return result
