"""Exchange adapters: one module per exchange (endpoints, weights, parsing).

``get_adapter("binance")`` (spot), ``get_adapter("binance_futures")`` (USD-M,
aliases ``binanceusdm``, ``binance-futures``), ``"bybit"`` (v5 spot),
``"bybit_linear"`` (v5 USDT perpetuals), ``"okx"`` (v5 spot) and ``"okx_swap"`` (v5 perpetual swaps); ``"ccxt:<id>"``
(e.g. ``ccxt:kraken``) reaches any exchange ccxt supports through the optional extra.
"""
from __future__ import annotations

from .base import Adapter, BadRequest, ExchangeError, MalformedResponse, ServerError

_ALIASES = {
    "binance": "binance", "binance_spot": "binance", "binance-spot": "binance",
    "binance_futures": "binance_futures", "binance-futures": "binance_futures", "binanceusdm": "binance_futures",
    "binance_usdm": "binance_futures",
    "bybit": "bybit", "bybit_spot": "bybit", "bybit-spot": "bybit",
    "bybit_linear": "bybit_linear", "bybit-linear": "bybit_linear",
    "okx": "okx", "okx_spot": "okx", "okx-spot": "okx",
    "okx_swap": "okx_swap", "okx-swap": "okx_swap",
}

EXCHANGES = ("binance", "binance_futures", "bybit", "bybit_linear", "okx", "okx_swap")
#: exchanges with perpetual data: funding-rate history and mark-price candles (issue 17)
PERP_EXCHANGES = ("binance_futures", "bybit_linear", "okx_swap")


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
    if key == "bybit":
        from .bybit import BybitSpot

        return BybitSpot()
    if key == "bybit_linear":
        from .bybit import BybitLinear

        return BybitLinear()
    if key == "okx":
        from .okx import OKXSpot

        return OKXSpot()
    if key == "okx_swap":
        from .okx import OKXSwap

        return OKXSwap()
    text = str(exchange)
    if text.lower()[:5] in ("ccxt:", "ccxt-") and len(text) > 5:
        from .ccxt_adapter import CcxtAdapter

        return CcxtAdapter(text[5:])
    raise ValueError(f"exchange {exchange!r} is not supported; expected one of {', '.join(EXCHANGES)}, "
                     "or 'ccxt:<id>' for any exchange ccxt supports (pip install 'nbtrade[ccxt]')")


__all__ = ["Adapter", "BadRequest", "ExchangeError", "MalformedResponse", "ServerError", "get_adapter", "EXCHANGES",
           "PERP_EXCHANGES"]
