"""Engine benchmark: SMA(10/50) crossover, long-only, all-in, 0.1 % fee, 20 symbols sharing cash.

``n`` counts bar-steps (bars x symbols): ``n // 20`` bars of 20 symbols. Signals
fill at the bar's close (``fill="close"``) so the three implementations do the
same arithmetic:

* ``nbtrade``: the public signals path ``nbtrade.backtest`` on close prices
  (validation, engine kernel, order/trade records, Result), arrays in;
* ``bare_loop``: a bare @njit loop doing only the trading arithmetic (the ceiling);
* ``vectorbt``: ``Portfolio.from_signals(..., cash_sharing=True, group_by=True)``
  when vectorbt is importable.

``signals_sma_crossover_20sym_prepared`` runs the first case on data validated once with
``nbtrade.prepare`` (as a parameter sweep would). ``signals_sma_crossover_20sym_frames`` is the whole
user-facing call: the candles as a dict of 20 OHLCV DataFrames, the signals as DataFrames matched by label
(vectorbt gets the close frame); ``..._market`` runs it on a ``nbtrade.Market`` built beforehand;
``market_build_20sym`` builds that Market (and converts and checks the close, all an SMA close-fill run
reads) against the run's kernel alone (``kernel`` replays the engine kernel's recorded call). ``callback_sma_crossover_20sym`` runs the same strategy through ``backtest_callback`` (an
@njit ``on_bar(ctx, i)`` setting the signals bar by bar). Another case runs the 20 symbols as isolated all-in accounts (``cash_sharing=False``;
vectorbt's default per-column cash), where no entry is rejected for lack of cash.

Outputs (portfolio equity per bar) must agree to 1e-9 relative. Run directly for
the table plus peak memory (tracemalloc) and compile times (cold/warm cache,
fresh processes)::

    python bench/bench_engine.py --quick          # 1,000,000 bar-steps
    python bench/bench_engine.py --n 20000000     # the issue's 1,000,000 bars x 20 symbols
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from numba import njit

from nbtrade.bench import Case
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb

N_SYMBOLS = 20
FEE = 0.001
INIT_CASH = 100_000.0


def _sma(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing mean over ``w`` bars along axis 0 (NaN warm-up), via cumulative sums."""
    out = np.full_like(x, np.nan)
    cs = np.cumsum(x, axis=0)
    out[w - 1] = cs[w - 1] / w
    out[w:] = (cs[w:] - cs[:-w]) / w
    return out


def make_inputs(n_bars: int, n_symbols: int = N_SYMBOLS, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-walk candles ``(n_bars, n_symbols)`` and SMA(10/50) crossover signals."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, 0.002, (n_bars, n_symbols))
    close = 100.0 * np.exp(np.cumsum(ret, axis=0))
    open_ = np.empty_like(close)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0.0, 0.001, (n_bars, n_symbols)))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    fast, slow = _sma(close, 10), _sma(close, 50)
    above = fast > slow
    below = fast < slow
    entries = np.zeros_like(above)
    exits = np.zeros_like(above)
    entries[1:] = above[1:] & ~above[:-1]
    exits[1:] = below[1:] & ~below[:-1]
    return {"open": open_, "high": high, "low": low, "close": close, "entries": entries, "exits": exits}


@njit(cache=True, nogil=True)
def bare_loop_nb(close, entries, exits, fee, init_cash, out):
    """Long-only all-in crossover on shared cash, fills at the close: the arithmetic alone."""
    n, m = close.shape
    pos = np.zeros(m)
    cash = init_cash
    for i in range(n):
        equity = cash
        for c in range(m):
            p = close[i, c]
            if pos[c] > 0.0:
                if exits[i, c]:
                    v = pos[c] * p
                    cash += v - v * fee
                    pos[c] = 0.0
            elif entries[i, c]:
                units = cash / (1.0 + fee) / p
                if units * p > 1e-9 * max(abs(equity), 1.0):
                    v = units * p
                    cash -= v + v * fee
                    pos[c] = units
        equity = cash
        for c in range(m):
            if pos[c] != 0.0:
                equity += pos[c] * close[i, c]
        out[i] = equity
    return out


@njit(cache=True, nogil=True)
def bare_loop_isolated_nb(close, entries, exits, fee, init_cash, out):
    """Same arithmetic, each symbol trading its own cash (20 independent all-in accounts)."""
    n, m = close.shape
    pos = np.zeros(m)
    cash = np.full(m, init_cash)
    for i in range(n):
        total = 0.0
        for c in range(m):
            p = close[i, c]
            if pos[c] > 0.0:
                if exits[i, c]:
                    v = pos[c] * p
                    cash[c] += v - v * fee
                    pos[c] = 0.0
            elif entries[i, c]:
                units = cash[c] / (1.0 + fee) / p
                if units * p > 1e-9 * max(abs(cash[c]), 1.0):
                    v = units * p
                    cash[c] -= v + v * fee
                    pos[c] = units
        acc = 0.0
        for c in range(m):
            total += cash[c]
            acc += pos[c] * close[i, c]
        out[i] = total + acc
    return out


def _run_nbtrade(d, cash_sharing=True, data=None):
    from nbtrade.backtesting import backtest

    # close prices only, like the baselines (open = high = low = close; fills at the close)
    res = backtest(d["close"] if data is None else data, entries=d["entries"], exits=d["exits"],
                   size=1.0, size_type="percent", fees=FEE, init_cash=INIT_CASH, fill="close", freq="1m",
                   on_gap="skip", cash_sharing=cash_sharing)
    return res.equity.to_numpy()


def _setup(n: int):
    d = make_inputs(max(n // N_SYMBOLS, 100))
    impls = {
        "nbtrade": lambda: _run_nbtrade(d),
        "bare_loop": lambda: bare_loop_nb(d["close"], d["entries"], d["exits"], FEE, INIT_CASH,
                                          np.empty(d["close"].shape[0])),
    }
    try:
        import vectorbt as vbt
    except ImportError:
        vbt = None
    if vbt is not None:
        impls["vectorbt"] = lambda: vbt.Portfolio.from_signals(
            d["close"], d["entries"], d["exits"], size=np.inf, fees=FEE, init_cash=INIT_CASH,
            cash_sharing=True, group_by=True, freq="1min").value().to_numpy()
    return impls


def _setup_prepared(n: int):
    """The shared-cash case on data validated once by ``nbtrade.prepare`` (parameter sweeps)."""
    from nbtrade.backtesting import prepare

    d = make_inputs(max(n // N_SYMBOLS, 100))
    data = prepare(d["close"])
    return {
        "nbtrade": lambda: _run_nbtrade(d, data=data),
        "bare_loop": lambda: bare_loop_nb(d["close"], d["entries"], d["exits"], FEE, INIT_CASH,
                                          np.empty(d["close"].shape[0])),
    }


def _setup_isolated(n: int):
    d = make_inputs(max(n // N_SYMBOLS, 100))
    impls = {
        "nbtrade": lambda: _run_nbtrade(d, cash_sharing=False),
        "bare_loop": lambda: bare_loop_isolated_nb(d["close"], d["entries"], d["exits"], FEE, INIT_CASH,
                                                   np.empty(d["close"].shape[0])),
    }
    try:
        import vectorbt as vbt
    except ImportError:
        vbt = None
    if vbt is not None:
        impls["vectorbt"] = lambda: vbt.Portfolio.from_signals(
            d["close"], d["entries"], d["exits"], size=np.inf, fees=FEE, init_cash=INIT_CASH,
            freq="1min").value().to_numpy().sum(axis=1)
    return impls


def make_frames(n_bars: int, n_symbols: int = N_SYMBOLS, seed: int = 0):
    """The same candles as a user holds them: ``{symbol: OHLCV DataFrame}`` on one 1-minute UTC index,
    and the crossover signals as boolean DataFrames (bars x symbols)."""
    import pandas as pd

    d = make_inputs(n_bars, n_symbols, seed)
    index = pd.date_range("2024-01-01", periods=n_bars, freq="1min", tz="UTC", name="time")
    symbols = [f"S{j:02d}/USDT" for j in range(n_symbols)]
    volume = np.abs(np.random.default_rng(seed + 1).normal(100.0, 20.0, (n_bars, n_symbols)))
    frames = {s: pd.DataFrame({"open": d["open"][:, j], "high": d["high"][:, j], "low": d["low"][:, j],
                               "close": d["close"][:, j], "volume": volume[:, j]}, index=index)
              for j, s in enumerate(symbols)}
    entries = pd.DataFrame(d["entries"], index=index, columns=symbols)
    exits = pd.DataFrame(d["exits"], index=index, columns=symbols)
    return d, frames, entries, exits


def _run_frames(data, entries, exits):
    """The whole user-facing call: ``nbtrade.backtest`` on a dict of OHLCV DataFrames (or a Market)."""
    import warnings

    import nbtrade

    with warnings.catch_warnings():  # all-in entries on shared cash: most are rejected (as in vectorbt)
        warnings.simplefilter("ignore")
        res = nbtrade.backtest(data, entries, exits, size=1.0, size_type="percent", fees=FEE,
                               init_cash=INIT_CASH, fill="close", cash_sharing=True, on_gap="skip")
    return res.equity.to_numpy()


def _vectorbt_frames(frames, entries, exits):
    import pandas as pd

    try:
        import vectorbt as vbt
    except ImportError:
        return None
    # vectorbt's fastest form: numpy arrays (on DataFrames with a DatetimeIndex it was measured ~10x slower)
    close = pd.DataFrame({s: f["close"] for s, f in frames.items()}).to_numpy()
    ent, ex = entries.to_numpy(), exits.to_numpy()
    return lambda: vbt.Portfolio.from_signals(close, ent, ex, size=np.inf, fees=FEE, init_cash=INIT_CASH,
                                              cash_sharing=True, group_by=True, freq="1min").value().to_numpy()


def _setup_frames(n: int):
    """Whole call from a dict of 20 OHLCV DataFrames (panel build, label alignment, checks, kernel, Result)."""
    _, frames, entries, exits = make_frames(max(n // N_SYMBOLS, 100))
    impls = {"nbtrade": lambda: _run_frames(frames, entries, exits)}
    vbt = _vectorbt_frames(frames, entries, exits)
    if vbt is not None:
        impls["vectorbt"] = vbt
    return impls


def _setup_market(n: int):
    """The same call on a ``nbtrade.Market`` built beforehand (its close converted and checked on the first run)."""
    from nbtrade.panel import Market

    _, frames, entries, exits = make_frames(max(n // N_SYMBOLS, 100))
    market = Market(frames)
    impls = {"nbtrade": lambda: _run_frames(market, entries, exits)}
    vbt = _vectorbt_frames(frames, entries, exits)
    if vbt is not None:
        impls["vectorbt"] = vbt
    return impls


def capture_kernel(run, name: str = "simulate_signals_nb"):
    """A zero-argument callable running only the engine kernel of ``run()``: the kernel is wrapped,
    its arguments recorded on one run, then replayed with fresh copies of every small array (state,
    counters), so that each replay starts from the same state. None when the kernel is not found."""
    from nbtrade.kernels import engine

    kernel = getattr(engine, name, None)
    if kernel is None:
        return None
    calls = []

    def snapshot(x):
        if isinstance(x, np.ndarray):
            return x.copy() if x.size < 1 << 16 else x
        if isinstance(x, tuple):
            items = [snapshot(v) for v in x]
            return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
        return x

    def spy(*args):
        calls.append(tuple(snapshot(a) for a in args))
        return kernel(*args)

    setattr(engine, name, spy)
    try:
        run()
    finally:
        setattr(engine, name, kernel)
    if len(calls) != 1:
        return None
    args = calls[0]
    return lambda: kernel(*(snapshot(a) for a in args))


def _setup_build(n: int):
    """Building the panel from the dict of DataFrames, with the fields an SMA close-fill run reads
    (the close) converted and checked, against that backtest's kernel alone."""
    from nbtrade.panel import Market

    _, frames, entries, exits = make_frames(max(n // N_SYMBOLS, 100))
    impls = {"nbtrade": lambda: Market(frames).array("close")}
    market = Market(frames)
    kernel = capture_kernel(lambda: _run_frames(market, entries, exits))
    if kernel is not None:
        impls["kernel"] = kernel
    return impls


@njit(cache=True, nogil=True)
def crossover_on_bar(ctx, i):
    """The same long-only crossover as an event callback (reads the crossover flags it is given)."""
    ups, downs = ctx.user
    for c in range(ups.shape[1]):
        if ctx.position[c] == 0.0:
            if ups[i, c]:
                enter_long_nb(ctx, i, c)
        elif downs[i, c]:
            exit_long_nb(ctx, i, c)


def _setup_callback(n: int):
    from nbtrade.backtesting import backtest_callback

    d = make_inputs(max(n // N_SYMBOLS, 100))
    return {
        "nbtrade": lambda: backtest_callback(d["close"], crossover_on_bar, user=(d["entries"], d["exits"]),
                                             size=1.0, fees=FEE, init_cash=INIT_CASH, fill="close", freq="1m",
                                             on_gap="skip").equity.to_numpy(),
        "bare_loop": lambda: bare_loop_nb(d["close"], d["entries"], d["exits"], FEE, INIT_CASH,
                                          np.empty(d["close"].shape[0])),
    }


def _setup_perp(n: int, margin: str = "isolated"):
    """The SMA-cross signals as 10x linear perpetuals, isolated margin (or ``margin``), 8-hourly funding (one
    event every 480 one-minute bars, random rates), liquidation on the price candles (no mark candles in this
    data), fills at the open; baseline ``spot``: the same signals and data on spot (1x, same fill). Target: the
    perpetual run at >= 0.75x the spot run's speed."""
    import warnings

    import nbtrade
    from nbtrade.data.panels import _attach_events
    from nbtrade.panel import Market

    _, frames, entries, exits = make_frames(max(n // N_SYMBOLS, 100))
    market = Market(frames)
    t = np.asarray(market.time_ms)[::480]
    rng = np.random.default_rng(7)
    _attach_events(market, {s: {"time": t, "rate": rng.normal(1e-4, 2e-4, t.shape[0])} for s in market.symbols})

    def run(**kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = nbtrade.backtest(market, entries, exits, size=0.05, size_type="percent", fees=FEE,
                                   init_cash=INIT_CASH, on_gap="skip", **kw)
        return res.equity.to_numpy()

    return {"nbtrade": lambda: run(instrument="perp", leverage=10, margin=margin), "spot": lambda: run()}


def _setup_perp_cross(n: int):
    """:func:`_setup_perp` with cross margin (one wallet; the wallet check runs on every bar)."""
    return _setup_perp(n, margin="cross")


def _check(ref, other):
    # absolute floor: over a million bars the fees grind the all-in equity towards zero, where
    # relative differences of dust-sized numbers mean nothing
    np.testing.assert_allclose(np.asarray(other).ravel(), ref, rtol=1e-9, atol=1e-9 * INIT_CASH)


CASES = [
    Case("signals_sma_crossover_20sym", _setup, unit="bar-step", units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS,
         check=_check, target=">= 0.5x bare_loop speed, >= 10x vectorbt"),
    Case("signals_sma_crossover_20sym_prepared", _setup_prepared, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check, target=">= 0.5x bare_loop speed"),
    Case("callback_sma_crossover_20sym", _setup_callback, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check, target=">= 0.25x bare_loop speed"),
    Case("signals_sma_crossover_20sym_frames", _setup_frames, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check,
         target=">= 10x vectorbt (whole call from a dict of OHLCV DataFrames)"),
    Case("signals_sma_crossover_20sym_market", _setup_market, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check, target=">= 30x vectorbt"),
    Case("market_build_20sym", _setup_build, unit="bar-step", units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS,
         target="build <= 2x the kernel (kernel ratio >= 0.5)"),
    Case("signals_sma_crossover_20sym_perp", _setup_perp, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS,
         target=">= 0.75x spot (10x perpetuals, isolated margin, 8-hourly funding vs the same signals on spot)"),
    Case("signals_sma_crossover_20sym_perp_cross", _setup_perp_cross, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS,
         target="report vs spot (10x perpetuals, cross margin, 8-hourly funding vs the same signals on spot)"),
    Case("signals_sma_crossover_20sym_isolated", _setup_isolated, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check,
         target=">= 0.5x bare_loop speed, >= 10x vectorbt"),
]


def peak_memory(n: int) -> tuple[float, float]:
    """Peak extra memory of one signals run (tracemalloc) and the input arrays' size, bytes."""
    d = make_inputs(max(n // N_SYMBOLS, 100))
    _run_nbtrade(make_inputs(200))  # compile / load outside the measurement
    inputs = sum(d[k].nbytes for k in d)
    tracemalloc.start()
    _run_nbtrade(d)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return float(peak), float(inputs)


_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
from nbtrade.benchsuite.bench_engine import make_inputs, _run_nbtrade
import nbtrade.backtesting
t1 = time.perf_counter()
_run_nbtrade(make_inputs(200))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def compile_times() -> tuple[float, float]:
    """First signals run in a fresh process: with an empty numba cache, then with it warm (s)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True, text=True,
                                 check=True)
            out.append(float(res.stdout.split()[1]))
    return out[0], out[1]


def main(argv=None) -> int:
    from nbtrade.bench import script_main

    _, n = script_main(CASES, "nbtrade bench engine", __doc__.split("\n")[0], argv)
    peak, inputs = peak_memory(n)
    print(f"peak extra memory: {peak / 1e6:.1f} MB = {peak / inputs:.2f}x the input arrays ({inputs / 1e6:.1f} MB)")
    t0 = time.perf_counter()
    cold, warm = compile_times()
    print(f"first run in a fresh process: cold cache {cold:.2f} s, warm cache {warm:.2f} s "
          f"(measured in {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
