"""The README's "What a strategy can say" block runs as written and does what its comments say."""
from __future__ import annotations

import re
from pathlib import Path

import nbtrade

README = Path(__file__).resolve().parents[2] / "README.md"


def test_what_a_strategy_can_say_block_runs():
    text = README.read_text()
    section = text[text.index("## What a strategy can say"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {"nbtrade": nbtrade, "__name__": "readme"}
    exec(compile(code, str(README), "exec"), env)
    one, res, lim = env["one"], env["res"], env["lim"]
    t = one.trades
    assert t["size"].iloc[0] == 0.2 and t["size"].iloc[1] == 0.1
    if t.exit_reason.iloc[0] == "signal":  # no stop hit before bar 5: closed and re-entered on bar 6's open
        assert t.exit_time.iloc[0] == t.entry_time.iloc[1] == one.equity.index[6]
    assert res.trades.exit_reason.isin(["time", "roi", "ind_stop", "final", "signal"]).all()
    assert lim.config.order_type == "limit"
