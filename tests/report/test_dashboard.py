import io

from rich.console import Console

from nbtrade.report.dashboard import Dashboard


def _console(tty: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=tty, width=120, color_system=None), buf


def test_plain_mode_off_terminal_prints_periodic_lines():
    console, buf = _console(False)
    with Dashboard("fetch", fields=("pages", "429s"), console=console, interval=3600) as dash:
        assert not dash.live
        dash.add("BTC/USDT", total=100)
        for _ in range(10):
            dash.update("BTC/USDT", advance=5, pages=1, **{"429s": 0})  # throttled: not every update
        dash.update("BTC/USDT", advance=50)
        dash.add("ETH/USDT", total=100)
        dash.update("ETH/USDT", advance=10)
        dash.note("used weight 120/6000")
    lines = buf.getvalue().splitlines()
    btc = [ln for ln in lines if "BTC/USDT" in ln]
    assert len(btc) == 2  # first update, then completion; no spam in between
    assert "100/100 (100%)" in btc[-1] and "done in" in btc[-1]
    assert any("ETH/USDT" in ln and "done in" in ln for ln in lines)  # closed at exit
    assert "[fetch] used weight 120/6000" in lines


def test_live_mode_on_terminal_renders_table():
    console, buf = _console(True)
    with Dashboard("walk-forward", fields=("cache",), console=console) as dash:
        assert dash.live
        dash.add("fold 1", total=3, cache="miss")
        dash.update("fold 1", advance=3, cache="hit")
    out = buf.getvalue()
    assert "walk-forward" in out and "fold 1" in out and "hit" in out
    assert dash.tasks()["fold 1"]["completed"] == 3


def test_unknown_total_and_finish():
    console, buf = _console(False)
    with Dashboard("bench", console=console, interval=0) as dash:
        dash.update("ema", advance=1)
        dash.finish("ema", ratio=0.8)
    assert "ratio=0.8" in buf.getvalue()


def test_no_eta_until_two_steps_and_rate_from_the_first_step(monkeypatch):
    """A slow first step (kernel compiles) neither shows an ETA nor inflates later ones."""
    import nbtrade.report.dashboard as D

    now = [0.0]
    monkeypatch.setattr(D.time, "monotonic", lambda: now[0])
    console, buf = _console(False)
    with Dashboard("walk-forward", console=console, interval=0) as dash:
        dash.add("folds", total=10)
        now[0] = 40.0  # the first fold took 40 s, mostly compiling
        dash.update("folds", completed=1)
        now[0] = 42.0
        dash.update("folds", completed=2)  # 2 s per fold since the first
    first, second = [ln for ln in buf.getvalue().splitlines() if "folds:" in ln][:2]
    assert first.endswith("eta -")
    assert second.endswith("eta 16s") or "eta 16" in second, second
