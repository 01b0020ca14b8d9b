"""A position's cost basis stays bounded under many partial closes (regression: a flow desk of the stress
simulator closed in part thousands of times and its exact average cost grew to a 4,000-digit rational, which
made the state hash fail).  Partial closes keep the cost on the 1e-30 grid, floored; money is unaffected."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

from perprisk import commands as c
from perprisk.account import COST_STEP


def test_cost_basis_stays_on_its_grid_through_many_partial_closes(engine):
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    trader, desk = (engine.execute(c.CreateAccount())[0].account_id for _ in range(2))
    engine.execute(c.Deposit(trader, "USDT", D(10**6)))
    engine.execute(c.Deposit(desk, "USDT", D(10**8)))
    engine.execute(c.BlockTrade(trader, desk, "BTCUSDT", "buy", D("0.997"), D("100000.1")))
    exact_cost = Fraction(D("0.997")) * Fraction(D("100000.1"))
    size = D("0.997")
    for k in range(300):  # close 0.003 at a time: remaining/size is rarely a decimal ratio
        price = D(100000) + D(k % 7)
        engine.execute(c.BlockTrade(trader, desk, "BTCUSDT", "sell", D("0.003"), price, True))
        exact_cost = exact_cost * Fraction(size - D("0.003")) / Fraction(size)
        size -= D("0.003")
        position = engine.accounts[trader].position("BTCUSDT", "both")
        assert position.size == size
        assert (10**30) % position.cost.denominator == 0  # on the grid: bounded size
        assert 0 <= exact_cost - position.cost < Fraction(COST_STEP) * (k + 1)  # floored, error bounded
    assert all(v == 0 for v in engine.conservation_error().values())
    assert len(engine.state_hash()) == 64
