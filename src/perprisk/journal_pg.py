"""The engine's journal in PostgreSQL (psycopg 3): the same interface and semantics as
:class:`perprisk.journal.SqliteJournal`.

Two tables, the same as SQLite's: ``commands (seq, kind, body)`` — every accepted command, in order, as the
JSON record of :func:`perprisk.commands.encode` — and ``snapshots (seq, state_hash, state)``.  A command is
appended and committed (``synchronous_commit`` as the server is configured, ``on`` by default: flushed to
the write-ahead log) before :meth:`append` returns, so a command the engine acknowledged survives a crash.

:meth:`batch` groups several appends into one transaction (one commit, one WAL flush) for a writer that
acknowledges them only after the batch committed ("group commit").

Snapshots are pickles of the engine state: load journals only from databases you trust.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from typing import Any, Iterator

from perprisk.errors import ValidationError
from perprisk.journal import command_row, row_command, state_blob

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS commands (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshots (seq BIGINT PRIMARY KEY, state_hash TEXT NOT NULL, state BYTEA NOT NULL)",
)


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ValidationError("db", "PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from err
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as err:
        raise ValidationError("db", f"cannot connect to PostgreSQL: {str(err).strip()}") from None


class PostgresJournal:
    """Append-only command log in a PostgreSQL database (``postgresql://user@host:port/dbname``)."""

    def __init__(self, url: str, *, connection: Any | None = None) -> None:
        if connection is None and (not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://"))):
            raise ValidationError("db", f"expected a postgresql:// URL, got {url!r}")
        self.url = url
        self._db = connection if connection is not None else _connect(url)
        self._in_batch = False
        for statement in SCHEMA:
            self._db.execute(statement)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()
        self._last_seq = int(row[0])

    @property
    def connection(self) -> Any:
        """The psycopg connection (autocommit; :meth:`batch` opens explicit transactions on it)."""
        return self._db

    @property
    def last_sequence(self) -> int:
        return self._last_seq

    def append(self, command: Any) -> int:
        """Write one command durably (committed at once, or with the enclosing :meth:`batch`)."""
        seq = self._last_seq + 1
        self._db.execute("INSERT INTO commands (seq, kind, body) VALUES (%s, %s, %s)", (seq, *command_row(command)))
        self._last_seq = seq
        return seq

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Appends inside share one transaction, committed when the block ends (rolled back on an exception,
        which also rewinds :attr:`last_sequence`)."""
        if self._in_batch:
            yield
            return
        start = self._last_seq
        self._in_batch = True
        try:
            with self._db.transaction():
                yield
        except BaseException:
            self._last_seq = start
            raise
        finally:
            self._in_batch = False

    def commands(self, after: int = 0) -> Iterator[tuple[int, Any]]:
        """``(seq, command)`` for every command after ``after``, in order (read in pages)."""
        last = after
        while True:
            rows = self._db.execute(
                "SELECT seq, body FROM commands WHERE seq > %s ORDER BY seq LIMIT 5000", (last,)
            ).fetchall()
            if not rows:
                return
            for seq, body in rows:
                last = int(seq)
                yield last, row_command(body)

    def save_snapshot(self, seq: int, state: Any, state_hash: str) -> None:
        self._db.execute(
            "INSERT INTO snapshots (seq, state_hash, state) VALUES (%s, %s, %s) "
            "ON CONFLICT (seq) DO UPDATE SET state_hash = EXCLUDED.state_hash, state = EXCLUDED.state",
            (seq, state_hash, state_blob(state)),
        )

    def latest_snapshot(self) -> tuple[int, Any, str] | None:
        row = self._db.execute("SELECT seq, state, state_hash FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return int(row[0]), pickle.loads(bytes(row[1])), row[2]

    def close(self) -> None:
        self._db.close()
