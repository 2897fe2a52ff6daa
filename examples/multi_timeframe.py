"""Trade 1h bars with a daily trend filter and 4h RSI, without look-ahead (``Market.informative``).

A daily bar is known only once the day is over: its value reaches the hourly bars from the 23:00
bar on (the bar that closes with it), and the order it triggers fills at the next open. The naive
way (daily closes labelled by the day's open, forward-filled onto the hours) uses each day's close
from midnight on, 23 hours early: ``check_lookahead`` catches it (its backtest trades on prices
nobody had yet).
"""
import nbtrade
from nbtrade import indicators as ind
from nbtrade.strategy import Backtest, Strategy

from _common import QUICK

data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-03-01" if QUICK else "2025-01-01", "1h",
                      seed=11)
m = nbtrade.Market(data)
print(m, "->", m.resample("1d"))


def signals(d):
    """Long while the close is above the daily SMA(10) and the 4h RSI(14) is above 50."""
    mk = nbtrade.Market(d)
    trend = mk.informative("1d", ind.sma, 10)                # daily SMA on the hourly bars
    rsi4h = mk.informative("4h", ind.rsi, 14)
    return (mk.close > trend) & (rsi4h > 50)


def leaky(d):
    mk = nbtrade.Market(d)
    daily = ind.sma(mk.resample("1d").close, 10)              # labelled by the day's OPEN time...
    trend = daily.reindex(mk.index, method="ffill")          # ...so each day's close is used from 00:00
    return mk.close > trend


long = signals(data)
res = nbtrade.backtest(m, entries=long, exits=~long, fees=0.001, size=0.5)
bad = nbtrade.backtest(m, entries=leaky(data), exits=~leaky(data), fees=0.001, size=0.5)
print(f"honest: return {res.stats()['Total Return [%]']:7.2f} %  ({len(res.trades)} trades)")
print(f"leaky:  return {bad.stats()['Total Return [%]']:7.2f} %  (trend only, each day's close used 23 hours early)")
print("check_lookahead(honest):", "clean" if nbtrade.check_lookahead(signals, data) else "LEAKS")
print("check_lookahead(leaky): ", "clean" if nbtrade.check_lookahead(leaky, data) else "LEAKS")


class DailyTrend(Strategy):                                  # the same filter in the class API
    n = 10

    def init(self):
        self.trend = self.I(nbtrade.resample_apply, "1d", ind.sma, self.data.close, self.n)

    def next(self):
        if self.data.close[-1] > self.trend[-1]:
            self.buy()
        elif self.position:
            self.position.close()


out = Backtest(data, DailyTrend, cash=10_000, commission=0.001, size=0.5).run()
print(f"class API daily trend: final equity {out.equity.iloc[-1]:,.2f} ({len(out.trades)} trades)")

# features on a higher timeframe join the trading timeframe's own, aligned the same way
X = nbtrade.compute_features(m, [("rsi", 14), ("ret", 1)]).join(
    nbtrade.compute_features(m, [("rsi", 14), ("ret", 1)], timeframe="4h"))
print(X["BTC/USDT"].dropna().head(3).round(3).to_string())
