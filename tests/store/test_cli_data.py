"""``nbtrade data ...``: tables or one line, never reprs; exit status 1 on failure."""
from __future__ import annotations

import numpy as np
import pytest

from nbtrade.cli import main
from nbtrade.data.bulk import write_bulk_file
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

REPRS = ("ImportResult(", "ExportResult(", "VerifyReport(", "BulkResult(", "ResampleResult(", "{'")


def run(capsys, *argv):
    code = main(["data", *map(str, argv)])
    out = capsys.readouterr()
    for r in REPRS:
        assert r not in out.out, out.out
    return code, out.out, out.err


@pytest.fixture()
def bulk_folder(tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    a = candles("BTC/USDT", "2024-01-01", "2024-01-03", "1m", seed=1)
    for c in ("open", "high", "low", "close"):
        a[c] = np.round(a[c], 2)
    write_bulk_file(folder / "BTCUSDT-1m-2024-01-01.zip", {k: v[:1440] for k, v in a.items()}, "1m")
    write_bulk_file(folder / "BTCUSDT-1m-2024-01-02.zip", {k: v[1440:] for k, v in a.items()}, "1m")
    return folder


def test_import_ls_info_resample_export_verify(tmp_path, capsys, bulk_folder):
    s = tmp_path / "store"
    code, out, _ = run(capsys, "import", bulk_folder, "--store", s)
    assert code == 0 and "BTC/USDT" in out and "2,880" in out and "columns ignored: close_time" in out
    code, out, _ = run(capsys, "ls", "--store", s)
    assert code == 0 and "2,880" in out
    code, out, _ = run(capsys, "info", "binance", "BTC/USDT", "1m", "--store", s)
    assert code == 0 and "chunk_rows" in out and "4,096" in out
    code, out, _ = run(capsys, "resample", "binance", "BTC/USDT", "--from", "1m", "--to", "1h", "--store", s)
    assert code == 0 and "48 1h candles from 1m" in out
    for ext in (".csv.gz", ".parquet"):
        code, out, _ = run(capsys, "export", "binance", "BTC/USDT", "1h", tmp_path / f"h{ext}", "--store", s)
        assert code == 0 and out.startswith("exported 48 rows")
    code, out, _ = run(capsys, "import", tmp_path / "h.parquet", "--symbol", "BTC/USDT", "--timeframe", "1h",
                       "--exchange", "other", "--store", s)
    assert code == 0 and "48" in out
    code, out, _ = run(capsys, "verify", "--store", s)
    assert code == 0 and out.strip().endswith("OK")
    assert Store(s).count("other", "BTC/USDT", "1h") == 48


@pytest.mark.parametrize("case", ["missing file", "wrong columns", "bad name", "malformed zip"])
def test_failures_exit_1_with_one_line(tmp_path, capsys, case):
    if case == "missing file":
        argv = ["import", tmp_path / "nope.csv"]
    elif case == "wrong columns":
        p = tmp_path / "binance_BTC_USDT_1m.csv"
        p.write_text("a,b,c\n1,2,3\n")
        argv = ["import", p]
    elif case == "bad name":
        p = tmp_path / "candles.zip"
        write_bulk_file(p, candles("BTC/USDT", "2024-01-01", "2024-01-01 01:00", "1m", seed=1), "1m")
        argv = ["import", p]
    else:
        p = tmp_path / "BTCUSDT-1m-2024-01.zip"
        p.write_bytes(b"PK\x03\x04garbage")
        argv = ["import", p]
    code, out, err = run(capsys, *argv, "--store", tmp_path / "s")
    assert code == 1 and err.count("\n") == 1 and err.startswith("nbtrade data: error:"), err
    assert {"missing file": "does not exist", "wrong columns": "wrong columns", "bad name": "--symbol/--timeframe",
            "malformed zip": "not a valid zip"}[case] in err
    assert not (tmp_path / "s" / "binance.h5").exists()
