"""On-disk cache of exchange metadata (exchangeInfo, symbol filters) with TTL and checksums.

One JSON file per entry under ``root`` (default ``$NBTRADE_HOME/cache/meta``).
The file name is a SHA-256 of the canonical JSON of
the key material (exchange, base URL, endpoint, params), so the same request
always maps to the same file and different servers (the mock, the real API)
never share entries. Each file stores the payload as canonical JSON text with
its SHA-256 and the wall-clock time it was written (wall time, not monotonic:
entries outlive the process). Entries are written atomically (temp file +
``os.replace``). A truncated, unparsable, or checksum-mismatching entry is
removed and reported in :attr:`MetaCache.events`, and the caller refetches.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from .._files import atomic_write

FORMAT_VERSION = 1


def default_root() -> Path:
    """``$NBTRADE_HOME/cache/meta`` (see :mod:`nbtrade.config`)."""
    from ..config import home

    return home() / "cache" / "meta"


def cache_key(material: dict[str, Any]) -> str:
    """Deterministic key: SHA-256 (hex, 32 chars) of the canonical JSON of ``material``."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


class MetaCache:
    """Metadata cache; ``get``/``put`` by key material, ``get_or_fetch`` for the usual flow.

    Parameters
    ----------
    root : directory of the entries (created on first write).
    ttl : seconds an entry stays fresh (default one hour).
    clock : wall clock in seconds (``time.time``), injectable for tests.
    """

    def __init__(self, root: str | os.PathLike | None = None, ttl: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be >= 0 seconds, got {ttl}")
        self.root = Path(root) if root is not None else default_root()
        self.ttl = float(ttl)
        self._clock = clock
        self.events: list[tuple[str, str]] = []  # (key, "hit" | "miss" | "expired" | "corrupt: ...")

    def path(self, material: dict[str, Any]) -> Path:
        return self.root / f"{cache_key(material)}.json"

    def get(self, material: dict[str, Any]) -> Any | None:
        """The cached payload, or None when absent, expired or corrupt (corrupt files are removed)."""
        path = self.path(material)
        key = path.stem
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self.events.append((key, "miss"))
            return None
        try:
            entry = json.loads(raw)
            text = entry["payload"]
            if entry.get("version") != FORMAT_VERSION or entry.get("key") != key:
                raise ValueError("wrong version or key")
            if hashlib.sha256(text.encode()).hexdigest() != entry["sha256"]:
                raise ValueError("checksum mismatch")
            payload = json.loads(text)
            created = float(entry["created"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            self.events.append((key, f"corrupt: {exc}"))
            path.unlink(missing_ok=True)
            return None
        if self._clock() - created > self.ttl or created > self._clock() + 60:
            self.events.append((key, "expired"))
            return None
        self.events.append((key, "hit"))
        return payload

    def created(self, material: dict[str, Any]) -> float | None:
        """Wall-clock time (s) the entry was written (its provenance), or None if absent or unreadable."""
        try:
            return float(json.loads(self.path(material).read_bytes())["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, material: dict[str, Any], payload: Any) -> Path:
        """Write an entry atomically; returns its path."""
        path = self.path(material)
        text = _canonical(payload)
        entry = {"version": FORMAT_VERSION, "key": path.stem, "material": material, "created": self._clock(),
                 "sha256": hashlib.sha256(text.encode()).hexdigest(), "payload": text}
        self.root.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, json.dumps(entry, separators=(",", ":")).encode(), durable=True)

    def remove(self, material: dict[str, Any]) -> None:
        self.path(material).unlink(missing_ok=True)

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        n = 0
        if self.root.is_dir():
            for p in self.root.glob("*.json"):
                p.unlink(missing_ok=True)
                n += 1
        return n

    async def get_or_fetch(self, material: dict[str, Any],
                           fetch: Callable[[], Awaitable[Any] | Any]) -> Any:
        """Cached payload if fresh and intact, else ``await fetch()`` and store the result."""
        payload = self.get(material)
        if payload is not None:
            return payload
        payload = fetch()
        if inspect.isawaitable(payload):
            payload = await payload
        self.put(material, payload)
        return payload
