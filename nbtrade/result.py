"""Result of a backtest: equity, positions, orders, trades, statistics and the assumptions made.

Frames are built lazily from the engine's numpy record arrays
(``order_records``, ``trade_records``, dtypes in ``nbtrade.kernels.records``);
bar indices are mapped to the data's timestamps and column numbers to symbols.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .kernels.records import Direction, ExitReason, OrderType, RejectReason, Side, Status
from .metrics import Stats, compute_stats


def _names(enum: Any) -> np.ndarray:
    return np.array([f.lower() for f in enum._fields], dtype=object)


class Result:
    """What a backtest produced.

    Attributes
    ----------
    equity : Series
        Portfolio equity per bar (quote currency): ``cash + sum(position * mark)``.
    cash : Series
        Cash per bar after the bar's orders.
    order_records, trade_records : structured ndarray
        Raw records (``order_dt``, ``trade_dt``).
    gaps : DataFrame
        Gaps met in the input (``symbol, kind, start, end, bars``).
    assumptions : dict
        Fill timing, costs, intrabar rule, valuation, gaps: for reports.
    """

    def __init__(self, inputs: Any, orders: np.ndarray, trades: np.ndarray, cash: np.ndarray,
                 equity: np.ndarray, init_cash: float, freq_ms: float | None, gaps: pd.DataFrame,
                 assumptions: dict, symbol_init_cash: float | None = None):
        self._inputs = inputs
        self.index = inputs.index
        self.symbols = list(inputs.symbols)
        self.order_records = orders
        self.trade_records = trades
        self.init_cash = init_cash  # the portfolio's (sum over symbols when isolated)
        # a symbol's own starting cash when isolated; with shared cash its curve is a contribution
        self.symbol_init_cash = init_cash if symbol_init_cash is None else symbol_init_cash
        self.freq_ms = freq_ms
        self.gaps = gaps
        self.assumptions = assumptions
        self.cash = pd.Series(cash, index=self.index, name="cash", copy=False)
        self.equity = pd.Series(equity, index=self.index, name="equity", copy=False)
        self._signal_arrays: dict[str, np.ndarray] | None = None  # backtest_callback: the signals written
        #: funding cash flows of perpetuals (bars x symbols, quote, + received), None: no perpetuals
        self._funding_flows: np.ndarray | None = None
        #: the same, sparse: ``(bars, flows)`` rows of the bars holding funding (expanded when first read)
        self.funding_rows: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def funding_flows(self) -> np.ndarray | None:
        """Funding cash flows (bars x symbols, quote, + received); None without perpetuals."""
        if self._funding_flows is None and self.funding_rows is not None:
            bars, flows = self.funding_rows
            full = np.zeros((len(self.index), len(self.symbols)))
            full[bars] = flows
            self._funding_flows = full
        return self._funding_flows

    @funding_flows.setter
    def funding_flows(self, value: np.ndarray | None) -> None:
        self._funding_flows = value
        self.funding_rows = None

    @property
    def funding(self) -> pd.DataFrame:
        """Funding cash flows per bar and symbol (quote currency; positive = received, negative = paid;
        all zero without perpetuals). Already in the cash and equity curves."""
        flows = self.funding_flows if self.funding_flows is not None else np.zeros((len(self.index), len(self.symbols)))
        return pd.DataFrame(flows, index=self.index, columns=self.symbols)

    def _funding_paid(self, symbol: Any = None) -> float:
        """Funding paid [$] (minus the flows received) of the run or of ``symbol``."""
        if self.funding_flows is None:
            return 0.0
        f = self.funding_flows if symbol is None else self.funding_flows[:, self._col(symbol)]
        return -float(f.sum())

    def funding_paid(self) -> pd.DataFrame:
        """Cumulative funding paid per symbol and for the portfolio (column ``"portfolio"``) per bar
        [quote currency]: positive = paid, negative = received on balance (``-cumsum`` of :attr:`funding`).
        The last row per symbol equals ``stats(symbol)["Funding Paid [$]"]``."""
        paid = -self.funding.cumsum()
        paid.insert(0, "portfolio", paid.sum(axis=1))
        return paid

    @property
    def is_margined(self) -> bool:
        """Whether the run followed the margin rule (perpetuals, leverage > 1 or shorts: see
        :mod:`nbtrade.margin`): its positions hold margin and can be liquidated."""
        return "margin" in self.assumptions or self.funding_flows is not None

    def leverage(self) -> pd.Series:
        """Leverage per symbol as the run used it (``Result.assumptions["leverage"]``; 1 unlevered)."""
        lev = self.assumptions.get("leverage", 1.0)
        if isinstance(lev, dict):
            vals = [float(lev.get(s, lev.get(str(s), 1.0))) for s in self.symbols]
        elif isinstance(lev, (list, tuple, np.ndarray)):
            vals = [float(v) for v in lev]
        else:
            vals = [float(lev)] * len(self.symbols)
        return pd.Series(vals, index=self.symbols, name="leverage")

    def margin_used(self) -> pd.DataFrame:
        """Initial margin held per symbol and bar [quote currency]: ``|position| x mark / leverage``
        (the position's notional at the bar's valuation price over its leverage, as Binance's
        ``positionInitialMargin``). The valuation price is the last close (:attr:`marks`), not the
        mark-price candle, which the result does not keep."""
        lev = self.leverage().to_numpy()
        used = np.abs(self._positions) * self.marks.fillna(0.0).to_numpy() / lev
        return pd.DataFrame(used, index=self.index, columns=self.symbols)

    def margin_usage(self) -> pd.Series:
        """Margin used over equity per bar [%]: ``sum over symbols of margin_used() / equity x 100``.
        100 % means the positions tie up the whole equity; at 10x leverage that is 1,000 % exposure.
        0 without positions; NaN where positions are open and equity is <= 0."""
        used = self.margin_used().sum(axis=1).to_numpy()
        eq = self.equity.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(used == 0, 0.0, np.where(eq > 0, used / eq * 100.0, np.nan))
        return pd.Series(pct, index=self.index, name="margin usage")

    @property
    def liquidations(self) -> pd.DataFrame:
        """The trades closed by liquidation (exit reason ``"liquidation"``), as in :attr:`trades`."""
        t = self.trades
        return t[t["exit_reason"] == "liquidation"]

    @cached_property
    def signals(self) -> dict[str, pd.DataFrame] | None:
        """Signals an ``on_bar`` callback wrote (``entries``, ``exits``, ``short_entries``,
        ``short_exits``; bars x symbols), or None for the other ways of running."""
        if self._signal_arrays is None:
            return None
        return {k: pd.DataFrame(v, index=self.index, columns=self.symbols, copy=False)
                for k, v in self._signal_arrays.items()}

    def __repr__(self) -> str:
        n, m = self._inputs.shape
        return (f"<Result {n} bars x {m} symbols, {len(self.trade_records)} trades, "
                f"final equity {self.equity.iloc[-1]:.2f}>")

    # ---------------------------------------------------------------- frames
    @cached_property
    def _positions(self) -> np.ndarray:
        from .kernels.engine import positions_from_orders_nb

        rec = self.order_records[self.order_records["status"] == Status.FILLED]
        signed = np.where(rec["side"] == Side.BUY, rec["size"], -rec["size"])
        out = np.empty(self._inputs.shape)
        return positions_from_orders_nb(np.ascontiguousarray(rec["idx"]), np.ascontiguousarray(rec["col"]),
                                        signed, out)

    @property
    def positions(self) -> pd.DataFrame:
        """Position per bar and symbol in base units (after the bar's orders; shorts negative)."""
        return pd.DataFrame(self._positions, index=self.index, columns=self.symbols)

    @property
    def marks(self) -> pd.DataFrame:
        """Valuation price per bar: the last valid close (forward-filled for valuation only)."""
        return pd.DataFrame(self._inputs.close, index=self.index, columns=self.symbols).ffill()

    @property
    def value(self) -> pd.DataFrame:
        """Value of each symbol's position per bar (quote currency)."""
        return (self.positions * self.marks.fillna(0.0)).rename_axis(columns=None)

    @cached_property
    def orders(self) -> pd.DataFrame:
        """Every order, filled or rejected, in the order the engine saw them."""
        r = self.order_records
        return pd.DataFrame({
            "time": self.index[r["idx"]] if len(r) else self.index[:0],
            "symbol": np.array(self.symbols, dtype=object)[r["col"]],
            "side": _names(Side)[r["side"]],
            "size": r["size"], "price": r["price"], "fees": r["fees"],
            "type": _names(OrderType)[r["type"]],
            "status": _names(Status)[r["status"]],
            "reason": _names(RejectReason)[r["reason"]],
        }, index=pd.Index(r["id"], name="id"))

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Round trips: entry to exit, net PnL after both legs' fees, return on entry notional."""
        r = self.trade_records
        entry_time = self.index[r["entry_idx"]] if len(r) else self.index[:0]
        exit_time = self.index[r["exit_idx"]] if len(r) else self.index[:0]
        df = pd.DataFrame({
            "symbol": np.array(self.symbols, dtype=object)[r["col"]],
            "direction": _names(Direction)[r["direction"]],
            "size": r["size"],
            "entry_time": entry_time, "exit_time": exit_time,
            "entry_price": r["entry_price"], "exit_price": r["exit_price"],
            "fees": r["entry_fees"] + r["exit_fees"],
            "pnl": r["pnl"], "return": r["ret"],
            "exit_reason": _names(ExitReason)[r["exit_reason"]], "borrow": r["borrow"],
        }, index=pd.Index(r["id"], name="id"))
        df.insert(5, "duration", np.asarray(exit_time - entry_time))  # vectorised (no Timestamp objects)
        return df

    # ---------------------------------------------------------------- stats
    def _col(self, symbol: Any) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise KeyError(f"unknown symbol {symbol!r}; result has {self.symbols}") from None

    def symbol_equity(self, symbol: Any) -> pd.Series:
        """One symbol's curve: its starting cash plus its cash flows and position value.

        With shared cash this is the symbol's contribution on top of the whole ``init_cash``;
        with isolated accounts (``cash_sharing=False``) it is the symbol's own equity.
        """
        c = self._col(symbol)
        r = self.order_records
        r = r[(r["status"] == Status.FILLED) & (r["col"] == c)]
        flow = np.where(r["side"] == Side.BUY, -r["size"] * r["price"], r["size"] * r["price"]) - r["fees"]
        cash = np.zeros(len(self.index))
        np.add.at(cash, r["idx"], flow)
        if self.funding_flows is not None:  # perpetuals: funding is a cash flow of the symbol
            cash += self.funding_flows[:, c]
        eq = self.symbol_init_cash + np.cumsum(cash) + self.value.iloc[:, c].to_numpy()
        return pd.Series(eq, index=self.index, name=symbol)

    def market(self, symbol: Any = None) -> pd.Series:
        """Buy and hold from the first bar: equal parts of each symbol (or ``symbol`` alone), 1.0 at the start.

        Each symbol's close over its first valid close (1.0 before it lists), averaged:
        the value of a never-rebalanced equal split. Used for Buy & Hold, Alpha and Beta.
        """
        close = np.asarray(self._inputs.close, dtype=float)
        if symbol is not None:
            close = close[:, [self._col(symbol)]]
        close = pd.DataFrame(close).ffill().to_numpy()
        listed = np.isfinite(close)
        first = close[listed.argmax(axis=0), np.arange(close.shape[1])]
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(listed, close / first, 1.0)
        return pd.Series(rel.mean(axis=1), index=self.index, name="buy & hold")

    def stats(self, symbol: Any = None) -> Stats:
        """Portfolio statistics, or one symbol's (its trades and contribution curve).

        Labels carry units (``"Total Return [%]"``, ``"Fees Paid [$]"``); annualised
        with 365-day years and the bar length (``freq`` or inferred). ``"# Rejected
        Orders"`` counts the orders refused (reasons in :attr:`orders`). Every label's
        definition, and where it differs from backtesting.py's, is in
        :func:`nbtrade.metrics.compute_stats`.

        Returns
        -------
        Stats
            A float64 Series (``.round(2)``, arithmetic and comparisons work); timestamps
            and durations are in ``.times`` and answer by label too (``s["Start"]``).
        """
        tr = self.trade_records
        orders = self.order_records[self.order_records["status"] == Status.FILLED]
        if symbol is None:
            equity = self.equity.to_numpy()
            exposure = (self._positions != 0.0).any(axis=1)
        else:
            c = self._col(symbol)
            equity = self.symbol_equity(symbol).to_numpy()
            exposure = self._positions[:, c] != 0.0
            tr = tr[tr["col"] == c]
            orders = orders[orders["col"] == c]
        init = self.init_cash if symbol is None else self.symbol_init_cash
        if isinstance(self.index, pd.DatetimeIndex):
            ns = self.index.as_unit("ns").asi8  # int64 ns: an object array of Timestamps would cost seconds per 100k trades
            durations = (ns[tr["exit_idx"]] - ns[tr["entry_idx"]]).astype("timedelta64[ns]")
        else:
            durations = tr["exit_idx"] - tr["entry_idx"]
        rejected = self.order_records["status"] == Status.REJECTED
        if symbol is not None:
            rejected &= self.order_records["col"] == c
        s = compute_stats(equity, self.index, init, self.freq_ms, tr["pnl"],
                          tr["exit_reason"] != ExitReason.END, float(orders["fees"].sum()), exposure,
                          returns=tr["ret"], durations=durations, market=self.market(symbol).to_numpy(),
                          borrow_paid=float(tr["borrow"].sum()),
                          funding_paid=self._funding_paid(symbol), rejected_orders=int(np.count_nonzero(rejected)))
        s.name = "portfolio" if symbol is None else symbol
        return s

    # ---------------------------------------------------------------- reporting
    def exposure(self) -> pd.Series:
        """Gross position value as a share of equity [%] per bar."""
        gross = self.value.abs().sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (gross / self.equity * 100.0).rename("exposure")

    def _candles(self) -> dict[Any, pd.DataFrame]:
        """Per symbol, the OHLC(V) the backtest saw (NaN where a symbol had no candle)."""
        fields = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
        arrays = {k: getattr(self._inputs, a, None) for k, a in fields.items()}
        arrays = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
        return {s: pd.DataFrame({k: v[:, c] for k, v in arrays.items()}, index=self.index)
                for c, s in enumerate(self.symbols)}

    def to_html(self, *, title: str = "nbtrade backtest", benchmarks: dict | None = None, symbol: Any = None,
                interactive: bool = True, **extra: Any) -> str:
        """The report page as a string (see :meth:`report`); ``label=`` names the equity curve."""
        from .report.html import render_html

        candles = self._candles()
        if symbol is not None:
            self._col(symbol)
            candles = {symbol: candles.pop(symbol), **candles}
        if benchmarks is None:
            benchmarks = {"buy & hold": self.market() * self.init_cash}
        kwargs = dict(stats=self.stats(), trades=self.trades, candles=candles, exposure=self.exposure(),
                      assumptions=self.assumptions, interactive=interactive)
        if self.funding_flows is not None:  # perpetuals: funding paid over time, portfolio and per symbol
            kwargs["funding"] = self.funding_paid()
        if self.is_margined:
            kwargs["margin"] = self.margin_usage()
        kwargs.update(extra)
        label = kwargs.pop("label", "strategy")  # the equity curve's name in the charts
        return render_html(self.equity.rename(label), title=title, benchmarks=benchmarks, **kwargs)

    def report(self, path: str, *, title: str = "nbtrade backtest", benchmarks: dict | None = None,
               symbol: Any = None, **extra: Any) -> str:
        """Write a self-contained HTML report and return its path.

        Interactive (scripts inlined, no network): candles with volume and every trade
        marked (tooltips), equity against ``benchmarks`` (default: equal-weight buy and
        hold), drawdown and exposure panes with linked zoom, a symbol selector; static
        pictures when scripts are off; monthly returns, statistics, all trades and the
        assumptions. Perpetual and other margined runs add a pane of cumulative funding paid
        (portfolio and per symbol), one of margin used over equity, liquidations marked on the
        price chart (red squares) and listed in their own table. ``symbol`` picks the symbol
        shown first; other keywords go to :func:`nbtrade.report.html.render_html`
        (``interactive=False`` for a page without scripts).
        """
        text = self.to_html(title=title, benchmarks=benchmarks, symbol=symbol, **extra)
        Path(path).write_text(text, encoding="utf-8")
        return path

    def plot(self, path: str | None = None, *, open_browser: bool | None = None, **kwargs: Any) -> str:
        """Write the interactive report (see :meth:`report`) and open it in a browser.

        ``path`` defaults to a new file in the temporary folder; ``open_browser`` defaults
        to True when no ``path`` was given. Returns the path.
        """
        import tempfile
        import webbrowser

        if path is None:
            fd, path = tempfile.mkstemp(prefix="nbtrade-report-", suffix=".html")
            import os

            os.close(fd)
            open_browser = True if open_browser is None else open_browser
        self.report(path, **kwargs)
        if open_browser:
            webbrowser.open("file://" + str(Path(path).resolve()))
        return path

    def save(self, path: str) -> str:
        """Save to a ``.npz`` file (arrays and a JSON header; no pickled objects).

        ``nbtrade.load_result(path)`` gives back a Result with the same frames, statistics
        and report.
        """
        from .saved import save_result

        return str(save_result(self, path))

    def _repr_html_(self) -> str:
        """Notebooks: the interactive report in an isolated frame (its styles and scripts stay inside)."""
        import html as _html

        page = self.to_html()
        return (f'<iframe srcdoc="{_html.escape(page, quote=True)}" style="width:100%;height:1000px;border:0" '
                f'sandbox="allow-scripts"></iframe>')
