"""Cross margin on the signals path (issue 17): one wallet backs every perpetual; a hand-computed case
with two positions, the isolated case for contrast, funding into the wallet and bad input."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.margin import Tiers

FLAT = Tiers([(0, math.inf, 0.01, 0, 50)])  # one tier: mmr 1 %, no maintenance amount


def _books(a_low, n=5):
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    out = {}
    for s in ("A", "B"):
        c = np.full(n, 100.0)
        low = c.copy()
        if s == "A":
            low[2] = a_low
        out[s] = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0, "mark_open": c,
                               "mark_high": c, "mark_low": low, "mark_close": c}, index=idx)
    le = pd.DataFrame(False, idx, ["A", "B"])
    le.iloc[0, 0] = True
    se = pd.DataFrame(False, idx, ["A", "B"])
    se.iloc[0, 1] = True
    size = {"A": 50.0, "B": 30.0}
    return out, le, se, size


def _run(data, le, se, size, **kw):
    return nbtrade.backtest(data, entries=le, short_entries=se, instrument="perp", leverage=10, size=size,
                            size_type="amount", init_cash=1000.0, maintenance=FLAT, **kw)


def test_cross_two_positions_hand_computed():
    """Long 50 A and short 30 B at 100, wallet 1000. Bar 2: A's mark low 80, B flat. At the adverse marks
    the margin balance is 1000 + 50 * (80 - 100) = 0 <= maintenance 0.01 * (50 * 80 + 30 * 100) = 70:
    the wallet is liquidated and both positions close.
    A at its cross price with B at its extreme (other = 0 - 30): 1000 - 30 + 50 (P - 100) = 0.005 * 100 P
    -> P = 4030 / 49.5 = 81.41...; B with A at 80 (other = -1000 - 40): its price 2960 / 30.3 = 97.69 lies
    below its open 100 (a short already under water at the open): it fills at the mark open, 100.
    Fees 0.5 % of each notional from the wallet: 70.71 - 20.35 - 15 = 35.35 left."""
    data, le, se, size = _books(80.0)
    r = _run(data, le, se, size, margin="cross", liquidation_fee=0.005)
    tr = r.trades.set_index("symbol")
    pa = 4030 / 49.5
    assert list(tr["exit_reason"]) == ["liquidation", "liquidation"]
    assert tr.loc["A", "exit_price"] == pytest.approx(pa, rel=1e-12)
    assert tr.loc["B", "exit_price"] == pytest.approx(100.0, rel=1e-12)
    assert (tr["exit_time"] == data["A"].index[2]).all()
    fee_a, fee_b = 0.005 * 50 * pa, 0.005 * 30 * 100
    assert tr.loc["A", "fees"] == pytest.approx(fee_a, rel=1e-12)
    want = 1000 + 50 * (pa - 100) - fee_a - fee_b
    assert r.equity.iloc[-1] == pytest.approx(want, rel=1e-12)
    assert "cross margin" in r.assumptions["margin"]
    # default fee: each position's maintenance margin is forfeited; here it leaves exactly zero
    r = _run(data, le, se, size, margin="cross")
    assert r.equity.iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_cross_survives_where_the_wallet_covers_the_loss_and_isolated_does_not():
    """A's low at 88: isolated, A's own margin (500) is gone at 90.9 (LP = (500 - 5000) / (0.5 - 50)) and A is
    liquidated; cross, the wallet still holds 1000 - 600 = 400 > maintenance 44 + 30, nothing closes."""
    data, le, se, size = _books(88.0)
    iso = _run(data, le, se, size)
    assert list(iso.trades.set_index("symbol")["exit_reason"].sort_index()) == ["liquidation", "end"]
    assert iso.trades.set_index("symbol").loc["A", "exit_price"] == pytest.approx(4500 / 49.5, rel=1e-12)
    cross = _run(data, le, se, size, margin="cross")
    assert list(cross.trades["exit_reason"]) == ["end", "end"]
    np.testing.assert_allclose(cross.equity.to_numpy(), [1000.0] * 5, rtol=1e-12)


def test_cross_liquidates_at_the_open_through_a_gap():
    data, le, se, size = _books(70.0)
    for s in ("open", "mark_open", "close", "mark_close", "low", "mark_low", "high", "mark_high"):
        data["A"].loc[data["A"].index[2:], s] = 70.0 if s != "mark_low" else 60.0
    r = _run(data, le, se, size, margin="cross", liquidation_fee=0.0)
    tr = r.trades.set_index("symbol")
    assert list(tr["exit_reason"]) == ["liquidation", "liquidation"]
    assert tr.loc["A", "exit_price"] == 70.0 and tr.loc["B", "exit_price"] == 100.0
    # the loss past the wallet (1000 - 1500) is absorbed: the wallet ends at zero, never below
    assert r.equity.iloc[-1] == pytest.approx(0.0, abs=1e-9)
    assert (r.equity >= -1e-9).all()


def test_cross_funding_goes_to_the_wallet():
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    data, le, se, size = _books(100.0)
    market = prepare_data(data)
    t = np.asarray(market.time_ms)
    _attach_events(market, {"A": {"time": t[[3]], "rate": np.array([0.001])},
                            "B": {"time": t[[3]], "rate": np.array([0.001])}})
    r = _run(market, le, se, size, margin="cross")
    # long A pays 50 * 100 * 0.001 = 5, short B receives 30 * 100 * 0.001 = 3
    assert r.funding.iloc[3].tolist() == pytest.approx([-5.0, 3.0])
    assert r.equity.iloc[-1] == pytest.approx(998.0, rel=1e-12)


@pytest.mark.parametrize("kw, match", [
    (dict(margin="cross", instrument={"A": "perp"}), r"margin='cross' backs perpetual positions with one wallet; "
                                                      r"instrument makes \['B'\] spot"),
    (dict(margin="cross", cash_sharing=False), "margin='cross' backs every position with one wallet, and "
                                               "cash_sharing"),
    (dict(margin="portfolio"), "margin must be one of"),
])
def test_cross_bad_input_names_the_argument(kw, match):
    data, le, se, size = _books(100.0)
    kw.setdefault("instrument", "perp")
    with pytest.raises(ValueError, match=match):
        nbtrade.backtest(data, entries=le, short_entries=se, leverage=10, size=size, size_type="amount",
                         init_cash=1000.0, **kw)


@pytest.mark.parametrize("margin", ["isolated", "cross"])
def test_margin_on_a_spot_run_is_an_error(margin):
    data, le, se, size = _books(100.0)
    with pytest.raises(ValueError, match=f"margin='{margin}' applies to perpetuals"):
        nbtrade.backtest(data, entries=le, short_entries=se, leverage=10, size=size, size_type="amount",
                         init_cash=1000.0, margin=margin)


@pytest.mark.parametrize("seed", range(6))
def test_random_cross_runs_close_the_whole_wallet_and_never_go_below_zero(seed):
    """Random 3-symbol cross runs with deep mark wicks and funding: a liquidation closes every open position
    at that bar (none spans it), and equity never goes below zero (the wallet is floored)."""
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    rng = np.random.default_rng(seed)
    n, syms = 80, ("A", "B", "C")
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    data = {}
    for s in syms:
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        wick = rng.uniform(0, 0.25, n) * (rng.random(n) < 0.1)
        data[s] = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0, "mark_open": c,
                                "mark_high": c * (1 + wick), "mark_low": c * (1 - wick), "mark_close": c},
                               index=idx)
    market = prepare_data(data)
    t = np.asarray(market.time_ms)
    _attach_events(market, {s: {"time": t[5::8], "rate": rng.normal(0, 0.003, len(t[5::8]))} for s in syms})
    le = pd.DataFrame(rng.random((n, 3)) < 0.15, idx, list(syms))
    lx = pd.DataFrame(rng.random((n, 3)) < 0.05, idx, list(syms))
    se = pd.DataFrame(rng.random((n, 3)) < 0.1, idx, list(syms))
    r = nbtrade.backtest(market, entries=le, exits=lx, short_entries=se, short_exits=lx, instrument="perp",
                         leverage=float(rng.choice([10.0, 20.0])), margin="cross", size=0.3, fees=0.001,
                         init_cash=1000.0, fill=str(rng.choice(["next_open", "close"])))
    assert (r.equity.to_numpy() >= -1e-9).all()
    tr = r.trades
    for when in tr.loc[tr["exit_reason"] == "liquidation", "exit_time"].unique():
        spans = tr[(tr["entry_time"] <= when) & (tr["exit_time"] > when)]
        assert spans.empty, spans  # nothing stays open through a wallet liquidation
        closed = tr[tr["exit_time"] == when]
        assert (closed["exit_reason"] == "liquidation").all() or \
            (closed.loc[closed["exit_reason"] != "liquidation", "entry_time"] == when).all()
