"""Where the server keeps its data: the engine journal (SQLite or PostgreSQL) plus two small tables beside it
— the API keys (hashed) and a few settings — in the same database, written in the same transactions.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``; ``postgresql://user@host:port/dbname``.
One server per database: SQLite takes an exclusive lock file beside the database, PostgreSQL an advisory lock.
SQLite runs in WAL mode with ``synchronous=FULL`` (every commit fsynced); ``PERPRISK_SQLITE_SYNC=NORMAL``
trades power-loss durability for speed (still safe against a killed process).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

from perprisk.errors import ValidationError
from perprisk.journal import SqliteJournal

KEYS_TABLE = (
    "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, account_id BIGINT NOT NULL, "
    "salt {blob} NOT NULL, key_hash {blob} NOT NULL, created_ms BIGINT NOT NULL)"
)
META_TABLE = "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: pg_advisory_lock key of a perprisk server (any constant; "prsk").
PG_LOCK_KEY = 0x7072736B


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    account_id: int
    salt: bytes
    key_hash: bytes
    created_ms: int


class BatchingSqliteJournal(SqliteJournal):
    """:class:`SqliteJournal` with group commit: appends inside :meth:`batch` share one transaction."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._in_batch = False

    @property
    def connection(self) -> Any:
        return self._db

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._in_batch:
            yield
            return
        start = self._last_seq
        self._in_batch = True
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            self._last_seq = start
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._in_batch = False


class Store:
    """The journal plus the key and settings tables, on one connection."""

    def __init__(self, journal: Any, dialect: str, lock: Any = None, description: str = "") -> None:
        self.journal = journal
        self.dialect = dialect
        self._lock = lock
        self.description = description
        blob = "BYTEA" if dialect == "postgresql" else "BLOB"
        self._execute(KEYS_TABLE.format(blob=blob))
        self._execute(META_TABLE)

    # -------------------------------------------------------------------------- sql helpers

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgresql" else statement

    def _execute(self, statement: str, params: tuple = ()) -> Any:
        return self.journal.connection.execute(self._sql(statement), params)

    def batch(self) -> Any:
        return self.journal.batch()

    # -------------------------------------------------------------------------- keys

    def insert_key(self, record: KeyRecord) -> None:
        self._execute(
            "INSERT INTO api_keys (key_id, account_id, salt, key_hash, created_ms) VALUES (?, ?, ?, ?, ?)",
            (record.key_id, record.account_id, record.salt, record.key_hash, record.created_ms),
        )

    def load_keys(self) -> list[KeyRecord]:
        rows = self._execute("SELECT key_id, account_id, salt, key_hash, created_ms FROM api_keys").fetchall()
        return [KeyRecord(r[0], int(r[1]), bytes(r[2]), bytes(r[3]), int(r[4])) for r in rows]

    # -------------------------------------------------------------------------- settings

    def get_meta(self, key: str) -> Any:
        row = self._execute("SELECT value FROM server_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        text = json.dumps(value, sort_keys=True)
        if self.dialect == "postgresql":
            self._execute("INSERT INTO server_meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, text))
        else:
            self._execute("INSERT OR REPLACE INTO server_meta (key, value) VALUES (?, ?)", (key, text))

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            if self._lock is not None:
                self._lock.close()


def sqlite_path(url: str) -> Path:
    """``sqlite:///a/b.db`` → ``a/b.db`` (relative); ``sqlite:////a/b.db`` → ``/a/b.db``."""
    if not url.startswith("sqlite:///"):
        raise ValidationError("db", f"expected sqlite:///PATH, got {url!r}")
    path = unquote(url[len("sqlite:///"):])
    if not path or path == ":memory:":
        raise ValidationError("db", "a server needs a database file (sqlite:///PATH), not :memory:")
    return Path(path)


def open_store(url: str) -> Store:
    if url.startswith("sqlite:"):
        return _open_sqlite(url)
    if url.startswith(("postgresql://", "postgres://")):
        return _open_postgres(url)
    raise ValidationError("db", f"unsupported database URL {url!r} (sqlite:///PATH or postgresql://...)")


def _open_sqlite(url: str) -> Store:
    import fcntl

    path = sqlite_path(url)
    if path.parent and not path.parent.exists():
        raise ValidationError("db", f"directory {path.parent} does not exist")
    lock = open(f"{path}.lock", "a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise ValidationError("db", f"{path} is in use by another perprisk server") from None
    try:
        journal = BatchingSqliteJournal(path, synchronous=os.environ.get("PERPRISK_SQLITE_SYNC", "FULL"))
    except Exception as err:
        lock.close()
        raise ValidationError("db", f"cannot open {path}: {err}") from None
    return Store(journal, "sqlite", lock, f"sqlite:{os.path.abspath(path)}")


class _PgLock:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def close(self) -> None:
        try:
            self.connection.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
        except Exception:
            pass


def _open_postgres(url: str) -> Store:
    from perprisk.journal_pg import PostgresJournal

    journal = PostgresJournal(url)
    row = journal.connection.execute("SELECT pg_try_advisory_lock(%s)", (PG_LOCK_KEY,)).fetchone()
    if not row[0]:
        journal.close()
        raise ValidationError("db", "the database is in use by another perprisk server")
    parsed = urlparse(url)
    where = f"postgresql://{parsed.hostname or 'localhost'}:{parsed.port or 5432}{parsed.path}"
    return Store(journal, "postgresql", _PgLock(journal.connection), where)
