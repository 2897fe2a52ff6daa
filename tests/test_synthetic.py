import hashlib

import numpy as np
import pandas as pd
import pytest

from nbtrade.synthetic import grid, market
from nbtrade.timeframes import index_to_ms, timeframe_ms


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_numpy().tobytes() + df.index.asi8.tobytes()).hexdigest()


def test_same_seed_same_bytes():
    a = market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-03", "5m", seed=3)
    b = market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-03", "5m", seed=3)
    for sym in a:
        assert _digest(a[sym]) == _digest(b[sym])


def test_other_seed_differs_and_symbols_are_independent():
    a = market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-02", "1h", seed=3)
    alone = market("ETH/USDT", "2024-01-01", "2024-01-02", "1h", seed=3)
    pd.testing.assert_frame_equal(a["ETH/USDT"], alone)
    other = market("ETH/USDT", "2024-01-01", "2024-01-02", "1h", seed=4)
    assert not np.allclose(other["close"].to_numpy(), alone["close"].to_numpy())


@pytest.mark.parametrize("timeframe", ["1m", "15m", "1h", "4h", "1d"])
def test_bars_are_valid_and_on_grid(timeframe):
    df = market("SOL/USDT", "2024-01-01", "2024-03-01", timeframe, seed=1)
    o, h, l, c, v = (df[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert np.all(l <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c))
    assert np.all(v >= 0) and np.all(l > 0)
    assert np.isfinite(df.to_numpy()).all()
    assert str(df.index.tz) == "UTC" and df.index.name == "time"
    assert (index_to_ms(df.index) % timeframe_ms(timeframe) == 0).all()
    assert df.index.is_monotonic_increasing and df.index.is_unique


def test_volatility_clusters():
    df = market("BTC/USDT", "2024-01-01", "2024-07-01", "1h", seed=2)
    r = np.diff(np.log(df["close"].to_numpy()))
    a = np.abs(r) - np.abs(r).mean()
    autocorr = (a[1:] * a[:-1]).mean() / a.var()
    assert autocorr > 0.05  # absolute returns are autocorrelated, raw returns are not
    assert abs(np.corrcoef(r[1:], r[:-1])[0, 1]) < 0.1


def test_gaps_remove_bars_but_keep_grid():
    full = market("BTC/USDT", "2024-01-01", "2024-01-08", "1m", seed=5)
    gapped = market("BTC/USDT", "2024-01-01", "2024-01-08", "1m", seed=5, gaps=0.02)
    assert 0.005 < 1 - len(gapped) / len(full) < 0.06
    assert gapped.index.isin(full.index).all()


def test_grid_alignment_and_errors():
    g = grid("2024-01-01 00:00:30", "2024-01-01 00:05", "1m")
    assert list(g % 60_000) == [0] * 4 and g[0] == pd.Timestamp("2024-01-01 00:01", tz="UTC").value // 10**6
    with pytest.raises(ValueError, match="before start"):
        grid("2024-01-02", "2024-01-01", "1m")
    with pytest.raises(ValueError, match="unknown timeframe"):
        market("BTC/USDT", "2024-01-01", "2024-01-02", "7m")
    with pytest.raises(ValueError, match="gaps"):
        market("BTC/USDT", "2024-01-01", "2024-01-02", "1m", gaps=1.5)
    with pytest.raises(ValueError, match="at least one"):
        market([], "2024-01-01", "2024-01-02", "1m")
