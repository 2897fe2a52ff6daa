import subprocess
import sys
import time

from nbtrade.cli import main


def test_help_is_fast_and_lazy():
    code = ("import sys, time; t=time.perf_counter(); from nbtrade.cli import _build_parser; "
            "_build_parser().format_help(); "
            "heavy=[m for m in ('numba','pandas','sklearn','h5py','aiohttp') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_exit_code(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


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
            "for c in ['demo','fetch','mock-exchange','data','backtest','bench','cache','check']:\n"
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
