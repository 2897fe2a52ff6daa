import json

import numpy as np

from nbtrade.bench import Case, compare_runs, run_case, run_bench


def _case():
    def setup(n):
        x = np.arange(n, dtype=float)
        return {"nbtrade": lambda: x.cumsum(), "numpy": lambda: np.cumsum(x)}

    return Case("cumsum", setup, check=lambda a, b: np.testing.assert_allclose(a, b))


def test_run_case_reports_ratios():
    row = run_case(_case(), 10_000, repeat=3)
    assert set(row["impls"]) == {"nbtrade", "numpy"}
    assert row["impls"]["nbtrade"]["ratio"] == 1.0 and row["impls"]["numpy"]["ns_per_unit"] > 0


def test_compare_flags_regressions():
    row = run_case(_case(), 10_000, repeat=3)
    slower = json.loads(json.dumps(row))
    slower["impls"]["nbtrade"]["median_s"] *= 3
    changes = compare_runs([slower], {"rows": [row]})
    assert changes[0]["regression"] and changes[0]["change"] > 2.5
    assert not compare_runs([row], {"rows": [row]})[0]["regression"]


def test_cli_bench_quick_kernels(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert run_bench("kernels", n=20_000, repeat=1, quick=True, json_path=str(out), only="rolling_mean w20") == 0
    data = json.loads(out.read_text())
    assert data["rows"] and all("nbtrade" in r["impls"] for r in data["rows"])
    assert run_bench("kernels", n=20_000, repeat=1, quick=True, only="rolling_mean w20", compare=str(out)) in (0, 1)
