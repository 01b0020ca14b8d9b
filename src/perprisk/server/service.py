"""The engine behind one writer thread, with group commit.

Every state change — API commands, price feed ticks, admin operations — goes through :meth:`EngineService.submit`
into one queue.  The writer thread takes what is queued (up to ``BATCH`` jobs), and inside one database
transaction runs ``engine.execute`` for each (validate → journal append → apply), then commits; only after the
commit returned are the jobs acknowledged (their futures resolved) and their events published.  So a command
is acknowledged only once it is durably journaled, and a crash loses only commands nobody was told about.

Readers take :attr:`EngineService.lock` (the writer holds it while it applies and commits a batch), so they see
committed states only.  If the journal cannot be written the service stops accepting commands (fail-stop):
its in-memory state is then ahead of the journal, and a restart recovers the journaled state.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from perprisk import commands as cmd
from perprisk import events as ev
from perprisk.engine import Engine, recover, take_snapshot
from perprisk.errors import PerpriskError, ValidationError
from perprisk.server.auth import KeyRing
from perprisk.server.config import ServerConfig
from perprisk.server.storage import Store, open_store

log = logging.getLogger("perprisk.server")

BATCH = 256
MARK_HISTORY = 5000
RECENT = 500

LIQUIDATION_EVENTS = (ev.LiquidationStep, ev.Disposal, ev.AdlExecuted, ev.DebtRecorded, ev.LossSocialized)


class ServiceUnavailable(PerpriskError):
    """The service cannot take commands (stopped, journal failed, or overloaded)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(PerpriskError):
    """An unexpected failure inside the engine (a bug, never the client's mistake)."""


@dataclass
class Job:
    #: the command, or a function of the engine returning one (or None: nothing to do) — run in the writer,
    #: so commands that depend on the state (timestamps) are built against the state they are applied to
    command: Any
    #: run in the writer right after the command applied, inside the same transaction: (engine, command, events)
    after: Callable[[Engine, Any, list], Any] | None = None
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    result: Any = None
    error: BaseException | None = None
    applied: Any = None
    events: list = field(default_factory=list)


@dataclass(frozen=True)
class Published:
    """What one committed batch changed, for the WebSocket hub."""

    events: tuple[tuple[Any, tuple[Any, ...]], ...]  # (command, its events)
    insurance: tuple[Any, ...]  # new insurance fund records


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class EngineService:
    def __init__(self, config: ServerConfig, store: Store, engine: Engine, keys: KeyRing) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.keys = keys
        self.lock = threading.RLock()
        self.queue: "queue.Queue[Job | None]" = queue.Queue()
        self.failed: str | None = None
        self.listeners: list[Callable[[Published], None]] = []
        self.mark_history: dict[str, deque] = {s: deque(maxlen=MARK_HISTORY) for s in engine.markets}
        self.trades: dict[str, deque] = {s: deque(maxlen=RECENT) for s in engine.markets}
        self.liquidations: deque = deque(maxlen=RECENT)
        self.alerts: dict[int, deque] = {}
        self.order_info: dict[int, dict[str, Any]] = {}
        self.started_ms = now_ms()
        self.commands_applied = 0
        self.batches = 0
        self._since_snapshot = 0
        self._insurance_seen = len(engine.insurance.history)
        self._thread: threading.Thread | None = None
        self._stopped = False
        for symbol, state in engine.markets.items():
            if state.mark_price is not None:
                self.mark_history[symbol].append((state.timestamp_ms, state.mark_price, state.index_price))

    # ------------------------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, config: ServerConfig) -> "EngineService":
        """Open the database, check it belongs to this market set, recover the engine (snapshot + journal)."""
        store = open_store(config.db)
        try:
            symbols = [m.symbol for m in config.markets]
            stored = store.get_meta("markets")
            if stored is None:
                if store.journal.last_sequence:
                    log.warning("journal without a recorded market set: assuming %s", symbols)
                store.set_meta("markets", symbols)
            elif stored != symbols:
                raise ValidationError("db", f"this database was written with markets {stored}, not {symbols}")
            started = time.perf_counter()
            engine = recover(config.engine_config(), store.journal)
            log.info("recovered %d commands from %s in %.2f s (state hash %s)", engine.sequence,
                     store.description, time.perf_counter() - started, engine.state_hash()[:16])
            keys = KeyRing(store.load_keys())
        except BaseException:
            store.close()
            raise
        return cls(config, store, engine, keys)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="perprisk-writer", daemon=True)
            self._thread.start()

    def stop(self, snapshot: bool = True) -> None:
        """Finish what is queued, take a snapshot, close the database."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join()
        try:
            if snapshot and self.failed is None and self._since_snapshot:
                with self.lock:
                    take_snapshot(self.engine)
        finally:
            self.store.close()

    # ------------------------------------------------------------------------------------ commands

    def _check_accepting(self) -> None:
        if self._stopped:
            raise ServiceUnavailable("the server is shutting down")
        if self.failed is not None:
            raise ServiceUnavailable(f"the server stopped accepting commands: {self.failed}")
        if self.queue.qsize() >= self.config.max_pending_commands:
            raise ServiceUnavailable("too many commands queued: retry shortly", retry_after=1.0)

    async def submit(self, command: Any, after: Callable[[Engine, Any, list], Any] | None = None) -> Job:
        """Queue a command and wait until it is journaled and applied (or refused).

        Raises the engine's :class:`ValidationError` for a refused command, :class:`ServiceUnavailable`, or
        :class:`InternalError`."""
        self._check_accepting()
        loop = asyncio.get_running_loop()
        job = Job(command, after, loop.create_future(), loop)
        self.queue.put(job)
        await asyncio.shield(job.future)
        if job.error is not None:
            raise job.error
        return job

    def submit_nowait(self, command: Any, after: Callable[[Engine, Any, list], Any] | None = None) -> bool:
        """Queue a command without waiting (price feed); False when the service does not accept commands."""
        try:
            self._check_accepting()
        except ServiceUnavailable:
            return False
        self.queue.put(Job(command, after))
        return True

    def execute_sync(self, command: Any, timeout: float = 30.0) -> Job:
        """Queue a command from a thread without an event loop and wait for it (tools, tests)."""
        self._check_accepting()
        done = threading.Event()
        job = Job(command, None)
        job.loop = None
        job.future = None
        job.after = None
        job._done = done  # type: ignore[attr-defined]
        self.queue.put(job)
        if not done.wait(timeout):
            raise ServiceUnavailable("timed out waiting for the writer")
        if job.error is not None:
            raise job.error
        return job

    def read(self, fn: Callable[[Engine], Any]) -> Any:
        with self.lock:
            return fn(self.engine)

    def write_extra(self, fn: Callable[[Store], Any]) -> Any:
        """Write to the server's own tables (not the journal) in one transaction, serialized with the writer."""
        if self.failed is not None or self._stopped:
            raise ServiceUnavailable(self.failed or "the server is shutting down")
        with self.lock:
            with self.store.batch():
                return fn(self.store)

    # ------------------------------------------------------------------------------------ the writer

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self.queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < BATCH:
                try:
                    job = self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            try:
                self._process(jobs)
            except BaseException as err:  # never leave a waiter hanging
                log.exception("writer failure")
                self.failed = self.failed or f"writer failure: {err}"
                for job in jobs:
                    if job.error is None:
                        job.error = ServiceUnavailable(self.failed)
            finally:
                for job in jobs:
                    self._resolve(job)
        # refuse whatever is still queued
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.error = ServiceUnavailable("the server is shutting down")
                self._resolve(job)

    def _process(self, jobs: list[Job]) -> None:
        if self.failed is not None:
            for job in jobs:
                job.error = ServiceUnavailable(f"the server stopped accepting commands: {self.failed}")
            return
        published: list[tuple[Any, tuple[Any, ...]]] = []
        with self.lock:
            try:
                with self.store.batch():
                    for job in jobs:
                        self._execute(job)
            except Exception as err:
                self.failed = f"the journal could not be written ({type(err).__name__}: {err})"
                log.error("%s; refusing further commands — restart to recover the journaled state", self.failed)
                for job in jobs:
                    job.error = ServiceUnavailable(self.failed)
                    job.result = None
                return
            applied = 0
            for job in jobs:
                if job.applied is not None:
                    applied += 1
                    published.append((job.applied, tuple(job.events)))
                    self._remember(job.applied, job.events)
            self.commands_applied += applied
            self.batches += 1
            self._since_snapshot += applied
            history = self.engine.insurance.history
            insurance = tuple(history[self._insurance_seen:])
            self._insurance_seen = len(history)
            if self._since_snapshot >= self.config.snapshot_every:
                try:
                    self._snapshot()
                except Exception:  # the journal alone still recovers the state
                    log.exception("snapshot failed")
        if published or insurance:
            batch = Published(tuple(published), insurance)
            for listener in list(self.listeners):
                try:
                    listener(batch)
                except Exception:  # a listener must not stop the writer
                    log.exception("event listener failed")

    def _execute(self, job: Job) -> None:
        journal = self.store.journal
        before = journal.last_sequence
        try:
            command = job.command(self.engine) if callable(job.command) else job.command
            if command is None:
                return
            events = self.engine.execute(command)
        except ValidationError as err:
            if journal.last_sequence != before:  # refused after it was journaled: an engine bug
                self._engine_fault(job, err)
            else:
                job.error = err
            return
        except Exception as err:
            if journal.last_sequence != before:
                self._engine_fault(job, err)
            else:
                log.exception("command failed")
                job.error = InternalError(f"internal error: {type(err).__name__}")
            return
        job.applied, job.events = command, events
        if job.after is not None:
            try:
                job.result = job.after(self.engine, command, events)
            except Exception as err:  # the command stands (it is journaled and applied); the reply fails
                log.exception("after-hook of %s failed", type(command).__name__)
                job.error = InternalError(f"internal error: {type(err).__name__}")

    def _engine_fault(self, job: Job, err: BaseException) -> None:
        log.error("the engine failed applying a journaled command (%s: %s); refusing further commands",
                  type(err).__name__, err, exc_info=err)
        self.failed = f"engine error while applying a command ({type(err).__name__})"
        job.error = InternalError("internal error: the engine failed applying the command")

    def _resolve(self, job: Job) -> None:
        done = getattr(job, "_done", None)
        if done is not None:
            done.set()
            return
        if job.future is None or job.loop is None:
            if job.error is not None and not isinstance(job.error, ValidationError):
                log.warning("background command failed: %s", job.error)
            return

        def finish(future: asyncio.Future = job.future) -> None:
            if not future.done():
                future.set_result(None)

        try:
            job.loop.call_soon_threadsafe(finish)
        except RuntimeError:  # the loop is closed
            pass

    def _snapshot(self) -> None:
        started = time.perf_counter()
        take_snapshot(self.engine)
        self._since_snapshot = 0
        log.info("snapshot at command %d in %.2f s", self.engine.sequence, time.perf_counter() - started)

    def snapshot_now(self) -> int:
        with self.lock:
            self._snapshot()
            return self.engine.sequence

    # ------------------------------------------------------------------------------------ memories

    def _remember(self, command: Any, events: list) -> None:
        """Short in-memory histories for the dashboard (marks, trades, liquidations, alerts, order sizes)."""
        touched_orders: set[int] = set()
        for event in events:
            kind = type(event)
            if kind is ev.MarkPriceUpdated:
                self.mark_history[event.symbol].append((event.timestamp_ms, event.mark_price, event.index_price))
            elif kind is ev.Trade:
                self.trades[event.symbol].append(event)
                touched_orders.update((event.taker_order_id, event.maker_order_id))
            elif kind is ev.OrderAccepted:
                info = {"quantity": event.quantity, "client_order_id": None}
                if isinstance(command, cmd.PlaceOrder) and command.account_id == event.account_id:
                    info["client_order_id"] = command.client_order_id
                self.order_info[event.order_id] = info
                touched_orders.add(event.order_id)
            elif kind is ev.OrderCancelled:
                touched_orders.add(event.order_id)
            elif kind in LIQUIDATION_EVENTS:
                self.liquidations.append(event)
            elif kind is ev.Alert:
                self.alerts.setdefault(event.account_id, deque(maxlen=RECENT)).append(event)
        for order_id in touched_orders:
            if order_id not in self.engine.orders:
                self.order_info.pop(order_id, None)
