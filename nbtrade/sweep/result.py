"""What a sweep produced: a table of combinations, the best Results on demand, overfitting statistics."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd


class SweepResult:
    """One row per combination, sorted by the objective (highest first).

    Attributes
    ----------
    table : DataFrame
        Parameters, then the metrics (``Result.stats()`` labels), index = combination
        number (grid order); failed combinations have NaN metrics and sort last.
    params : list of str
        Parameter columns.
    maximize : str
        The ranking column.
    python_columns : list of str
        Columns computed in Python from each combination's Result (not by the kernel).
    errors : DataFrame
        Combinations whose signal function or backtest raised: parameters and message.
    timings : dict
        ``warmup_s`` (compilation / cache load and the first run), ``run_s``, ``combinations_per_s``.
    """

    def __init__(self, table: pd.DataFrame, params: list[str], maximize: str, python_columns: list[str],
                 errors: pd.DataFrame, moments: np.ndarray, blocks: np.ndarray, timings: dict,
                 top: int, rebuild: Callable[[dict], Any], n_workers: int = 1, on_dask: bool = False,
                 combos: list | None = None):
        self.table = table
        self.params = params
        self.maximize = maximize
        self.python_columns = python_columns
        self.errors = errors
        self.moments = moments  # (n, 4) per-bar sharpe, skew, kurtosis, n_obs (grid order)
        self.blocks = blocks    # (n, n_blocks, 3) (grid order)
        self.timings = timings
        self.top = top
        self.n_workers = n_workers
        self.on_dask = on_dask
        self._rebuild = rebuild
        self._combos = combos
        self._results: dict[int, Any] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def assemble(cls, market: Any, fn: Callable, combos: list[dict], outs: list, errors: list, spec: Any,
                 col: str, maximize: Any, top: int, timings: dict, n_workers: int = 1,
                 on_dask: bool = False) -> "SweepResult":
        from ..kernels.sweep import METRICS
        from .run import run_combo

        n = len(combos)
        rows = np.full((n, len(METRICS)), np.nan)
        moments = np.full((n, 4), np.nan)
        blocks = np.full((n, spec.n_blocks, 3), np.nan)
        extra = np.full(n, np.nan)
        errs = list(errors)
        for o in outs:
            k = len(o.rows)
            rows[o.start:o.start + k] = o.rows
            moments[o.start:o.start + k] = o.moments
            blocks[o.start:o.start + k] = o.blocks
            extra[o.start:o.start + k] = o.extra
            errs.extend(o.errors)
        names = list(dict.fromkeys(k for p in combos for k in p))
        table = pd.DataFrame([{k: p.get(k) for k in names} for p in combos])
        for j, label in enumerate(METRICS):
            table[label] = rows[:, j]
        for label in ("# Trades", "# Rejected Orders"):
            table[label] = table[label].astype("Int64") if table[label].isna().any() else table[label].astype(np.int64)
        python_cols = []
        if spec.extra is not None:
            table[col] = extra
            python_cols.append(col)
        table.index.name = "combination"
        table = table.sort_values(col, ascending=False, kind="stable", na_position="last")
        table.attrs["python_columns"] = list(python_cols)  # computed in Python from each Result, not the kernel
        errs.sort()
        err_df = pd.DataFrame([{**combos[i], "error": msg} for i, msg in errs],
                              index=pd.Index([i for i, _ in errs], name="combination"),
                              columns=[*names, "error"])
        if errs:
            import warnings

            warnings.warn(f"{len(errs)} of {n} combinations failed; first {combos[errs[0][0]]}: {errs[0][1]} "
                          "(all in SweepResult.errors)", RuntimeWarning, stacklevel=3)

        def rebuild(p: dict) -> Any:
            return run_combo(market, fn, spec.options, p)

        return cls(table, names, col, python_cols, err_df, moments, blocks, timings, top, rebuild,
                   n_workers, on_dask, combos)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return (f"<SweepResult {len(self.table)} combinations of {', '.join(self.params)}, best "
                f"{self.maximize}={self.table[self.maximize].iloc[0]:.4g} at {self.best_params}, "
                f"{len(self.errors)} failed>")

    @property
    def best_params(self) -> dict[str, Any]:
        """Parameters of the best combination."""
        return self.params_of(0)

    def params_of(self, rank: int) -> dict[str, Any]:
        """Parameters of the combination ranked ``rank`` (0 = best), with their original types."""
        i = int(self.table.index[rank])
        if self._combos is not None:
            return dict(self._combos[i])
        row = self.table.iloc[rank]
        return {k: _plain(row[k]) for k in self.params}

    def head(self, k: int | None = None) -> pd.DataFrame:
        """The ``k`` best rows (default ``top``)."""
        return self.table.head(self.top if k is None else k)

    def result(self, rank: int = 0) -> Any:
        """The full :class:`~nbtrade.Result` of the combination ranked ``rank`` (0 = best), rebuilt
        by running it again (cached)."""
        if not 0 <= rank < len(self.table):
            raise IndexError(f"rank must be in [0, {len(self.table)}), got {rank}")
        if rank not in self._results:
            self._results[rank] = self._rebuild(self.params_of(rank))
        return self._results[rank]

    @property
    def best(self) -> Any:
        """The best combination's full Result."""
        return self.result(0)

    @property
    def results(self) -> list:
        """Full Results of the ``top`` best combinations (rebuilt on first access)."""
        return [self.result(r) for r in range(min(self.top, len(self.table)))]

    # ------------------------------------------------------------------ overfitting
    def _grid_order_best(self) -> int:
        return int(self.table.index[0])

    def deflated_sharpe(self) -> float:
        """Deflated Sharpe ratio of the best combination given every combination tried
        (:func:`nbtrade.sweep.deflated_sharpe_ratio`; per-bar Sharpe ratios, their variance across trials)."""
        from .overfit import deflated_sharpe_ratio

        sr = self.moments[:, 0]
        ok = np.isfinite(sr)
        if ok.sum() < 2:
            return float("nan")
        b = self._grid_order_best()
        sharpe, skew, kurt, n_obs = self.moments[b]
        return deflated_sharpe_ratio(float(sharpe), int(n_obs), float(skew), float(kurt), n_trials=int(ok.sum()),
                                     sharpe_var=float(np.var(sr[ok], ddof=1)))

    def pbo(self, max_splits: int | None = None) -> Any:
        """Probability of backtest overfitting by CSCV over the combinations' per-block returns
        (:func:`nbtrade.sweep.pbo_cscv`)."""
        from .overfit import pbo_cscv

        ok = np.isfinite(self.moments[:, 0])
        return pbo_cscv(np.transpose(self.blocks[ok], (1, 0, 2)), max_splits=max_splits)

    # ------------------------------------------------------------------ heat map
    def heatmap(self, x: str | None = None, y: str | None = None, metric: str | None = None,
                agg: str = "max") -> pd.DataFrame:
        """``metric`` (default: the objective) over two parameters: rows ``y``, columns ``x``
        (default the first two parameters), other parameters reduced by ``agg``."""
        if len(self.params) < 2 and (x is None or y is None):
            raise ValueError("a heat map needs two parameters")
        x = x or self.params[0]
        y = y or self.params[1]
        metric = metric or self.maximize
        for name, v in (("x", x), ("y", y)):
            if v not in self.params:
                raise ValueError(f"{name}={v!r} is not a parameter; one of {self.params}")
        if metric not in self.table.columns:
            raise ValueError(f"metric={metric!r} is not a column; one of {list(self.table.columns)}")
        return self.table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg).sort_index().sort_index(axis=1)

    def heatmap_table(self, x: str | None = None, y: str | None = None, metric: str | None = None) -> Any:
        """The heat map as a ``rich`` Table (cells shaded from red, worst, to green, best)."""
        from rich.table import Table

        from .. import format as F
        from ..report.heatmap import label

        hm, shades = self._shaded(x, y, metric)
        t = Table(title=f"{metric or self.maximize} by {hm.index.name} (rows) x {hm.columns.name} (columns)")
        t.add_column(f"{hm.index.name} \\ {hm.columns.name}", justify="right", style="bold")
        for c in hm.columns:
            t.add_column(label(hm.columns.name, c), justify="right")
        metric = metric or self.maximize
        for r, row in zip(hm.index, shades):
            t.add_row(label(hm.index.name, r),
                      *("" if f is None else f"[black on rgb({int(255 * (1 - f))},{int(255 * f)},80)]"
                        f"{F.stat(metric, v)}[/]" for v, f in row))
        return t

    def _shaded(self, x: str | None, y: str | None, metric: str | None) -> tuple[pd.DataFrame, list]:
        """The heat map and, per cell, ``(value, shade)``: 0 for the worst value, 1 for the best
        (None where the value is missing)."""
        hm = self.heatmap(x, y, metric)
        vals = hm.to_numpy(dtype=float)
        ok = np.isfinite(vals)
        lo, hi = (np.nanmin(vals), np.nanmax(vals)) if ok.any() else (0.0, 1.0)
        span = hi - lo
        return hm, [[(v, ((v - lo) / span if span > 0 else 1.0) if np.isfinite(v) else None) for v in row]
                    for row in vals]

    def print_heatmap(self, x: str | None = None, y: str | None = None, metric: str | None = None,
                      console: Any = None) -> None:
        """Print :meth:`heatmap_table` to the terminal."""
        from rich.console import Console

        (console or Console()).print(self.heatmap_table(x, y, metric))

    def to_html(self, *, title: str = "nbtrade sweep", x: str | None = None, y: str | None = None,
                metric: str | None = None) -> str:
        """A self-contained HTML page in the report's layout: summary, the heat map of two parameters
        (drawn on a canvas by the report's chart layer, a tooltip per cell with the parameter pair and
        the metric; a shaded table when scripts are off; cells from red, worst, to green, best) and the
        top rows. Every number is formatted by :mod:`nbtrade.format`."""
        import html

        from .. import format as F
        from ..report import heatmap
        from ..report.html import _frame_table, page

        s = self.summary()
        pbo = F.NA if s["pbo"] is None else F.number(s["pbo"])
        best = ", ".join(f"{k}={heatmap.label(k, v)}" for k, v in self.best_params.items())
        text = (f"{len(self.table):,} combinations of {', '.join(self.params)} ranked by {self.maximize}; best "
                f"{best} ({self.maximize} {F.stat(self.maximize, self.table[self.maximize].iloc[0])}); deflated "
                f"Sharpe ratio {F.number(s['deflated_sharpe'])}; PBO {pbo}; {len(self.errors):,} failed.")
        parts = [f"<section><h2>Summary</h2><p>{html.escape(text)}</p></section>"]
        scripts = ""
        if len(self.params) >= 2 or (x and y):
            hm = self.heatmap(x, y, metric)
            others = [p for p in self.params if p not in (hm.index.name, hm.columns.name)]
            agg = f"best over {', '.join(others)} (max)" if others else None
            name = metric or self.maximize
            parts.append(f"<section><h2>{html.escape(name)} by {html.escape(str(hm.index.name))} and "
                         f"{html.escape(str(hm.columns.name))}</h2>{heatmap.section(hm, name, agg)}</section>")
            scripts = heatmap.script()
        head = self.head().copy()
        for p in self.params:  # as the user wrote them (a row of floats would show 13 as 13.0)
            head[p] = [heatmap.label(p, v) for v in head[p].tolist()]
        parts.append("<section><h2>Top combinations</h2><div style='overflow-x:auto'>"
                     + _frame_table(head, what="combinations") + "</div></section>")
        return page(title, "".join(parts) + scripts, extra_css=heatmap.CSS)

    def _repr_html_(self) -> str:
        """Notebooks: :meth:`to_html` (summary, heat map with tooltips, top rows) in an isolated frame."""
        import html

        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" style="width:100%;height:760px;'
                f'border:0" sandbox="allow-scripts"></iframe>')

    def report(self, path: str, **kwargs: Any) -> str:
        """Write :meth:`to_html` to ``path``; returns the path."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_html(**kwargs))
        return path

    def summary(self) -> dict[str, Any]:
        """Counts, timings, best parameters and the overfitting statistics."""
        pbo = self.pbo() if np.isfinite(self.moments[:, 0]).sum() >= 2 else None
        return {"combinations": len(self.table), "failed": len(self.errors), "best_params": self.best_params,
                self.maximize: _plain(self.table[self.maximize].iloc[0]),
                "deflated_sharpe": self.deflated_sharpe(), "pbo": None if pbo is None else pbo.pbo,
                "python_columns": list(self.python_columns), **self.timings}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
