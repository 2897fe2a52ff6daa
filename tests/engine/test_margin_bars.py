"""The per-bar order of ``nbtrade.margin`` on one isolated position, hand-computed (the reference's
``walk_isolated``, which the engine comparison will reuse). Long or short 1 BTC @ 30,000 at 10x
(margin 3,000) on the default table (0.4 %, cum 0 below 50,000): long LP 27,000 / 0.996 =
27,108.43, short LP 33,000 / 1.004 = 32,868.53."""
import math

import pytest

from nbtrade.margin import DEFAULT_TIERS

from .reference_margin import walk_isolated

T = DEFAULT_TIERS.rows()
FLAT = (30_000.0, 30_100.0, 29_900.0, 30_000.0)


def test_untouched_position_stays_open():
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, [FLAT, (30_000.0, 30_500.0, 27_200.0, 29_000.0)])
    assert r["reason"] == "open" and r["pnl"] == -1_000.0 and r["returned"] == 2_000.0


def test_funding_moves_the_liquidation_price():
    # 1 % per bar at the open of bars 1 and 2, mark 30,000: the long pays 300 twice, margin 2,400:
    # LP = (2,400 - 30,000) / (0.004 - 1) = 27,710.84; bar 2's low 27,500 reaches it (27,108.43 would not)
    bars = [FLAT, FLAT, (30_000.0, 30_000.0, 27_500.0, 28_000.0)]
    funding = [(1, True, 0.01, math.nan), (2, True, 0.01, math.nan)]
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, bars, funding=funding)
    assert r["reason"] == "liquidation" and r["bar"] == 2
    assert r["fill"] == pytest.approx(27_600 / 0.996) and r["funding"] == -600.0
    # default fee: the remaining margin (the maintenance margin at LP) is forfeited
    assert r["returned"] == pytest.approx(0.0, abs=1e-9) and r["fee"] == pytest.approx(0.004 * 27_600 / 0.996)
    # without the funding the position survives that bar
    assert walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, bars)["reason"] == "open"


def test_short_receives_positive_funding():
    # short 1 @ 30,000, rate +0.01 % at the open of bar 1 with the row's mark 30,500: receives 3.05
    r = walk_isolated(-1, 1.0, 30_000.0, 3_000.0, T, [FLAT, FLAT], funding=[(1, True, 0.0001, 30_500.0)])
    assert r["funding"] == pytest.approx(3.05) and r["margin"] == pytest.approx(3_003.05)


def test_stop_between_open_and_liquidation_fills_first():
    # stop 28,000 above LP 27,108.43: the falling path meets it first; loss 2,000, 1,000 comes back
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, [(30_000.0, 30_100.0, 27_000.0, 27_500.0)], stop=28_000.0)
    assert (r["reason"], r["fill"], r["pnl"], r["returned"]) == ("stop", 28_000.0, -2_000.0, 1_000.0)


def test_stop_beyond_liquidation_never_fills():
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, [(30_000.0, 30_100.0, 26_900.0, 27_500.0)], stop=27_000.0)
    assert r["reason"] == "liquidation" and r["fill"] == pytest.approx(27_000 / 0.996)


def test_gap_through_liquidation_at_the_open():
    # bar 1 opens at 26,000, below LP: liquidated at the open; loss 4,000 on 3,000 of margin:
    # nothing comes back, 1,000 is absorbed, no fee is left to take (a rate fee too)
    bars = [FLAT, (26_000.0, 26_500.0, 25_000.0, 26_200.0)]
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, bars, stop=28_000.0, fee_rate=0.005)
    assert (r["reason"], r["bar"], r["fill"]) == ("liquidation", 1, 26_000.0)
    assert (r["returned"], r["absorbed"], r["fee"]) == (0.0, 1_000.0, 0.0)


def test_short_liquidated_at_the_high_with_a_fee_rate():
    # short LP 32,868.53; bar high 33,000: fill at LP; remaining 3,000 - 2,868.53 = 131.47;
    # fee 0.1 % x 32,868.53 = 32.87; returned 98.61
    r = walk_isolated(-1, 1.0, 30_000.0, 3_000.0, T, [FLAT, (31_000.0, 33_000.0, 30_900.0, 32_500.0)],
                      fee_rate=0.001)
    lp = 33_000 / 1.004
    assert r["reason"] == "liquidation" and r["fill"] == pytest.approx(lp)
    assert r["fee"] == pytest.approx(0.001 * lp)
    assert r["returned"] == pytest.approx(3_000 - (lp - 30_000) - 0.001 * lp)


def test_funding_inside_the_bar_is_pessimistic():
    # a 2 % payment inside bar 1 (not at its open): the check uses margin 3,000 - 600 = 2,400, LP 27,710.84;
    # the low 27,600 reaches it, so the position is liquidated and the payment booked
    bars = [FLAT, (30_000.0, 30_000.0, 27_600.0, 29_000.0)]
    r = walk_isolated(1, 1.0, 30_000.0, 3_000.0, T, bars, funding=[(1, False, 0.02, math.nan)])
    assert r["reason"] == "liquidation" and r["fill"] == pytest.approx(27_600 / 0.996)
    assert r["funding"] == -600.0
    # a receipt inside the bar does not help the check: a short receiving 2 % still liquidates at the
    # unfunded LP 32,868.53 when the high reaches 32,900, and the receipt is not booked
    bars = [FLAT, (30_000.0, 32_900.0, 30_000.0, 31_000.0)]
    r = walk_isolated(-1, 1.0, 30_000.0, 3_000.0, T, bars, funding=[(1, False, 0.02, math.nan)])
    assert r["reason"] == "liquidation" and r["fill"] == pytest.approx(33_000 / 1.004) and r["funding"] == 0.0
    # surviving the bar, it books the receipt: 600
    bars = [FLAT, (30_000.0, 31_000.0, 30_000.0, 31_000.0)]
    r = walk_isolated(-1, 1.0, 30_000.0, 3_000.0, T, bars, funding=[(1, False, 0.02, math.nan)])
    assert r["reason"] == "open" and r["funding"] == 600.0 and r["margin"] == 3_600.0
