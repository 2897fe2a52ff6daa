"""What a perpetual (or other margined) run adds to the tables: funding, liquidations, margin usage.

:func:`perp_summary` gives the numbers per symbol and for the portfolio (a DataFrame), and
:func:`perp_table` the same as a ``rich`` Table, values through :mod:`nbtrade.format`; the
HTML report shows them as panes (see :meth:`nbtrade.Result.report`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import format as F

COLUMNS = ("Leverage", "Funding Paid [$]", "# Liquidations", "Liquidation PnL [$]", "Max. Margin Usage [%]",
           "Avg. Margin Usage [%]")


def perp_summary(result: Any) -> pd.DataFrame:
    """Per symbol and for the portfolio (first row): leverage, funding paid [$] (negative: received),
    the number of liquidations and their PnL [$], and the margin used over the portfolio's equity [%]
    (peak, and mean over the bars with a position open)."""
    paid = result.funding_paid().iloc[-1] if len(result.index) else pd.Series(0.0, index=["portfolio", *result.symbols])
    liq = result.liquidations
    used = result.margin_used()
    eq = result.equity.to_numpy()
    lev = result.leverage()
    rows = {}
    for name in ["portfolio", *result.symbols]:
        u = used.sum(axis=1).to_numpy() if name == "portfolio" else used[name].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(u == 0, 0.0, np.where(eq > 0, u / eq * 100.0, np.nan))
        held = u > 0
        mine = liq if name == "portfolio" else liq[liq["symbol"] == name]
        rows[name] = {
            "Leverage": float(lev.max()) if name == "portfolio" else float(lev[name]),
            "Funding Paid [$]": float(paid[name]),
            "# Liquidations": int(len(mine)),
            "Liquidation PnL [$]": float(mine["pnl"].sum()),
            "Max. Margin Usage [%]": float(np.nanmax(pct)) if np.isfinite(pct).any() else float("nan"),
            "Avg. Margin Usage [%]": float(np.nanmean(pct[held])) if held.any() else float("nan"),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")[list(COLUMNS)]
    out.index.name = "symbol"
    return out


def perp_table(result: Any, title: str = "Perpetuals: funding, liquidations, margin") -> Any:
    """:func:`perp_summary` as a ``rich`` Table (one row per symbol, the portfolio first)."""
    from rich.table import Table

    summary = perp_summary(result)
    table = Table(title=title)
    table.add_column("symbol", no_wrap=True)
    for c in summary.columns:
        table.add_column(c, justify="right")
    for name, row in summary.iterrows():
        table.add_row(str(name), *(F.stat(c, v) if c != "Leverage" else f"{F.param(v)}x" for c, v in row.items()))
    return table
