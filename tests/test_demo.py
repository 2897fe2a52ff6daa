import io

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
