"""API keys (stored hashed, with a per-key salt) and rate limiting (token buckets).

A key reads ``prk_<key id>_<secret>``: the key id (16 hex digits) finds the record, the secret (48 hex digits,
192 random bits) is checked against ``sha256(salt ‖ secret)`` in constant time.  Only the id, the salt and the
hash are stored; the key itself is shown once, when it is created.  (The secret is random and long, so a fast
hash is enough: there is nothing to guess from a dictionary.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from perprisk.server.config import RateLimit
from perprisk.server.storage import KeyRecord

KEY_PREFIX = "prk"


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def new_key(account_id: int, now_ms: int) -> tuple[str, KeyRecord]:
    """A fresh key for ``account_id``: (the key text to hand out once, the record to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_hex(24)
    salt = secrets.token_bytes(16)
    return f"{KEY_PREFIX}_{key_id}_{secret}", KeyRecord(key_id, account_id, salt, _digest(salt, secret), now_ms)


def split_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 16 or len(parts[2]) != 48:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1] + parts[2]):
        return None
    return parts[1], parts[2]


class KeyRing:
    """The stored key records, in memory, for checking keys without a database round trip."""

    def __init__(self, records: list[KeyRecord] | None = None) -> None:
        self._records: dict[str, KeyRecord] = {r.key_id: r for r in records or ()}
        self._lock = threading.Lock()

    def add(self, record: KeyRecord) -> None:
        with self._lock:
            self._records[record.key_id] = record

    def account_for(self, key: str | None) -> int | None:
        """The account a key belongs to, or None for a missing, malformed or wrong key."""
        if not key or len(key) > 100:
            return None
        parts = split_key(key.strip())
        if parts is None:
            return None
        record = self._records.get(parts[0])
        if record is None:
            return None
        if not hmac.compare_digest(record.key_hash, _digest(record.salt, parts[1])):
            return None
        return record.account_id

    def __len__(self) -> int:
        return len(self._records)


def admin_key_matches(configured: str | None, given: str | None) -> bool:
    if not configured or not given:
        return False
    return hmac.compare_digest(hashlib.sha256(configured.encode()).digest(), hashlib.sha256(given.encode()).digest())


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """One token bucket per key; :meth:`allow` answers (allowed, seconds to wait)."""

    def __init__(self, limit: RateLimit, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, cost: float = 1.0) -> tuple[bool, float]:
        now = time.monotonic()
        rate, burst = self.limit.rate, float(self.limit.burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:  # forget idle buckets (they are full again anyway)
                    self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < burst / rate}
                bucket = self._buckets[key] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return True, 0.0
            return False, (cost - bucket.tokens) / rate
