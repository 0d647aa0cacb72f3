"""The request cache: every paid reply, on disk, keyed by everything that determines it, so none is paid twice."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

#: The cache's file inside ``cache_dir``.
CACHE_FILE = "requests.sqlite"


def request_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """A stable hash of everything that determines a reply: model, messages, every sampling parameter."""
    payload = {"model": model, "messages": list(messages), "params": {k: params[k] for k in sorted(params)}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RequestCache:
    """SQLite store of replies, committed one by one (WAL): survives crashes and concurrent readers."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT, response TEXT, created REAL)"
        )

    @classmethod
    def in_folder(cls, cache_dir: str) -> RequestCache:
        return cls(os.path.join(cache_dir, CACHE_FILE))

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT response FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, model, json.dumps(response), time.time())
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self.db.close()
