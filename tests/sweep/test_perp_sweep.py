"""Perpetual options through ``nbtrade.sweep`` (issue 17, "works ... in sweeps"): the signals path (the
validated-once ``RunConfig`` engine) and the target-weights path; each row equals its own backtest,
liquidations and funding included."""
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import nbtrade
from nbtrade.data.panels import _attach_events
from nbtrade.engine.run import prepare_data
from nbtrade.kernels.sweep import METRICS

from .conftest import cross_ls

GRID = {"fast": [4, 8], "slow": [16, 30]}
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")


@pytest.fixture(scope="module")
def perp_market():
    """2 perpetuals x 240 hourly bars: mark candles with wide wicks (liquidations at 10-20x) and
    8-hourly funding events (rates of either sign; half with their own mark price)."""
    rng = np.random.default_rng(17)
    n, syms = 240, ["BTC/USDT", "ETH/USDT"]
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    data = {}
    for s in syms:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        opn = np.concatenate([[close[0]], close[:-1]])
        lo, hi = np.minimum(opn, close), np.maximum(opn, close)
        data[s] = pd.DataFrame({"open": opn, "high": hi * 1.002, "low": lo * 0.998, "close": close, "volume": 1.0,
                                "mark_open": opn, "mark_high": hi * (1 + rng.uniform(0, 0.06, n)),
                                "mark_low": lo * (1 - rng.uniform(0, 0.06, n)), "mark_close": close}, index=idx)
    market = prepare_data(data)
    ms = np.asarray(market.time_ms)
    bars = np.arange(0, n, 8)
    _attach_events(market, {s: {"time": ms[bars], "rate": rng.normal(1e-4, 3e-4, len(bars)),
                                "mark_price": np.where(rng.random(len(bars)) < 0.5, np.nan,
                                                       data[s]["close"].to_numpy()[bars])} for s in syms})
    return market


def _check_rows(r, grid, one_run):
    assert len(r.errors) == 0 and len(r.table) == len(list(nbtrade.sweep.grid(grid)))
    reasons = set()
    for i, p in enumerate(nbtrade.sweep.grid(grid)):
        res = one_run(p)
        st = res.stats()
        reasons |= set(res.trades["exit_reason"])
        row = r.table.loc[i]
        for label in METRICS:
            assert_allclose(row[label], st[label], rtol=1e-9, atol=1e-12, err_msg=label)
        if "Funding Paid [$]" in r.table.columns:
            assert_allclose(row["Funding Paid [$]"], st["Funding Paid [$]"], rtol=1e-9, atol=1e-12)
            assert st["Funding Paid [$]"] != 0.0
    return reasons


@pytest.mark.parametrize("margin", ["isolated", "cross"])
def test_perp_signals_sweep_equals_per_combination_backtests(perp_market, margin):
    # cross at 20x/25x: the free margin does not count a position's unrealised profit (nbtrade.margin,
    # "Accounting"), so at 10x/20x the all-in entries stay small enough never to be liquidated here
    lev = {"BTC/USDT": 10, "ETH/USDT": 20} if margin == "isolated" else {"BTC/USDT": 20, "ETH/USDT": 25}
    opts = dict(instrument="perp", leverage=lev, margin=margin, size=0.5 if margin == "isolated" else 1.0,
                fees=0.0004)
    r = nbtrade.sweep(perp_market, cross_ls, GRID, n_jobs=2, chunk_size=2, **opts)

    def one(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbtrade.backtest(perp_market, *cross_ls(perp_market, p["fast"], p["slow"]), **opts)

    reasons = _check_rows(r, GRID, one)
    assert "liquidation" in reasons
    assert r.best.assumptions["margin"].startswith("cross" if margin == "cross" else "isolated")


def test_perp_signals_sweep_funding_objective(perp_market):
    """A Python-side objective read from each run's statistics: ``Funding Paid [$]``."""
    opts = dict(instrument="perp", leverage=5, size=0.5)
    r = nbtrade.sweep(perp_market, cross_ls, GRID, maximize="Funding Paid [$]", n_jobs=1, **opts)

    def one(p):
        return nbtrade.backtest(perp_market, *cross_ls(perp_market, p["fast"], p["slow"]), **opts)

    assert r.python_columns == ["Funding Paid [$]"]
    _check_rows(r, GRID, one)


def _weights(market, lookback, lev):
    close = market.frame("close")
    score = close / close.shift(lookback) - 1.0
    return np.sign(score).fillna(0.0) * (lev / 2)


@pytest.mark.parametrize("margin", ["isolated", "cross"])
def test_perp_weights_sweep_equals_per_combination_backtests(perp_market, margin):
    grid = {"lookback": [6, 24], "lev": [4.0, 30.0]}
    opts = dict(instrument="perp", leverage=20, margin=margin, fees=0.0004, rebalance_every=12)
    r = nbtrade.sweep(perp_market, _weights, grid, n_jobs=2, **opts)

    def one(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbtrade.backtest_weights(perp_market, _weights(perp_market, **p), **opts)

    reasons = _check_rows(r, grid, one)
    assert "liquidation" in reasons


def test_cli_sweep_perp_flags_reach_every_run(tmp_path):
    """``nbtrade sweep --instrument perp --leverage N --margin M``: the table equals the Python sweep with
    those options (and differs from the spot one)."""
    from nbtrade.cli import main
    from nbtrade.commands import BACKTEST_DEFAULTS
    from nbtrade.sweep.native import sma_cross

    syms, start, end = ["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-15"
    args = ["--synthetic", "--symbols", ",".join(syms), "--start", start, "--end", end, "--jobs", "1"]
    grid = {"fast": [5, 10], "slow": [30]}
    market = nbtrade.Market(nbtrade.market(syms, start, end, "1h", seed=42))
    tables = {}
    for flags in ([], ["--instrument", "perp", "--leverage", "20", "--margin", "cross"]):
        out = tmp_path / f"t{len(flags)}.csv"
        assert main(["sweep", "sma_cross", "--param", "fast=5,10", "--param", "slow=30", *args, *flags,
                     "--csv", str(out)]) == 0
        tables[len(flags)] = t = pd.read_csv(out, index_col=0).sort_index()
        opts = {**BACKTEST_DEFAULTS, "size": 0.5}
        if flags:
            opts.update(instrument="perp", leverage=20.0, margin="cross")
        want = nbtrade.sweep(market, sma_cross, grid, n_jobs=1, **opts).table.sort_index()
        for label in METRICS:
            assert_allclose(t[label].to_numpy(), want[label].to_numpy(), rtol=1e-9, err_msg=label)
    assert not np.allclose(tables[0]["Total Return [%]"], tables[6]["Total Return [%]"])
