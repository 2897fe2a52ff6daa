"""Dollar-cost averaging: buy 100 USDT of BTC every Monday, hold, value the pile at the end.

``accumulate=True`` makes each entry signal while long *add* to the position instead of being
ignored: one trade grows, its entry price is the size-weighted average of the fills (the harmonic
mean of the prices for equal quote amounts), its entry fees the sum, its age (``td_stop``,
``min_roi``) the first buy's. ``finalize_trades=True`` closes what is held at the last bar so the
statistics count it. The same plan in the class API: ``buy()`` while long adds with
``accumulate=True``.
"""
import numpy as np
import pandas as pd

import nbtrade
from nbtrade import Backtest, Strategy

from _common import QUICK

data = nbtrade.market("BTC/USDT", "2024-01-01", "2024-03-01" if QUICK else "2024-12-31", "1h", seed=5)
close = data["close"]
monday = pd.Series((close.index.day_of_week == 0) & (close.index.hour == 0), index=close.index)

# 1. signals: one entry signal per Monday, no exit
res = nbtrade.backtest(data, entries=monday, size=100.0, size_type="value", fees=0.001, accumulate=True,
                       finalize_trades=True, init_cash=10_000)
(trade,) = res.trades.itertuples()
fills = res.orders[res.orders.side == "buy"]
avg = (fills["price"] * fills["size"]).sum() / fills["size"].sum()
print(f"{len(fills)} buys of 100 USDT, {trade.size:.6f} BTC at an average {trade.entry_price:,.2f} "
      f"(last close {close.iloc[-1]:,.2f})")
assert np.isclose(trade.entry_price, avg)
print(res.stats()[["Total Return [%]", "Equity Final [$]", "# Trades"]].to_string())


# 2. the class API: buy() while long adds (accumulate=True)
class Dca(Strategy):
    every = 24 * 7  # bars between buys

    def init(self):
        pass

    def next(self):
        if self.i % self.every == 0:
            self.buy()


res2 = Backtest(data, Dca, size=100.0, size_type="value", commission=0.001, accumulate=True,
                finalize_trades=True, cash=10_000).run()
print(f"class API: {len(res2.orders) - 1} buys, average entry {res2.trades.entry_price.iloc[0]:,.2f}, "
      f"final equity {res2.equity.iloc[-1]:,.2f}")
