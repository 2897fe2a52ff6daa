"""Parameter grids: a product of value lists, a constraint, random sampling, or a list of dicts.

A grid is the ordered list of combinations a sweep runs, each a ``{name: value}`` dict.
The order is the product's (the last parameter varies fastest), which keeps the
combinations sharing a value together in a chunk (their indicators are computed once).
"""
from __future__ import annotations

import inspect
import math
import types
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

#: Grids larger than this are refused without ``max_tries`` (random sampling).
MAX_COMBINATIONS = 1_000_000


def _values(name: str, v: Any) -> list:
    if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
        return [v]  # a fixed value
    vals = list(v)
    if not vals:
        raise ValueError(f"params[{name!r}] has no values")
    return vals


def check_names(fn: Callable, names: Iterable[str], what: str = "signals_fn") -> None:
    """Raise when ``fn`` takes no keyword of one of ``names`` (unless it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    ps = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps.values()):
        return
    ok = {k for k, p in ps.items() if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                    inspect.Parameter.KEYWORD_ONLY)}
    bad = [k for k in names if k not in ok]
    if bad:
        raise ValueError(f"unknown parameter {bad[0]!r}: {what} {getattr(fn, '__name__', fn)!s} takes "
                         f"{', '.join(sorted(ok - {next(iter(ps), '')})) or 'no parameters'}")


def grid(params: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, constraint: Callable[[Any], bool] | None = None,
         max_tries: int | None = None, seed: int | None = 0,
         limit: int = MAX_COMBINATIONS, estimate: Callable[[int], str] | None = None) -> list[dict[str, Any]]:
    """The combinations of a parameter grid, as a list of dicts.

    Parameters
    ----------
    params : dict of value lists, or a list of dicts
        ``{"fast": range(5, 55, 5), "slow": [60, 120]}``: the product of the lists, last
        one fastest (a scalar is a fixed value). A list of dicts is taken as it is.
    constraint : callable, optional
        ``constraint(p) -> bool`` on the parameters as attributes (``lambda p: p.fast <
        p.slow``); False drops the combination.
    max_tries : int, optional
        Run at most this many combinations, drawn at random without replacement (seeded
        by ``seed``) among those the constraint keeps; kept in grid order.
    limit : int
        A product grid larger than this without ``max_tries`` is refused (the count and
        ``estimate(count)`` in the message). With ``max_tries`` indices are drawn from the
        product without listing it.

    Examples
    --------
    >>> grid({"fast": [5, 10], "slow": [20, 30]}, constraint=lambda p: p.fast * 3 < p.slow)
    [{'fast': 5, 'slow': 20}, {'fast': 5, 'slow': 30}]
    """
    if max_tries is not None and (isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer))
                                  or max_tries < 1):
        raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}")
    if constraint is not None and not callable(constraint):
        raise TypeError(f"constraint must be a callable p -> bool, got {constraint!r}")
    if isinstance(params, Mapping):
        if not params:
            raise ValueError("params is empty: give at least one parameter and its values")
        names = list(params)
        for k in names:
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"parameter names must be identifiers, got {k!r}")
        lists = [_values(k, params[k]) for k in names]
        sizes = [len(v) for v in lists]
        total = math.prod(sizes)
        if max_tries is None and total > limit:
            raise ValueError(f"the grid has {total:,} combinations (> {limit:,}){': ' + estimate(total) if estimate else ''}; "
                             f"pass max_tries=N to sample N of them at random, or narrow the grid")
        if max_tries is not None and total > limit:
            # draw indices into the product without listing it; the constraint filters the draws
            rng = np.random.default_rng(seed)
            picked: dict[int, dict] = {}
            tries = 0
            while len(picked) < max_tries and tries < 50 * max_tries:
                tries += 1
                flat = int(rng.integers(total))
                if flat in picked:
                    continue
                combo = _unflatten(flat, names, lists, sizes)
                if constraint is None or constraint(types.SimpleNamespace(**combo)):
                    picked[flat] = combo
            if not picked:
                raise ValueError("constraint rejects every combination drawn from the grid")
            return [picked[k] for k in sorted(picked)]
        combos = [_unflatten(i, names, lists, sizes) for i in range(total)]
    else:
        combos = [dict(p) for p in params]
        if not combos:
            raise ValueError("params is an empty list of combinations")
        for p in combos:
            for k in p:
                if not isinstance(k, str):
                    raise ValueError(f"parameter names must be strings, got {k!r}")
        if max_tries is None and len(combos) > limit:
            raise ValueError(f"{len(combos):,} combinations (> {limit:,}); pass max_tries=N to sample")
    if constraint is not None:
        combos = [p for p in combos if constraint(types.SimpleNamespace(**p))]
        if not combos:
            raise ValueError("constraint rejects every combination of the grid")
    if max_tries is not None and max_tries < len(combos):
        pick = np.sort(np.random.default_rng(seed).choice(len(combos), int(max_tries), replace=False))
        combos = [combos[i] for i in pick]
    return combos


def _unflatten(flat: int, names: list, lists: list, sizes: list) -> dict[str, Any]:
    out = {}
    for k in range(len(names) - 1, -1, -1):
        flat, j = divmod(flat, sizes[k])
        out[names[k]] = lists[k][j]
    return {k: out[k] for k in names}


def parse_param(text: str) -> tuple[str, list]:
    """``"fast=5:50:5"`` (inclusive range), ``"fast=5,10,20"`` or ``"fast=7"`` -> ``("fast", values)``.

    Values are ints when they parse as ints, else floats, else strings."""
    if "=" not in text:
        raise ValueError(f"--param {text!r}: expected NAME=START:STOP:STEP or NAME=V1,V2,...")
    name, spec = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise ValueError(f"--param {text!r}: {name!r} is not a parameter name")
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--param {text!r}: a range is START:STOP or START:STOP:STEP")
        a, b = _num(parts[0], text), _num(parts[1], text)
        step = _num(parts[2], text) if len(parts) == 3 else 1
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not step or step <= 0:
            raise ValueError(f"--param {text!r}: a range needs numbers and a step > 0")
        n = int(math.floor((b - a) / step + 1e-9)) + 1
        if n < 1:
            raise ValueError(f"--param {text!r}: empty range (STOP < START)")
        vals = [a + k * step for k in range(n)]
        if all(isinstance(v, int) for v in (a, b, step)):
            vals = [int(v) for v in vals]
        else:
            vals = [round(float(v), 12) for v in vals]
        return name, vals
    vals = [_num(v, text) for v in spec.split(",") if v.strip()]
    if not vals:
        raise ValueError(f"--param {text!r}: no values")
    return name, vals


def _num(s: str, text: str) -> Any:
    s = s.strip()
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s
