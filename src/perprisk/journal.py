"""The engine's journal: every accepted command, in order, durably; plus snapshots.

SQLite (standard library) by default.  A command is appended — and committed — before it is applied, so a
command the engine acknowledged survives a crash.  Recovery = latest snapshot + the commands after it; both
paths give the same :meth:`perprisk.engine.Engine.state_hash`.

Snapshots are pickles of the engine state: load journals only from sources you trust.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from perprisk.commands import decode, encode
from perprisk.errors import ValidationError

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS commands (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, state_hash TEXT NOT NULL, state BLOB NOT NULL)",
)


def command_row(command: Any) -> tuple[str, str]:
    """``(kind, body)`` stored for a command: its type and its exact JSON record (shared by every journal)."""
    record = encode(command)
    return record["type"], json.dumps(record, separators=(",", ":"))


def row_command(body: str | bytes) -> Any:
    """The command a stored body describes (inverse of :func:`command_row`)."""
    return decode(json.loads(body))


def state_blob(state: Any) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


class SqliteJournal:
    """Append-only command log in one SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path = ":memory:", *, synchronous: str = "FULL") -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValidationError("synchronous", f"unknown SQLite synchronous level {synchronous!r}")
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        for statement in SCHEMA:
            self._db.execute(statement)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()
        self._last_seq = int(row[0])

    @property
    def last_sequence(self) -> int:
        return self._last_seq

    def append(self, command: Any) -> int:
        """Write one command durably; returns its sequence number (1, 2, ...)."""
        seq = self._last_seq + 1
        self._db.execute("INSERT INTO commands (seq, kind, body) VALUES (?, ?, ?)", (seq, *command_row(command)))
        self._last_seq = seq
        return seq

    def commands(self, after: int = 0) -> Iterator[tuple[int, Any]]:
        """``(seq, command)`` for every command after ``after``, in order."""
        cursor = self._db.execute("SELECT seq, body FROM commands WHERE seq > ? ORDER BY seq", (after,))
        for seq, body in cursor:
            yield int(seq), row_command(body)

    def save_snapshot(self, seq: int, state: Any, state_hash: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO snapshots (seq, state_hash, state) VALUES (?, ?, ?)",
            (seq, state_hash, state_blob(state)),
        )

    def latest_snapshot(self) -> tuple[int, Any, str] | None:
        row = self._db.execute("SELECT seq, state, state_hash FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return int(row[0]), pickle.loads(row[1]), row[2]

    def close(self) -> None:
        self._db.close()
