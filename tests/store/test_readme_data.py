"""The README's data section runs as written (offline, against the local mock exchange)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import nbtrade

README = Path(__file__).resolve().parents[2] / "README.md"


def test_data_block_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path / "home"))  # metadata cache off the user's home
    text = README.read_text()
    section = text[text.index("## Data: fetch, store, import"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env: dict = {}
    exec(block, env)
    m, copy, res = env["m"], env["copy"], env["res"]
    assert isinstance(m, nbtrade.Market) and m.shape == (168, 2) and m.timeframe == "1h"
    assert list(res.data) == ["BTC/USDT", "ETH/USDT"]
    np.testing.assert_array_equal(copy.array("close")[:, 0], m.array("close")[:, 0])
    assert list(env["filters"].index) == ["BTC/USDT"] and env["filters"].loc["BTC/USDT", "tick_size"] > 0
    assert env["fast"].shape == (168, 2)


def test_perpetual_block_runs(tmp_path, monkeypatch):
    """The perpetuals paragraph's block: candles, funding and mark candles from the mock into the store."""
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path / "home"))
    text = README.read_text()
    section = text[text.index("Perpetuals (Binance USD-M"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "serve_in_thread" in block and "funding=True, mark=True" in block  # offline, against the mock
    env: dict = {}
    exec(block, env)
    m, daily = env["m"], env["daily"]
    assert m.has_mark and m.has_funding and len(m.funding_events("BTC/USDT:USDT")) == 12
    assert daily.timeframe == "1d" and daily.has_mark
    np.testing.assert_allclose(np.nansum(daily.array("funding_rate")), np.nansum(m.array("funding_rate")))
