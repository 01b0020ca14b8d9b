"""Alerts (SPEC §2.3): margin-ratio thresholds, price levels and ADL quintiles, emitted as engine events.

A margin-ratio or ADL alert fires at most once per 30 minutes per position (engine time, from the market
timestamps); a price alert fires once when the mark crosses its level and is then spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perprisk import events as ev
from perprisk.errors import ValidationError
from perprisk.formulas import MarginMode
from perprisk.formulas.margin import margin_ratio
from perprisk.money import Fraction, Rounding, round_to_step

#: Minimum time between two margin-ratio (or ADL) alerts of one position.
REPEAT_AFTER_MS = 30 * 60 * 1000
ALERT_KINDS = ("margin_ratio", "price", "adl_quintile")


@dataclass(frozen=True)
class AlertRule:
    alert_id: int
    account_id: int
    kind: str  # margin_ratio | price | adl_quintile
    symbol: str
    threshold: Decimal  # percent for margin_ratio; price for price; quintile 1–5 for adl_quintile
    direction: str = "above"  # price alerts: fire when the mark goes above / below the level


def validate_rule(kind: str, threshold: Decimal, direction: str) -> None:
    if kind not in ALERT_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(ALERT_KINDS)}; got {kind!r}")
    if direction not in ("above", "below"):
        raise ValidationError("direction", f"must be 'above' or 'below'; got {direction!r}")
    if kind == "adl_quintile" and threshold not in (1, 2, 3, 4, 5):
        raise ValidationError("threshold", "an ADL quintile alert takes 1 to 5")
    if threshold <= 0:
        raise ValidationError("threshold", f"must be greater than zero, got {threshold}")


class AlertBook:
    """The alert rules of all accounts and when each last fired."""

    def __init__(self) -> None:
        self.rules: dict[int, AlertRule] = {}
        self.last_fired: dict[tuple[int, str, str], int] = {}  # (alert id, symbol, slot) → time
        self.next_id = 1

    def add(self, account_id: int, kind: str, symbol: str, threshold: Decimal, direction: str) -> AlertRule:
        rule = AlertRule(self.next_id, account_id, kind, symbol, threshold, direction)
        self.rules[rule.alert_id] = rule
        self.next_id += 1
        return rule

    def evaluate(self, engine: Any, symbol: str, timestamp_ms: int, previous_mark: Decimal | None) -> None:
        """Fire the rules of ``symbol`` that the current state meets (called after each risk pass)."""
        quintiles: dict[tuple[int, str], int] | None = None
        mark = engine.mark(symbol)
        for rule in sorted((r for r in self.rules.values() if r.symbol == symbol), key=lambda r: r.alert_id):
            account = engine.accounts.get(rule.account_id)
            if account is None:
                continue
            if rule.kind == "price":
                crossed = mark >= rule.threshold if rule.direction == "above" else mark <= rule.threshold
                was = previous_mark is not None and (
                    previous_mark >= rule.threshold if rule.direction == "above" else previous_mark <= rule.threshold)
                if crossed and not was:
                    del self.rules[rule.alert_id]
                    engine._events.append(ev.Alert(rule.account_id, "price", symbol,
                                                   f"mark {mark} is {rule.direction} {rule.threshold}", mark,
                                                   timestamp_ms))
                continue
            for position in account.open_positions():
                if position.symbol != symbol:
                    continue
                key = (rule.alert_id, symbol, position.slot)
                last = self.last_fired.get(key)
                if last is not None and timestamp_ms - last < REPEAT_AFTER_MS:
                    continue
                if rule.kind == "margin_ratio":
                    if position.margin_mode is MarginMode.ISOLATED:
                        ratio = margin_ratio(engine.position_maintenance(position, mark), engine.isolated_equity(position))
                    else:
                        ratio = margin_ratio(engine.cross_maintenance(account), engine.cross_equity(account))
                    pct = None if ratio is None else ratio * 100
                    if pct is None or pct >= Fraction(rule.threshold):
                        value = None if pct is None else round_to_step(pct, Decimal("0.01"), Rounding.HALF_EVEN)
                        self.last_fired[key] = timestamp_ms
                        engine._events.append(ev.Alert(rule.account_id, "margin_ratio", symbol,
                                                       f"margin ratio {value if value is not None else '∞'} % ≥ "
                                                       f"{rule.threshold} %", value, timestamp_ms))
                else:
                    if quintiles is None:
                        quintiles = engine.liquidator.adl_quintiles(symbol)
                    q = quintiles.get((rule.account_id, position.slot))
                    if q is not None and q >= rule.threshold:
                        self.last_fired[key] = timestamp_ms
                        engine._events.append(ev.Alert(rule.account_id, "adl_quintile", symbol,
                                                       f"ADL quintile {q} ≥ {rule.threshold}", Decimal(q),
                                                       timestamp_ms))
