"""nbtrade.kernels: the numba cache directory (named by a digest of the kernel sources)."""
import os
import subprocess
import sys


def test_unwritable_numba_cache_dir_falls_back(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ro / "sub"), HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    code = "import os, nbtrade.kernels; print(os.environ['NUMBA_CACHE_DIR'])"
    if os.geteuid() == 0:  # root writes anywhere: make the directory a file instead
        ro.chmod(0o700)
        (ro / "sub").write_text("not a directory")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path / "xdg"))


def test_cache_dir_named_by_kernel_sources(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = ("import numba, os, nbtrade.kernels as k; "
            "print(os.environ['NUMBA_CACHE_DIR'], numba.core.config.CACHE_DIR, k._sources_digest())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    env_dir, numba_dir, digest = out.stdout.split()
    assert env_dir == numba_dir == str(tmp_path / "nbtrade" / "numba" / digest)
