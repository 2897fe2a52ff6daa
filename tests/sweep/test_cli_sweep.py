"""nbtrade sweep on the command line; the sweep-native built-ins equal nbtrade.strategies'."""
import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade import strategies
from nbtrade.cli import main
from nbtrade.sweep.native import ema_cross, sma_cross

ARGS = ["--synthetic", "--symbols", "BTC/USDT,ETH/USDT", "--start", "2024-01-01", "--end", "2024-01-15",
        "--jobs", "1"]


@pytest.mark.parametrize("native, builtin", [(sma_cross, strategies.sma_cross), (ema_cross, strategies.ema_cross)])
def test_native_builtins_equal_strategies(native, builtin):
    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-10", "1h", seed=4)
    want = builtin(data, fast=6, slow=20)
    ent, ex = native(nbtrade.Market(data), fast=6, slow=20)
    np.testing.assert_array_equal(ent, want["entries"].to_numpy())
    np.testing.assert_array_equal(ex, want["exits"].to_numpy())


def test_cli_sweep_builtin(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["sweep", "sma_cross", "--param", "fast=5:15:5", "--param", "slow=30,40", *ARGS,
                 "--csv", str(out), "--top", "3", "--report", str(tmp_path / "r.html")]) == 0
    assert "class='heatmap'" in (tmp_path / "r.html").read_text()
    text = capsys.readouterr().out
    assert "top 3 of 6 combinations by Sharpe Ratio" in text and "deflated Sharpe ratio" in text
    table = pd.read_csv(out, index_col=0)
    assert len(table) == 6 and table["Sharpe Ratio"].is_monotonic_decreasing


def test_cli_sweep_strategy_file(tmp_path, capsys):
    f = tmp_path / "mine.py"
    f.write_text("import nbtrade\n"
                 "BACKTEST = {'fees': 0.002}\n"
                 "def strategy(data, window=10):\n"
                 "    close = nbtrade.Market(data).close\n"
                 "    m = close.rolling(window).mean()\n"
                 "    return {'entries': close > m, 'exits': close < m}\n")
    assert main(["sweep", str(f), "--param", "window=5,10,20", *ARGS, "--maximize", "Total Return [%]"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "mine.py: top 3 of 3 combinations by Total Return [%]" in out


def test_cli_sweep_bad_param(capsys):
    assert main(["sweep", "sma_cross", "--param", "fast=9:1", *ARGS]) == 1
    assert "empty range" in capsys.readouterr().err
    assert main(["sweep", "sma_cross", "--param", "fsat=5,10", *ARGS]) == 1
    assert "unknown parameter 'fsat'" in capsys.readouterr().err


def test_cli_unreachable_scheduler(capsys, monkeypatch):
    from nbtrade.sweep import distributed as dist

    pytest.importorskip("distributed")
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    assert main(["sweep", "sma_cross", "--param", "fast=5,10", "--param", "slow=30", *ARGS,
                 "--scheduler", "tcp://127.0.0.1:9"]) == 1
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_cli_sweep_optuna(tmp_path, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "t.csv"
    argv = ["sweep", "sma_cross", "--param", "fast=2:20:2", "--param", "slow=30:90:10", *ARGS,
            "--sampler", "optuna", "--trials", "6", "--csv", str(out)]
    assert main(argv) == 0
    assert "top 6 of 6 combinations" in " ".join(capsys.readouterr().out.split())
    table = pd.read_csv(out, index_col=0)
    assert len(table) == 6 and len(table.drop_duplicates(["fast", "slow"])) == 6  # 6 of the 70 tried
    assert main(argv) == 0  # seeded: the same combinations again
    again = pd.read_csv(out, index_col=0)
    pd.testing.assert_frame_equal(table, again)


def test_cli_sweep_sampler_bad_input(capsys):
    base = ["sweep", "sma_cross", "--param", "fast=5,10", "--param", "slow=30", *ARGS]
    assert main([*base, "--sampler", "optuna"]) == 1
    assert "--sampler optuna needs --trials" in capsys.readouterr().err
    assert main([*base, "--trials", "5"]) == 1
    assert "--trials is for --sampler optuna" in capsys.readouterr().err
    assert main([*base, "--sampler", "optuna", "--trials", "3", "--max-tries", "2"]) == 1
    assert "--max-tries is for --sampler grid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--sampler", "random"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("extra, match", [
    (["--param", "fast=1:2000", "--param", "slow=1:1000"], r"2,000,000 combinations.*h of engine time.*GiB"),
    (["--param", "fast=5,10", "--param", "slow=30", "--maximize", "Sharp Ratio"], "'Sharp Ratio' is not a statistic"),
    (["--param", "fast="], "fast"),
])
def test_cli_sweep_bad_input(extra, match, capsys):
    import re

    assert main(["sweep", "sma_cross", *extra, *ARGS]) == 1
    assert re.search(match, capsys.readouterr().err)
