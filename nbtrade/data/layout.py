"""On-disk layout of the HDF5 candle store: names, schema, compression.

One HDF5 file per exchange under a root folder::

    <root>/
      binance.h5            one file per exchange (name: lowercase [a-z0-9_-])
      binance.h5.lock       fcntl lock file: writers exclusive, readers shared
      binance.h5.journal    rollback journal, exists only while a write is open
                            (or after a crash, until the next access rolls it back)

Inside a file, one group per symbol and timeframe, ``/<safe symbol>/<timeframe>``
(``BTC/USDT`` -> ``BTC-USDT``, ``BTC/USDT:USDT`` -> ``BTC-USDT_USDT``; the
unified symbol is kept in the group's ``symbol`` attribute)::

    time      int64 (n,)   candle open time, UTC epoch ms, strictly increasing
    open high low close volume
              float64 (n,) (float32 by option), one dataset per column
    _chunk_first int64      first ``time`` of every chunk (for range reads)
    _batches  compound      one record per append batch: row0, rows, first, last, crc32

All columns are chunked along time (``CHUNK_ROWS`` rows per chunk), resizable
(``maxshape=(None,)``) and compressed with Blosc LZ4 + byte shuffle through
hdf5plugin (gzip + shuffle when hdf5plugin is missing). Every dataset also has
HDF5's fletcher32 filter: each chunk carries a checksum of its stored bytes that
HDF5 verifies on every read, so a damaged chunk raises instead of returning
wrong candles (measured: within the noise of a 1-day range read, ~5 %). Series
written before (no ``checksums`` attribute) keep working and are rewritten with
checksums on their next write or by ``nbtrade data verify --upgrade``.

One dataset per column rather than one (n, 5) dataset: measured on 3M rounded
synthetic 1m rows, the (n, 5) layout with (16k, 5) chunks read a day in 0.53 ms
instead of 0.87 and appended a day in 1.0 ms instead of 1.6 (fewer HDF5 calls),
but took 69.8 % of the raw size instead of 66.3 % (interleaved columns shuffle
worse) and cannot skip columns. Both meet the targets (range <= 2 ms, append
<= 10 ms); size is the tighter one (<= 70 %), so columns stay separate.
``codec="bitshuffle-lz4"`` trades read speed (3.4 vs 5.5 GB/s) for size (56 %).
Group attributes: ``exchange, symbol, timeframe, timeframe_ms, rows, first,
last, dtype, chunk_rows, codec, schema_version, created_ms, updated_ms, checksums``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

#: Bumped when the layout changes incompatibly.
SCHEMA_VERSION = 1
#: Value columns, in order; ``time`` comes first on disk and in arrays.
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
COLUMNS = ("time",) + VALUE_COLUMNS
#: Pseudo-timeframe of funding-rate history (the fetcher's ``FUNDING_TIMEFRAME``):
#: ``time`` (funding time, ms, off-grid by a few ms on Binance), ``rate``
#: (fraction per interval, longs pay when positive), ``mark_price`` (NaN when unknown).
FUNDING = "funding"
FUNDING_COLUMNS = ("rate", "mark_price")
#: Mark-price candles of timeframe ``tf`` are stored under the pseudo-timeframe ``"mark_" + tf``
#: (``/BTC-USDT_USDT/mark_1h``), beside the last-price candles of the same symbol: ``time``
#: (open time on the ``tf`` grid) and ``open high low close`` (mark prices, > 0; no volume:
#: exchanges report none for the mark price).
MARK_PREFIX = "mark_"
MARK_COLUMNS = ("open", "high", "low", "close")


def mark_timeframe(timeframe: str) -> str:
    """The store key of mark-price candles of ``timeframe``: ``"1h"`` -> ``"mark_1h"``."""
    return timeframe if timeframe.startswith(MARK_PREFIX) else MARK_PREFIX + timeframe


def is_mark(timeframe: str) -> bool:
    """True for a mark-price candle key (``"mark_1h"``)."""
    return isinstance(timeframe, str) and timeframe.startswith(MARK_PREFIX)
#: Rows per chunk of new series. A 1-day read of 1m candles decompresses (and
#: checksums) one or two 32 KiB chunks per column. With range reads on h5py's
#: low-level API, decompression became their main cost: CPU time of a 1-day read
#: from a 1M-row store was 1.5 ms with 4k-row chunks vs 2.2 ms with 16k (npy
#: memory map: 0.85 ms), full reads ~10 % slower, size 67.8 % of raw vs 66.3 %.
#: Keeping the read handle between reads (``Store._read_handle``) then took a
#: 1-day read to ~1.0 ms CPU (1.1-1.2x the memory map).
CHUNK_ROWS = 4096
INDEX_NAME = "_chunk_first"
BATCHES_NAME = "_batches"
FILE_SUFFIX = ".h5"
DTYPES = ("float64", "float32")

_EXCHANGE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-/:.]*$")


def default_root() -> Path:
    """Store root: ``$NBTRADE_HOME/data`` (see :mod:`nbtrade.config`)."""
    from ..config import home

    return home() / "data"


def check_exchange(exchange: str) -> str:
    """Validated exchange name (it becomes a file name)."""
    if not isinstance(exchange, str) or not _EXCHANGE_RE.match(exchange):
        raise ValueError(f"exchange must be a lowercase name of [a-z0-9_-], got {exchange!r}")
    return exchange


def check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ValueError(f"symbol must look like 'BTC/USDT' (letters, digits, / : - _ .), got {symbol!r}")
    return symbol


def value_columns(timeframe: str) -> tuple[str, ...]:
    """Value columns of a series: OHLCV for candles, ``rate, mark_price`` for ``"funding"``,
    ``open, high, low, close`` for mark-price candles (``"mark_1h"``)."""
    if timeframe == FUNDING:
        return FUNDING_COLUMNS
    return MARK_COLUMNS if is_mark(timeframe) else VALUE_COLUMNS


def check_timeframe(timeframe: str) -> int:
    """Timeframe length in ms; 0 for the calendar month ``1M`` and ``"funding"`` (no grid).
    A mark-price key (``"mark_1h"``) has the grid of its timeframe."""
    from ..timeframes import TIMEFRAME_MS, TIMEFRAMES

    if is_mark(timeframe) and timeframe != MARK_PREFIX + FUNDING:
        timeframe = timeframe[len(MARK_PREFIX):]
    if timeframe in ("1M", FUNDING):
        return 0
    if timeframe not in TIMEFRAME_MS:
        raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)} or {FUNDING!r}, got {timeframe!r}")
    return TIMEFRAME_MS[timeframe]


def safe_symbol(symbol: str) -> str:
    """HDF5 group name of a unified symbol: ``BTC/USDT`` -> ``BTC-USDT``."""
    return check_symbol(symbol).replace("/", "-").replace(":", "_")


def group_path(symbol: str, timeframe: str) -> str:
    check_timeframe(timeframe)
    return f"{safe_symbol(symbol)}/{timeframe}"


def compression(codec: str = "blosc-lz4") -> tuple[str, dict]:
    """``(codec name, h5py create_dataset keywords)``; falls back to gzip without hdf5plugin."""
    try:
        import hdf5plugin
    except ImportError:  # pragma: no cover - hdf5plugin is a dependency
        codec = "gzip"
    if codec == "blosc-lz4":
        return codec, dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if codec == "blosc2-lz4":
        return codec, dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE))
    if codec == "bitshuffle-lz4":
        return codec, dict(hdf5plugin.Bitshuffle(cname="lz4"))
    if codec == "gzip":
        return codec, {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    raise ValueError(f"codec must be one of blosc-lz4, blosc2-lz4, bitshuffle-lz4, gzip; got {codec!r}")
