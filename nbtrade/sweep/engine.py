"""The sweep's call into the engine: validated once per sweep, then only the signals change.

``nbtrade.backtest`` validates and converts every option on each call and builds a
``Result``: ~1 ms of Python per call, holding the GIL, which on threads serialises what the
engine kernel (``nogil``) would run side by side. :class:`FastEngine` does that setup once
for a sweep, with the same helpers and the same kernel call as ``backtest`` (market orders
with signals; the options in :data:`SUPPORTED`), and per combination aligns the signals
(``prepare_signals``), runs ``simulate_signals_nb`` and returns the equity and records:
bit-for-bit what ``backtest`` gives (tested). Other options (resting orders, absolute stops,
exit sizes, exchange filters) fall back to ``nbtrade.backtest`` itself.

When the engine offers a validated run configuration (``nbtrade.engine.RunConfig`` with
``run_signals``), :class:`ConfigEngine` uses it instead: the options validated once into the
config, every option supported, ``run_signals`` per combination.

This module and ``run._evaluate`` are the only places a sweep calls the engine.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

import numpy as np

#: ``backtest`` options the fast path reproduces; any other option uses ``backtest`` itself.
SUPPORTED = frozenset({
    "size", "size_type", "sl_stop", "tp_stop", "trail_stop", "fees", "fixed_fees", "slippage", "init_cash",
    "fill", "intrabar", "freq", "lot_size", "min_qty", "min_notional", "leverage", "cash_sharing", "maker_fees",
    "slippage_range", "slippage_volume", "on_gap", "order_type",
})


def _config_api() -> tuple[Any, Any] | None:
    """``(RunConfig, run_signals)`` of an engine that validates options once, or None."""
    try:
        from ..engine import RunConfig, run_signals  # type: ignore[attr-defined]
    except ImportError:
        return None
    return RunConfig, run_signals


class ConfigEngine:
    """The engine's own validated-once path: ``RunConfig.build`` once, ``run_signals`` per combination."""

    def __init__(self, market: Any, options: Mapping[str, Any], api: tuple[Any, Any]):
        run_config, self._run = api
        self.market = market
        self.cfg = run_config.build(market, "signals", **options)

    def run(self, signals: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        res = self._run(self.market, self.cfg, **signals)
        return res.equity.to_numpy(), res.order_records, res.trade_records


class FastEngine:
    """One sweep's engine inputs, validated once; :meth:`run` takes a combination's signals."""

    @classmethod
    def build(cls, market: Any, options: Mapping[str, Any]) -> "FastEngine | ConfigEngine | None":
        """The engine's config path when it has one, else the fast path for ``options``, or None when
        they need ``nbtrade.backtest`` itself."""
        api = _config_api()
        if api is not None:
            return ConfigEngine(market, options, api)
        if set(options) - SUPPORTED or options.get("order_type", "market") != "market":
            return None
        return cls(market, options)

    def __init__(self, market: Any, options: Mapping[str, Any]):
        from .. import backtesting as bt
        from ..kernels.records import OrderType, Prices as PriceArrays

        defaults = {k: p.default for k, p in inspect.signature(bt.backtest).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        o = {**defaults, **options}
        syms = market.symbols
        self.market = market
        self.m = len(syms)
        self.size_type_id = bt._choice(o["size_type"], "size_type", bt._SIZE_TYPES)
        self.fill_id = bt._choice(o["fill"], "fill", bt._FILLS)
        self.intrabar_id = bt._choice(o["intrabar"], "intrabar", bt._INTRABAR)
        self.otype_id = OrderType.MARKET
        self.groups = bt._cash_groups(o["cash_sharing"], syms)
        init_cash = bt._scalar(o["init_cash"], "init_cash")
        params = {
            "size": bt._default_size(o["size"], o["size_type"], self.groups, syms),
            **bt._fee_params(o["fees"], o["fixed_fees"], o["maker_fees"], init_cash, syms),
            "slippage": bt._per_symbol(o["slippage"], "slippage", syms, 0.0, upper=1.0),
            "sl_stop": bt._per_symbol(o["sl_stop"], "sl_stop", syms, np.nan, positive=True, allow_none=True),
            "tp_stop": bt._per_symbol(o["tp_stop"], "tp_stop", syms, np.nan, positive=True, allow_none=True),
            "trail_stop": bt._per_symbol(o["trail_stop"], "trail_stop", syms, np.nan, positive=True,
                                         allow_none=True),
            "lot_size": bt._per_symbol(o["lot_size"], "lot_size", syms, 0.0),
            "min_qty": bt._per_symbol(o["min_qty"], "min_qty", syms, 0.0),
            "min_notional": bt._per_symbol(o["min_notional"], "min_notional", syms, 0.0),
            "slippage_range": bt._per_symbol(o["slippage_range"], "slippage_range", syms, 0.0),
            "slippage_volume": bt._per_symbol(o["slippage_volume"], "slippage_volume", syms, 0.0),
        }
        self.init_cash = init_cash
        self.leverage = bt._scalar(o["leverage"], "leverage")
        bt._check_sizing(params["size"], o["size_type"], self.leverage, syms)
        self.params = params
        self.n_groups = int(self.groups.max()) + 1
        uses_volume = bool((params["slippage_volume"] > 0).any())
        inputs = market.prices(ohlc=bt._reads_ohlc(o["fill"], "market", params, None, None, False),
                               volume=uses_volume)
        bt._check_price_range(inputs, params, syms)
        self.inputs = inputs
        volume = bt._volume(inputs) if uses_volume else inputs.close
        self.prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, volume)
        self.packed = bt._param_records(params)
        self.has_stops = bt._has_stops(params, False)
        nan = np.full((1, 1), np.nan)
        self.nan = nan
        self.exit_frac = np.ones((1, 1))

    def run(self, signals: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(equity, orders, trades)`` of one combination: ``(n_bars,)`` float64 and the used records."""
        from .. import backtesting as bt
        from ..kernels.engine import simulate_signals_nb
        from ..kernels.records import Books, Levels, Signals, counts_dt, make_config, new_state, order_dt, trade_dt

        market = self.market
        n, m = market.shape
        sig, counts, has_short = bt.prepare_signals(market, **signals)
        bt._check_sl_stop(self.params["sl_stop"], has_short, market.symbols)
        n_entry = counts["entries"] + counts["short_entries"]
        n_exit = counts["exits"] + counts["short_exits"]
        per_entry = 2 + (1 if self.has_stops else 0)
        cap = max(bt._SIGNAL_BUFFER, (n * m * 8) // (2 * order_dt.itemsize)) + 8 * m
        orders = np.empty(min(per_entry * n_entry + n_exit + 4 * m, cap), dtype=order_dt)
        trades = np.empty(min(n_entry + 3 * m, cap // 2), dtype=trade_dt)
        close = self.inputs.close
        signals_t = Signals(sig["entries"], sig["exits"], sig["short_entries"], sig["short_exits"])
        levels = Levels(close, close, self.nan, self.nan, self.exit_frac)
        cfg = make_config(self.size_type_id, self.leverage, self.fill_id, self.intrabar_id, self.otype_id, 0,
                          has_short, False, False)
        state, acct = new_state(self.groups), np.full(self.n_groups, self.init_cash)
        done = np.zeros(1, dtype=counts_dt)
        cash, equity = np.empty(n), np.empty(n)
        start = 0
        while True:
            start = simulate_signals_nb(self.prices, signals_t, levels, cfg, self.packed, start,
                                        Books(state, acct, done, orders, trades), cash, equity)
            if start >= n:
                break
            orders, trades = bt._grow(orders, trades, done, m)
        return equity, orders[:int(done[0]["orders"])], trades[:int(done[0]["trades"])]
