"""Features -> purged walk-forward random forest -> signals -> backtest, on a market with a planted signal."""
import pandas as pd

import nbtrade
from nbtrade.features import stack

from _common import QUICK

symbols = ["BTC/USDT", "ETH/USDT"]
data = nbtrade.planted_market(symbols, "2024-01-01", "2024-04-01" if QUICK else "2024-10-01", "1h",
                              seed=1, strength=1.0)
specs = [("ret", 1), ("ret", 6), ("vol", 24), ("rsi", 14), ("volume_ratio", 24), "range", ("zscore", 24)]
X = stack(nbtrade.compute_features(data, specs))                 # rows (time, symbol), one model for all
y = pd.concat({s: nbtrade.sign_label(f["close"], n=1) for s, f in data.items()}, names=["symbol", "time"])
y = y.swaplevel().sort_index().reindex(X.index)
y.attrs["horizon"] = 1                                            # the label looks one bar ahead: purge it

wf = nbtrade.walk_forward(None, X, y, train_window="30D", test_window="7D", retrain="incremental", seed=1,
                          impute="drop")
print(f"out-of-sample accuracy {wf.score:.3f} over {len(wf.folds)} folds")
print(wf.mean_importances.head().to_string())
signals = nbtrade.proba_to_signals(wf.proba, long_threshold=0.55, exit_threshold=0.5)
result = nbtrade.backtest(data, signals.entries, signals.exits, size=0.5, fees=0.001)
print(result.stats()[["Total Return [%]", "Sharpe Ratio", "# Trades"]].to_string())
