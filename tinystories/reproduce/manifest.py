"""Stage manifests: what makes a stage of ``tinystories reproduce`` resumable and skippable.

A stage's *key* hashes its settings and the hashes of its inputs (the manifests of the stages it reads, or the
sizes and times of input files). A completed stage writes ``manifests/<stage>.json`` with that key, its outputs
and its own *hash* (key + outputs), which the stages downstream fold into their keys. A stage is done when its
manifest is complete, has the current key and its output paths exist; a stage that started but did not finish
leaves a ``running`` manifest (a model's training resumes from its checkpoints only under the same key).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

MANIFEST_DIR = "manifests"


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def files_fingerprint(paths: list[str]) -> list:
    """Sizes and modification times of files (every file under a folder), without reading them."""
    rows = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # skip request caches
                for name in sorted(names):
                    full = os.path.join(root, name)
                    stat = os.stat(full)
                    rows.append([os.path.relpath(full, path), stat.st_size, int(stat.st_mtime)])
        elif os.path.isfile(path):
            stat = os.stat(path)
            rows.append([os.path.abspath(path), stat.st_size, int(stat.st_mtime)])
        else:
            rows.append([path, None, None])  # a Hub id or a missing file: its name only
    return rows


@dataclass
class Stage:
    """One unit of work: its name (``model-h64-l2``), its key, the output paths that must exist when done."""

    name: str
    kind: str
    settings: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> hash
    outputs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return digest({"settings": self.settings, "inputs": self.inputs})


class Manifests:
    """The ``manifests/`` folder of a run."""

    def __init__(self, output_dir: str):
        self.folder = os.path.join(output_dir, MANIFEST_DIR)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.json")

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self.path(name), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _write(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        os.makedirs(self.folder, exist_ok=True)
        tmp = self.path(name) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=str)
        os.replace(tmp, self.path(name))  # a kill never leaves half a manifest
        return manifest

    def done(self, stage: Stage) -> dict[str, Any] | None:
        """The stage's manifest when it is complete under the current key with its outputs present."""
        manifest = self.read(stage.name)
        if not manifest or manifest.get("status") != "complete" or manifest.get("key") != stage.key:
            return None
        if not all(os.path.exists(p) for p in stage.outputs):
            return None
        return manifest

    def started(self, stage: Stage) -> None:
        previous = self.read(stage.name) or {}
        self._write(
            stage.name,
            {
                "stage": stage.name,
                "status": "running",
                "key": stage.key,
                "previous_key": previous.get("key"),
                "started_at": _now(),
            },
        )

    def running_key(self, name: str) -> str | None:
        """The key of the last start of ``name`` (complete or not), None if it never started."""
        manifest = self.read(name)
        return manifest.get("key") if manifest else None

    def complete(self, stage: Stage, result: dict[str, Any]) -> dict[str, Any]:
        outputs = files_fingerprint(stage.outputs)
        return self._write(
            stage.name,
            {
                "stage": stage.name,
                "kind": stage.kind,
                "status": "complete",
                "key": stage.key,
                "hash": digest({"key": stage.key, "outputs": outputs}),
                "settings": stage.settings,
                "inputs": stage.inputs,
                "outputs": stage.outputs,
                "result": result,
                "completed_at": _now(),
            },
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
