"""The interactive report in headless chromium: loads without errors or network, draws candles,
shows a trade's tooltip under the pointer; and its data payload."""
import asyncio

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.report import interactive as ix

from .cdp import Page, chromium


def _result(symbols=("BTC/USDT", "ETH/USDT"), end="2024-02-01"):
    from nbtrade.strategies import ema_cross

    data = nbtrade.market(list(symbols), "2024-01-01", end, "1h", seed=1)
    return nbtrade.backtest(data, **ema_cross(data), size=1.0 / len(symbols))


def test_payload_has_candles_trades_and_tooltips():
    res = _result()
    data = ix.payload(res.equity, candles=res._candles(), trades=res.trades, exposure=res.exposure(),
                      benchmarks={"buy & hold": res.market() * res.init_cash})
    assert data["symbols"] == ["BTC/USDT", "ETH/USDT"] and data["ohlc"] and data["merged"] == 1
    assert len(data["t"]) == len(res.equity) and set(data["equity"]) == {"equity", "buy & hold"}
    btc = res.trades[res.trades["symbol"] == "BTC/USDT"]
    tr = data["trades"]["BTC/USDT"]
    assert len(tr["entry_t"]) == len(btc)
    first = btc.iloc[0]
    assert tr["entry_t"][0] == first["entry_time"].timestamp()
    text = tr["text"][0]
    for part in ("long BTC/USDT", nbtrade.format.price(first["entry_price"]), "size", "PnL",
                 first["exit_reason"], "%"):
        assert part in text, part
    assert "e+0" not in str(data)


def test_long_series_are_merged_into_coarser_bars():
    idx = pd.date_range("2024-01-01", periods=1000, freq="min", tz="UTC")
    close = pd.Series(np.arange(1000.0) + 1, index=idx)
    frame = pd.DataFrame({"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0})
    eq = pd.Series(np.linspace(100, 50, 1000), index=idx)
    data = ix.payload(eq, candles={"X": frame}, max_bars=100)
    assert data["merged"] == 10 and len(data["t"]) == 100
    c = data["candles"]["X"]
    assert c["o"][0] == 1.0 and c["h"][0] == 10.5 and c["l"][0] == 0.5 and c["c"][0] == 10.0 and c["v"][0] == 10.0
    assert data["drawdown"][-1] == pytest.approx(-50.0)


def test_script_text_cannot_close_its_element():
    text = ix._json_for_script({"a": "</script><script>alert(1)</script>"})
    assert "</script" not in text


def _candle_pixels(png_path, box):
    from PIL import Image

    img = Image.open(png_path).convert("RGB")
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = np.asarray(img.crop((x0, y0, x1, y1))).astype(int)
    green = (abs(crop[..., 0] - 0x16) < 40) & (abs(crop[..., 1] - 0xA3) < 40) & (abs(crop[..., 2] - 0x4A) < 40)
    red = (abs(crop[..., 0] - 0xDC) < 40) & (abs(crop[..., 1] - 0x26) < 40) & (abs(crop[..., 2] - 0x26) < 40)
    return int(green.sum()), int(red.sum())


def test_report_in_headless_chromium(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser test skipped")
    pytest.importorskip("PIL")
    res = _result()
    path = tmp_path / "r.html"
    res.report(str(path), title="t")

    async def drive():
        async with Page(browser, tmp_path / "profile") as page:
            await page.goto(path.as_uri())
            await page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            box = await page.eval("(() => { const r = document.getElementById('nbtrade-chart')"
                                  ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()")
            await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=int(box[3]) + 40,
                            deviceScaleFactor=1, mobile=False)
            await asyncio.sleep(0.5)
            shot = await page.screenshot(tmp_path / "shot.png")
            assert await page.eval("window.nbtradeReport.mode()") == "events"
            # the first trade's entry marker, in page pixels
            target = await page.eval("""(() => {
                const r = window.nbtradeReport, e = r.events()[0];
                const box = document.getElementById('nbtrade-chart').getBoundingClientRect();
                return {x: box.left + r.chart.timeScale().timeToCoordinate(e.time),
                        y: box.top + r.candle.priceToCoordinate(e.price), kind: e.kind, trade: e.trade}; })()""")
            hidden = await page.eval("getComputedStyle(document.getElementById('nbtrade-tooltip')).display")
            shown = "getComputedStyle(document.getElementById('nbtrade-tooltip')).display === 'block'"
            await page.move_mouse(target["x"], target["y"])
            await page.wait_for(shown)
            tip = await page.eval("(() => { const t = document.getElementById('nbtrade-tooltip');"
                                  " return [getComputedStyle(t).display, t.innerText]; })()")
            # moving away hides it
            await page.move_mouse(target["x"], max(target["y"] - 200, box[1] + 5))
            await page.wait_for(f"!({shown})")
            after = await page.eval("getComputedStyle(document.getElementById('nbtrade-tooltip')).display")
            # the symbol selector switches candles and markers
            await page.eval("(() => { const s = document.getElementById('nbtrade-symbol'); s.value = 'ETH/USDT';"
                            " s.dispatchEvent(new Event('change')); })()")
            n_eth = await page.eval("window.nbtradeReport.events().length")
            return page.errors, page.requests, shot, box, hidden, tip, after, target, n_eth

    errors, requests, shot, box, hidden, tip, after, target, n_eth = asyncio.run(drive())
    assert errors == []
    assert all(u.startswith(("file:", "about:", "data:")) for u in requests), requests
    # the candle pane (top ~half of the chart box) holds many up and down candle pixels
    green, red = _candle_pixels(shot, (box[0], box[1], box[2], box[1] + (box[3] - box[1]) * 0.45))
    assert green > 500 and red > 500, (green, red)
    assert hidden == "none" and after == "none"
    assert tip[0] == "block"
    trade = res.trades[res.trades["symbol"] == "BTC/USDT"].iloc[target["trade"]]
    assert "entry" in tip[1] and nbtrade.format.price(trade["entry_price"]) in tip[1] and "PnL" in tip[1]
    assert n_eth == 2 * (res.trades["symbol"] == "ETH/USDT").sum() - (
        (res.trades["symbol"] == "ETH/USDT") & (res.trades["exit_reason"] == "end")).sum()


def test_plot_and_notebook_display(tmp_path, monkeypatch):
    res = _result(("BTC/USDT",), end="2024-01-10")
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url))
    path = res.plot(str(tmp_path / "p.html"), open_browser=False)
    assert "nbtrade-chart" in open(path, encoding="utf-8").read() and opened == []
    tmp = res.plot()
    assert opened == ["file://" + tmp] and tmp.endswith(".html")
    html = res._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "&lt;script" in html and "<script" not in html
    assert "LightweightCharts" in res.to_html() and "<script" not in res.to_html(interactive=False)


def test_markers_cluster_when_zoomed_out(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser test skipped")
    from nbtrade.strategies import ema_cross

    data = nbtrade.market(["BTC/USDT"], "2024-01-01", "2024-03-01", "1h", seed=2)
    res = nbtrade.backtest(data, **ema_cross(data, fast=2, slow=5))
    assert len(res.trades) > 100
    path = tmp_path / "busy.html"
    res.report(str(path))

    async def drive():
        async with Page(browser, tmp_path / "profile") as page:
            await page.goto(path.as_uri())
            frame = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            await page.eval(frame)
            wide = await page.eval("window.nbtradeReport.mode()")
            await page.eval("window.nbtradeReport.chart.timeScale().setVisibleLogicalRange({from: 100, to: 160})")
            narrow = await page.wait_for("window.nbtradeReport.mode() === 'events' && 'events'")
            return wide, narrow, page.errors

    wide, narrow, errors = asyncio.run(drive())
    assert errors == [] and wide == "clusters" and narrow == "events"


def test_budgets_keep_big_runs_light():
    idx = pd.date_range("2024-01-01", periods=5000, freq="min", tz="UTC")
    rng = np.random.default_rng(0)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(idx)))), index=idx)
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close})
    eq = pd.Series(1000.0, index=idx)
    entry = np.arange(0, 4990, 2)
    trades = pd.DataFrame({"symbol": "X", "entry_time": idx[entry], "entry_price": close.iloc[entry].to_numpy(),
                           "exit_time": idx[entry + 1], "exit_price": close.iloc[entry + 1].to_numpy()})
    data = ix.payload(eq, candles={"X": frame}, trades=trades, max_bars=2000, max_trades=500)
    assert data["merged"] == 3 and len(data["t"]) == 1667
    step, shown, total = data["trades_cut"]
    assert (step, shown, total) == (5, 499, 2495) and len(data["trades"]["X"]["entry_t"]) == shown
    assert data["trades"]["X"]["entry_t"][-1] > data["t"][len(data["t"]) * 9 // 10]  # markers span the run
    assert "every 5th trade (499 of 2,495)" in ix.section(data)


def test_data_without_timestamps_report_bars():
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    fields = {"open": c, "high": c * 1.01, "low": c * 0.99, "close": c}
    e = np.zeros(300, bool)
    e[::20] = True
    res = nbtrade.backtest(fields, entries=e, exits=np.roll(e, 10), freq="1h")
    data = ix.payload(res.equity, candles=res._candles(), trades=res.trades)
    text = data["trades"][res.symbols[0]]["text"][0]
    assert "in bar 1 @" in text and "1970" not in text
    assert res.stats().formatted()["Avg. Trade Duration"] == "10 bars"
