"""Per-symbol leverage (issue 17): ``leverage=`` a number, a mapping or a Series by symbol; each symbol's
leverage is checked against its own tier maximum and read per column by the kernel."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.margin import Tiers


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    out = {}
    for j, s in enumerate(("A", "B")):
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        lo, hi = c * (1 - rng.uniform(0, 0.12, n)), c * (1 + rng.uniform(0, 0.12, n))
        out[s] = pd.DataFrame({"open": c, "high": hi, "low": lo, "close": c, "volume": 1.0}, index=idx)
    le = pd.DataFrame(rng.random((n, 2)) < 0.2, idx, ["A", "B"])
    lx = pd.DataFrame(rng.random((n, 2)) < 0.1, idx, ["A", "B"])
    return out, le, lx


def _run(data, le, lx, **kw):
    return nbtrade.backtest(data, entries=le, exits=lx, short_entries=lx, short_exits=le, instrument="perp",
                            size=0.5, fees=0.001, init_cash=1000.0, **kw)


@pytest.mark.parametrize("seed", range(4))
def test_per_symbol_leverage_equals_each_symbol_alone(seed):
    data, le, lx = _data(seed=seed)
    both = _run(data, le, lx, leverage={"A": 3, "B": 20}, cash_sharing=False)
    for s, lev in (("A", 3.0), ("B", 20.0)):
        alone = _run({s: data[s]}, le[[s]], lx[[s]], leverage=lev)
        got = both.trades[both.trades["symbol"] == s].reset_index(drop=True)
        want = alone.trades.reset_index(drop=True)
        assert list(got["exit_reason"]) == list(want["exit_reason"])
        np.testing.assert_allclose(got["pnl"].to_numpy(), want["pnl"].to_numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got["size"].to_numpy(), want["size"].to_numpy(), rtol=1e-12)
    assert both.assumptions["leverage"] == {"A": 3.0, "B": 20.0}
    # the high-leverage symbol is liquidated more often on these wicks
    assert (both.trades["exit_reason"] == "liquidation").any()


def test_leverage_series_equals_mapping_and_uniform_mapping_equals_scalar():
    data, le, lx = _data(seed=5)
    a = _run(data, le, lx, leverage={"A": 2, "B": 7})
    b = _run(data, le, lx, leverage=pd.Series({"B": 7.0, "A": 2.0}))
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    c = _run(data, le, lx, leverage={"A": 5, "B": 5})
    d = _run(data, le, lx, leverage=5)
    np.testing.assert_array_equal(c.equity.to_numpy(), d.equity.to_numpy())
    # a symbol the mapping leaves out trades at 1x
    e = _run(data, le, lx, leverage={"A": 2})
    f = _run(data, le, lx, leverage={"A": 2, "B": 1})
    np.testing.assert_array_equal(e.equity.to_numpy(), f.equity.to_numpy())


def test_shared_cash_sizing_uses_each_symbols_leverage():
    """Free margin with shared cash counts each open position at its own leverage: A (2x) holds
    notional 1000 -> margin 500; B's 50 % entry at 10x then gets 0.5 * (1000 - 500) * 10 = 2500."""
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    flat = pd.DataFrame({"open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0, "volume": 1.0}, index=idx)
    le = pd.DataFrame({"A": [True, False, False, False], "B": [False, True, False, False]}, idx)
    r = nbtrade.backtest({"A": flat, "B": flat}, entries=le, instrument="perp", leverage={"A": 2, "B": 10},
                         size=0.5, size_type="percent", init_cash=1000.0)
    sizes = dict(zip(r.trades["symbol"], r.trades["size"] * r.trades["entry_price"]))
    assert sizes["A"] == pytest.approx(1000.0, rel=1e-12)
    assert sizes["B"] == pytest.approx(2500.0, rel=1e-12)


@pytest.mark.parametrize("lev, match", [
    ({"A": 3, "B": 60}, r"leverage\['B'\] 60 is above the maximum 50"),
    ({"A": 0, "B": 2}, r"leverage\['A'\] must be a finite number > 0"),
    ({"C": 2}, r"leverage names symbols not in the data: \['C'\]"),
    (pd.Series({"A": 2.0, "B": -1.0}), r"leverage\['B'\] must be a finite number > 0"),
])
def test_bad_per_symbol_leverage_names_the_symbol(lev, match):
    data, le, lx = _data()
    tiers = Tiers([(0, 1e6, 0.01, 0, 50)])
    with pytest.raises(ValueError, match=match):
        _run(data, le, lx, leverage=lev, maintenance=tiers)


def test_per_symbol_leverage_is_for_signals_runs():
    data, _, _ = _data()
    w = pd.DataFrame(0.5, index=data["A"].index, columns=["A", "B"])
    with pytest.raises(TypeError, match="leverage must be a number in this mode"):
        nbtrade.backtest_weights(data, w, leverage={"A": 2})


def test_spot_per_symbol_leverage_equals_each_symbol_alone():
    """Spot margin (leverage > 1, shorts) takes the per-symbol leverage too (price candles as the mark)."""
    data, le, lx = _data(seed=9)
    kw = dict(entries=le, exits=lx, short_entries=lx, short_exits=le, size=0.5, fees=0.001, init_cash=1000.0)
    both = nbtrade.backtest(data, leverage={"A": 2, "B": 8}, cash_sharing=False, **kw)
    for s, lev in (("A", 2.0), ("B", 8.0)):
        one = {k: v[[s]] for k, v in kw.items() if isinstance(v, pd.DataFrame)}
        alone = nbtrade.backtest({s: data[s]}, leverage=lev, size=0.5, fees=0.001, init_cash=1000.0, **one)
        got = both.trades[both.trades["symbol"] == s].reset_index(drop=True)
        np.testing.assert_allclose(got["pnl"].to_numpy(), alone.trades["pnl"].to_numpy(), rtol=1e-12, atol=1e-12)
        assert list(got["exit_reason"]) == list(alone.trades["exit_reason"])
