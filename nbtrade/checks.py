"""Former name of :mod:`nbtrade.lookahead` (``check_lookahead``, ``check_recursive``, ``LookaheadError``),
kept as an alias: every name imports from here as before."""
from __future__ import annotations

from .engine.alias import make_alias
from .lookahead import CheckReport, Finding, LookaheadError, check_lookahead, check_recursive  # noqa: F401

__all__ = ["check_lookahead", "check_recursive", "LookaheadError", "CheckReport", "Finding"]

make_alias(__name__, "nbtrade.lookahead")
