"""Saving a backtest :class:`~nbtrade.result.Result` to one ``.npz`` file and loading it back.

The file holds arrays only (``numpy.savez_compressed``, read with ``allow_pickle=False``): the
order and trade records, cash and equity, the OHLCV the engine saw, the time index, perpetuals'
funding cash flows, and a JSON header (format version, symbols, cash, bar length, assumptions,
gaps). No Python object or code
is pickled, so a file from someone else cannot run anything when loaded, and every statistic
and the full report can be rebuilt from it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "nbtrade.result"
VERSION = 1
_FIELDS = ("open", "high", "low", "close", "volume")


class SavedInputs:
    """What a loaded result needs of the backtest's inputs: the index, symbols and OHLCV arrays."""

    def __init__(self, index: pd.Index, symbols: list, arrays: dict[str, np.ndarray], n_missing: int = -1) -> None:
        self.index = index
        self.symbols = symbols
        self.close = arrays["close"]
        self.open, self.high, self.low = (arrays.get(k) for k in ("open", "high", "low"))
        self.volume = arrays.get("volume")
        self.n_missing = n_missing

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape


def _index_arrays(index: pd.Index) -> tuple[np.ndarray, dict[str, Any]]:
    if isinstance(index, pd.DatetimeIndex):
        tz = str(index.tz) if index.tz is not None else None
        naive = index.tz_convert("UTC").tz_localize(None) if tz else index
        return naive.values.astype("datetime64[ns]").astype(np.int64), {"kind": "datetime", "tz": tz,
                                                                         "name": index.name}
    return np.asarray(index, dtype=np.int64), {"kind": "int", "name": index.name}


def _index_from(values: np.ndarray, meta: dict[str, Any]) -> pd.Index:
    if meta["kind"] == "datetime":
        idx = pd.DatetimeIndex(values.astype("datetime64[ns]"), name=meta.get("name"))
        return idx.tz_localize("UTC").tz_convert(meta["tz"]) if meta["tz"] else idx
    return pd.Index(values, name=meta.get("name"))


def _frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    """A small frame (gaps) as JSON: datetimes as ISO text, the rest as plain values."""
    cols = {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            cols[str(c)] = {"datetime": [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in s]}
        else:
            cols[str(c)] = {"values": [v.item() if hasattr(v, "item") else v for v in s.tolist()]}
    return {"columns": cols, "order": [str(c) for c in df.columns]}


def _frame_from_json(data: dict[str, Any]) -> pd.DataFrame:
    out = {}
    for c in data["order"]:
        col = data["columns"][c]
        out[c] = pd.to_datetime(col["datetime"], format="ISO8601") if "datetime" in col else col["values"]
    return pd.DataFrame(out, columns=data["order"])


def save_result(result: Any, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` (a ``.npz`` file, written whole or not at all). Returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"save path {str(path)!r} must end in .npz (a numpy archive of arrays, no pickles)")
    inputs = result._inputs
    index_values, index_meta = _index_arrays(result.index)
    arrays = {"index": index_values, "orders": result.order_records, "trades": result.trade_records,
              "cash": result.cash.to_numpy(float), "equity": result.equity.to_numpy(float)}
    for f in _FIELDS:
        a = getattr(inputs, f, None)
        if a is not None:
            arrays[f] = np.ascontiguousarray(a, dtype=float)
    if getattr(result, "funding_flows", None) is not None:  # perpetuals: funding cash flows (bars x symbols)
        arrays["funding"] = np.ascontiguousarray(result.funding_flows, dtype=float)
    signals = getattr(result, "_signal_arrays", None) or {}
    for k, v in signals.items():
        arrays[f"signal_{k}"] = np.asarray(v)
    header = {
        "format": FORMAT, "version": VERSION, "symbols": [str(s) for s in result.symbols],
        "symbol_types": [type(s).__name__ for s in result.symbols], "index": index_meta,
        "init_cash": result.init_cash, "symbol_init_cash": result.symbol_init_cash, "freq_ms": result.freq_ms,
        "n_missing": int(getattr(inputs, "n_missing", -1)),
        "assumptions": json.loads(json.dumps(result.assumptions, default=str)),
        "gaps": _frame_to_json(result.gaps), "signals": sorted(signals),
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)
    return path


def load_result(path: str | os.PathLike) -> Any:
    """Load a result written by :meth:`Result.save`: statistics, frames and reports work as before.

    Raises
    ------
    ValueError
        When ``path`` is not an nbtrade result file (or is from a newer nbtrade).
    """
    from .result import Result

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved result at {str(path)!r}")
    try:
        npz = np.load(path, allow_pickle=False)
        header = json.loads(bytes(npz["header"]).decode("utf-8"))
    except Exception as exc:  # not a zip, no header, not JSON
        raise ValueError(f"{str(path)!r} is not an nbtrade result file (written by Result.save): {exc}") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not an nbtrade result file (format {header.get('format')!r})")
    if header["version"] > VERSION:
        raise ValueError(f"{str(path)!r} was written by a newer nbtrade (result format {header['version']}, "
                         f"this one reads up to {VERSION}); upgrade nbtrade to load it")
    with npz:
        index = _index_from(npz["index"], header["index"])
        symbols = [int(s) if t == "int" else s for s, t in zip(header["symbols"], header["symbol_types"])]
        arrays = {f: npz[f] for f in _FIELDS if f in npz.files}
        inputs = SavedInputs(index, symbols, arrays, header.get("n_missing", -1))
        res = Result(inputs=inputs, orders=npz["orders"], trades=npz["trades"], cash=npz["cash"],
                     equity=npz["equity"], init_cash=header["init_cash"], freq_ms=header["freq_ms"],
                     gaps=_frame_from_json(header["gaps"]), assumptions=header["assumptions"],
                     symbol_init_cash=header["symbol_init_cash"])
        if "funding" in npz.files:
            res.funding_flows = npz["funding"]
        if header["signals"]:
            res._signal_arrays = {k: npz[f"signal_{k}"] for k in header["signals"]}
    return res
