"""MetaCache: deterministic keys, TTL, checksums; corrupt entries removed and refetched."""
from __future__ import annotations

import json

import pytest

from nbtrade.data.exchanges.binance import symbol_filters
from nbtrade.data.fetch import fetch_ohlcv
from nbtrade.data.metacache import MetaCache, cache_key

MAT = {"exchange": "binance", "base_url": "http://127.0.0.1:1", "path": "/api/v3/exchangeInfo"}


class Clock:
    t = 1_700_000_000.0

    def __call__(self):
        return self.t


def test_keys_are_deterministic_and_distinct():
    assert cache_key(MAT) == cache_key(dict(reversed(list(MAT.items()))))
    assert cache_key(MAT) != cache_key({**MAT, "base_url": "https://api.binance.com"})
    assert len(cache_key(MAT)) == 32


def test_roundtrip_and_ttl(tmp_path):
    clock = Clock()
    cache = MetaCache(tmp_path, ttl=60, clock=clock)
    assert cache.get(MAT) is None
    cache.put(MAT, {"a": [1, "2"]})
    assert cache.get(MAT) == {"a": [1, "2"]}
    clock.t += 61
    assert cache.get(MAT) is None
    assert [e for _, e in cache.events] == ["miss", "hit", "expired"]
    with pytest.raises(ValueError, match="ttl"):
        MetaCache(tmp_path, ttl=-1)


@pytest.mark.parametrize("corrupt", ["truncate", "flip", "garbage", "empty", "wrong_key"])
async def test_corrupt_entries_are_removed_and_refetched(tmp_path, corrupt):
    cache = MetaCache(tmp_path)
    path = cache.put(MAT, {"symbols": ["BTCUSDT"], "n": 1})
    raw = path.read_bytes()
    if corrupt == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif corrupt == "flip":
        entry = json.loads(raw)
        entry["payload"] = entry["payload"].replace("BTCUSDT", "BTCUSDX")
        path.write_text(json.dumps(entry))
    elif corrupt == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif corrupt == "empty":
        path.write_bytes(b"")
    else:
        entry = json.loads(raw)
        entry["key"] = "0" * 32
        path.write_text(json.dumps(entry))
    calls = []

    async def fetch():
        calls.append(1)
        return {"symbols": ["BTCUSDT"], "n": 2}

    assert await cache.get_or_fetch(MAT, fetch) == {"symbols": ["BTCUSDT"], "n": 2}
    assert calls == [1]
    assert cache.events[0][1].startswith("corrupt")
    assert cache.get(MAT) == {"symbols": ["BTCUSDT"], "n": 2}  # rewritten intact


async def test_fetch_uses_the_cache_and_survives_corruption(mock_exchange, tmp_path):
    cache = MetaCache(tmp_path / "meta")
    kw = dict(base_url=mock_exchange.url, cache=cache)
    await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", "2024-02-02", **kw)
    await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", "2024-02-02", **kw)
    assert mock_exchange.stats.by_path["/api/v3/exchangeInfo"] == 1
    (entry,) = list((tmp_path / "meta").glob("*.json"))
    entry.write_bytes(entry.read_bytes()[:-20])
    res = await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", "2024-02-02", **kw)
    assert len(res.data["BTC/USDT"]["time"]) == 24
    assert mock_exchange.stats.by_path["/api/v3/exchangeInfo"] == 2
    assert any(e.startswith("corrupt") for _, e in cache.events)
    info = cache.get({"exchange": "binance", "base_url": mock_exchange.url, "path": "/api/v3/exchangeInfo"})
    assert symbol_filters(info, "BTCUSDT")["LOT_SIZE"]["stepSize"] > 0


async def test_stale_cached_listing_is_refreshed(mock_exchange, tmp_path):
    cache = MetaCache(tmp_path / "meta")
    material = {"exchange": "binance", "base_url": mock_exchange.url, "path": "/api/v3/exchangeInfo"}
    cache.put(material, {"rateLimits": [], "symbols": [{"symbol": "ETHUSDT"}]})  # before SOL was listed
    res = await fetch_ohlcv("binance", "SOL/USDT", "1d", "2024-02-01", "2024-02-05",
                            base_url=mock_exchange.url, cache=cache)
    assert len(res.data["SOL/USDT"]["time"]) == 4
    assert mock_exchange.stats.by_path["/api/v3/exchangeInfo"] == 1
