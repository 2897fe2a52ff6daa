"""The sweep's parameter heat map: drawn by the report's chart layer (canvas, tooltip per cell), a
shaded table without scripts, numbers through nbtrade.format (page and terminal)."""
import asyncio
import re

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.report import heatmap

from .cdp import Page, chromium

GRID = {"fast": [3, 5, 8, 13], "slow": [20, 40, 60]}


def _cross(market, fast, slow):
    f, s = nbtrade.sweep.sma(market, fast), nbtrade.sweep.sma(market, slow)
    return f > s, f < s


@pytest.fixture(scope="module")
def swept():
    data = nbtrade.prepare(nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-15", "1h", seed=4))
    return nbtrade.sweep(data, _cross, GRID, fees=0.001, maximize="Total Return [%]")


def test_payload_and_static_table_format_every_number():
    hm = pd.DataFrame([[1234.5678, np.nan], [-2.0, 0.123456]], index=pd.Index([0.5, 1.0], name="sl"),
                      columns=pd.Index([10, 20], name="window"))
    data = heatmap.payload(hm, "Total Return [%]", "best over x (max)")
    assert data["xs"] == ["10", "20"] and data["ys"] == ["0.5", "1"]
    assert data["text"] == [["1,234.57%", "–"], ["-2.00%", "0.12%"]]
    assert data["shade"][0] == [1.0, None] and data["shade"][1][0] == 0.0
    assert data["lo"] == "-2.00%" and data["hi"] == "1,234.57%"
    table = heatmap.table(hm, "Total Return [%]")
    assert "1,234.57%" in table and "<td></td>" in table and "e+" not in table
    assert heatmap.table(hm, "Sharpe Ratio").count("1,235") == 1  # ratios: whole numbers above 1,000


def test_sweep_page_and_terminal_use_the_formatter(swept):
    page = swept.to_html(title="grid")
    assert "<h1>grid</h1>" in page and "class='heatmap'" in page and "<canvas>" in page
    noscript = re.search(r"<noscript>(.*?)</noscript>", page, re.S).group(1)
    assert noscript.count("<td style=") == 12 and "%" in noscript  # the metric is a percentage
    assert "Top combinations" in page and "deflated Sharpe" in page
    assert "LightweightCharts" not in page  # the heat map needs only its own small script
    top = swept.table["Total Return [%]"].iloc[0]
    assert nbtrade.format.stat("Total Return [%]", top) in page
    from rich.console import Console

    con = Console(record=True, width=120)
    swept.print_heatmap(console=con)
    out = con.export_text()
    assert nbtrade.format.stat("Total Return [%]", top) in out and "e+" not in out


def test_heatmap_in_headless_chromium(swept, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser test skipped")
    pytest.importorskip("PIL")
    path = tmp_path / "sweep.html"
    swept.report(str(path), title="grid")
    hm = swept.heatmap()

    async def drive():
        async with Page(browser, tmp_path / "profile") as page:
            await page.goto(path.as_uri())
            await page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            box = await page.eval("(() => { const r = window.nbtradeHeatmaps[0].canvas.getBoundingClientRect();"
                                  " return [r.left, r.top, r.right, r.bottom]; })()")
            await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=int(box[3]) + 200,
                            deviceScaleFactor=1, mobile=False)
            await asyncio.sleep(0.3)
            box = await page.eval("(() => { const r = window.nbtradeHeatmaps[0].canvas.getBoundingClientRect();"
                                  " return [r.left, r.top, r.right, r.bottom]; })()")
            shot = await page.screenshot(tmp_path / "shot.png")
            tip = "document.querySelector('.hm-tooltip')"
            hidden = await page.eval(f"getComputedStyle({tip}).display")
            x, y = await page.eval("window.nbtradeHeatmaps[0].cellCenter(1, 2)")
            await page.move_mouse(x, y)
            await page.wait_for(f"getComputedStyle({tip}).display === 'block'")
            text = await page.eval(f"{tip}.innerText")
            await page.move_mouse(box[0] - 40 if box[0] > 60 else 5, box[3] + 100)
            await page.wait_for(f"getComputedStyle({tip}).display === 'none'")
            after = await page.eval(f"getComputedStyle({tip}).display")
            return page.errors, page.requests, shot, box, hidden, text, after

    errors, requests, shot, box, hidden, text, after = asyncio.run(drive())
    assert errors == []
    assert all(u.startswith(("file:", "about:", "data:")) for u in requests), requests
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB").crop(tuple(int(v) for v in box))).astype(int)
    # shaded cells: blue channel 90, red and green varying (not the white page nor grey text)
    cells = (abs(img[..., 2] - 90) < 6) & (img[..., 0] + img[..., 1] > 200)
    assert cells.sum() > 2000, cells.sum()
    assert hidden == "none" and after == "none"
    row, col = hm.index[1], hm.columns[2]
    value = nbtrade.format.stat("Total Return [%]", hm.iloc[1, 2])
    assert f"fast {col}" in text and f"slow {row}" in text and f"Total Return [%] {value}" in text, text


def test_notebook_display_of_a_sweep(swept):
    text = swept._repr_html_()
    assert text.startswith("<iframe srcdoc=") and "nbtrade-heatmap" in text and "<script" not in text


def test_wide_grid_scrolls_and_keeps_its_tooltips(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser test skipped")
    from nbtrade.report.html import page

    rng = np.random.default_rng(0)
    hm = pd.DataFrame(rng.normal(1.0, 1.0, (30, 80)), index=pd.Index(np.arange(30) * 0.25, name="sl_stop"),
                      columns=pd.Index(np.arange(80) + 2, name="window"))
    hm.iloc[3, 5] = np.nan
    path = tmp_path / "wide.html"
    path.write_text(page("wide", heatmap.section(hm, "Sharpe Ratio") + heatmap.script(), extra_css=heatmap.CSS))

    async def drive():
        async with Page(browser, tmp_path / "profile") as page_:
            await page_.goto(path.as_uri())
            sizes = await page_.eval("(() => { const c = window.nbtradeHeatmaps[0].canvas;"
                                     " return [c.clientWidth, c.parentElement.clientWidth]; })()")
            x, y = await page_.eval("window.nbtradeHeatmaps[0].cellCenter(10, 4)")
            await page_.move_mouse(x, y)
            await page_.wait_for("getComputedStyle(document.querySelector('.hm-tooltip')).display === 'block'")
            text = await page_.eval("document.querySelector('.hm-tooltip').innerText")
            x, y = await page_.eval("window.nbtradeHeatmaps[0].cellCenter(3, 5)")
            await page_.move_mouse(x, y)
            await page_.wait_for("document.querySelector('.hm-tooltip').innerText.includes('window 7')")
            empty = await page_.eval("document.querySelector('.hm-tooltip').innerText")
            return page_.errors, sizes, text, empty

    errors, (canvas_w, box_w), text, empty = asyncio.run(drive())
    assert errors == [] and canvas_w > box_w  # 80 columns: the box scrolls sideways
    assert "window 6" in text and "sl_stop 2.5" in text and nbtrade.format.number(hm.iloc[10, 4]) in text
    assert "Sharpe Ratio –" in empty  # a missing cell says so


def test_missing_values_of_nullable_columns_print_as_a_dash():
    # a failed combination's "# Trades" is pandas.NA in an Int64 column
    assert nbtrade.format.stat("# Trades", pd.NA) == "–" and nbtrade.format.number(pd.NA) == "–"
    assert nbtrade.format.param(pd.NA) == "–"
