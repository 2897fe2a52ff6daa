"""Liquidation prices cross-checked against freqtrade's Binance implementation.

Source (freqtrade is not a dependency; figures copied): freqtrade/freqtrade
``freqtrade/exchange/binance.py`` ``Binance.dry_run_liquidation_price`` (current form takes
``open_trades``) and ``tests/exchange/test_binance.py::test_liquidation_price_binance``, whose
four cases (``liquidation_buffer`` 0, prices rounded to 2 decimals) are the Binance FAQ example
(BTCUSDT and ETHUSDT in one cross wallet). freqtrade's formula is Binance's one-way formula::

    (wallet_balance + cross_vars + maintenance_amt - side * amount * open_rate)
        / (amount * mm_ratio - side * amount)
    cross_vars = upnl_ex_1 - mm_ex_1   (0 when isolated)

so on those cases nbtrade gives the same prices (``FREQTRADE_CASES``). Differences, each with a
case in ``DIFFERENCES`` and a test below:

1. **Tier of the liquidation price.** freqtrade takes ``(mm_ratio, maintenance_amt)`` once from
   ``get_maintenance_ratio_and_amt(pair, stake_amount)`` (its docstring calls ``stake_amount``
   "Collateral in settle currency"; its test passes the entry notional) and does not revisit it.
   Binance's FAQ: when the position at the liquidation price falls in another bracket than at
   entry, recompute with that bracket; nbtrade does (``liquidation_price_nb``). Long 40 BTC @
   30,000 on a 600,000 isolated margin, default table: entry tier (2.5%, 16,300) gives 14,966.67,
   a notional of 598,667 in the 1% tier where that tier's MM would be negative: below the
   bankruptcy price 15,000. nbtrade: 15,118.69 (1%, 1,300), where margin balance = MM = 4,747.47.
2. **Short positions among the others (cross).** freqtrade adds
   ``amount * mark_price - amount * open_rate`` for every other trade, whatever its side, so a
   short's unrealized PnL enters with the wrong sign. Binance's UPNL is signed. With the BTC
   position of the FAQ example a short instead of a long, ETH's cross liquidation price is
   1,119.26 (nbtrade) vs 1,153.26 (freqtrade, as if BTC were long).
3. **Marks of the other positions in backtests.** freqtrade's backtesting values the other
   trades at their ``open_rate`` ("Fall back to open rate for backtesting"): their UPNL is 0 and
   their maintenance margin is taken at the entry notional. nbtrade uses each position's last
   known mark (its current bar's mark, never a later one). FAQ example: 1,136.68 vs 1,153.26.
4. **liquidation_buffer.** ``get_liquidation_price`` moves the price toward the entry by
   ``liquidation_buffer * |open_rate - liq|`` (default 0.05; 0 in the test). nbtrade liquidates at
   the exchange's price; a safety margin is a strategy's stop. Case 1 with 0.05: 1,131.89.
"""
import numpy as np
import pytest

from nbtrade.kernels import margin as km
from nbtrade.margin import DEFAULT_TIERS, Tiers, pack_tiers

WALLET = 1_535_443.01
BTC = dict(amount=109.488, open_rate=32_481.98, mark=31_967.27, mmr=0.025, cum=16_300.0)
ETH = dict(amount=3_683.979, open_rate=1_456.84, mark=1_335.18, mmr=0.10, cum=135_365.0)

#: (label, position, other position or None, freqtrade's expected price): test_liquidation_price_binance.
FREQTRADE_CASES = [
    ("ETH isolated", ETH, None, 1114.78),
    ("BTC isolated", BTC, None, 18778.73),
    ("ETH cross, BTC other", ETH, BTC, 1153.26),
    ("BTC cross, ETH other", BTC, ETH, 26316.89),
]

#: (label, freqtrade's figure, nbtrade's figure), the differences of the module docstring.
DIFFERENCES = [
    ("1. long 40 @ 30,000, margin 600,000: tier at entry vs at the price", 14966.67, 15118.69),
    ("2. ETH cross with BTC short", 1153.26, 1119.26),
    ("3. ETH cross, others at open_rate (freqtrade backtests) vs at their mark", 1136.68, 1153.26),
    ("4. ETH isolated with liquidation_buffer 0.05 vs none", 1131.89, 1114.78),
]

#: ETH tiers built so that the position's tier carries the FAQ figures (10%, cum 135,365).
ETH_TIERS = Tiers.build([(0, 135_365 / 0.095, 0.005, 100), (135_365 / 0.095, 1e9, 0.10, 5)])


def freqtrade_formula(side, amount, open_rate, wallet, cross_vars, mm_ratio, maintenance_amt):
    """freqtrade's return expression, transcribed (figures for the differences only)."""
    return ((wallet + cross_vars + maintenance_amt) - (side * amount * open_rate)) / (
        (amount * mm_ratio) - (side * amount))


def _other(o, side=1.0):
    """nbtrade's ``UPNL - TMM`` of one other position at its mark."""
    notional = o["amount"] * o["mark"]
    return side * o["amount"] * (o["mark"] - o["open_rate"]) - (notional * o["mmr"] - o["cum"])


@pytest.mark.parametrize("label, pos, other, expected", FREQTRADE_CASES, ids=[c[0] for c in FREQTRADE_CASES])
def test_freqtrade_cases_with_their_rates(label, pos, other, expected):
    x = 0.0 if other is None else _other(other)
    lp = km.liquidation_price_at_nb(1.0, pos["amount"], pos["open_rate"], WALLET, x, pos["mmr"], pos["cum"])
    assert round(lp, 2) == expected


@pytest.mark.parametrize("label, pos, other, expected", FREQTRADE_CASES, ids=[c[0] for c in FREQTRADE_CASES])
def test_freqtrade_cases_with_tier_tables(label, pos, other, expected):
    # the same cases through the tiered kernels: BTC on the default table, ETH on ETH_TIERS
    tiers = {id(BTC): DEFAULT_TIERS, id(ETH): ETH_TIERS}
    books = [pos] + ([] if other is None else [other])
    sizes = np.array([b["amount"] for b in books])
    entries = np.array([b["open_rate"] for b in books])
    marks = np.array([b["mark"] for b in books])
    f, c, m, cum, _, counts = pack_tiers([tiers[id(b)] for b in books])
    if other is None:
        lp = km.liquidation_price_nb(1.0, sizes[0], entries[0], WALLET, 0.0, f[0], c[0], m[0], cum[0], counts[0])
    else:
        lp = km.cross_liquidation_price_nb(0, sizes, entries, marks, WALLET, f, c, m, cum, counts)
    assert round(lp, 2) == expected


def test_difference_1_tier_at_the_liquidation_price():
    ft = freqtrade_formula(1, 40, 30_000, 600_000, 0.0, 0.025, 16_300)
    f, c, m, cum, _ = DEFAULT_TIERS.arrays()
    ours = km.liquidation_price_nb(1.0, 40.0, 30_000.0, 600_000.0, 0.0, f, c, m, cum, len(DEFAULT_TIERS))
    assert (round(ft, 2), round(ours, 2)) == DIFFERENCES[0][1:]
    assert ft < km.bankruptcy_price_nb(1.0, 40.0, 30_000.0, 600_000.0, 0.0) < ours
    assert 600_000 + 40 * (ours - 30_000) == pytest.approx(DEFAULT_TIERS.maintenance_margin(40 * ours))


def test_difference_2_short_among_the_others():
    btc_mm = BTC["amount"] * BTC["mark"] * BTC["mmr"] - BTC["cum"]
    unsigned = BTC["amount"] * BTC["mark"] - BTC["amount"] * BTC["open_rate"]  # freqtrade's upnl_ex_1
    ft = freqtrade_formula(1, ETH["amount"], ETH["open_rate"], WALLET, unsigned - btc_mm, 0.10, 135_365)
    sizes = np.array([ETH["amount"], -BTC["amount"]])
    entries = np.array([ETH["open_rate"], BTC["open_rate"]])
    marks = np.array([ETH["mark"], BTC["mark"]])
    f, c, m, cum, _, counts = pack_tiers([ETH_TIERS, DEFAULT_TIERS])
    ours = km.cross_liquidation_price_nb(0, sizes, entries, marks, WALLET, f, c, m, cum, counts)
    assert (round(ft, 2), round(ours, 2)) == DIFFERENCES[1][1:]


def test_difference_3_other_positions_at_their_mark():
    at_open = -(BTC["amount"] * BTC["open_rate"] * BTC["mmr"] - BTC["cum"])  # UPNL 0, MM at entry notional
    ft = freqtrade_formula(1, ETH["amount"], ETH["open_rate"], WALLET, at_open, 0.10, 135_365)
    ours = km.liquidation_price_at_nb(1.0, ETH["amount"], ETH["open_rate"], WALLET, _other(BTC), 0.10, 135_365)
    assert (round(ft, 2), round(ours, 2)) == DIFFERENCES[2][1:]


def test_difference_4_liquidation_buffer():
    lp = km.liquidation_price_at_nb(1.0, ETH["amount"], ETH["open_rate"], WALLET, 0.0, 0.10, 135_365)
    buffered = lp + abs(ETH["open_rate"] - lp) * 0.05  # get_liquidation_price, long side
    assert (round(buffered, 2), round(lp, 2)) == DIFFERENCES[3][1:]
