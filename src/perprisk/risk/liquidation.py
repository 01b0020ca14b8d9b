"""Liquidation step by step (SPEC §2.1), disposal through the book, the insurance fund, ADL and policies.

On every mark update (and after funding) the engine runs a *risk pass*: every margin unit — a trader's cross
account, or one isolated position — whose margin balance is at or below its maintenance requirement goes
through the steps in order, re-checked after each one, stopping as soon as it is healthy:

1. auto-add margin (isolated, when on) after cancelling that market's orders;
2. cancel orders (cross: all of the account's orders);
3. self-offset (cross, hedge mode: the account's own long against its own short, at the mark);
4. tier-down: the liquidation engine takes over just enough at the bankruptcy price to drop one tier;
5. takeover of the rest at the bankruptcy price (no matching: takeovers do not print on the tape);
6. disposal: the liquidation engine closes what it took over with an IOC order inside the price band;
   surplus over the bankruptcy price goes to the insurance fund, a deficit is paid by the policy's payer;
7. ADL of what the book could not absorb, or what the fund could not pay for, at the bankruptcy price.

Every step is an event with the quantity, price, margin ratio before/after and the reason.  The engine is
passed in (duck-typed); this module does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perprisk import events as ev
from perprisk.account import BOTH, LONG, SHORT, Account, Position, PositionMode
from perprisk.formulas import MarginMode, bankruptcy_price, isolated_bankruptcy_price
from perprisk.formulas.margin import margin_ratio
from perprisk.ledger import LIQUIDATION_ENGINE_ID, PLATFORM
from perprisk.money import Fraction, Rounding, round_quantity, round_to_step
from perprisk.risk.adl import AdlCandidate, AdlIndex, adl_quintiles, adl_ranking

#: A risk pass repeats until nothing is flagged (ADL at a bankruptcy price can push a counterparty under).
MAX_ROUNDS = 8
#: Socialization charges in one pass (each may push holders under and liquidate them, charging again).
MAX_SOCIALIZATIONS = 32


def socialization_pool(symbol: str) -> str:
    """Ledger account that advances a market's deficits under ``socialized_loss`` until the pass charges them."""
    return f"socialization/{symbol}"


@dataclass
class TakenOver:
    """A chunk the liquidation engine took over and must now dispose of."""

    symbol: str
    account_id: int
    sign: int  # +1: the engine holds a long (it took over a long) — it must sell
    quantity: Decimal
    price: Decimal  # the takeover (bankruptcy) price


def _pct(ratio: Fraction | None) -> Decimal | None:
    if ratio is None:
        return None
    return round_to_step(ratio * 100, Decimal("0.000001"), Rounding.HALF_EVEN)


class Liquidator:
    """Runs risk passes on an engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        #: Float screening inputs of every open position, for the ADL queue and quintiles.
        self.adl_index = AdlIndex(engine, self.adl_candidate)
        #: Markets whose socialization pool advanced a deficit during the current pass.
        self._pending_socialized: set[str] = set()

    # ------------------------------------------------------------------------------ checks

    def isolated_liquidatable(self, position: Position) -> bool:
        e = self.engine
        return e.isolated_equity(position) <= e.position_maintenance(position, e.mark(position.symbol))

    def cross_liquidatable(self, account: Account) -> bool:
        e = self.engine
        if not any(p.margin_mode is MarginMode.CROSS for p in account.open_positions()):
            return False
        return e.cross_equity(account) - e.order_margin(account) <= e.cross_maintenance(account)

    def unit_ratio(self, account: Account, position: Position | None) -> Decimal | None:
        e = self.engine
        if position is not None:
            if position.size == 0:
                return Decimal(0)
            return _pct(margin_ratio(e.position_maintenance(position, e.mark(position.symbol)),
                                     e.isolated_equity(position)))
        return _pct(margin_ratio(e.cross_maintenance(account), e.cross_equity(account) - e.order_margin(account)))

    def flagged(self, symbols: set[str] | None) -> list[tuple[Account, Position | None]]:
        """Units at or over 100 % (exact check), in account order; ``symbols`` limits isolated positions."""
        out: list[tuple[Account, Position | None]] = []
        for account_id in sorted(self.engine.accounts):
            if account_id == LIQUIDATION_ENGINE_ID:
                continue
            account = self.engine.accounts[account_id]
            positions = account.open_positions()
            if not positions:
                continue
            if self.cross_liquidatable(account):
                out.append((account, None))
            for p in sorted(positions, key=lambda p: (p.symbol, p.slot)):
                if p.margin_mode is MarginMode.ISOLATED and (symbols is None or p.symbol in symbols):
                    if self.isolated_liquidatable(p):
                        out.append((account, p))
        return out

    # ------------------------------------------------------------------------------ the pass

    def risk_pass(self, symbols: set[str] | None, timestamp_ms: int) -> None:
        """Liquidate every flagged unit (up to the engine's capacity).  Deficits the ``socialized_loss`` policy
        spreads are gathered over the pass and socialized once per market at its end (one pro-rata charge per
        pass, not one per liquidation: the charge touches every profitable position); the charge may push
        more accounts under, so the pass then runs again."""
        capacity = self.engine.config.liquidation_capacity
        done = self._rounds(symbols, timestamp_ms, 0, capacity)
        for _ in range(MAX_SOCIALIZATIONS):
            if not self._pending_socialized:
                return
            self._socialize_pending(timestamp_ms)  # the pool is flat again
            done = self._rounds(None, timestamp_ms, done, capacity)  # whom the charge pushed under
        if self._pending_socialized:  # a cascade longer than the cap: charge what is left, the rest waits
            self._socialize_pending(timestamp_ms)

    def _rounds(self, symbols: set[str] | None, timestamp_ms: int, done: int, capacity: int | None) -> int:
        for _ in range(MAX_ROUNDS):
            units = self.engine.risk_candidates(symbols)
            if not units:
                return done
            for account, position in units:
                if capacity is not None and done >= capacity:
                    return done  # the engine is overloaded this tick (platform risk): the rest waits
                if position is None:
                    if self.cross_liquidatable(account):
                        self.liquidate_cross(account, timestamp_ms)
                        done += 1
                elif position.size != 0 and self.isolated_liquidatable(position):
                    self.liquidate_isolated(account, position, timestamp_ms)
                    done += 1
            symbols = None  # ADL may have touched any market: re-check everything
        return done

    # ------------------------------------------------------------------------------ isolated

    def liquidate_isolated(self, account: Account, position: Position, ts: int) -> None:
        symbol = position.symbol
        settings = account.market(symbol)
        if settings.auto_add_margin:
            self._cancel_orders(account, symbol, position, ts)
            self._auto_add_margin(account, position, ts)
            if not self.isolated_liquidatable(position):
                return
        self._tier_down(account, position, ts)
        if position.size != 0 and self.isolated_liquidatable(position):
            self.dispose(self._takeover(account, position, abs(position.size), "takeover",
                                        "margin ratio at or over 100 %", ts), ts)

    def _auto_add_margin(self, account: Account, position: Position, ts: int) -> None:
        e = self.engine
        before = self.unit_ratio(account, position)
        mark = e.mark(position.symbol)
        wanted = e.position_initial_margin(position, mark) - e.isolated_equity(position)
        settle = e.markets[position.symbol].instrument.settle
        free = min(e.available_balance(account), e.asset_balances(account).get(settle, Fraction(0)))
        amount = round_to_step(max(Fraction(0), min(wanted, free)), e.config.balance_precision, Rounding.FLOOR)
        if amount <= 0:
            return
        e.ledger.transfer(account.wallet, position.margin_account, settle, amount, "auto-add margin")
        e._events.append(ev.MarginMoved(account.account_id, position.symbol, position.slot, amount, "auto_add"))
        e._events.append(ev.LiquidationStep(account.account_id, position.symbol, position.slot, "auto_add_margin",
                                            amount, None, before, self.unit_ratio(account, position),
                                            "free balance moved into the isolated position", ts))

    # ------------------------------------------------------------------------------ cross

    def liquidate_cross(self, account: Account, ts: int) -> None:
        self._cancel_orders(account, None, None, ts)
        if not self.cross_liquidatable(account):
            return
        if account.position_mode is PositionMode.HEDGE:
            self._self_offset(account, ts)
            if not self.cross_liquidatable(account):
                return
        for position in self._cross_positions_by_maintenance(account):
            self._tier_down(account, position, ts, cross=True)
            if not self.cross_liquidatable(account):
                return
        for position in self._cross_positions_by_maintenance(account):
            if position.size != 0:
                self.dispose(self._takeover(account, position, abs(position.size), "takeover",
                                            "account margin ratio at or over 100 %", ts, cross=True), ts)

    def _cross_positions_by_maintenance(self, account: Account) -> list[Position]:
        e = self.engine
        positions = [p for p in account.open_positions() if p.margin_mode is MarginMode.CROSS]
        return sorted(positions, key=lambda p: (-e.position_maintenance(p, e.mark(p.symbol)), p.symbol, p.slot))

    def _self_offset(self, account: Account, ts: int) -> None:
        e = self.engine
        for symbol in sorted({p.symbol for p in account.open_positions()}):
            long_leg, short_leg = account.position(symbol, LONG), account.position(symbol, SHORT)
            if not (long_leg and short_leg and long_leg.size > 0 and short_leg.size < 0):
                continue
            if long_leg.margin_mode is not MarginMode.CROSS or short_leg.margin_mode is not MarginMode.CROSS:
                continue
            qty = min(long_leg.size, -short_leg.size)
            before = self.unit_ratio(account, None)
            mark = e.mark(symbol)
            e._bilateral_trade(symbol, (account, SHORT), (account, LONG), qty, mark, "self-offset")
            self.adl_index.touch(account.account_id)  # no money moves between the legs of one wallet
            e._events.append(ev.LiquidationStep(account.account_id, symbol, None, "self_offset", qty, mark, before,
                                                self.unit_ratio(account, None), "own long closed against own short",
                                                ts))
            if not self.cross_liquidatable(account):
                return

    # ------------------------------------------------------------------------------ shared steps

    def _cancel_orders(self, account: Account, symbol: str | None, position: Position | None, ts: int) -> None:
        e = self.engine
        ids = [o.order_id for o in e.orders.of(account.account_id) if symbol is None or o.symbol == symbol]
        if not ids:
            return
        before = self.unit_ratio(account, position)
        quantity = Decimal(0)
        for order_id in sorted(ids):
            meta = e.orders.get(order_id)
            if meta is None:
                continue
            quantity += meta.remaining
            e._cancel_internal(meta.symbol, order_id)
        e._events.append(ev.LiquidationStep(account.account_id, symbol, None, "cancel_orders", quantity, None, before,
                                            self.unit_ratio(account, position), f"{len(ids)} open orders cancelled",
                                            ts))

    def _tier_down(self, account: Account, position: Position, ts: int, cross: bool = False) -> None:
        e = self.engine
        inst = e.markets[position.symbol].instrument
        while position.size != 0 and (self.cross_liquidatable(account) if cross else self.isolated_liquidatable(position)):
            mark = e.mark(position.symbol)
            tier = inst.tiers.tier_for_notional_clamped(abs(position.size) * mark)
            if tier.tier == 1:
                return
            # largest size on the lot grid whose notional lies below this tier's floor
            target = round_quantity(Fraction(tier.floor) / Fraction(mark), inst.lot_size, Rounding.FLOOR)
            if target * mark >= tier.floor:
                target -= inst.lot_size
            quantity = abs(position.size) - target
            if target <= 0 or quantity <= 0:
                return
            self.dispose(self._takeover(account, position, quantity, "tier_down",
                                        f"dropping from tier {tier.tier} to a lower tier", ts, cross=cross), ts)

    def _takeover(self, account: Account, position: Position, quantity: Decimal, step: str, reason: str, ts: int,
                  cross: bool = False) -> TakenOver:
        """The liquidation engine takes ``quantity`` of ``position`` over at the bankruptcy price (no matching)."""
        e = self.engine
        symbol = position.symbol
        inst = e.markets[symbol].instrument
        unit_position = None if cross else position
        before = self.unit_ratio(account, unit_position)
        mark = e.mark(symbol)
        sign = 1 if position.size > 0 else -1
        # liquidation fee on the notional taken over, capped by the equity that stands behind it
        equity = e.cross_equity(account) if cross else e.isolated_equity(position)
        share = equity if quantity == abs(position.size) and not cross else equity * Fraction(quantity) / Fraction(abs(position.size))
        fee = min(Fraction(quantity) * Fraction(mark) * Fraction(inst.liquidation_fee), max(share, Fraction(0)))
        fee = round_to_step(fee, e.config.balance_precision, Rounding.FLOOR)
        if fee > 0:
            e.insurance.receive(position.margin_account, inst.settle, fee, symbol, ts, "liquidation fee")
        # the bankruptcy price of this position now (after the fee)
        if cross:
            others = [p.leg(e.markets[p.symbol].instrument, e.mark(p.symbol)) for p in account.open_positions()
                      if p.margin_mode is MarginMode.CROSS and p is not position]
            bp = bankruptcy_price(MarginMode.CROSS, e.wallet_balance(account), [position.leg(inst, mark)], others)
            negative = e.cross_equity(account) < 0
        else:
            bp = isolated_bankruptcy_price(sign, abs(position.size), position.entry_price, e.position_margin(position))
            negative = e.isolated_equity(position) < 0
        if bp is None or bp <= 0 or (negative and not e.policy.takeover_at_bankruptcy_when_negative):
            price_exact = Fraction(mark)  # debt policy: the trader keeps the loss beyond bankruptcy
        else:
            price_exact = bp
        # round so the trader never ends below zero for rounding: a long sold up, a short bought down
        price = round_to_step(price_exact, e.config.balance_precision, Rounding.CEILING if sign > 0 else Rounding.FLOOR)
        le = e.accounts[LIQUIDATION_ENGINE_ID]
        buyer, seller = ((le, BOTH), (account, position.slot)) if sign > 0 else ((account, position.slot), (le, BOTH))
        e._bilateral_trade(symbol, buyer, seller, quantity, price, "liquidation takeover")
        e._events.append(ev.LiquidationStep(account.account_id, symbol, position.slot, step, quantity, price, before,
                                            self.unit_ratio(account, unit_position if position.size else None)
                                            if (cross or position.size) else Decimal(0), reason, ts))
        if fee > 0:
            e._events.append(ev.LiquidationStep(account.account_id, symbol, position.slot, "liquidation_fee",
                                                quantity, None, None, None, f"fee {fee} to the insurance fund", ts))
        self._record_debt(account, inst.settle, ts)
        return TakenOver(symbol, account.account_id, sign, quantity, price)

    def _record_debt(self, account: Account, asset: str, ts: int) -> None:
        e = self.engine
        if account.open_positions():
            return
        balance = e.ledger.balance(account.wallet, asset)
        if balance < 0 and e.collateral_value(account.wallet) < 0:
            account.blocked = True
            e._events.append(ev.DebtRecorded(account.account_id, asset, balance, ts))

    # ------------------------------------------------------------------------------ disposal, fund, ADL

    def dispose(self, chunk: TakenOver, ts: int) -> None:
        e = self.engine
        state = e.markets[chunk.symbol]
        inst = state.instrument
        mark = Fraction(e.mark(chunk.symbol))
        band = Fraction(e.config.disposal_band)
        qty = chunk.quantity
        policy = e.policy
        # worst acceptable price: the band edge, and (when the fund pays) no deficit beyond what it holds
        if chunk.sign > 0:  # selling a long
            limit = mark * (1 - band)
            if policy.uses_fund:
                limit = max(limit, Fraction(chunk.price) - Fraction(e.insurance.balance(inst.settle, chunk.symbol)) / Fraction(qty))
            limit_price = round_to_step(limit, inst.tick_size, Rounding.CEILING)
        else:  # buying back a short
            limit = mark * (1 + band)
            if policy.uses_fund:
                limit = min(limit, Fraction(chunk.price) + Fraction(e.insurance.balance(inst.settle, chunk.symbol)) / Fraction(qty))
            limit_price = round_to_step(limit, inst.tick_size, Rounding.FLOOR)
        fund_before = e.insurance.balance(inst.settle, chunk.symbol)
        filled = Decimal(0)
        if limit_price > 0:
            filled = e._submit_internal(LIQUIDATION_ENGINE_ID, chunk.symbol, "sell" if chunk.sign > 0 else "buy", qty,
                                        limit_price)
        remaining = qty - filled
        if remaining > 0:
            band_price = mark * (1 - band) if chunk.sign > 0 else mark * (1 + band)
            fund_bound = limit_price != round_to_step(band_price, inst.tick_size,
                                                      Rounding.CEILING if chunk.sign > 0 else Rounding.FLOOR)
            reason = "fund_insufficient" if fund_bound else "book_depth"
            self.deleverage(chunk, remaining, reason, ts)
        self._settle_engine_account(chunk, ts, filled, limit_price, fund_before)

    def _settle_engine_account(self, chunk: TakenOver, ts: int, filled: Decimal, limit_price: Decimal,
                               fund_before: Decimal) -> None:
        """Bring the liquidation engine back to zero: surplus to the fund, deficit from the policy's payer."""
        e = self.engine
        inst = e.markets[chunk.symbol].instrument
        le = e.accounts[LIQUIDATION_ENGINE_ID]
        if any(p.size != 0 for p in le.positions.values()):
            raise AssertionError("the liquidation engine holds a position after disposal and ADL")
        balance = e.ledger.balance(le.wallet, inst.settle)
        paid_by = "none"
        if balance > 0:
            e.insurance.receive(le.wallet, inst.settle, balance, chunk.symbol, ts, "liquidation surplus")
            paid_by = "insurance_fund"
        elif balance < 0:
            deficit = balance.copy_negate()  # exact (a unary minus rounds to the context's 28 digits)
            payer = e.policy.deficit_payer
            if payer == "fund":
                e.insurance.pay(le.wallet, inst.settle, deficit, chunk.symbol, ts, "liquidation deficit")
                paid_by = "insurance_fund"
            elif payer == "platform":
                e.ledger.transfer(PLATFORM, le.wallet, inst.settle, deficit, "negative balance protection")
                paid_by = "platform"
            else:  # advanced from the market's socialization pool, charged to the holders at the end of the pass
                e.ledger.transfer(socialization_pool(chunk.symbol), le.wallet, inst.settle, deficit,
                                  "deficit to socialize")
                self._pending_socialized.add(chunk.symbol)
                paid_by = "socialized"
        e._events.append(ev.Disposal(chunk.symbol, chunk.account_id, chunk.quantity, filled, chunk.price, limit_price,
                                     balance, paid_by, ts, fund_before, chunk.sign))

    def _socialize_pending(self, ts: int) -> None:
        e = self.engine
        pending, self._pending_socialized = sorted(self._pending_socialized), set()
        for symbol in pending:
            pool = socialization_pool(symbol)
            deficit = e.ledger.balance(pool, e.markets[symbol].instrument.settle).copy_negate()  # exact
            if deficit > 0:
                self._socialize(symbol, deficit, ts)

    def _socialize(self, symbol: str, deficit: Decimal, ts: int) -> None:
        """Spread ``deficit`` (what the market's socialization pool advanced) over the market's profitable
        positions pro rata (all positions by size if none), back into the pool."""
        e = self.engine
        inst = e.markets[symbol].instrument
        mark = Fraction(e.mark(symbol))
        pool = socialization_pool(symbol)
        holders = [(a, p) for aid, a in sorted(e.accounts.items()) if aid != LIQUIDATION_ENGINE_ID
                   for p in a.open_positions() if p.symbol == symbol]
        weights = [(a, p, Fraction(p.size) * mark - p.cost) for a, p in holders]
        weights = [(a, p, w) for a, p, w in weights if w > 0] or [(a, p, abs(Fraction(p.size))) for a, p in holders]
        if not weights:  # nobody left to share with: the platform books it
            e.ledger.transfer(PLATFORM, pool, inst.settle, deficit, "unsocializable deficit")
            return
        total = sum((w for _, _, w in weights), Fraction(0))
        shares = [round_to_step(Fraction(deficit) * w / total, e.config.balance_precision, Rounding.FLOOR)
                  for _, _, w in weights]
        largest = max(range(len(weights)), key=lambda i: (weights[i][2], -weights[i][0].account_id))
        shares[largest] += deficit - sum(shares, Decimal(0))  # the rounding remainder: the sum is exact
        for (account, position, _), share in zip(weights, shares):
            if share > 0:
                e.ledger.transfer(position.margin_account, pool, inst.settle, share, "socialized loss")
                e._events.append(ev.LossSocialized(account.account_id, symbol, position.slot, share, ts))

    def adl_queue(self, symbol: str, sign: int, quantity: Decimal | None = None,
                  exclude: int | None = None) -> list[tuple[Account, Position]]:
        """Positions of ``sign`` in ``symbol`` (the liquidation engine and ``exclude`` left out), first to be
        deleveraged first.

        Without ``quantity``: the whole queue, ranked exactly (the plain reference).  With ``quantity``: the
        head of that same queue that covers it (or the whole queue if it cannot), found by the incremental float
        screen (:class:`~perprisk.risk.adl.AdlIndex`) and ranked exactly among the positions the screen cannot
        separate from it."""
        mark = Fraction(self.engine.mark(symbol))
        if quantity is None:
            return self._ranked(self._side_positions(symbol, sign, exclude), mark)
        queue: list[tuple[Account, Position]] = []
        covered = Decimal(0)
        for account, position in self._ranked(self.adl_index.head(symbol, sign, quantity, exclude), mark):
            queue.append((account, position))
            covered += abs(position.size)
            if covered >= quantity:
                break
        return queue

    def _side_positions(self, symbol: str, sign: int, exclude: int | None = None) -> list[tuple[Account, Position]]:
        """Every open position of one side of a market (the liquidation engine and ``exclude`` left out)."""
        return [(account, p) for aid, account in self.engine.accounts.items()
                if aid != LIQUIDATION_ENGINE_ID and aid != exclude
                for p in account.open_positions() if p.symbol == symbol and (1 if p.size > 0 else -1) == sign]

    def _ranked(self, positions: list[tuple[Account, Position]], mark: Fraction) -> list[tuple[Account, Position]]:
        """``positions`` (of one side of one market) in exact ADL order."""
        index = {}
        candidates = []
        for account, p in positions:
            candidate = self.adl_candidate(account, p, mark)
            candidates.append(candidate)
            index[(candidate.account_id, candidate.slot)] = (account, p)
        return [index[(c.account_id, c.slot)] for c in adl_ranking(candidates)]

    def adl_candidate(self, account: Account, position: Position, mark: Fraction) -> AdlCandidate:
        """A position as the exact ADL ranking sees it."""
        return AdlCandidate(account.account_id, position.slot, 1 if position.size > 0 else -1,
                            abs(Fraction(position.size)), position.entry_price, mark,
                            self.position_bankruptcy_price(account, position))

    def adl_quintiles(self, symbol: str) -> dict[tuple[int, str], int]:
        """ADL quintile (1–5) of every open position in ``symbol``, longs and shorts ranked separately (screened
        by the incremental index, exact where it matters)."""
        return self.adl_index.quintiles(symbol)

    def adl_quintiles_reference(self, symbol: str) -> dict[tuple[int, str], int]:
        """:meth:`adl_quintiles` by the plain exact ranking of every position (the reference)."""
        out: dict[tuple[int, str], int] = {}
        mark = Fraction(self.engine.mark(symbol))
        for sign in (1, -1):
            candidates = [self.adl_candidate(a, p, mark) for a, p in self._side_positions(symbol, sign)]
            if candidates:
                out.update(adl_quintiles(adl_ranking(candidates)))
        return out

    def position_bankruptcy_price(self, account: Account, position: Position) -> Fraction | None:
        e = self.engine
        inst = e.markets[position.symbol].instrument
        if position.margin_mode is MarginMode.ISOLATED:
            bp = isolated_bankruptcy_price(1 if position.size > 0 else -1, abs(position.size), position.entry_price,
                                           e.position_margin(position))
            return bp if bp > 0 else None
        others = [p.leg(e.markets[p.symbol].instrument, e.mark(p.symbol)) for p in account.open_positions()
                  if p.margin_mode is MarginMode.CROSS and p is not position]
        return bankruptcy_price(MarginMode.CROSS, e.wallet_balance(account),
                                [position.leg(inst, e.mark(position.symbol))], others)

    def deleverage(self, chunk: TakenOver, quantity: Decimal, reason: str, ts: int) -> None:
        """Close ``quantity`` of the engine's position against the top of the opposite ADL queue, at the chunk's
        bankruptcy price, without fee."""
        e = self.engine
        le = e.accounts[LIQUIDATION_ENGINE_ID]
        remaining = quantity
        queue = self.adl_queue(chunk.symbol, -chunk.sign, quantity, exclude=chunk.account_id)
        # the liquidated account's own opposite leg (hedge mode) only as a last resort
        covered = sum((abs(p.size) for _, p in queue), Decimal(0))
        if covered < quantity:
            own = e.accounts[chunk.account_id]
            queue += self._ranked([(own, p) for p in own.open_positions()
                                   if p.symbol == chunk.symbol and (1 if p.size > 0 else -1) == -chunk.sign],
                                  Fraction(e.mark(chunk.symbol)))
        for account, position in queue:
            if remaining <= 0:
                break
            qty = min(remaining, abs(position.size))
            if chunk.sign > 0:  # the engine holds a long: it sells to a short, who buys back
                e._bilateral_trade(chunk.symbol, (account, position.slot), (le, BOTH), qty, chunk.price, "ADL")
            else:
                e._bilateral_trade(chunk.symbol, (le, BOTH), (account, position.slot), qty, chunk.price, "ADL")
            remaining -= qty
            e._events.append(ev.AdlExecuted(account.account_id, chunk.symbol, position.slot, qty, chunk.price,
                                            chunk.account_id, reason, ts))
        if remaining > 0:
            raise AssertionError(f"ADL could not find {remaining} of opposite open interest in {chunk.symbol}")
