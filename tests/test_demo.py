import io

import pytest

from rich.console import Console

from nbtrade.demo import run_demo


def test_demo_quick_runs_the_pipeline(tmp_path, capsys):
    buf = io.StringIO()
    console = Console(file=buf, width=140, force_terminal=False)
    report = tmp_path / "demo.html"
    assert run_demo(quick=True, home=str(tmp_path), report=str(report), live=False, console=console) == 0
    out = buf.getvalue()
    for needle in ("mock exchange: http://127.0.0.1:", "[fetch] BTC/USDT", "walk-forward (planted signal):",
                   "walk-forward (no planted signal):", "random forest (planted signal)",
                   "same forest, no planted signal", "planted, learnable signal", "buy & hold", "Total Return [%]",
                   "Where the time went", "[fetch] BTC/USDT:USDT", "ema cross, 3x perp",
                   "Funding Paid [$]", "# Liquidations", "funding, liquidations, margin", "Max. Margin Usage [%]"):
        assert needle in out, needle
    text = report.read_text()
    assert "<svg" in text and "Feature importances" in text and "next_open" in text
    assert "planted, learnable signal" in text.split("</header>")[0]  # in the report's title
    assert "same forest, no planted signal" in text
    assert "ema cross, 3x perp" in text and "demo-perp.html" in text  # a column and its own report
    perp = (tmp_path / "demo-perp.html").read_text()
    assert "funding paid (cumulative)" in perp and "margin usage" in perp and "USD-M perpetuals" in perp
    assert (tmp_path / "demo" / "store").exists()
    # a second run is warm: the walk-forward reuses cached models
    buf2 = io.StringIO()
    run_demo(quick=True, home=str(tmp_path), report=str(report), live=False,
             console=Console(file=buf2, width=140, force_terminal=False))
    assert "0 cache hits" not in buf2.getvalue()
    # `nbtrade cache stats` shows the model-cache hits the second run reported
    from nbtrade.cache import disk_summary
    from nbtrade.config import load_settings

    rows = {r["cache"]: r for r in disk_summary(load_settings(flags={"home": str(tmp_path)}).cache)}
    assert any(r["hits"] > 0 for name, r in rows.items() if name.startswith("models")), rows


def test_one_variant_gives_the_same_results():
    """The demo runs its backtests in ``nbtrade.one_variant()`` (one compile of the bar loop for spot and
    perpetual runs): the spot runs (market orders, a stop) and the perpetual run equal their own variants' bit
    for bit, and all of them take one compiled signature."""
    import warnings

    import numpy as np

    import nbtrade
    from nbtrade import demo, warmup
    from nbtrade.engine.run import prepare_data
    from nbtrade.kernels import engine
    from nbtrade.monitor import Monitor

    frames = warmup._market(2)
    perps = {demo.perp_symbol(s): f.assign(**{"mark_" + k: f[k] * 1.001 for k in ("open", "high", "low", "close")})
             for s, f in frames.items()}
    perps = prepare_data(perps)
    start = frames["BTC/USDT"].index[100]

    def runs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = demo._baselines(frames, start, Monitor(enabled=False))
            out["perp"] = demo._perp_run(perps, start, Monitor(enabled=False))
        return out

    own = runs()
    before = set(engine.simulate_signals_nb.signatures)
    with nbtrade.one_variant():
        shared = runs()
    assert len(set(engine.simulate_signals_nb.signatures) - before) <= 1
    for name, r in own.items():
        s = shared[name]
        np.testing.assert_array_equal(r.equity.to_numpy(), s.equity.to_numpy(), err_msg=name)
        for a, b in ((r.order_records, s.order_records), (r.trade_records, s.trade_records)):
            assert a.dtype == b.dtype and len(a) == len(b) and len(a), name
            for f in a.dtype.names:
                np.testing.assert_array_equal(a[f], b[f], err_msg=f"{name} {f}")
    with pytest.raises(ValueError, match="one_variant: caps must be an int"):
        with nbtrade.one_variant(caps=1.5):
            pass
