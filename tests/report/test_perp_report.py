"""Report views of perpetual runs (issue 17): funding paid over time (portfolio and per symbol),
liquidations on the price chart and in the trades table, margin used over equity; the numbers by
hand and the panes in headless chromium."""
import asyncio
import re

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.report import interactive as ix

from .cdp import Page, chromium


def _frame(close, n_flat=0):
    idx = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC")
    c = np.asarray(close, dtype=float)
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx), idx


def _with_funding(frames, every=8, rate=1e-4):
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    market = prepare_data(frames)
    t = np.asarray(market.time_ms)
    _attach_events(market, {s: {"time": t[every::every], "rate": np.full(len(t[every::every]), rate)}
                            for s in market.symbols})
    return market


def test_margin_usage_funding_and_liquidation_by_hand():
    # a 10x long of 100 units at 100 (margin 1,000 = all equity; signal at bar 0, filled at bar 1's
    # open), funding +0.01 % at bars 2 and 4, the price falls through the liquidation price
    # (100 x 0.9 / 0.996 = 90.36) at bar 5
    close = [100.0, 100.0, 100.0, 100.0, 100.0, 80.0, 80.0]
    df, idx = _frame(close)
    market = _with_funding({"BTC": df}, every=2)
    entries = pd.Series(False, idx)
    entries.iloc[0] = True
    r = nbtrade.backtest(market, entries=entries, instrument="perp", leverage=10, size=1.0, init_cash=1000.0)
    assert r.is_margined and r.leverage().tolist() == [10.0]
    assert list(r.trades["exit_reason"]) == ["liquidation"] and len(r.liquidations) == 1
    paid = r.funding_paid()
    assert list(paid.columns) == ["portfolio", "BTC"]
    # 100 units x mark 100 x 1e-4 = 1 per funding, at bars 2 and 4 (the one at bar 6 finds no position)
    np.testing.assert_allclose(paid["BTC"].to_numpy(), [0, 0, 1, 1, 2, 2, 2], atol=1e-9)
    assert paid["portfolio"].iloc[-1] == pytest.approx(r.stats()["Funding Paid [$]"])
    usage = r.margin_usage()
    # filled at bar 1's open: margin 100 x 100 / 10 = 1,000 over equity 1,000, then 999, 998 after
    # funding; 0 once liquidated (no position; the equity left is what the fee did not take)
    np.testing.assert_allclose(usage.iloc[:5].to_numpy(), [0.0, 100.0, 1e5 / 999, 1e5 / 999, 1e5 / 998])
    assert usage.iloc[5:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(r.margin_used()["BTC"].iloc[1:5], 1000.0)


def test_spot_runs_have_no_perp_views():
    df, idx = _frame([100.0, 101.0, 102.0])
    entries = pd.Series([True, False, False], idx)
    r = nbtrade.backtest({"BTC": df}, entries=entries)
    assert not r.is_margined and r.liquidations.empty
    html = r.to_html()
    assert '"funding"' not in html and '"margin"' not in html and "Liquidations (" not in html


def _perp_run(seed=1, leverage=20):
    from nbtrade.strategies import ema_cross

    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01", "1h", seed=seed)
    market = _with_funding(data.to_frames() if hasattr(data, "to_frames") else data)
    sig = ema_cross(data)
    return nbtrade.backtest(market, entries=sig["entries"], exits=sig["exits"], short_entries=sig["exits"],
                            short_exits=sig["entries"], instrument="perp", leverage=leverage, size=0.5)


@pytest.fixture(scope="module")
def perp():
    r = _perp_run()
    assert (r.trades["exit_reason"] == "liquidation").sum() >= 1
    return r


def test_payload_and_page_carry_funding_margin_and_liquidations(perp):
    page = perp.to_html(title="perp run")
    assert "<h1>perp run</h1>" in page
    data = ix.payload(perp.equity, candles=perp._candles(), trades=perp.trades, funding=perp.funding_paid(),
                      margin=perp.margin_usage())
    assert set(data["funding"]) == {"portfolio", "BTC/USDT", "ETH/USDT"}
    assert data["funding"]["portfolio"][-1] == pytest.approx(perp.stats()["Funding Paid [$]"], rel=1e-6)
    assert len(data["margin"]) == len(perp.equity)
    n_liq = sum(sum(t["liq"]) for t in data["trades"].values())
    assert n_liq == len(perp.liquidations)
    assert f"Liquidations ({n_liq:,} of {len(perp.trades):,} trades)" in page
    # liquidated trades: rows shaded in the trades tables, the reason visible
    rows = re.findall(r'<tr class="liq">(.*?)</tr>', page)
    assert len(rows) >= 2 * min(n_liq, 1) and all("liquidation" in r for r in rows)
    assert "funding paid (cumulative)" in page and "margin usage" in page
    # scripts off: static pictures of both, liquidations marked
    noscript = re.search(r"<noscript>(.*?)</noscript>", page, re.S).group(1)
    assert "Funding paid, cumulative" in noscript and "Margin used / equity" in noscript
    assert "liquidation" in noscript


def test_perp_report_in_headless_chromium(perp, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser test skipped")
    pytest.importorskip("PIL")
    path = tmp_path / "perp.html"
    sym = perp.liquidations["symbol"].iloc[0]
    perp.report(str(path), symbol=sym)

    async def drive():
        async with Page(browser, tmp_path / "profile") as page:
            await page.goto(path.as_uri())
            await page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            box = await page.eval("(() => { const r = document.getElementById('nbtrade-chart')"
                                  ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()")
            await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=int(box[3]) + 40,
                            deviceScaleFactor=1, mobile=False)
            await asyncio.sleep(0.5)
            n_panes = await page.eval("window.nbtradeReport.chart.panes().length")
            pane_boxes = await page.eval("""window.nbtradeReport.chart.panes().map(p => {
                const el = p.getHTMLElement(); const r = el.getBoundingClientRect();
                return [r.left, r.top, r.right, r.bottom]; })""")
            shot = await page.screenshot(tmp_path / "shot.png")
            # the pointer over the funding pane: the legend gives the funding paid and the margin used then
            fx, fy = (pane_boxes[4][0] + pane_boxes[4][2]) / 2, (pane_boxes[4][1] + pane_boxes[4][3]) / 2
            await page.move_mouse(fx, fy)
            legend = await page.wait_for("(t => t.includes('funding paid') && t)"
                                         "(document.getElementById('nbtrade-legend').textContent)")
            # zoom onto the first liquidation, then point at its marker
            liq = await page.eval("window.nbtradeReport.liquidations()[0]")
            await page.eval(f"window.nbtradeReport.chart.timeScale().setVisibleLogicalRange("
                            f"{{from: {liq['bar']} - 30, to: {liq['bar']} + 30}})")
            await page.wait_for("window.nbtradeReport.mode() === 'events'")
            await page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            target = await page.eval("""(() => {
                const r = window.nbtradeReport, e = r.liquidations()[0];
                const box = document.getElementById('nbtrade-chart').getBoundingClientRect();
                return [box.left + r.chart.timeScale().timeToCoordinate(e.time),
                        box.top + r.candle.priceToCoordinate(e.price)]; })()""")
            await page.move_mouse(*target)
            shown = "getComputedStyle(document.getElementById('nbtrade-tooltip')).display === 'block'"
            await page.wait_for(shown)
            tip = await page.eval("document.getElementById('nbtrade-tooltip').innerText")
            return page.errors, n_panes, pane_boxes, shot, tip, legend

    errors, n_panes, pane_boxes, shot, tip, legend = asyncio.run(drive())
    assert errors == []
    assert n_panes == 6  # price, equity, drawdown, exposure, funding, margin
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)

    def pixels(box, rgb, tol=40):
        x0, y0, x1, y1 = (int(v) for v in box)
        crop = img[y0:y1, x0:x1]
        return int(((abs(crop - np.array(rgb)) < tol).all(axis=-1)).sum())

    assert pixels(pane_boxes[4], (0x7C, 0x3A, 0xED)) > 100  # the portfolio's funding line (purple)
    assert pixels(pane_boxes[5], (0x08, 0x91, 0xB2)) > 100  # the margin usage line (cyan)
    assert tip.startswith("liquidation") and "(liquidation)" in tip and "PnL" in tip, tip
    assert re.search(r"funding paid portfolio -?[\d,]+\.\d\d, BTC/USDT -?[\d,]+\.\d\d", legend), legend
    assert re.search(r"margin used [\d,.]+% of equity", legend), legend


def test_perp_summary_and_rich_table(perp):
    from rich.console import Console

    from nbtrade.report.perp import perp_summary, perp_table

    s = perp_summary(perp)
    assert list(s.index) == ["portfolio", "BTC/USDT", "ETH/USDT"]
    assert s.loc["portfolio", "Funding Paid [$]"] == pytest.approx(perp.stats()["Funding Paid [$]"])
    for sym in perp.symbols:
        assert s.loc[sym, "Funding Paid [$]"] == pytest.approx(perp.stats(sym)["Funding Paid [$]"])
    assert s["# Liquidations"].iloc[0] == len(perp.liquidations) == s["# Liquidations"].iloc[1:].sum()
    assert s.loc["portfolio", "Liquidation PnL [$]"] == pytest.approx(perp.liquidations["pnl"].sum())
    assert s.loc["portfolio", "Max. Margin Usage [%]"] == pytest.approx(perp.margin_usage().max())
    assert (s["Leverage"] == 20.0).all()
    con = Console(record=True, width=160)
    con.print(perp_table(perp))
    out = con.export_text()
    assert "20x" in out and nbtrade.format.money(s.loc["portfolio", "Funding Paid [$]"]) in out
    assert nbtrade.format.percent(s.loc["portfolio", "Max. Margin Usage [%]"]) in out


def test_cli_backtest_prints_the_perp_table(tmp_path, capsys, monkeypatch):
    from nbtrade.cli import main

    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    strat = tmp_path / "perp_strat.py"
    strat.write_text("BACKTEST = {'instrument': 'perp', 'leverage': 5}\n"
                     "def strategy(data):\n"
                     "    import pandas as pd\n"
                     "    c = pd.DataFrame({s: f['close'] for s, f in data.items()})\n"
                     "    fast, slow = c.ewm(span=5).mean(), c.ewm(span=20).mean()\n"
                     "    return {'entries': fast > slow, 'exits': fast < slow,\n"
                     "            'short_entries': fast < slow, 'short_exits': fast > slow}\n")
    code = main(["backtest", str(strat), "--synthetic", "--start", "2024-01-01", "--end", "2024-01-10",
                 "--report", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Perpetuals: funding, liquidations, margin" in out and "5x" in out and "Max. Margin" in out
    assert "margin usage" in (tmp_path / "r.html").read_text()


def test_saved_perp_result_keeps_funding_and_its_report_views(perp, tmp_path):
    loaded = nbtrade.load_result(perp.save(str(tmp_path / "perp.npz")))
    np.testing.assert_array_equal(loaded.funding.to_numpy(), perp.funding.to_numpy())
    assert loaded.stats()["Funding Paid [$]"] == perp.stats()["Funding Paid [$]"]
    pd.testing.assert_series_equal(loaded.margin_usage(), perp.margin_usage())
    assert len(loaded.liquidations) == len(perp.liquidations)
    page = loaded.to_html()
    assert "funding paid (cumulative)" in page and "margin usage" in page and "Liquidations (" in page


def test_leveraged_spot_shows_margin_without_funding():
    df, idx = _frame([100.0, 101.0, 102.0, 101.0, 100.0])
    entries = pd.Series([True, False, False, False, False], idx)
    r = nbtrade.backtest({"BTC": df}, entries=entries, leverage=2, size=1.0, init_cash=1000.0)
    assert r.is_margined and r.funding_flows is None
    usage = r.margin_usage()
    assert usage.iloc[1] == pytest.approx(100.0)  # notional 2,000 at 2x: margin 1,000 = the equity
    data = ix.payload(r.equity, candles=r._candles(), trades=r.trades, margin=usage)
    page = r.to_html()
    assert "margin" in data and '"margin":' in page and '"funding":' not in page


def test_funding_pane_keeps_the_largest_symbols_of_many():
    idx = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    paid = pd.DataFrame({f"S{j}": np.linspace(0, j - 6, 10) for j in range(12)}, index=idx)
    paid.insert(0, "portfolio", paid.sum(axis=1))
    data = ix.payload(pd.Series(1000.0, index=idx), funding=paid)
    # final |amounts| 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5: the 8 largest (S4 before S8 on the tie), in column order
    assert list(data["funding"]) == ["portfolio", "S0", "S1", "S2", "S3", "S4", "S9", "S10", "S11"]
    assert data["funding_cut"] == [8, 12] and "8 of 12 symbols" in ix.section(data)
    static = nbtrade.report.html._static_charts(pd.Series(1000.0, index=idx), None, None, None, None, funding=paid)
    assert "the portfolio and 8 of 12 symbols" in static
