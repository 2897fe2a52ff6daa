"""``nbtrade backtest --instrument perp --leverage N --margin isolated|cross`` and the same keys in a
strategy file's ``BACKTEST`` (flags beat the file)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(tmp_path, *args):
    import os

    env = {**os.environ, "NBTRADE_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "nbtrade", "backtest", *args, "--synthetic", "--start",
                           "2024-01-01", "--end", "2024-01-15", "--json"], capture_output=True, text=True, env=env,
                          timeout=600)


def test_perp_flags_reach_the_run(tmp_path):
    proc = _run(tmp_path, "sma_cross", "--instrument", "perp", "--leverage", "10", "--margin", "cross")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"]["instrument"] == "perp" and out["params"]["leverage"] == 10.0
    assert out["params"]["margin"] == "cross"
    assert "Funding Paid [$]" in out["stats"]


def test_strategy_file_backtest_keys_and_flags_override(tmp_path):
    strat = tmp_path / "perp.py"
    strat.write_text("from nbtrade.strategies import sma_cross\n"
                     "BACKTEST = {'instrument': 'perp', 'leverage': 5, 'margin': 'cross'}\n"
                     "def strategy(data):\n"
                     "    return sma_cross(data)\n")
    proc = _run(tmp_path, str(strat))
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)["params"]
    assert (p["instrument"], p["leverage"], p["margin"]) == ("perp", 5, "cross")
    proc = _run(tmp_path, str(strat), "--leverage", "3", "--margin", "isolated")
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)["params"]
    assert (p["instrument"], p["leverage"], p["margin"]) == ("perp", 3.0, "isolated")


@pytest.mark.parametrize("args, match", [
    (["--leverage", "0"], "leverage must be a number > 0"),
    (["--leverage", "x"], "leverage must be a number > 0"),
    (["--margin", "portfolio"], "invalid choice: 'portfolio'"),
    (["--instrument", "future"], "invalid choice: 'future'"),
])
def test_bad_perp_flags_are_usage_errors(tmp_path, args, match):
    proc = _run(tmp_path, "sma_cross", *args)
    assert proc.returncode == 2 and match in proc.stderr


def test_margin_on_a_spot_run_is_a_clear_error(tmp_path):
    proc = _run(tmp_path, "sma_cross", "--margin", "cross")
    assert proc.returncode == 1 and "margin='cross' applies to perpetuals" in proc.stderr
    proc = _run(tmp_path, "sma_cross", "--leverage", "500", "--instrument", "perp")
    assert proc.returncode == 1 and "leverage 500 is above the maximum" in proc.stderr
