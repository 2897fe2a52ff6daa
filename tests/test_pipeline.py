import pandas as pd
import pytest

import nbtrade
from nbtrade.monitor import Monitor
from nbtrade.pipeline import research


@pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")
def test_research_one_call_out_of_sample():
    data = nbtrade.planted_market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-03-01", "1h", seed=3, strength=1.0)
    mon = Monitor(memory=False)
    run = research(data, [("ret", 1), ("ret", 6), ("vol", 24), ("rsi", 14), ("volume_ratio", 24), "range"],
                   train_window="20D", test_window="7D", seed=3, fees=0.001, monitor=mon)
    assert run.walk_forward.score > 0.53  # the planted signal is found out of sample
    assert run.backtest.index[0] == run.first_oos  # the backtest covers the out-of-sample period only
    assert run.first_oos >= data["BTC/USDT"].index[0] + pd.Timedelta("20D")
    assert set(mon.stats()) == {"features", "walk-forward", "backtest"}
    assert run.entries.index.equals(run.backtest.index)
