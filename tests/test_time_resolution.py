"""Same instants in any resolution (s, ms, us, ns) and zone (naive, UTC, Tokyo, New York): same answers.

Every public entry point that takes a time index runs on each variant of one small market and is
compared with the nanosecond-UTC run: the panel, the backtest drivers (signals, weights, callback,
class API), indicators on a Series, features (and their cache keys), the store (append, read,
idempotent re-append in another unit), labels and walk-forward through ``research``, the
look-ahead check, and the multi-timeframe alignment. (The model package's own functions are
covered one by one in ``tests/model/test_time_resolution.py``.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from numba import njit

from nbtrade import indicators as ind
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.strategy import Backtest, Strategy
from nbtrade.panel import Market
from nbtrade.synthetic import market
from nbtrade.timeframes import to_epoch_ms

UNITS = ["s", "ms", "us", "ns"]
ZONES = [None, "UTC", "Asia/Tokyo", "America/New_York"]
VARIANTS = [(u, z) for u in UNITS for z in ZONES]
IDS = [f"{u}-{z or 'naive'}" for u, z in VARIANTS]


def variant(index: pd.DatetimeIndex, unit: str, tz: str | None) -> pd.DatetimeIndex:
    out = index.as_unit(unit)
    return out.tz_convert("UTC").tz_localize(None) if tz is None else out.tz_convert(tz)


def relabel(obj, unit, tz):
    if isinstance(obj, dict):
        return {k: relabel(v, unit, tz) for k, v in obj.items()}
    return obj.set_axis(variant(obj.index, unit, tz))


def ms(index) -> np.ndarray:
    return to_epoch_ms(pd.DatetimeIndex(index))


def same_frame(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(ms(a.index), ms(b.index))


def same_times(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables whose datetime columns hold the same instants (any unit or zone)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if pd.api.types.is_datetime64_any_dtype(a[c]):
            np.testing.assert_array_equal(to_epoch_ms(pd.Series(a[c])), to_epoch_ms(pd.Series(b[c])))
        else:
            np.testing.assert_array_equal(a[c].to_numpy(), b[c].to_numpy())


@pytest.fixture(scope="module")
def frames():
    f = market(["BTC", "ETH"], "2024-01-01", "2024-01-15", "1h", seed=9)
    f["ETH"].iloc[40:43] = np.nan  # a gap, so missing-bar rules run too
    return {s: d.set_axis(d.index.as_unit("ns").tz_convert("UTC")) for s, d in f.items()}


def _signals(close: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    fast, slow = ind.sma(close, 5), ind.sma(close, 20)
    return fast > slow, fast < slow


@njit
def _on_bar(ctx, i):
    fast, slow = ctx.user
    for c in range(ctx.close.shape[1]):
        if ctx.position[c] == 0.0 and fast[i, c] > slow[i, c]:
            enter_long_nb(ctx, i, c)
        elif ctx.position[c] > 0.0 and fast[i, c] < slow[i, c]:
            exit_long_nb(ctx, i, c)


class _Cross(Strategy):
    def init(self):
        self.fast = self.I(ind.sma, self.data.close, 5)
        self.slow = self.I(nbtrade.resample_apply, "4h", ind.sma, self.data.close, 5)

    def next(self):
        if self.fast[-1] > self.slow[-1]:
            self.buy()
        elif self.position:
            self.position.close()


def run_all(frames: dict) -> dict:
    """Every entry point on ``frames`` (whatever their index's unit and zone)."""
    m = Market(frames)
    close = m.close
    entries, exits = _signals(pd.DataFrame({s: d["close"] for s, d in frames.items()}))  # frames' own labels
    out = {"market_ms": m.time_ms, "close": close}
    res = nbtrade.backtest(frames, entries, exits, sl_stop=0.02, fees=0.001, size=0.5, on_gap="skip")
    out["bt_equity"], out["bt_trades"], out["bt_stats"] = res.equity, res.trades, res.stats()
    w = pd.DataFrame(0.4, index=entries.index, columns=entries.columns).where(entries, 0.0)
    rw = nbtrade.backtest_weights(frames, w, rebalance_every=6, on_gap="skip")
    out["w_equity"], out["w_orders"] = rw.equity, rw.orders
    fast, slow = ind.sma(close, 5), ind.sma(close, 20)
    rc = nbtrade.backtest_callback(frames, _on_bar, user=(fast.to_numpy(), slow.to_numpy()), on_gap="skip")
    out["cb_equity"], out["cb_trades"] = rc.equity, rc.trades
    rs = Backtest(frames, _Cross, cash=10_000, size=0.5, on_gap="skip").run()
    out["cls_equity"], out["cls_trades"] = rs.equity, rs.trades
    out["sma_series"] = ind.sma(frames["BTC"]["close"], 7)
    out["rsi_series"] = ind.rsi(frames["BTC"]["close"], 7)
    out["features"] = nbtrade.compute_features(frames, [("ema", 5), ("rsi", 7), ("ret", 1)])
    out["informative"] = m.informative("4h", ind.sma, 3)
    out["resample_apply"] = nbtrade.resample_apply("1d", ind.sma, frames["BTC"]["close"], 2)
    out["lookahead"] = [str(f.column) + str(to_epoch_ms(f.time)) for f in nbtrade.check_lookahead(
        lambda d: Market(d).close.shift(-1), frames, cuts=5).findings]
    return out


@pytest.fixture(scope="module")
def reference(frames):
    return run_all(frames)


def _compare(got: dict, ref: dict) -> None:
    for key, want in ref.items():
        have = got[key]
        if key in ("bt_trades", "w_orders", "cb_trades", "cls_trades"):
            same_times(have, want)
        elif key == "bt_stats":
            pd.testing.assert_series_equal(have.astype(str), want.astype(str))
        elif isinstance(want, (pd.Series, pd.DataFrame)):
            same_frame(have, want)
        elif isinstance(want, np.ndarray):
            np.testing.assert_array_equal(have, want)
        else:
            assert have == want, key


@pytest.mark.parametrize("unit,tz", VARIANTS, ids=IDS)
def test_every_entry_point_gives_the_same_answer(frames, reference, unit, tz):
    assert reference["lookahead"]  # the leaky function is caught (and at the same instants below)
    _compare(run_all(relabel(frames, unit, tz)), reference)


@pytest.mark.parametrize("unit,tz", VARIANTS, ids=IDS)
def test_store_append_read_and_reappend(tmp_path, frames, unit, tz):
    df = frames["BTC"]
    store = nbtrade.Store(tmp_path)
    assert store.append("binance", "BTC/USDT", "1h", relabel(df, unit, tz)).added == len(df)
    back = store.read("binance", "BTC/USDT", "1h")
    same_frame(back, df)
    # the same instants once more in another resolution and zone: nothing new, nothing replaced
    again = store.append("binance", "BTC/USDT", "1h", relabel(df, "ns", "UTC"))
    assert again.added == again.replaced == 0
    start = variant(df.index[10:11], unit, tz)[0]
    part = store.read("binance", "BTC/USDT", "1h", start=start, end=df.index[20])
    same_frame(part, df.iloc[10:20])


@pytest.mark.parametrize("unit", UNITS)
def test_feature_cache_keys_ignore_resolution(frames, unit):
    cache = nbtrade.FeatureCache()
    specs = [("ema", 5), ("rsi", 7)]
    a = nbtrade.compute_features(frames, specs, cache=cache)
    b = nbtrade.compute_features(relabel(frames, unit, "Asia/Tokyo"), specs, cache=cache)
    same_frame(b, a)
    assert cache.stats["hit"] == 1 and cache.stats["full"] == 1


@pytest.mark.parametrize("unit", ["s", "us"])
def test_research_labels_and_walk_forward(frames, unit):
    kw = dict(features=[("ema", 5), ("rsi", 7)], train_window="5D", test_window="2D", seed=1)
    ref = nbtrade.research(frames, **kw)
    got = nbtrade.research(relabel(frames, unit, "Asia/Tokyo"), **kw)
    same_frame(got.entries, ref.entries)
    np.testing.assert_array_equal(got.labels.to_numpy(), ref.labels.to_numpy())
    np.testing.assert_array_equal(got.walk_forward.predictions.to_numpy(), ref.walk_forward.predictions.to_numpy())
    same_frame(got.backtest.equity, ref.backtest.equity)
    assert to_epoch_ms(got.first_oos) == to_epoch_ms(ref.first_oos)


def test_feature_cache_after_a_run_in_another_zone(frames):
    """Found by this module: a tz-naive run after a UTC run of the same symbols raised TypeError
    (tz-naive vs tz-aware comparison in the tail update), and another zone missed the cache."""
    cache = nbtrade.FeatureCache()
    specs = [("ema", 5)]
    a = nbtrade.compute_features(frames, specs, cache=cache)
    for tz in (None, "America/New_York"):
        same_frame(nbtrade.compute_features(relabel(frames, "ms", tz), specs, cache=cache), a)
    assert cache.stats == {"hit": 2, "tail": 0, "full": 1}
    longer = {s: d.iloc[:-24] for s, d in frames.items()}
    cache = nbtrade.FeatureCache()
    nbtrade.compute_features(relabel(longer, "us", None), specs, cache=cache)
    tail = nbtrade.compute_features(frames, specs, cache=cache)  # a tail update: ~1e-11 from a full run
    np.testing.assert_allclose(tail.to_numpy(), a.to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(ms(tail.index), ms(a.index))
    assert cache.stats["tail"] == 1
