"""Request bodies: JSON numbers are read as exact decimals (never binary floats), strings are accepted too.

Only the shape is checked here (types, lengths, a sane magnitude); every rule of the exchange (tick, lot,
leverage, margin) is the engine's, which names the field it refuses.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Optional

from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_DIGITS = 40
MAX_EXPONENT = 30


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a decimal number, got a boolean")
    if isinstance(value, float):  # only reachable when a caller bypasses the JSON reader
        raise ValueError("binary floats are refused for exact money: pass the number as a string")
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text or len(text) > 64:
            raise ValueError("expected a decimal number of at most 64 characters")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value[:40]!r}") from None
    elif not isinstance(value, Decimal):
        raise ValueError(f"expected a decimal number (string or number), got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value != 0:
        digits = len(value.as_tuple().digits)
        if digits > MAX_DIGITS or abs(value.adjusted()) > MAX_EXPONENT:
            raise ValueError(f"out of range: at most {MAX_DIGITS} digits and magnitude 1e±{MAX_EXPONENT}")
    return value


Num = Annotated[Decimal, BeforeValidator(_decimal)]
Symbol = Annotated[str, Field(min_length=1, max_length=32)]
Text = Annotated[str, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateAccountBody(Body):
    position_mode: Literal["one_way", "hedge"] = "one_way"


class DepositBody(Body):
    account_id: int = Field(ge=1, le=2**53)
    asset: Text
    amount: Num


class WithdrawBody(DepositBody):
    pass


class InsuranceBody(Body):
    asset: Text = "USDT"
    amount: Num
    symbol: Optional[Symbol] = None


class MarkBody(Body):
    symbol: Symbol
    mark_price: Num
    index_price: Optional[Num] = None


class FundingBody(Body):
    symbol: Symbol
    rate: Optional[Num] = None


class FeedBody(Body):
    action: Literal["start", "pause"]


class OrderBody(Body):
    symbol: Symbol
    side: Text
    quantity: Num
    order_type: Text = "limit"
    price: Optional[Num] = None
    time_in_force: Optional[Text] = None
    reduce_only: bool = False
    position_side: Optional[Text] = None
    self_trade_prevention: Text = "none"
    trigger_price: Optional[Num] = None
    trigger_reference: Text = "mark"
    callback_distance: Optional[Num] = None
    callback_rate: Optional[Num] = None
    activation_price: Optional[Num] = None
    client_order_id: Optional[Text] = None


class AmendBody(Body):
    price: Optional[Num] = None
    quantity: Optional[Num] = None


class MarginBody(Body):
    amount: Num
    position_side: Optional[Text] = None


class LeverageBody(Body):
    symbol: Symbol
    leverage: Num


class MarginModeBody(Body):
    symbol: Symbol
    margin_mode: Text


class PositionModeBody(Body):
    position_mode: Text


class AutoAddBody(Body):
    symbol: Symbol
    enabled: bool


class AlertBody(Body):
    kind: Text
    symbol: Symbol
    threshold: Num
    direction: Text = "above"


class ReverseSizeBody(Body):
    family: Text = "binance"
    symbol: Symbol = "BTCUSDT"
    side: Text
    entry: Num
    worst: Num
    margin: Num
    lot: Optional[Num] = None
    taker_fee: Optional[Num] = None
    mmr: Optional[Num] = None
    maintenance_amount: Optional[Num] = None


# ------------------------------------------------------------------------------------- exact JSON reader


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number", name, 0)


def _bounded_int(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise json.JSONDecodeError("integer too long", text[:20], 0)
    return int(text)


def _bounded_float(text: str) -> Decimal:
    if len(text) > 64:
        raise json.JSONDecodeError("number too long", text[:20], 0)
    return Decimal(text)


def loads(body: bytes | str) -> Any:
    """JSON with exact numbers: fractions become Decimals; NaN/Infinity and absurd lengths are refused."""
    return json.loads(body, parse_float=_bounded_float, parse_int=_bounded_int, parse_constant=_no_constants)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = loads(body)
            except UnicodeDecodeError as err:
                raise json.JSONDecodeError(f"not UTF-8: {err.reason}", "", 0) from None
            except RecursionError:
                raise json.JSONDecodeError("nested too deeply", "", 0) from None
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is read with :func:`loads`."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Any:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact
