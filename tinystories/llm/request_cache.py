"""The request cache: every paid reply, on disk, keyed by everything that determines it, so none is paid twice.

Two tables: ``replies`` (the accepted reply of a request) and ``rejected`` (replies that were paid for but rejected:
cut at ``max_tokens``, empty, or refused by the caller's ``validate``; numbered per request by ``attempt``, with
the reason). A re-run re-checks the rejected ones with its own validator before paying for another (docs/llm.md)."""

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
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS rejected (key TEXT, attempt INTEGER, model TEXT, reason TEXT, response TEXT, "
            "created REAL, PRIMARY KEY (key, attempt))"
        )

    @classmethod
    def in_folder(cls, cache_dir: str) -> RequestCache:
        return cls(os.path.join(cache_dir, CACHE_FILE))

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT response FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def known(self, keys: Sequence[str]) -> set[str]:
        """The ``keys`` with a stored reply, accepted or rejected (one query per 500 keys, instead of two per
        request: a run asks once which of its requests to look up)."""
        found: set[str] = set()
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ", ".join("?" * len(part))
            for table in ("replies", "rejected"):
                rows = self.db.execute(f"SELECT DISTINCT key FROM {table} WHERE key IN ({marks})", part)
                found.update(key for (key,) in rows)
        return found

    def put(self, key: str, model: str, response: dict[str, Any], raw: str | None = None) -> None:
        """Store the accepted reply of ``key``; ``raw``: its JSON as received, when the caller has it (not dumped
        again)."""
        self.db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
            (key, model, raw or json.dumps(response), time.time()),
        )

    def rejected(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """``(reason, response)`` of the rejected replies of ``key``, oldest first."""
        rows = self.db.execute(
            "SELECT reason, response FROM rejected WHERE key = ? ORDER BY attempt", (key,)
        ).fetchall()
        return [(reason, json.loads(response)) for reason, response in rows]

    def put_rejected(self, key: str, model: str, response: dict[str, Any], reason: str) -> None:
        """Keep a paid reply that was rejected (numbered after the earlier ones of ``key``)."""
        self.db.execute(
            "INSERT INTO rejected SELECT ?, COALESCE(MAX(attempt) + 1, 0), ?, ?, ?, ? FROM rejected WHERE key = ?",
            (key, model, reason, json.dumps(response), time.time(), key),
        )

    def demote(self, key: str, reason: str) -> None:
        """Move the accepted reply of ``key`` (one a stricter validator now refuses) to the rejected ones."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT model, response FROM replies WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self.put_rejected(key, row[0], json.loads(row[1]), reason)
                self.db.execute("DELETE FROM replies WHERE key = ?", (key,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def num_rejected(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self.db.close()
