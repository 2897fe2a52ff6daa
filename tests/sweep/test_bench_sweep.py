"""The sweep bench case runs and its implementations agree (tiny size, no vectorbt)."""
from nbtrade.bench import run_case


def test_bench_case_small(monkeypatch):
    monkeypatch.setenv("NBTRADE_BENCH_VECTORBT", "0")
    from nbtrade.benchsuite.bench_sweep import CASES

    row = run_case(CASES[0], 600_000, 1)  # 300 bars  # checks every implementation's final equities against the sweep's
    assert {"nbtrade", "sweep_1thread", "loop_prepared", "loop_prepared_stats"} <= set(row["impls"])
