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
