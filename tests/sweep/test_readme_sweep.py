"""The README's sweep block runs as written."""
import re
from pathlib import Path

import nbtrade

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sweep_block_runs():
    text = README.read_text()
    section = text[text.index("## Parameter sweeps, walk-forward optimization, Dask"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env: dict = {}
    exec(block, env)
    assert isinstance(env["best"], nbtrade.Result)
    assert len(env["res"].table) == 15 and len(env["wfo"].folds) == 5
