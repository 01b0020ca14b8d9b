"""A bounded load generator for a perprisk server on this machine (loopback only).

``clients`` concurrent traders (each its own account and key) place ``orders`` limit orders in all, around a
fixed mark, crossing each other; each trader keeps at most ``max_open`` resting orders (cancelling its oldest).
Every acknowledged order is recorded (client order id → order id) so a crash test can check it survived.
Bounded in count and in time; stops by itself.

    python -m perprisk.server.loadgen --url http://127.0.0.1:8000 --clients 50 --orders 20000
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx


def require_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"load tests only target this machine's loopback addresses, not {host!r}")


@dataclass
class LoadResult:
    clients: int
    orders_sent: int = 0
    acknowledged: dict[str, int] = field(default_factory=dict)  # client order id → order id
    refused: int = 0  # 4xx answers (e.g. margin), never expected in a clean run
    errors: int = 0  # connection errors (expected only when the server is killed)
    cancels: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return len(self.acknowledged) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q / 100 * len(data)))]

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients, "orders_acknowledged": len(self.acknowledged), "orders_sent": self.orders_sent,
            "refused": self.refused, "errors": self.errors, "cancels": self.cancels,
            "elapsed_s": round(self.elapsed_s, 3), "orders_per_s": round(self.throughput, 1),
            "latency_ms_p50": round(self.percentile(50), 2), "latency_ms_p99": round(self.percentile(99), 2),
            "latency_ms_mean": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
            "statuses": self.statuses,
        }


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client for this server only (JSON with Content-Length), so the load
    generator measures the server rather than a heavyweight client library."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        try:
            self.writer.write(head + data)
            raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            payload = await asyncio.wait_for(self.reader.readexactly(length), timeout) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
            await self.close()
            raise ConnectionError(f"{method} {path} failed") from None
        return status, (json.loads(payload) if payload else None)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def setup_accounts(url: str, admin_key: str, clients: int, symbol: str, mark: str) -> list[str]:
    admin = {"X-Admin-Key": admin_key}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/v1/admin/mark", headers=admin, json={"symbol": symbol, "mark_price": mark})
        r.raise_for_status()
        keys = []
        for _ in range(clients):
            r = await http.post("/v1/admin/accounts", headers=admin)
            r.raise_for_status()
            account = r.json()
            r = await http.post("/v1/admin/deposits", headers=admin,
                                json={"account_id": account["account_id"], "asset": "USDT", "amount": "10000000"})
            r.raise_for_status()
            keys.append(account["api_key"])
        return keys


async def trader(url: str, key: str, n: int, index: int, result: LoadResult, deadline: float, symbol: str,
                 mid: int, tick: str, seed: int, max_open: int, stop: asyncio.Event) -> None:
    rnd = random.Random(seed * 1000 + index)
    parsed = urlparse(url)
    http = RawHttp(parsed.hostname or "127.0.0.1", parsed.port or 80, {"X-API-Key": key})
    open_orders: list[int] = []
    tick_d = float(tick)
    try:
        for i in range(n):
            if stop.is_set() or time.monotonic() > deadline:
                return
            if len(open_orders) >= max_open:
                order_id = open_orders.pop(0)
                try:
                    status, _ = await http.request("DELETE", f"/v1/orders/{order_id}")
                    result.cancels += status == 200
                except ConnectionError:
                    result.errors += 1
                    if stop.is_set():
                        return
            side = rnd.choice(("buy", "sell"))
            offset = rnd.randint(-10, 10)
            price = f"{mid + offset * tick_d:.1f}"
            quantity = f"{rnd.randint(1, 10) / 1000:.3f}"
            client_id = f"c{index}-{i}"
            body = {"symbol": symbol, "side": side, "quantity": quantity, "price": price, "client_order_id": client_id}
            result.orders_sent += 1
            started = time.perf_counter()
            try:
                status, data = await http.request("POST", "/v1/orders", body)
            except ConnectionError:
                result.errors += 1
                if stop.is_set():
                    return
                await asyncio.sleep(0.05)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if status == 201:
                result.acknowledged[client_id] = data["order_id"]
                result.latencies_ms.append(elapsed)
                result.statuses[data["status"]] = result.statuses.get(data["status"], 0) + 1
                if data["status"] in ("open", "partially_filled"):
                    open_orders.append(data["order_id"])
            else:
                result.refused += 1
    finally:
        await http.close()


async def run_load(url: str, admin_key: str, clients: int = 50, orders: int = 20_000, *, symbol: str = "BTCUSDT",
                   mark: str = "100000", tick: str = "0.1", time_limit: float = 300.0, seed: int = 1,
                   max_open: int = 5, stop: asyncio.Event | None = None, keys: list[str] | None = None) -> LoadResult:
    require_loopback(url)
    stop = stop or asyncio.Event()
    if keys is None:
        keys = await setup_accounts(url, admin_key, clients, symbol, mark)
    result = LoadResult(clients)
    per_client = [orders // clients + (1 if i < orders % clients else 0) for i in range(clients)]
    started = time.monotonic()
    deadline = started + time_limit
    await asyncio.gather(*(trader(url, keys[i], per_client[i], i, result, deadline, symbol, int(mark), tick, seed,
                                  max_open, stop) for i in range(clients)))
    result.elapsed_s = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args()
    key = os.environ.get("PERPRISK_ADMIN_KEY")
    if not key:
        raise SystemExit("set PERPRISK_ADMIN_KEY")
    result = asyncio.run(run_load(args.url, key, args.clients, args.orders, time_limit=args.time_limit))
    print(json.dumps(result.summary(), indent=2))


if __name__ == "__main__":
    main()
