"""Exchange adapters: one module per exchange (endpoints, weights, parsing).

``get_adapter("binance")`` (spot) and ``get_adapter("binance_futures")`` (USD-M,
aliases ``binanceusdm``, ``binance-futures``).
"""
from __future__ import annotations

from .base import Adapter, BadRequest, ExchangeError, MalformedResponse, ServerError

_ALIASES = {
    "binance": "binance", "binance_spot": "binance", "binance-spot": "binance",
    "binance_futures": "binance_futures", "binance-futures": "binance_futures", "binanceusdm": "binance_futures",
    "binance_usdm": "binance_futures",
}

EXCHANGES = ("binance", "binance_futures")


def get_adapter(exchange: "str | Adapter") -> Adapter:
    """Adapter for an exchange name (or the adapter itself)."""
    if isinstance(exchange, Adapter):
        return exchange
    key = _ALIASES.get(str(exchange).lower())
    if key == "binance":
        from .binance import BinanceSpot

        return BinanceSpot()
    if key == "binance_futures":
        from .binance_futures import BinanceUSDM

        return BinanceUSDM()
    raise ValueError(f"exchange {exchange!r} is not supported; expected one of {', '.join(EXCHANGES)}")


__all__ = ["Adapter", "BadRequest", "ExchangeError", "MalformedResponse", "ServerError", "get_adapter", "EXCHANGES"]
