import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from nbtrade.report.html import drawdown, monthly_returns, write_report
from nbtrade.report.svg import reduce_series


def _inputs(n=24 * 120):
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    eq = pd.Series(10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), index=idx)
    bench = pd.Series(10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), index=idx)
    price = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), index=idx, name="BTC/USDT")
    trades = pd.DataFrame({"entry_time": idx[[10, 500]], "entry_price": price.iloc[[10, 500]].to_numpy(),
                           "exit_time": idx[[200, 900]], "exit_price": price.iloc[[200, 900]].to_numpy(),
                           "pnl": [12.5, -3.0]})
    return eq, bench, price, trades


def test_report_is_self_contained(tmp_path):
    eq, bench, price, trades = _inputs()
    path = write_report(
        str(tmp_path / "r.html"), eq, benchmarks={"buy & hold": bench}, price=price, trades=trades,
        stats=pd.Series({"Total Return [%]": 1.5, "Sharpe Ratio": 0.8}),
        importances=pd.Series({"rsi_14": 0.3, "ret_1": 0.7}),
        folds=pd.DataFrame({"score": [0.55, 0.6]}), exposure=pd.Series(50.0, index=eq.index),
        assumptions={"fill": "next_open", "fees": 0.001}, reproducibility={"seed": 42},
        monitor=[{"stage": "fit", "calls": 1, "wall_s": 1.0, "share": 1.0, "cpu_s": 1.0, "p95_s": 1.0,
                  "peak_delta_bytes": 0}])
    text = open(path, encoding="utf-8").read()
    assert text.count("<svg") >= 6
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "<script" not in text
    for needle in ("Assumptions", "next_open", "Reproducibility", "Monthly returns", "Feature importances",
                   "Performance monitor", "Trades (2)"):
        assert needle in text


def test_monthly_returns_and_drawdown():
    idx = pd.to_datetime(["2024-01-01", "2024-01-31", "2024-02-15", "2024-02-29"], utc=True)
    eq = pd.Series([100.0, 110.0, 99.0, 121.0], index=idx)
    m = monthly_returns(eq)
    assert m.loc[2024, 1] == pytest.approx(10.0) and m.loc[2024, 2] == pytest.approx(10.0)
    assert drawdown(eq).min() == pytest.approx(-10.0)


def test_reduce_keeps_extremes():
    y = np.sin(np.linspace(0, 50, 100_000))
    y[77_777] = -5.0
    x = np.arange(y.size, dtype=float)
    xr, yr = reduce_series(x, y, 800)
    assert len(xr) <= 810 and yr.min() == -5.0 and yr.max() == y.max()


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _screenshot(browser, flags, url, shot):
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", url],
                   capture_output=True, timeout=120)
    assert shot.exists(), "chromium wrote no screenshot"
    return shot.stat().st_size


def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); render check skipped")
    eq, bench, price, trades = _inputs()
    path = write_report(str(tmp_path / "r.html"), eq, benchmarks={"buy & hold": bench}, price=price, trades=trades)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    size = _screenshot(browser, flags, f"file://{path}", tmp_path / "shot.png")
    blank_size = _screenshot(browser, flags, f"file://{blank}", tmp_path / "blank.png")
    assert size > 5 * blank_size  # charts were drawn: far more detail than an empty page
    dom = subprocess.run([browser, *flags, "--dump-dom", "--enable-logging=stderr", "--v=0", f"file://{path}"],
                         capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<polyline") >= 3
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr


def test_result_report_has_exposure_and_assumptions(tmp_path):
    import nbtrade
    from nbtrade.strategies import ema_cross

    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01", "1h", seed=1)
    result = nbtrade.backtest(data, **ema_cross(data), size=0.5)
    exposure = result.exposure()
    assert exposure.min() >= 0 and exposure.max() <= 101 and exposure.max() > 0
    path = result.report(str(tmp_path / "r.html"), title="t")
    text = open(path, encoding="utf-8").read()
    assert "Exposure [% of equity]" in text and "Assumptions" in text and "Price and trades: BTC/USDT" in text


def test_trades_table_lists_every_symbol_and_says_when_cut(tmp_path):
    import nbtrade
    from nbtrade.report.html import _frame_table
    from nbtrade.strategies import ema_cross

    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01", "1h", seed=1)
    result = nbtrade.backtest(data, **ema_cross(data), size=0.5)
    text = open(result.report(str(tmp_path / "r.html")), encoding="utf-8").read()
    assert "<td>ETH/USDT</td>" in text and "<td>BTC/USDT</td>" in text
    assert "return [%]" in text and "e+0" not in text
    cut = _frame_table(result.trades, max_rows=3, what="trades")
    assert f"First 3 of {len(result.trades):,} trades shown." in cut


def test_stat_table_numbers_are_formatted_and_only_gains_coloured():
    from nbtrade.report.html import _frame_table

    stats = pd.Series({"Equity Final [$]": 13624.83860586427, "Volatility (ann.) [%]": 54.48,
                       "Total Return [%]": -2.0, "Max. Drawdown Duration": pd.Timedelta(hours=292)}, dtype=object)
    text = _frame_table(stats.to_frame("value"))
    assert "13,624.84" in text and '<td class="neg">-2.00%</td>' in text and "12d 4h" in text
    assert "<td>54.48%</td>" in text  # volatility is not a gain
