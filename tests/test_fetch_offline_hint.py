"""`nbtrade fetch` without a network says how to work offline (issue 13): the mock and --base-url."""
import pytest

from nbtrade.cli import main
from nbtrade.data.exchanges.base import ServerError


def _raise(message):
    def run_fetch(*args, **kwargs):
        raise ServerError(message, exchange="binance")
    return run_fetch


def test_network_error_suggests_the_mock(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("nbtrade.data.fetch.run_fetch", _raise(
        "binance /api/v3/time: giving up after 7 attempts: binance /api/v3/time: network error "
        "ClientConnectorDNSError: Cannot connect to host api.binance.com:443"))
    assert main(["--home", str(tmp_path), "fetch", "binance", "BTC/USDT", "--start", "2024-01-01"]) == 1
    err = capsys.readouterr().err
    assert "network error" in err and "nbtrade mock-exchange" in err and "--base-url" in err


@pytest.mark.parametrize("argv, message", [
    (["--base-url", "http://127.0.0.1:9"], "network error ClientConnectorError"),  # the user chose the server
    ([], "binance /api/v3/klines: giving up after 7 attempts: HTTP 503"),          # the exchange is down
])
def test_other_failures_are_left_as_they_are(monkeypatch, capsys, tmp_path, argv, message):
    monkeypatch.setattr("nbtrade.data.fetch.run_fetch", _raise(message))
    assert main(["--home", str(tmp_path), "fetch", "binance", "BTC/USDT", "--start", "2024-01-01", *argv]) == 1
    assert "mock-exchange" not in capsys.readouterr().err
