"""nbtrade/__init__.py: the lazy public API."""
import subprocess
import sys


def test_public_api_resolves_lazily():
    code = ("import sys, nbtrade; assert 'numba' not in sys.modules and 'pandas' not in sys.modules\n"
            "missing=[n for n in nbtrade.__all__ if n != '__version__' and getattr(nbtrade, n, None) is None]\n"
            "print('MISSING', missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MISSING []" in out.stdout
