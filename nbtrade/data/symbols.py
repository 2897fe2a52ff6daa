"""One symbol rule: every spelling of one instrument resolves to its unified symbol.

Unified symbols follow ccxt: ``BASE/QUOTE`` for a spot pair (``BTC/USDT``) and
``BASE/QUOTE:SETTLE`` for a perpetual (``BTC/USDT:USDT``, the linear USDT-margined
one; Bybit's USDC perpetuals are ``ETH/USDC:USDC``). :func:`unified_symbol` accepts

- the unified form in any case (``btc/usdt``, ``BTC/USDT:USDT``);
- dash and underscore spellings (``BTC-USDT``, ``BTC_USDT``; OKX swaps ``BTC-USDT-SWAP``);
- exchange ids (``BTCUSDT``): split at a known quote currency of that exchange;
  Bybit USDC perpetual ids ``ETHPERP``.

On an exchange with one market the market decides what a spelling means: on a
perpetual-only venue (``binance_futures``, ``bybit_linear``) ``BTC/USDT`` and
``BTCUSDT`` are ``BTC/USDT:USDT``; on a spot venue a perpetual (``BTC/USDT:USDT``,
``ETHPERP``) is refused. An id that splits two ways (``BTCBUSD``: ``BTC/BUSD`` or
``BTCB/USD``) is refused with the candidates. Fetch, the store's append and read,
and the CLI all go through this one function, so ``BTCUSDT``, ``BTC-USDT`` and
``BTC/USDT`` are one series.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["unified_symbol", "split_symbol", "market_of", "SymbolError", "QUOTES"]

#: quote currencies an exchange id may end in, per exchange (and ``None``: any exchange)
QUOTES: dict[str | None, tuple[str, ...]] = {
    "binance": ("USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "EUR", "TRY", "BRL", "GBP", "JPY", "AUD",
                "BTC", "ETH", "BNB"),
    "binance_futures": ("USDT", "USDC", "BUSD"),
    "bybit": ("USDT", "USDC", "EUR", "BRL", "TRY", "DAI", "BTC", "ETH"),
    "bybit_linear": ("USDT", "USDC"),
    "okx": ("USDT", "USDC", "EUR", "BTC", "ETH"),
    "okx_swap": ("USDT", "USDC"),
    None: ("USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "USD", "EUR", "TRY", "BRL", "GBP", "JPY", "AUD",
           "BTC", "ETH", "BNB"),
}
#: the market each native exchange name serves (perpetual venues are linear: settle = quote)
MARKETS = {"binance": "spot", "binance_futures": "linear", "bybit": "spot", "bybit_linear": "linear", "okx": "spot",
           "okx_swap": "linear"}

_PART = re.compile(r"^[A-Z0-9]{1,20}$")


class SymbolError(ValueError):
    """A spelling that names no instrument, the wrong market, or more than one (``candidates``)."""

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.candidates = candidates


def _exchange_key(exchange: Any) -> str | None:
    if exchange is None:
        return None
    name = getattr(exchange, "name", exchange)
    from .exchanges import _ALIASES

    return _ALIASES.get(str(name).lower())


def market_of(exchange: Any) -> str | None:
    """``"spot"``, ``"linear"``, or None (an exchange nbtrade has no native adapter for)."""
    return MARKETS.get(_exchange_key(exchange))  # type: ignore[arg-type]


def split_symbol(symbol: str) -> tuple[str, str, str | None]:
    """``"BTC/USDT:USDT"`` -> ``("BTC", "USDT", "USDT")``; ``"BTC/USDT"`` -> ``("BTC", "USDT", None)``."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return base, quote, settle or None


def _candidates(text: str, key: str | None) -> list[tuple[str, str, str | None]]:
    """The ways an id without separators splits into (base, quote, settle)."""
    if text.endswith("PERP") and len(text) > 4 and key in (None, "bybit", "bybit_linear"):
        return [(text[:-4], "USDC", "USDC")]  # Bybit USDC perpetual ids: ETHPERP
    out = []
    for quote in QUOTES.get(key, QUOTES[None]):
        if text.endswith(quote) and len(text) > len(quote):
            out.append((text[: -len(quote)], quote, None))
    return out


def unified_symbol(spelling: str, exchange: Any = None, *, strict: bool | None = None) -> str:
    """The unified symbol of ``spelling`` on ``exchange`` (see the module docstring for the rule).

    Parameters
    ----------
    spelling : ``"BTC/USDT"``, ``"btc-usdt"``, ``"BTCUSDT"``, ``"BTC/USDT:USDT"``, ``"ETHPERP"``...
    exchange : an exchange name or adapter; None for no exchange in particular.
    strict : refuse what does not fit the exchange: an id that splits at no known quote, and
        a perpetual on a spot venue. Default True for nbtrade's own exchanges, False
        otherwise (``"AAPL"`` stays ``"AAPL"``). The store reads and writes with False: it
        resolves spellings the same way but keeps whatever a user chose to file under a name.

    Raises
    ------
    SymbolError (a ValueError) naming the spelling and what to write instead.

    >>> unified_symbol("btcusdt", "binance"), unified_symbol("BTC-USDT", "binance_futures")
    ('BTC/USDT', 'BTC/USDT:USDT')
    >>> unified_symbol("ETHPERP", "bybit_linear")
    'ETH/USDC:USDC'
    """
    if not isinstance(spelling, str) or not spelling.strip():
        raise SymbolError(f"symbol must be a non-empty string like 'BTC/USDT', got {spelling!r}")
    key = _exchange_key(exchange)
    market = MARKETS.get(key)  # type: ignore[arg-type]
    strict = market is not None if strict is None else strict
    where = f" on {key}" if key else ""
    text = spelling.strip().upper()
    if "/" in text:
        base, quote, settle = split_symbol(text)
    elif "-" in text or "_" in text:
        parts = re.split(r"[-_]", text)
        if len(parts) == 3 and parts[2] == "SWAP":  # OKX perpetual swap id
            base, quote, settle = parts[0], parts[1], parts[1]
        elif len(parts) == 2:
            base, quote, settle = parts[0], parts[1], None
        else:
            raise SymbolError(f"symbol {spelling!r} is not a pair; write it as 'BASE/QUOTE' (e.g. 'BTC/USDT') "
                              "or 'BASE/QUOTE:SETTLE' for a perpetual")
    else:
        options = _candidates(text, key) if _PART.match(text) else []
        if len(options) > 1:
            names = tuple(_join(b, q, s, market) for b, q, s in options)
            raise SymbolError(f"symbol {spelling!r}{where} is ambiguous: it could be {' or '.join(names)}; "
                              "write the one you mean", names)
        if not options:
            if not strict and _PART.match(text):
                return text
            raise SymbolError(f"symbol {spelling!r}{where}: cannot tell the base from the quote currency; write it "
                              "as 'BASE/QUOTE' (e.g. 'BTC/USDT')")
        base, quote, settle = options[0]
    for part in (base, quote) + ((settle,) if settle else ()):
        if not _PART.match(part):
            raise SymbolError(f"symbol must look like 'BTC/USDT' or 'BTC/USDT:USDT' (letters and digits), "
                              f"got {spelling!r}")
    if settle is not None and market == "spot" and strict:
        raise SymbolError(f"symbol {spelling!r} is a perpetual (settles in {settle}) but {key} serves spot; "
                          f"use '{base}/{quote}' for the spot pair or a perpetual exchange "
                          f"(binance_futures, bybit_linear)")
    if market == "linear":
        if settle is None:
            settle = quote
        elif settle != quote:
            raise SymbolError(f"symbol {spelling!r}{where}: only linear perpetuals (settled in the quote "
                              f"currency) are served; did you mean '{base}/{quote}:{quote}'?")
    return _join(base, quote, settle, None)


def _join(base: str, quote: str, settle: str | None, market: str | None) -> str:
    if settle is None and market == "linear":
        settle = quote
    return f"{base}/{quote}" + (f":{settle}" if settle else "")
