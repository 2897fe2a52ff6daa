import subprocess
import sys
import time

import pytest

from nbtrade.cli import main


def test_help_is_fast_and_lazy():
    code = ("import sys, time; t=time.perf_counter(); from nbtrade.cli import _build_parser; "
            "_build_parser().format_help(); "
            "heavy=[m for m in ('numba','pandas','sklearn','h5py','aiohttp') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_is_a_usage_error_with_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err


def test_usage_error_exit_2():
    proc = subprocess.run([sys.executable, "-m", "nbtrade", "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip()


def _run(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "nbtrade", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_every_subcommand_help_is_lazy():
    from nbtrade.cli import _build_parser

    parser = _build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.format_help()
    code = ("import sys; from nbtrade.cli import main\n"
            "for c in ['demo','fetch','mock-exchange','data','backtest','bench','cache','check','report','warmup']:\n"
            "    try: main([c, '--help'])\n"
            "    except SystemExit: pass\n"
            "heavy=[m for m in ('numba','pandas','sklearn','h5py','aiohttp') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_failure_is_one_clear_line(tmp_path):
    proc = _run("backtest", "no_such_strategy", "--synthetic", env={"NBTRADE_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "neither a built-in" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_backtest_and_checks_on_synthetic(tmp_path):
    home = {"NBTRADE_HOME": str(tmp_path)}
    proc = _run("backtest", "ema_cross", "--synthetic", "--start", "2024-01-01", "--end", "2024-02-01",
                "--profile", env=home)
    assert proc.returncode == 0, proc.stderr
    assert "Total Return" in proc.stdout and (tmp_path / "reports" / "backtest.html").exists()
    proc = _run("check", "lookahead", "ema_cross", "--synthetic", "--start", "2024-01-01", "--end", "2024-01-15",
                "--cuts", "5", env=home)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
    leaky = tmp_path / "leaky.py"
    leaky.write_text("def strategy(data):\n"
                     "    import pandas as pd\n"
                     "    c = pd.DataFrame({s: f['close'] for s, f in data.items()})\n"
                     "    return {'entries': c.shift(-1) > c, 'exits': c.shift(-1) < c}\n")
    proc = _run("check", "lookahead", str(leaky), "--synthetic", "--start", "2024-01-01", "--end", "2024-01-15",
                "--cuts", "5", env=home)
    assert proc.returncode == 1 and "finding" in proc.stdout


def test_cache_stats_and_clear(tmp_path):
    home = {"NBTRADE_HOME": str(tmp_path)}
    assert _run("cache", "stats", env=home).returncode == 0
    proc = _run("cache", "clear", env=home)
    assert proc.returncode == 0 and "removed" in proc.stdout


def test_strategy_file_flags_beat_its_defaults_json_save_and_report(tmp_path):
    import json

    home = {"NBTRADE_HOME": str(tmp_path)}
    strat = tmp_path / "mine.py"
    strat.write_text("from nbtrade.strategies import ema_cross\n"
                     "BACKTEST = {'sl_stop': 0.5, 'fees': 0.002}\n"
                     "def strategy(data):\n"
                     "    return ema_cross(data)\n")
    saved = tmp_path / "run.npz"
    proc = _run("backtest", str(strat), "--synthetic", "--start", "2024-01-01", "--end", "2024-01-20",
                "--sl-stop", "0.01", "--json", "--save", str(saved), env=home)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # stdout is the JSON alone
    assert out["params"]["sl_stop"] == 0.01 and out["params"]["fees"] == 0.002  # flag > file > default
    assert out["params"]["slippage"] == 0.0005
    assert isinstance(out["stats"]["Sharpe Ratio"], float) and out["stats"]["Start"].startswith("2024-01-01")
    assert "report:" in proc.stderr and saved.exists()
    proc = _run("report", str(saved), "--out", str(tmp_path / "again.html"), env=home)
    assert proc.returncode == 0, proc.stderr
    assert "nbtrade-chart" in (tmp_path / "again.html").read_text()


def test_piped_tables_are_not_wrapped(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["NBTRADE_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "nbtrade", "backtest", "ema_cross", "--synthetic", "--start",
                           "2024-01-01", "--end", "2024-01-20"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    row = next(ln for ln in lines if "Equity Final [$]" in ln)
    assert any(ch.isdigit() for ch in row.split("Equity Final [$]")[1])  # the value on the label's line
    assert "Avg. Drawdown Duration" in proc.stdout and "e+0" not in proc.stdout


def test_error_in_strategy_file_names_file_and_line(tmp_path):
    home = {"NBTRADE_HOME": str(tmp_path)}
    bad = tmp_path / "bad.py"
    bad.write_text("def strategy(data):\n"
                   "    return {'entries': data['NOPE']}\n")
    proc = _run("backtest", str(bad), "--synthetic", "--start", "2024-01-01", "--end", "2024-01-05", env=home)
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and f"{bad}, line 2, in strategy" in err and "KeyError" in err
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def strategy(data)\n    pass\n")
    proc = _run("check", "lookahead", str(syntax), "--synthetic", "--start", "2024-01-01", "--end", "2024-01-05",
                env=home)
    assert proc.returncode == 1 and f"{syntax}, line 1" in proc.stderr and "SyntaxError" in proc.stderr


def test_backtest_params_precedence():
    import argparse

    from nbtrade.commands import backtest_params

    ns = argparse.Namespace(fees=None, slippage=0.0, fill=None, sl_stop=None, tp_stop=0.1, cash=None)
    p = backtest_params(ns, {"fees": 0.002, "slippage": 0.01, "size": 0.3}, 2)
    assert p == {"fees": 0.002, "slippage": 0.0, "fill": "next_open", "init_cash": 10_000.0, "size": 0.3,
                 "tp_stop": 0.1}


def test_mock_exchange_prints_the_fetch_command():
    proc = subprocess.Popen([sys.executable, "-m", "nbtrade", "mock-exchange", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "nbtrade fetch binance" in first and "--base-url http://127.0.0.1:" in first
    port = first.split("--base-url http://127.0.0.1:")[1].split()[0]
    assert port.isdigit() and int(port) > 0  # the port it got, not the ':0' asked for


def _piped(*args, home):
    import os

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as in a CI log: no terminal, no width
    env["NBTRADE_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "nbtrade", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_cache_stats_and_data_ls_are_not_wrapped_when_piped(tmp_path):
    from nbtrade.synthetic import market

    proc = _piped("cache", "stats", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header = next(ln for ln in proc.stdout.splitlines() if "cache" in ln and "entries" in ln)
    assert "hit rate" in header and "time saved" in header  # one header line, not 80-column slivers
    from nbtrade.data.store import Store

    store = Store(tmp_path / "data")
    store.append("binance", "BTC/USDT", "1h", market("BTC/USDT", "2024-01-01", "2024-01-03", "1h", seed=0))
    proc = _piped("data", "ls", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = next(ln for ln in proc.stdout.splitlines() if "BTC/USDT" in ln)
    assert "binance" in row and "48" in row and "2024-01-01 00:00:00+00:00" in row


def test_bench_json_to_stdout(capsys):
    import json

    from nbtrade.bench import run_bench

    assert run_bench("kernels", n=20_000, repeat=1, quick=True, json_path="-", only="rolling_mean w20") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] and data["rows"][0]["impls"]["nbtrade"]["median_s"] > 0


CLASS_STRATEGY = """\
import nbtrade
from nbtrade import indicators as ind

BACKTEST = {{"fees": 0.002}}


class SmaCross(nbtrade.Strategy):
    fast, slow = 5, 20

    def init(self):
        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I({slow}, self.data.close, self.slow)

    def next(self):
        if nbtrade.crossover(self.f, self.s):
            self.buy()
        elif nbtrade.crossover(self.s, self.f):
            self.position.close()
"""


def test_strategy_file_with_a_class_api_strategy(tmp_path):
    """A file defining a Strategy subclass runs through Backtest; check lookahead tests its positions and
    indicators (a leaking indicator is caught)."""
    import json

    home = {"NBTRADE_HOME": str(tmp_path)}
    clean = tmp_path / "cls.py"
    clean.write_text(CLASS_STRATEGY.format(slow="ind.sma"))
    span = ("--synthetic", "--symbols", "BTC/USDT", "--start", "2024-01-01", "--end", "2024-01-15")
    proc = _run("backtest", str(clean), *span, "--sl-stop", "0.05", "--json", env=home)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"]["fees"] == 0.002 and out["params"]["sl_stop"] == 0.05  # file and flag settings
    assert out["stats"]["# Trades"] > 0
    proc = _run("check", "lookahead", str(clean), *span, "--cuts", "5", env=home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    leaky = tmp_path / "leaky.py"
    leaky.write_text(CLASS_STRATEGY.format(slow="lambda c, n: __import__('numpy').roll(ind.sma(c, n), -3)"))
    proc = _run("check", "lookahead", str(leaky), *span, "--cuts", "5", env=home)
    assert proc.returncode == 1 and "indicator" in proc.stdout, proc.stdout + proc.stderr


def test_strategy_file_with_two_classes_must_name_one(tmp_path):
    from nbtrade.strategies import ClassStrategy, load_strategy

    two = tmp_path / "two.py"
    two.write_text(CLASS_STRATEGY.format(slow="ind.sma") + "\n\nclass Other(SmaCross):\n    fast = 3\n")
    with pytest.raises(ValueError, match=r"defines 2 Strategy subclasses \(SmaCross, Other\).*strategy = SmaCross"):
        load_strategy(str(two))
    two.write_text(two.read_text() + "\nstrategy = Other\n")
    strat, kwargs = load_strategy(str(two))
    assert isinstance(strat, ClassStrategy) and strat.cls.__name__ == "Other" and kwargs == {"fees": 0.002}
    none = tmp_path / "none.py"
    none.write_text("x = 1\n")
    with pytest.raises(ValueError, match="must define a function strategy\\(data\\) or a subclass of nbtrade.Strategy"):
        load_strategy(str(none))


def test_fetch_takes_ccxt_exchanges_and_names_the_choices(capsys):
    from nbtrade.cli import _build_parser

    args = _build_parser().parse_args(["fetch", "ccxt:kraken", "BTC/USD"])
    assert args.exchange == "ccxt:kraken"
    with pytest.raises(SystemExit) as err:
        _build_parser().parse_args(["fetch", "krakken", "BTC/USD"])
    assert err.value.code == 2
    assert "ccxt:<id>" in capsys.readouterr().err
