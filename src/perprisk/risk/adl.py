"""Auto-deleveraging: who is closed first when the insurance fund cannot pay (SPEC §2.1 step 6).

Ranking (BitMEX/MEXC): ``score = PnL% × effective_leverage`` when ``PnL% > 0``, else ``PnL% / effective_leverage``,
with ``PnL% = U / |entry value|`` and ``effective_leverage = |mark value| / |mark value − bankruptcy value|``.
Longs and shorts are ranked separately; the highest score is deleveraged first.  Each position's queue
quintile (1 = safest … 5 = first in line) is published so users see their ADL risk.

The exact ranking is Fraction arithmetic over every position of a side; :class:`AdlIndex` screens it with float
scores kept incrementally (numpy), so the exact check runs only near the head of the queue, or around the
quintile boundaries ("screen fast, confirm exactly").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perprisk.formulas import MarginMode
from perprisk.ledger import LIQUIDATION_ENGINE_ID
from perprisk.money import Fraction


@dataclass(frozen=True)
class AdlCandidate:
    """One open position as the ADL ranking sees it (``sign`` +1 long, −1 short)."""

    account_id: int
    slot: str
    sign: int
    size: Fraction  # > 0
    entry_price: Fraction
    mark_price: Fraction
    bankruptcy_price: Fraction | None  # None: no bankruptcy price (fully collateralized)


def adl_score(c: AdlCandidate) -> Fraction:
    """The ranking score: higher means deleveraged earlier."""
    entry_value = c.size * c.entry_price
    pnl_pct = c.sign * c.size * (c.mark_price - c.entry_price) / entry_value
    mark_value = c.size * c.mark_price
    if c.bankruptcy_price is None:
        leverage = Fraction(1)  # fully collateralized: no more than 1× effective leverage
    else:
        distance = abs(mark_value - c.size * c.bankruptcy_price)
        leverage = mark_value / distance if distance > 0 else Fraction(10**9)
    return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage


def adl_score_screen(sign: int, entry_price: np.ndarray, mark_price: float, equity: np.ndarray,
                     size: np.ndarray) -> np.ndarray:
    """:func:`adl_score` in floats over arrays, to screen a large queue (the exact score decides).

    Positions of one side (``sign``) of one market at ``mark_price``: entry price, signed size and the equity
    ``E`` of each one's margin unit at the mark.  The bankruptcy price is ``M − E/q`` (none when ≤ 0); its
    distance to the mark, ``|E/q|``, is taken directly rather than as a difference.  Size cancels out of the
    score otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bankruptcy = mark_price - equity / size
        distance = np.abs(equity / size)
        leverage = np.where(bankruptcy > 0, np.where(distance > 0, mark_price / distance, 1e9), 1.0)
        pnl_pct = (mark_price - entry_price) / entry_price if sign > 0 else (entry_price - mark_price) / entry_price
        return np.where(pnl_pct > 0, pnl_pct * leverage, pnl_pct / leverage)


#: Rows of one side kept as the head of the queue between ADL queries at one mark (widened when a
#: deleveraging needs more to cover its quantity).
HEAD_ROWS = 2048

#: Relative margin around the screening boundary: far above float error, so the exact order is never missed.
SCREEN_TOLERANCE = 1e-9


def adl_ranking(candidates: Iterable[AdlCandidate]) -> list[AdlCandidate]:
    """Candidates of one side of one market, first to be deleveraged first (ties: lower account id first)."""
    return sorted(candidates, key=lambda c: (-adl_score(c), c.account_id, c.slot))


def adl_quintiles(ranked: Sequence[AdlCandidate]) -> dict[tuple[int, str], int]:
    """Queue quintile per (account, slot): the first 20 % of the queue are 5, the last 20 % are 1."""
    n = len(ranked)
    out: dict[tuple[int, str], int] = {}
    for i, c in enumerate(ranked):
        out[(c.account_id, c.slot)] = 5 - (i * 5) // n
    return out


# ==================================================================================== incremental screen


#: A unit whose equity is within this fraction of its gross figures (Σ |balance value| + Σ |q|·M) is screened
#: with its exact score: float cancellation there could exceed :data:`SCREEN_TOLERANCE` (such a unit is far
#: below its maintenance margin, so there are few).
ILL_CONDITIONED = 1e-5


def _tolerance(scores: np.ndarray) -> np.ndarray:
    return SCREEN_TOLERANCE * np.maximum(1.0, np.abs(scores))


class _Rows:
    """Growable struct-of-arrays rows with a free list (a row number is stable while the row is alive)."""

    def __init__(self, columns: dict[str, tuple[Any, int]]) -> None:
        self._names = (*columns, "alive")
        self.capacity = 64
        self.used = 0  # high-water mark: rows [0, used) are alive or free
        self.free: list[int] = []
        for name, (dtype, width) in columns.items():
            setattr(self, name, np.zeros((self.capacity, width) if width else self.capacity, dtype=dtype))
        self.alive = np.zeros(self.capacity, dtype=bool)

    def add(self) -> int:
        if self.free:
            row = self.free.pop()
        else:
            if self.used == self.capacity:
                self.capacity *= 2
                for name in self._names:
                    old = getattr(self, name)
                    new = np.zeros((self.capacity, *old.shape[1:]), dtype=old.dtype)
                    new[: len(old)] = old
                    setattr(self, name, new)
            row = self.used
            self.used += 1
        self.alive[row] = True
        return row

    def remove(self, row: int) -> None:
        self.alive[row] = False
        self.free.append(row)


class _Side:
    """The open positions of one side of one market: float screening inputs, and the live objects.

    A position's margin unit has equity ``E = base + net·M`` at this market's mark ``M`` — isolated: ``base`` is
    the quote balance and ``net`` the size; cross: ``base`` the value of the wallet's balances and ``net`` the
    account's net cross size here.  A cross account whose balances need prices (a priced collateral asset) or
    that holds cross positions in other markets too is ``spread``: its equity comes from the account table.
    ``gross`` (``|base|``-like) and ``legs`` (``Σ |q|`` here) measure the cancellation in ``E``.
    """

    def __init__(self) -> None:
        self.rows = _Rows({"qty": (np.float64, 0), "entry": (np.float64, 0), "base": (np.float64, 0),
                           "gross": (np.float64, 0), "net": (np.float64, 0), "legs": (np.float64, 0),
                           "owner": (np.int64, 0), "spread": (np.bool_, 0), "dirty": (np.bool_, 0)})
        self.objects: list[tuple[Any, Any] | None] = []  # row → (account, position)
        self.spread = 0  # alive rows with the flag
        #: Scores of rows [0, len) at the mark ``scored_mark`` (−inf for a free row), kept between queries: a
        #: risk pass asks for the head of the queue once per deleveraging at one mark, and between two asks only
        #: the rows flagged ``dirty`` (added or removed since) need scoring again.  Unused (None) while a row of
        #: the side is ``spread`` — its equity moves with collateral prices and other markets' marks.
        self.scores = np.zeros(0)
        self.scored_mark: Fraction | None = None
        #: The kept head of the queue: rows by descending score, every other row scoring at most ``floor``
        #: (``floor`` −inf: every row is in it).  Kept with the scores and updated from the rescored rows, so a
        #: query at an unchanged mark does not partition the whole side again.  None: to be built.
        self.top: np.ndarray | None = None
        self.floor = -np.inf


class AdlIndex:
    """Float screening inputs of every open position, per (market, side), kept up to date incrementally.

    A position's score depends on its size and entry price, the mark ``M`` of its market and its bankruptcy
    price ``BP = M − E/q``, where ``E`` is the equity of its margin unit at the current prices: the isolated
    quote balance plus ``q·M``, or the cross account's collateral value (balance × price, less the haircut on
    positive balances) plus ``Σ q·M`` over its cross positions.  The index holds those inputs in numpy arrays
    (:class:`_Side`; per cross account spread over prices, its balance per collateral asset and net cross size
    per market) and refreshes only the accounts a ledger transfer named since its last use
    (:meth:`perprisk.ledger.Ledger.watch`: every trade names both margin accounts through its fee move, zero or
    not, so position changes are seen as well as balance changes).  Scores at the current marks and collateral
    prices are then a few vectorized passes: the Python work of a query is proportional to the accounts that
    changed, plus the exact check of the few positions the screen cannot separate.

    The engine is duck-typed (``accounts``, ``ledger``, ``markets``, ``collateral``, ``asset_price``, ``mark``,
    ``_mark_or_none``); ``exact(account, position, mark)`` gives a position's exact :class:`AdlCandidate` (with
    the engine's bankruptcy price).
    """

    def __init__(self, engine: Any, exact: Callable[[Any, Any, Fraction], AdlCandidate]) -> None:
        self.engine = engine
        self.exact = exact
        self._ledger: Any = None
        self._accounts: Any = None
        self._changed: set[str] = set()
        #: How often a confirmation found cached inputs stale and rebuilt everything (stays 0 unless change
        #: tracking missed a change; the property tests assert it).
        self.repairs = 0

    # ------------------------------------------------------------------------------ keeping the inputs

    def _rebuild(self) -> None:
        e = self.engine
        if self._ledger is not None:  # state restored under us: stop watching the old ledger
            self._ledger.unwatch(self._changed)
        self._ledger, self._accounts = e.ledger, e.accounts
        self._changed = e.ledger.watch()
        self.symbols = list(e.markets)
        self.market_column = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.assets = list(e.collateral)
        #: per collateral asset: the value of a positive unit (1 − haircut) if worth 1 settle unit, else None
        self.fixed_value = {a: (1.0 - float(c.haircut)) if c.price_symbol is None else None
                            for a, c in e.collateral.items()}
        self.sides = {(symbol, sign): _Side() for symbol in self.symbols for sign in (1, -1)}
        self.owners = _Rows({"balance": (np.float64, len(self.assets)), "cross": (np.float64, len(self.symbols))})
        self.owner_row: dict[int, int] = {}
        self.position_rows: dict[int, list[tuple[_Side, int]]] = {}
        for account_id in e.accounts:
            self._refresh(account_id)

    def sync(self) -> None:
        """Bring the inputs of the accounts changed since the last call up to date."""
        e = self.engine
        if self._ledger is not e.ledger or self._accounts is not e.accounts:  # first use, or state restored
            self._rebuild()
            return
        changed = self._changed
        if not changed:
            return
        ids = {int(name.split("/", 2)[1]) for name in changed if name.startswith("trader/")}
        changed.clear()
        for account_id in ids:
            self._refresh(account_id)

    def touch(self, account_id: int) -> None:
        """Refresh one account at the next use (for a change the ledger does not see)."""
        if self._ledger is not None:
            self._changed.add(f"trader/{account_id}")

    def _refresh(self, account_id: int) -> None:
        for side, row in self.position_rows.pop(account_id, ()):
            if side.rows.spread[row]:
                side.spread -= 1
            side.rows.remove(row)
            side.rows.dirty[row] = True
            side.objects[row] = None
        owner = self.owner_row.pop(account_id, None)
        if owner is not None:
            self.owners.remove(owner)
        account = self.engine.accounts.get(account_id)
        if account is None or account_id == LIQUIDATION_ENGINE_ID:
            return
        positions = account.open_positions()
        if not positions:
            return
        e = self.engine
        owner, base, gross, spread = -1, 0.0, 0.0, False
        net: dict[str, float] = {}
        legs: dict[str, float] = {}
        cross = [p for p in positions if p.margin_mode is MarginMode.CROSS]
        if cross:
            balances = e.ledger.balances_of(account.wallet)
            for asset, balance in balances.items():
                if asset not in self.fixed_value:
                    continue  # not collateral: worth nothing here, as in the engine
                kept = self.fixed_value[asset]
                if kept is None:
                    spread = True
                else:
                    value = float(balance) * kept if balance > 0 else float(balance)
                    base += value
                    gross += abs(value)
            for p in cross:
                net[p.symbol] = net.get(p.symbol, 0.0) + float(p.size)
                legs[p.symbol] = legs.get(p.symbol, 0.0) + abs(float(p.size))
            spread = spread or len(net) > 1
            if spread:
                owner = self.owners.add()
                self.owner_row[account_id] = owner
                self.owners.balance[owner] = [float(balances.get(asset, 0)) for asset in self.assets]
                self.owners.cross[owner] = [net.get(symbol, 0.0) for symbol in self.symbols]
        placed = self.position_rows[account_id] = []
        for p in positions:
            side = self.sides[(p.symbol, 1 if p.size > 0 else -1)]
            rows = side.rows
            row = rows.add()
            rows.dirty[row] = True
            if row == len(side.objects):
                side.objects.append(None)
            side.objects[row] = (account, p)
            rows.qty[row] = size = float(p.size)
            rows.entry[row] = float(p.entry_price)
            if p.margin_mode is MarginMode.ISOLATED:
                quote = float(e.ledger.balance(p.margin_account, e.markets[p.symbol].instrument.settle))
                rows.base[row], rows.gross[row], rows.net[row], rows.legs[row] = quote, abs(quote), size, abs(size)
                rows.owner[row], rows.spread[row] = -1, False
            else:
                rows.base[row], rows.gross[row] = base, gross
                rows.net[row], rows.legs[row] = net[p.symbol], legs[p.symbol]
                rows.owner[row], rows.spread[row] = owner, spread
                side.spread += spread
            placed.append((side, row))

    # ------------------------------------------------------------------------------ screening

    def _scores(self, symbol: str, sign: int) -> tuple[_Side, np.ndarray]:
        """(side, float scores of its rows ``[0, used)`` at the current prices; −inf for a free row).

        Rows scored at this mark before and unchanged since keep their score: only the rows flagged dirty are
        scored again (the same element-wise float operations on the same inputs: the same floats).  A side
        with spread rows is scored whole every time."""
        self.sync()
        e = self.engine
        side = self.sides[(symbol, sign)]
        r = side.rows
        n = r.used
        mark_exact = Fraction(e.mark(symbol))
        mark = float(mark_exact)
        cached = side.scores
        # kept scores are keyed on the exact mark: a doubtful row's score is the exact one at that mark
        whole = side.spread or side.scored_mark != mark_exact or len(cached) < n
        if whole:
            scores = np.empty(n)
            rows = np.arange(n)
        else:
            scores = cached
            rows = np.flatnonzero(r.dirty[:n])
        r.dirty[:n] = False
        if len(rows):
            scores[rows] = self._score_rows(side, sign, rows, mark, mark_exact)
        if side.spread:
            side.scores, side.scored_mark, side.top = np.zeros(0), None, None
        else:
            side.scores, side.scored_mark = scores, mark_exact
            if whole or (side.top is not None and len(side.top) > 4 * HEAD_ROWS and len(rows)):
                side.top = None  # a head widened to much of the side is cheaper to partition again than to sort
            elif side.top is not None and len(rows):  # rescored rows leave the head, and rejoin if they belong
                kept = side.top[~np.isin(side.top, rows)]
                joining = rows if side.floor == -np.inf else rows[scores[rows] >= side.floor]
                top = np.concatenate((kept, joining))
                side.top = top[np.argsort(-scores[top], kind="stable")]
        return side, scores[:n]

    def _top(self, side: _Side, scores: np.ndarray, k: int | None = None) -> tuple[np.ndarray, float]:
        """(rows by descending score, floor): the kept head of the queue, or the top ``k`` rows (default
        ``HEAD_ROWS``) partitioned afresh; every row not returned scores at most ``floor`` (−inf: all returned)."""
        if k is None and side.top is not None:
            return side.top, side.floor
        n = len(scores)
        k = min(n, k or HEAD_ROWS)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        floor = float(scores[top[-1]]) if k < n else -np.inf
        if not side.spread:
            side.top, side.floor = top, floor
        return top, floor

    def _score_rows(self, side: _Side, sign: int, rows: np.ndarray, mark: float, mark_exact: Fraction) -> np.ndarray:
        """Float scores of ``rows`` of ``side`` at ``mark`` (−inf for free rows); a score the floats cannot be
        trusted with (equity cancelling to a sliver of its gross figures, or not finite) is the exact one."""
        e = self.engine
        r = side.rows
        equity = r.base[rows] + r.net[rows] * mark
        gross = r.gross[rows] + r.legs[rows] * mark
        if side.spread:  # cross accounts spread over priced collateral or several markets
            spread = np.flatnonzero(r.spread[rows] & r.alive[rows])
            owners = r.owner[rows[spread]]
            prices = np.array([float(p) if (p := e.asset_price(a)) is not None else 0.0 for a in self.assets])
            kept = np.array([1.0 - float(e.collateral[a].haircut) for a in self.assets])
            marks = np.array([float(m) if (m := e._mark_or_none(s)) is not None else 0.0 for s in self.symbols])
            balance = self.owners.balance[owners]
            value = np.where(balance > 0, balance * (prices * kept), balance * prices)
            net = self.owners.cross[owners]
            equity[spread] = value.sum(axis=1) + net @ marks
            gross[spread] = np.abs(value).sum(axis=1) + np.abs(net) @ marks
        scores = adl_score_screen(sign, r.entry[rows], mark, equity, r.qty[rows])
        alive = r.alive[rows]
        with np.errstate(invalid="ignore"):  # units whose equity cancels to a sliver of their gross figures
            doubtful = ~(np.abs(equity) > ILL_CONDITIONED * gross) | ~np.isfinite(scores)
        for i in np.flatnonzero(doubtful & alive):
            account, position = side.objects[rows[i]]
            scores[i] = float(adl_score(self.exact(account, position, mark_exact)))
        scores[~alive] = -np.inf
        return scores

    def _excluded(self, side: _Side, exclude: int | None) -> list[int]:
        """Rows of ``side`` held by account ``exclude`` (the account being liquidated is no counterparty)."""
        if exclude is None:
            return []
        return [row for s, row in self.position_rows.get(exclude, ()) if s is side]

    def _screen(self, symbol: str, sign: int, exclude: int | None = None) -> tuple[_Side, np.ndarray, np.ndarray]:
        """(side, rows, float scores) of the open positions of one side at the current prices."""
        side, scores = self._scores(symbol, sign)
        alive = side.rows.alive[: len(scores)]
        excluded = self._excluded(side, exclude)
        if excluded:
            alive = alive.copy()
            alive[excluded] = False
        rows = np.flatnonzero(alive)
        return side, rows, scores[rows]

    def _stale(self, side: _Side, rows: Iterable[int]) -> bool:
        """Whether the cached size of any of ``rows`` differs from the live position (a missed change)."""
        qty, objects = side.rows.qty, side.objects
        if any(float(objects[row][1].size) != qty[row] for row in rows):
            self.repairs += 1
            self._ledger.unwatch(self._changed)
            self._ledger = None  # rebuilt from the live state at the next screen
            return True
        return False

    def head(self, symbol: str, sign: int, quantity: Any, exclude: int | None = None) -> list[tuple[Any, Any]]:
        """Positions (unordered) that contain the head of the exact queue covering ``quantity``: every position
        whose float score is within the tolerance of the score at which the float order covers it, or above.
        Every position of the exact covering prefix is among them."""
        for _ in range(2):
            side, scores = self._scores(symbol, sign)
            n = len(scores)
            if not n:
                return []
            excluded = set(self._excluded(side, exclude))  # the account being liquidated is no counterparty
            top, floor = self._top(side, scores)
            while True:  # the head by float score, widened until it covers the quantity
                covered, boundary = 0, None
                for row in top.tolist():
                    if row in excluded:
                        continue
                    if scores[row] == -np.inf:
                        break  # only free rows from here on
                    covered += abs(side.objects[row][1].size)
                    if covered >= quantity:
                        boundary = float(scores[row])
                        break
                if boundary is not None or floor == -np.inf:
                    break
                top, floor = self._top(side, scores, 4 * len(top))
            if boundary is None:  # the whole side does not cover it: all of it
                chosen = np.flatnonzero(scores > -np.inf)
            else:
                least = boundary - SCREEN_TOLERANCE * max(1.0, abs(boundary))
                # every row outside the head scores at most the floor: the head alone holds the answer above it
                chosen = np.sort(top[scores[top] >= least]) if least > floor else np.flatnonzero(scores >= least)
            if excluded:
                chosen = chosen[~np.isin(chosen, list(excluded))]
            if not self._stale(side, chosen):
                return [side.objects[row] for row in chosen]
        raise AssertionError("ADL screening inputs stale right after a rebuild")

    def quintiles(self, symbol: str) -> dict[tuple[int, str], int]:
        """ADL quintile of every open position of ``symbol`` (longs and shorts ranked separately): positions
        whose float scores are apart by more than the tolerance keep their float order; a run of positions the
        floats cannot separate is ranked exactly when it straddles a quintile boundary."""
        for _ in range(2):
            out: dict[tuple[int, str], int] | None = {}
            for sign in (1, -1):
                side_quintiles = self._side_quintiles(symbol, sign)
                if side_quintiles is None:
                    out = None
                    break
                out.update(side_quintiles)
            if out is not None:
                return out
        raise AssertionError("ADL screening inputs stale right after a rebuild")

    def _side_quintiles(self, symbol: str, sign: int) -> dict[tuple[int, str], int] | None:
        side, rows, scores = self._screen(symbol, sign)
        n = len(rows)
        if not n:
            return {}
        order = np.argsort(-scores, kind="stable")
        ranked = rows[order]
        s = scores[order]
        u = _tolerance(s)
        # the cut after i is certain when every score before it is surely above every score after it
        certain = np.minimum.accumulate(s - u)[:-1] > np.maximum.accumulate((s + u)[::-1])[::-1][1:]
        starts = np.concatenate(([0], np.flatnonzero(certain) + 1))
        ends = np.append(starts[1:], n)
        quintile = 5 - (np.arange(n) * 5) // n
        straddling = np.flatnonzero(quintile[starts] != quintile[ends - 1])
        if len(straddling):
            mark = Fraction(self.engine.mark(symbol))
            for a, b in zip(starts[straddling].tolist(), ends[straddling].tolist()):
                members = ranked[a:b]
                if self._stale(side, members):
                    return None
                exact = sorted(((self.exact(*side.objects[row], mark), row) for row in members.tolist()),
                               key=lambda t: (-adl_score(t[0]), t[0].account_id, t[0].slot))
                ranked[a:b] = [row for _, row in exact]
        objects = side.objects
        out = {}
        for row, q in zip(ranked.tolist(), quintile.tolist()):
            account, position = objects[row]
            out[(account.account_id, position.slot)] = q
        return out
