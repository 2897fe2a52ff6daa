import numpy as np
import pandas as pd
import pytest

from nbtrade.model.labels import ewm_volatility, forward_return, label_horizon, sign_label, triple_barrier
from nbtrade.synthetic import market


@pytest.fixture(scope="module")
def df():
    return market("BTC/USDT", "2024-01-01", "2024-01-15", "1h", seed=7)


def test_forward_return_values_and_horizon(df):
    c = df["close"]
    r = forward_return(c, 3)
    np.testing.assert_allclose(r.iloc[:-3], (c.shift(-3) / c - 1).iloc[:-3])
    assert r.iloc[-3:].isna().all() and r.iloc[:-3].notna().all()
    assert label_horizon(r) == 3 and r.attrs["horizon"] == 3
    lr = forward_return(c.to_numpy(), 2, log=True)
    np.testing.assert_allclose(lr[:-2], np.log(c.to_numpy()[2:] / c.to_numpy()[:-2]))
    assert label_horizon(lr, default=None) is None


def test_forward_return_frame_per_symbol():
    m = market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-03", "1h", seed=1)
    close = pd.DataFrame({k: v["close"] for k, v in m.items()})
    r = forward_return(close, 1)
    assert r.shape == close.shape and list(r.columns) == list(close.columns)
    pd.testing.assert_series_equal(r["ETH/USDT"], forward_return(close["ETH/USDT"], 1).rename("ETH/USDT"))


def test_sign_label_dead_zone(df):
    c = df["close"]
    r = forward_return(c, 2)
    lab = sign_label(c, 2, dead_zone=0.003)
    expect = np.where(r > 0.003, 1, np.where(r < -0.003, -1, 0)).astype(float)
    np.testing.assert_array_equal(lab.iloc[:-2], expect[:-2])
    assert lab.iloc[-2:].isna().all() and set(np.unique(lab.dropna())) == {-1.0, 0.0, 1.0}
    vol = ewm_volatility(c)
    lab2 = sign_label(c, 2, dead_zone=(vol * np.sqrt(2)).fillna(np.inf))
    assert label_horizon(lab2) == 2 and lab2.iloc[:5].eq(0).all()


def _barrier_reference(c, hi, lo, vol, h, tp, sl):
    n = len(c)
    out = np.full(n, np.nan)
    for t in range(n - h):
        if np.isnan(vol[t]):
            continue
        w = vol[t] * np.sqrt(h)
        up, dn = c[t] * (1 + tp * w), c[t] * (1 - sl * w)
        out[t] = 0.0
        for j in range(1, h + 1):
            if lo[t + j] <= dn:
                out[t] = -1.0
                break
            if hi[t + j] >= up:
                out[t] = 1.0
                break
    return out


@pytest.mark.parametrize("h,tp,sl", [(1, 1.0, 1.0), (6, 1.0, 0.5), (24, 2.0, 1.0)])
def test_triple_barrier_matches_reference_loop(df, h, tp, sl):
    c, hi, lo = (df[k].to_numpy() for k in ("close", "high", "low"))
    vol = ewm_volatility(c, 24)
    got = triple_barrier(df["close"], h, tp, sl, high=df["high"], low=df["low"])
    np.testing.assert_array_equal(got.to_numpy(), _barrier_reference(c, hi, lo, vol, h, tp, sl))
    assert label_horizon(got) == h and got.iloc[-h:].isna().all()
    assert got.dropna().isin([-1.0, 0.0, 1.0]).all()


def test_triple_barrier_time_label_sign(df):
    z = triple_barrier(df["close"], 4, tp=50, sl=50)   # barriers never hit
    s = triple_barrier(df["close"], 4, tp=50, sl=50, time_label="sign")
    assert (z.dropna() == 0).all()
    np.testing.assert_array_equal(s.dropna(), np.sign(forward_return(df["close"], 4)).loc[s.dropna().index])


@pytest.mark.parametrize("fn", [lambda c: forward_return(c, 5), lambda c: sign_label(c, 5, 0.001),
                                lambda c: triple_barrier(c, 5)])
def test_label_looks_exactly_horizon_ahead(df, fn):
    """A label at t changes only with bars up to t + horizon (and not at all with bars after)."""
    c = df["close"].copy()
    base = fn(c)
    t = 150
    c2 = c.copy()
    c2.iloc[t + 6:] *= 1.5  # bars after t + horizon
    np.testing.assert_array_equal(fn(c2).iloc[:t + 1], base.iloc[:t + 1])


def test_bad_input(df):
    with pytest.raises(ValueError, match="n must be"):
        forward_return(df["close"], 0)
    with pytest.raises(ValueError, match="positive"):
        forward_return(-df["close"], 1)
    with pytest.raises(ValueError, match="dead_zone"):
        sign_label(df["close"], 1, dead_zone=-0.1)
    with pytest.raises(ValueError, match="tp and sl"):
        triple_barrier(df["close"], 5, tp=0)
    with pytest.raises(ValueError, match="time_label"):
        triple_barrier(df["close"], 5, time_label="x")
    with pytest.raises(ValueError, match="high/low"):
        triple_barrier(df["close"], 5, high=df["high"].iloc[:-1])
    with pytest.raises(TypeError, match="close"):
        forward_return(["a", "b"], 1)


def test_infinite_or_non_positive_prices_are_refused_with_their_position():
    import numpy as np
    import pytest

    from nbtrade.model.labels import forward_return, triple_barrier

    x = np.linspace(100.0, 110.0, 40)
    x[7] = np.inf
    with pytest.raises(ValueError, match=r"close must be positive finite prices.*inf at row 7"):
        forward_return(x)
    two = np.column_stack([np.linspace(1.0, 2.0, 40), np.linspace(1.0, 2.0, 40)])
    two[3, 1] = -1.0
    with pytest.raises(ValueError, match="row 3, column 1"):
        triple_barrier(two, 5)


def test_one_row_array_is_explained():
    import numpy as np
    import pytest

    from nbtrade.model.labels import sign_label

    with pytest.raises(ValueError, match=r"shape \(1, 30\): 2-D inputs are time x symbols"):
        sign_label(np.linspace(1.0, 2.0, 30)[None, :])
