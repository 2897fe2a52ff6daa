"""Cross-check with vectorbt's ``Portfolio.from_signals`` (long-only SMA crossover, fills at close, % fees).

Final equities were recorded from vectorbt 1.2.0 (numba 0.68, numpy 2.4) with the script
in this test. With ``NBTRADE_LIVE_VECTORBT=1`` and vectorbt importable the comparison also runs
live, bar by bar (off by default: importing and compiling vectorbt takes ~30 s; ``nbtrade bench
engine`` checks against vectorbt on every run too).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest
from nbtrade.synthetic import market

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")

#: vectorbt's final portfolio value: isolated columns (summed) and one shared-cash group.
VECTORBT_FINAL = {False: 38253.705807012884, True: 7506.8787906742455}


def _case():
    d = market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-03-01", "1h", seed=7)
    close = pd.DataFrame({k: v["close"] for k, v in d.items()})
    fast, slow = close.rolling(10).mean(), close.rolling(50).mean()
    above, below = fast > slow, fast < slow
    entries = above & ~above.shift(1, fill_value=False)
    exits = below & ~below.shift(1, fill_value=False)
    return d, close, entries, exits


@pytest.mark.parametrize("cash_sharing", [False, True])
def test_final_equity_equals_recorded_vectorbt(cash_sharing):
    d, _, entries, exits = _case()
    res = backtest(d, entries=entries, exits=exits, fees=0.001, init_cash=10_000.0, fill="close", size=1.0,
                   cash_sharing=cash_sharing)
    assert res.equity.iloc[-1] == pytest.approx(VECTORBT_FINAL[cash_sharing], rel=1e-9)


@pytest.mark.parametrize("cash_sharing", [False, True])
def test_equity_curve_equals_live_vectorbt(cash_sharing):
    if os.environ.get("NBTRADE_LIVE_VECTORBT") != "1":
        pytest.skip("set NBTRADE_LIVE_VECTORBT=1 to compare with vectorbt live")
    vbt = pytest.importorskip("vectorbt")
    d, close, entries, exits = _case()
    kw = dict(cash_sharing=True, group_by=True) if cash_sharing else {}
    pf = vbt.Portfolio.from_signals(close, entries, exits, size=np.inf, fees=0.001, init_cash=10_000.0,
                                    freq="1h", **kw)
    value = pf.value()
    value = value.to_numpy() if cash_sharing else value.sum(axis=1).to_numpy()
    res = backtest(d, entries=entries, exits=exits, fees=0.001, init_cash=10_000.0, fill="close", size=1.0,
                   cash_sharing=cash_sharing)
    np.testing.assert_allclose(res.equity.to_numpy(), value, rtol=1e-9)
    assert (res.orders["status"] == "filled").sum() == len(pf.orders.records)
