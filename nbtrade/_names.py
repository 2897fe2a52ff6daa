"""Forgiving names: "did you mean" for unknown keyword arguments, and clean module namespaces.

:func:`suggest_kwargs` wraps a public function so that an unknown keyword argument
raises a ``TypeError`` naming the parameter the user most likely meant: a known
synonym first (``period=``, ``span=``, ``window=`` -> ``timeperiod=``;
``stop_loss=`` -> ``sl_stop=``), else the closest spelling. The happy path costs one
extra Python call: the signature is only consulted after the call failed.

:func:`public_dir` gives a module a ``__dir__`` that lists its ``__all__`` only, so
``dir(nbtrade.indicators)`` shows indicators, not ``np`` or ``Any``.
"""
from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any, Callable, Iterable, TypeVar

__all__ = ["suggest_kwargs", "did_you_mean", "check_kwargs", "public_dir", "SYNONYMS"]

F = TypeVar("F", bound=Callable[..., Any])

#: Groups of names people use for the same thing (other libraries' spellings).
SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"timeperiod", "period", "periods", "span", "window", "length", "lookback", "len", "n", "w",
               "win", "time_period", "timeperiods", "horizon", "lookahead", "bars"}),
    frozenset({"windows", "spans", "periods", "timeperiods", "lengths"}),
    frozenset({"minp", "min_periods", "min_count"}),
    frozenset({"fastperiod", "fast", "fast_period", "short_period", "fast_window"}),
    frozenset({"slowperiod", "slow", "slow_period", "long_period", "slow_window"}),
    frozenset({"signalperiod", "signal", "signal_period", "signal_window"}),
    frozenset({"nbdevup", "nbdev", "std", "stds", "k", "mult", "dev_up", "upper"}),
    frozenset({"nbdevdn", "dev_dn", "dev_down", "lower"}),
    frozenset({"sl_stop", "stop_loss", "stoploss", "sl", "stop"}),
    frozenset({"tp_stop", "take_profit", "takeprofit", "tp", "target"}),
    frozenset({"fees", "fee", "commission", "commissions", "fee_rate"}),
    frozenset({"init_cash", "cash", "initial_cash", "capital", "initial_capital"}),
    frozenset({"train_window", "train_size", "train", "train_period"}),
    frozenset({"test_window", "test_size", "test", "test_period"}),
    frozenset({"estimator", "model", "clf", "classifier"}),
    frozenset({"seed", "random_state", "random_seed"}),
    frozenset({"ddof", "dof"}),
    frozenset({"log", "log_returns", "logarithmic"}),
    frozenset({"long_threshold", "threshold", "entry_threshold", "buy_threshold"}),
)


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known parameter ``name`` most likely stands for, or None."""
    known = [k for k in known if not k.startswith("_")]
    low = name.lower()
    for group in SYNONYMS:
        if low in group:
            hits = [k for k in known if k in group]
            if len(hits) == 1:
                return hits[0]
    close = difflib.get_close_matches(low, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _keywords(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """Keyword-passable parameter names of ``fn``, and whether it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_kwargs(where: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise ``TypeError`` for the first name of ``given`` not in ``known``, with a suggestion."""
    known = list(known)
    for name in given:
        if name not in known:
            hint = did_you_mean(name, known)
            msg = f"{where} got an unexpected keyword argument {name!r}"
            msg += f"; did you mean {hint}=?" if hint else f"; it takes {', '.join(k for k in known if not k.startswith('_'))}"
            raise TypeError(msg)


def suggest_kwargs(fn: F) -> F:
    """Decorator: an unknown keyword argument raises ``TypeError`` with "did you mean".

    >>> @suggest_kwargs
    ... def sma(close, timeperiod=30):
    ...     return timeperiod
    >>> sma([1.0], period=3)
    Traceback (most recent call last):
    TypeError: sma() got an unexpected keyword argument 'period'; did you mean timeperiod=?
    """
    names, var_kw = _keywords(fn)
    if var_kw:  # takes anything: nothing to check
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError:
            # only a call that did not bind is rewritten; a TypeError raised inside is the user's to see
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                check_kwargs(f"{fn.__name__}()", unknown, names)
            raise

    return wrapper  # type: ignore[return-value]


def public_dir(names: Iterable[str]) -> Callable[[], list[str]]:
    """A module ``__dir__`` listing ``names`` (its ``__all__``): ``__dir__ = public_dir(__all__)``."""
    listing = sorted(set(names))

    def __dir__() -> list[str]:
        return list(listing)

    return __dir__
