import re

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
                  "peak_delta_bytes": 0}], interactive=False)
    text = open(path, encoding="utf-8").read()
    assert text.count("<svg") >= 6
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "<script" not in text
    # the interactive page inlines everything: nothing to fetch at view time
    live = open(write_report(str(tmp_path / "i.html"), eq, price=price, trades=trades), encoding="utf-8").read()
    assert "<script" in live and "<noscript>" in live and "LightweightCharts" in live
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", live) and "<link" not in live
    assert "@import" not in live
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


def test_static_fallback_renders_with_scripts_off(tmp_path):
    """With scripts disabled the <noscript> pictures are drawn instead of the interactive chart."""
    import asyncio

    from .cdp import Page, chromium

    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); render check skipped")
    pytest.importorskip("PIL")
    from PIL import Image

    eq, bench, price, trades = _inputs()
    path = write_report(str(tmp_path / "r.html"), eq, benchmarks={"buy & hold": bench}, price=price, trades=trades)

    async def drive():
        async with Page(browser, tmp_path / "profile") as page:
            await page.send("Emulation.setScriptExecutionDisabled", value=True)
            await page.send("Emulation.setDeviceMetricsOverride", width=1200, height=1600, deviceScaleFactor=1,
                            mobile=False)
            await page.goto(f"file://{path}")
            root = await page.send("DOM.getDocument", depth=-1)
            dom = (await page.send("DOM.getOuterHTML", nodeId=root["root"]["nodeId"]))["outerHTML"]
            shot = await page.screenshot(tmp_path / "shot.png")
            return dom, shot, page.errors

    dom, shot, errors = asyncio.run(drive())
    assert errors == []
    assert dom.count("<polyline") >= 3  # the static charts are part of the page now
    px = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    blue = (abs(px[:, 0].astype(int) - 0x25) < 30) & (abs(px[:, 1].astype(int) - 0x63) < 30) & (px[:, 2] > 200)
    assert blue.sum() > 300  # the equity line was drawn


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
