"""perprisk.money: parsing at the boundary, named rounding to a step, exact rationals back to Decimal, plain text.

Rounding is checked two ways: against a hand-written table (ties, negatives, every mode) and against the
semantics of :mod:`decimal` itself (``quantize`` for powers of ten, ``to_integral_value`` of ``value/step``
for any other step), which is the reference the module claims to follow.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.money import (
    DISPLAY_DIGITS,
    Rounding,
    format_decimal,
    fraction_to_decimal,
    is_multiple_of,
    json_number,
    quantize,
    round_price,
    round_quantity,
    round_to_step,
    to_decimal,
)

D = Decimal
FIELD = "positions[0].size"


# ------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1.5", D("1.5")),
        ("  2  ", D("2")),
        ("1_000.25", D("1000.25")),
        ("-3", D("-3")),
        ("0", D("0")),
        ("1e3", D("1000")),
        ("0.000000001", D("0.000000001")),
        ("123456789012345678901234567890.123456789", D("123456789012345678901234567890.123456789")),
        (7, D(7)),
        (-12, D(-12)),
        (10**40, D(10**40)),
        (D("0.1"), D("0.1")),
        (D("-2.50"), D("-2.50")),
    ],
)
def test_to_decimal_accepts_str_int_decimal(value, expected):
    got = to_decimal(value, FIELD)
    assert isinstance(got, Decimal)
    assert got == expected


def test_to_decimal_keeps_the_given_digits_exactly():
    # no context rounding on the way in: 70 significant digits survive
    text = "1." + "3" * 69
    assert str(to_decimal(text, FIELD)) == text
    assert str(to_decimal(D("1.10"), FIELD)) == "1.10"


@pytest.mark.parametrize(
    "value",
    [
        0.1,
        1.0,
        float("nan"),
        float("inf"),
        float("-inf"),
        True,
        False,
        "",
        "   ",
        "abc",
        "1,5",
        "1.2.3",
        "--1",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "inf",
        "-inf",
        "-Infinity",
        D("NaN"),
        D("sNaN"),
        D("Infinity"),
        D("-Infinity"),
        None,
        b"1",
        [1],
        object(),
    ],
    ids=lambda v: "object" if type(v) is object else repr(v),  # stable ids: xdist compares collections
)
def test_to_decimal_refuses_with_the_field_named(value):
    with pytest.raises(ValidationError) as info:
        to_decimal(value, FIELD)
    assert info.value.field == FIELD
    assert str(info.value).startswith(f"{FIELD}: ")
    assert info.value.to_dict() == {"field": FIELD, "message": info.value.message}


def test_validation_error_is_a_value_error():
    with pytest.raises(ValueError):
        to_decimal("x", "price")


@pytest.mark.parametrize("value", ["0", "-1", "-0.0001"])
def test_positive_refuses_zero_and_negatives(value):
    with pytest.raises(ValidationError) as info:
        to_decimal(value, "size", positive=True)
    assert info.value.field == "size"


def test_non_negative_refuses_negatives_only():
    assert to_decimal("0", "margin", non_negative=True) == 0
    assert to_decimal("5", "margin", non_negative=True) == 5
    with pytest.raises(ValidationError) as info:
        to_decimal("-0.01", "margin", non_negative=True)
    assert info.value.field == "margin"


def test_float_refusal_says_how_to_pass_the_number():
    with pytest.raises(ValidationError) as info:
        to_decimal(0.1, "price")
    assert "0.1" in info.value.message


def test_json_number_is_exact():
    assert json_number("0.1") == D("0.1")
    assert str(json_number("1.10")) == "1.10"


# ------------------------------------------------------------------------------------------ rounding

# (value, step, mode, expected): hand-written — ties, negatives, every mode.
ROUNDING_TABLE = [
    # ties at .5 of the step
    ("2.5", "1", Rounding.HALF_EVEN, "2"),
    ("3.5", "1", Rounding.HALF_EVEN, "4"),
    ("-2.5", "1", Rounding.HALF_EVEN, "-2"),
    ("-3.5", "1", Rounding.HALF_EVEN, "-4"),
    ("2.5", "1", Rounding.HALF_UP, "3"),
    ("-2.5", "1", Rounding.HALF_UP, "-3"),
    ("2.5", "1", Rounding.UP, "3"),
    ("-2.5", "1", Rounding.UP, "-3"),
    ("2.5", "1", Rounding.DOWN, "2"),
    ("-2.5", "1", Rounding.DOWN, "-2"),
    ("2.5", "1", Rounding.FLOOR, "2"),
    ("-2.5", "1", Rounding.FLOOR, "-3"),
    ("2.5", "1", Rounding.CEILING, "3"),
    ("-2.5", "1", Rounding.CEILING, "-2"),
    # off-tie values
    ("1.2345", "0.01", Rounding.HALF_EVEN, "1.23"),
    ("1.2351", "0.01", Rounding.HALF_EVEN, "1.24"),
    ("1.235", "0.01", Rounding.HALF_EVEN, "1.24"),
    ("1.245", "0.01", Rounding.HALF_EVEN, "1.24"),
    ("1.245", "0.01", Rounding.HALF_UP, "1.25"),
    ("-1.245", "0.01", Rounding.HALF_UP, "-1.25"),
    ("1.2301", "0.01", Rounding.UP, "1.24"),
    ("-1.2301", "0.01", Rounding.UP, "-1.24"),
    ("1.2399", "0.01", Rounding.DOWN, "1.23"),
    ("-1.2399", "0.01", Rounding.DOWN, "-1.23"),
    ("1.2399", "0.01", Rounding.FLOOR, "1.23"),
    ("-1.2301", "0.01", Rounding.FLOOR, "-1.24"),
    ("1.2301", "0.01", Rounding.CEILING, "1.24"),
    ("-1.2399", "0.01", Rounding.CEILING, "-1.23"),
    # already on the grid: every mode leaves it alone
    ("-7.00", "0.01", Rounding.UP, "-7"),
    ("-7.00", "0.01", Rounding.DOWN, "-7"),
    ("-7.00", "0.01", Rounding.FLOOR, "-7"),
    ("-7.00", "0.01", Rounding.CEILING, "-7"),
    ("0", "0.1", Rounding.UP, "0"),
    # steps that are not powers of ten (ticks of 0.5, 0.25, 5)
    ("10.25", "0.5", Rounding.HALF_EVEN, "10"),
    ("10.75", "0.5", Rounding.HALF_EVEN, "11"),
    ("10.25", "0.5", Rounding.HALF_UP, "10.5"),
    ("-10.25", "0.5", Rounding.HALF_UP, "-10.5"),
    ("10.01", "0.5", Rounding.UP, "10.5"),
    ("-10.01", "0.5", Rounding.UP, "-10.5"),
    ("10.49", "0.5", Rounding.DOWN, "10"),
    ("-10.49", "0.5", Rounding.FLOOR, "-10.5"),
    ("1.125", "0.25", Rounding.HALF_EVEN, "1"),
    ("1.375", "0.25", Rounding.HALF_EVEN, "1.5"),
    ("12.5", "5", Rounding.HALF_EVEN, "10"),
    ("17.5", "5", Rounding.HALF_EVEN, "20"),
    ("-12.5", "5", Rounding.HALF_UP, "-15"),
    ("-12.4", "5", Rounding.CEILING, "-10"),
]


@pytest.mark.parametrize("value, step, mode, expected", ROUNDING_TABLE)
def test_round_to_step_hand_table(value, step, mode, expected):
    got = round_to_step(D(value), D(step), mode)
    assert got == D(expected)
    assert is_multiple_of(got, D(step))


def _decimal_reference(value: Decimal, step: Decimal, mode: Rounding) -> Decimal:
    """decimal's own semantics: quantize for a power of ten, else integral of value/step times step."""
    ctx = decimal.Context(prec=200)  # ample: every value and step in the table has < 30 digits
    if step.normalize(ctx).as_tuple().digits == (1,):  # 1, 10, 0.1, 0.01, ...
        return value.quantize(step.normalize(ctx), rounding=mode.decimal_mode, context=ctx)
    units = ctx.divide(value, step).to_integral_value(rounding=mode.decimal_mode, context=ctx)
    return ctx.multiply(units, step)


VALUES = [
    "0", "0.5", "-0.5", "1.5", "-1.5", "2.5", "-2.5", "0.004", "-0.004", "0.005", "-0.005", "0.006",
    "-0.006", "123.455", "-123.455", "123.4549", "-123.4551", "99999.995", "-99999.995", "7", "-7",
    "0.0000001", "-0.0000001", "20000.125", "-20000.375", "1.25", "-1.75",
]
STEPS = ["1", "0.1", "0.01", "0.001", "0.5", "0.25", "5", "10", "0.0005"]


@pytest.mark.parametrize("mode", list(Rounding), ids=lambda m: m.value)
@pytest.mark.parametrize("step", STEPS)
def test_round_to_step_matches_decimal_semantics(step, mode):
    for value in VALUES:
        got = round_to_step(D(value), D(step), mode)
        want = _decimal_reference(D(value), D(step), mode)
        assert got == want, (value, step, mode)
        assert is_multiple_of(got, D(step))
        # never more than one step away, and on the side the mode promises
        diff = got - D(value)
        assert abs(diff) < D(step)
        if mode is Rounding.FLOOR:
            assert diff <= 0
        if mode is Rounding.CEILING:
            assert diff >= 0
        if mode is Rounding.DOWN:
            assert abs(got) <= abs(D(value))
        if mode is Rounding.UP:
            assert abs(got) >= abs(D(value))
        if mode in (Rounding.HALF_EVEN, Rounding.HALF_UP):
            assert 2 * abs(diff) <= D(step)


def test_round_to_step_power_of_ten_keeps_the_step_exponent():
    # a price rounded to a 0.01 tick reads like decimal's quantize: two places
    assert str(round_to_step(D("1.5"), D("0.01"), Rounding.HALF_EVEN)) == "1.50"
    assert str(round_price(D("19700.004"), D("0.1"), Rounding.FLOOR)) == "19700.0"


@pytest.mark.parametrize(
    "value, step, mode, expected",
    [
        (Fraction(1, 3), "0.01", Rounding.UP, "0.34"),
        (Fraction(-1, 3), "0.01", Rounding.UP, "-0.34"),
        (Fraction(1, 3), "0.01", Rounding.DOWN, "0.33"),
        (Fraction(2, 3), "0.01", Rounding.HALF_EVEN, "0.67"),
        (Fraction(1, 8), "0.01", Rounding.HALF_EVEN, "0.12"),
        (Fraction(3, 8), "0.01", Rounding.HALF_EVEN, "0.38"),
        (Fraction(-1, 8), "0.01", Rounding.HALF_UP, "-0.13"),
        (Fraction(6750000, 249), "0.01", Rounding.HALF_UP, "27108.43"),
        (5, "2", Rounding.HALF_EVEN, "4"),
        (7, "2", Rounding.HALF_EVEN, "8"),
    ],
)
def test_round_to_step_takes_fractions_and_ints(value, step, mode, expected):
    assert round_to_step(value, D(step), mode) == D(expected)


def test_rounding_ignores_the_ambient_decimal_context():
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_CEILING
        assert round_to_step(D("123456789.125"), D("0.01"), Rounding.HALF_EVEN) == D("123456789.12")
        assert round_to_step(D("123456789.125"), D("0.01"), Rounding.DOWN) == D("123456789.12")


@pytest.mark.parametrize("step", ["0", "-0.01"])
def test_round_to_step_refuses_non_positive_step(step):
    with pytest.raises(ValidationError) as info:
        round_to_step(D("1"), D(step), Rounding.HALF_EVEN)
    assert info.value.field == "step"


def test_round_quantity_defaults_toward_zero_and_quantize_alias():
    assert round_quantity(D("1.23999"), D("0.001")) == D("1.239")
    assert round_quantity(D("-1.23999"), D("0.001")) == D("-1.239")
    assert round_quantity(D("1.2301"), D("0.001"), Rounding.UP) == D("1.231")
    assert quantize(D("2.345"), D("0.01"), Rounding.HALF_UP) == D("2.35")
    assert quantize(D("2.345"), D("0.01"), Rounding.HALF_EVEN) == D("2.34")


def test_is_multiple_of():
    assert is_multiple_of(D("19700.5"), D("0.5"))
    assert not is_multiple_of(D("19700.3"), D("0.5"))
    assert is_multiple_of(D("0"), D("0.01"))
    assert is_multiple_of(D("-1.25"), D("0.25"))
    assert not is_multiple_of(D("0.001"), D("0.01"))


def test_rounding_enum_maps_to_decimal_modes():
    assert {m: m.decimal_mode for m in Rounding} == {
        Rounding.DOWN: decimal.ROUND_DOWN,
        Rounding.UP: decimal.ROUND_UP,
        Rounding.FLOOR: decimal.ROUND_FLOOR,
        Rounding.CEILING: decimal.ROUND_CEILING,
        Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
        Rounding.HALF_UP: decimal.ROUND_HALF_UP,
    }


# ------------------------------------------------------------------------------- fraction_to_decimal


@pytest.mark.parametrize(
    "x, expected",
    [
        (Fraction(1, 8), "0.125"),
        (Fraction(3, 40), "0.075"),
        (Fraction(-7, 16), "-0.4375"),
        (Fraction(1, 2**20), "0.00000095367431640625"),
        (Fraction(19700), "19700"),
        (Fraction(0), "0"),
        (Fraction(123456789, 1000), "123456.789"),
        (Fraction(-1, 5**10), "-0.0000001024"),
        (Fraction(10**20 + 1, 4), "25000000000000000000.25"),
        (7, "7"),
        (-3, "-3"),
    ],
)
def test_fraction_to_decimal_exact_when_terminating(x, expected):
    got = fraction_to_decimal(x)
    assert got == D(expected)
    assert Fraction(got) == Fraction(x)


@pytest.mark.parametrize(
    "x",
    [
        Fraction(1, 2**50),  # 35 significant digits
        Fraction(10**30 + 1, 4),  # 32 significant digits
        Fraction(123456789012345678901234567890123, 1000),
    ],
)
def test_fraction_to_decimal_exact_for_long_terminating_expansions(x):
    assert Fraction(fraction_to_decimal(x)) == x


def test_fraction_to_decimal_ignores_the_ambient_context():
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        assert fraction_to_decimal(Fraction(123456789, 1000)) == D("123456.789")


@pytest.mark.parametrize(
    "x",
    [Fraction(1, 3), Fraction(2, 3), Fraction(-1, 7), Fraction(10**50, 3), Fraction(1, 3 * 10**30), Fraction(6750000, 249)],
)
def test_fraction_to_decimal_40_significant_digits_otherwise(x):
    got = fraction_to_decimal(x)
    assert len(got.as_tuple().digits) == DISPLAY_DIGITS == 40
    ref = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN).divide(D(x.numerator), D(x.denominator))
    assert got == ref
    # the error is below half a unit in the 40th digit
    ulp = Fraction(1) * Fraction(10) ** (got.adjusted() - 39)
    assert abs(Fraction(got) - x) <= ulp / 2


def test_fraction_to_decimal_known_values():
    assert str(fraction_to_decimal(Fraction(1, 3))) == "0." + "3" * 40
    assert str(fraction_to_decimal(Fraction(2, 3))) == "0." + "6" * 39 + "7"
    assert str(fraction_to_decimal(Fraction(2, 3), rounding=Rounding.DOWN)) == "0." + "6" * 40
    assert str(fraction_to_decimal(Fraction(1, 3), digits=5)) == "0.33333"
    assert str(fraction_to_decimal(Fraction(-2, 3), digits=3, rounding=Rounding.FLOOR)) == "-0.667"
    assert str(fraction_to_decimal(Fraction(-2, 3), digits=3, rounding=Rounding.CEILING)) == "-0.666"


def test_fraction_to_decimal_passes_decimals_through():
    d = D("1.2300")
    assert fraction_to_decimal(d) is d


# ------------------------------------------------------------------------------------ format_decimal


@pytest.mark.parametrize(
    "x, expected",
    [
        (D("1E+30"), "1" + "0" * 30),
        (D("1.2E+5"), "120000"),
        (D("1E-30"), "0." + "0" * 29 + "1"),
        (D("-4.5E-12"), "-0.0000000000045"),
        (D("123.4500"), "123.45"),
        (D("19700.000"), "19700"),
        (D("100"), "100"),
        (D("-0"), "0"),
        (D("0E-10"), "0"),
        (D("-0.000"), "0"),
        (D("0E+5"), "0"),
        (Fraction(1, 3), "0." + "3" * 40),
        (Fraction(1, 10**20), "0." + "0" * 19 + "1"),
        (Fraction(6750000, 249), "27108.43373493975903614457831325301204819"),
        (10**25, "1" + "0" * 25),
        (-5, "-5"),
    ],
)
def test_format_decimal_plain_text(x, expected):
    text = format_decimal(x)
    assert text == expected
    assert "e" not in text.lower()


def test_format_decimal_never_uses_exponents():
    for exp in range(-45, 46, 3):
        for digits in ("1", "25", "-987654321"):
            d = D(digits).scaleb(exp)
            text = format_decimal(d)
            assert "E" not in text and "e" not in text, d
            assert D(text) == d
            if "." in text:
                assert not text.endswith("0")


# --------------------------------------------------------------------------- quotient rounded to a step


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from perprisk.money import round_quotient_to_step  # noqa: E402

_decimals = st.decimals(min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=8)


@pytest.mark.parametrize("dividend, divisor, step, rounding, expected", [
    (D("0.003") * D("112345.6"), D(7), D("1e-8"), Rounding.CEILING, D("48.14811429")),  # 337.0368/7 = 48.1481142857…
    (D("0.003") * D("112345.6"), D(7), D("1e-8"), Rounding.FLOOR, D("48.14811428")),
    (D("100"), D(4), D("0.01"), Rounding.CEILING, D("25.00")),  # exact: no rounding up
    (D("1"), D(3), D("1"), Rounding.CEILING, D("1")),
    (D("-1"), D(3), D("0.1"), Rounding.CEILING, D("-0.3")),  # negative: the rational path, same mode
    (D("1"), D(3), D("0.1"), Rounding.HALF_EVEN, D("0.3")),
    (D("1e70"), D(3), D("1e-8"), Rounding.CEILING, round_to_step(Fraction(10**70, 3), D("1e-8"), Rounding.CEILING)),
])
def test_round_quotient_to_step_examples(dividend, divisor, step, rounding, expected):
    result = round_quotient_to_step(dividend, divisor, step, rounding)
    assert result == expected and str(result) == str(round_to_step(Fraction(dividend) / Fraction(divisor), step,
                                                                    rounding))


@settings(max_examples=300, deadline=None)
@given(_decimals, st.one_of(st.integers(-200, 200), _decimals), st.sampled_from([D("1e-8"), D("0.01"), D("1"), D("0.5")]),
       st.sampled_from(list(Rounding)))
def test_round_quotient_to_step_is_round_to_step_of_the_exact_quotient(dividend, divisor, step, rounding):
    if divisor == 0:
        return
    expected = round_to_step(Fraction(dividend) / Fraction(divisor), step, rounding)
    result = round_quotient_to_step(dividend, divisor, step, rounding)
    assert result == expected and str(result) == str(expected)  # the same figure, written the same way


@settings(max_examples=500, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=D("-1e15"), max_value=D("1e15")),
       st.sampled_from([D("1e-8"), D("0.001"), D("0.1"), D("0.5"), D("1"), D("3"), D("7"), D("0.25"), D("1E+2")]),
       st.sampled_from(list(Rounding)))
def test_round_to_step_of_a_decimal_is_the_rational_rounding(value, step, rounding):
    """The decimal fast path of round_to_step gives the figure (and the form) of the rational definition."""
    from perprisk.money import MONEY_CONTEXT, _round_fraction_to_int

    expected = MONEY_CONTEXT.multiply(Decimal(_round_fraction_to_int(Fraction(value) / Fraction(step), rounding)), step)
    result = round_to_step(value, step, rounding)
    assert result == expected and str(result) == str(expected)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("value", ["0.5", "-0.5", "1.5", "-1.5", "2.5", "-2.5", "0.05", "-0.15", "7", "-7", "0"])
def test_round_to_step_ties_and_exact_multiples(value, rounding):
    from perprisk.money import _round_fraction_to_int

    for step in (D("1"), D("0.1")):
        units = _round_fraction_to_int(Fraction(D(value)) / Fraction(step), rounding)
        assert round_to_step(D(value), step, rounding) == units * step
