"""Fixtures for the data-layer tests: the mock exchange on a free 127.0.0.1 port, no internet."""
from __future__ import annotations

import pytest

from nbtrade.data.mock import Faults, MockConfig, serve

#: a small market: 29 days of 1m data, one known maintenance gap, 1 s weight windows
SMALL = dict(
    symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
    origin="2024-02-01",
    now="2024-03-01 00:00:30",
    maintenance=[("2024-02-10 00:00", "2024-02-10 03:00")],
    window_s=1.0,
    weight_limit=1200,
    futures_weight_limit=1200,
)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Metadata cache in a temp dir, never the user's ~/.cache."""
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path / "home"))


@pytest.fixture
async def mock_factory():
    """``await start(**options)`` runs a mock exchange (defaults: ``SMALL``) until the test ends."""
    stack = []

    async def start(faults: Faults | None = None, **options):
        config = MockConfig(**{**SMALL, **options})
        if faults is not None:
            config.faults = faults
        cm = serve(config)
        mock = await cm.__aenter__()
        stack.append(cm)
        return mock

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def mock_exchange(mock_factory):
    """The default small mock exchange."""
    return await mock_factory()
