"""Margin rules: hand-computed cases from the exchanges' documented formulas, and bad input.

Formulas: Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
(``LP = (WB - TMM + UPNL + cum - side * qty * EP) / (qty * MMR - side * qty)``, one-way mode),
maintenance margin ``notional * MMR - cum``, funding ``mark * size * rate`` (Binance "Introduction
to Binance Futures Funding Rates"). Every expected figure below is worked by hand in its comment.
"""
import math

import numpy as np
import pytest

from nbtrade.kernels import margin as km
from nbtrade.margin import DEFAULT_TIERS, Tiers, liquidation_price, margin_settings, pack_tiers

F, C, M, CUM, LEV = DEFAULT_TIERS.arrays()
N = len(DEFAULT_TIERS)


def mm(notional, tiers=DEFAULT_TIERS):
    f, c, m, cum, _ = tiers.arrays()
    return km.maintenance_margin_nb(f, c, m, cum, len(tiers), notional)


# -- tiers -----------------------------------------------------------------------------------

def test_default_table_matches_binance_faq_figures():
    # FAQ: "if the position size of a BTCUSDT contract is 264,000 USDT, the maintenance margin rate would be 1%"
    assert DEFAULT_TIERS.mmr[DEFAULT_TIERS.tier(264_000)] == 0.01
    # FAQ: "if the position size ... is 500,000 USDT, then the maintenance amount would be 1,300 USDT"
    assert DEFAULT_TIERS.cum[DEFAULT_TIERS.tier(500_000)] == pytest.approx(1300)
    # FAQ cross example: BTC maintenance 3,500,032.458 * 2.50% - 16,300 = 71,200.81
    assert mm(3_500_032.458) == pytest.approx(71_200.81145, abs=1e-6)
    assert DEFAULT_TIERS.cum == pytest.approx((0, 50, 1300, 16300, 266300, 1266300, 2516300, 5016300, 25016300,
                                               100016300))


def test_tier_boundaries_upper_inclusive_and_continuous():
    k = km.tier_index_nb(F, C, N, 50_000.0)
    assert k == 0  # "0 < Position <= 50,000"
    assert km.tier_index_nb(F, C, N, 50_000.01) == 1
    # MM continuous across the boundary: 50,000 * 0.4% - 0 = 200 = 50,000 * 0.5% - 50
    assert mm(50_000.0) == pytest.approx(200.0)
    assert 50_000.0 * 0.005 - 50 == pytest.approx(200.0)
    assert km.tier_index_nb(F, C, N, 9e9) == N - 1  # beyond the last cap: the last tier


def test_position_reaching_the_next_tier():
    # a long of 1 BTC whose mark rises from 49,000 to 60,000 crosses 50,000 into tier 2:
    # MM 49,000 * 0.4% = 196; 60,000 * 0.5% - 50 = 250 (not 60,000 * 0.4% = 240)
    assert mm(49_000.0) == pytest.approx(196.0)
    assert mm(60_000.0) == pytest.approx(250.0)
    # max leverage follows the tier of the position's notional: 125x up to 50,000, then 100x
    assert km.max_leverage_nb(F, C, LEV, N, 49_000.0) == 125
    assert km.max_leverage_nb(F, C, LEV, N, 60_000.0) == 100
    assert km.max_leverage_nb(F, C, LEV, N, 6e8) == 0.0  # beyond the table: no entry
    with pytest.raises(ValueError, match="leverage 125 is above the maximum 100"):
        DEFAULT_TIERS.check_leverage(125, 60_000)
    assert DEFAULT_TIERS.check_leverage(100, 60_000) == 100


def test_liquidation_price_uses_the_tier_at_that_price():
    # long 40 BTC @ 30,000 (notional 1.2M: tier 4, mmr 2.5%, cum 16,300), isolated margin 600,000 (2x)
    # with the entry tier: (600,000 + 16,300 - 1,200,000) / (40 * 0.025 - 40) = 14,966.67, a notional of
    # 598,667 (tier 3) where MM = 598,667 * 2.5% - 16,300 < 0: below the bankruptcy price 15,000.
    # With tier 3 (1%, 1,300): (600,000 + 1,300 - 1,200,000) / (40 * 0.01 - 40) = 598,700 / 39.6 = 15,118.6869
    lp = liquidation_price(1, 40, 30_000, 600_000)
    assert lp == pytest.approx(598_700 / 39.6, rel=1e-12)
    assert km.bankruptcy_price_nb(1.0, 40.0, 30_000.0, 600_000.0, 0.0) == 15_000.0
    # at that price the margin balance equals the maintenance margin: 600,000 + 40 * (LP - 30,000) = 4,747.47
    assert 600_000 + 40 * (lp - 30_000) == pytest.approx(mm(40 * lp), rel=1e-9)


# -- isolated ----------------------------------------------------------------------------------

def test_isolated_long_and_short_hand_computed():
    # 1 BTC @ 30,000 at 10x: margin 3,000, notional 30,000 in tier 1 (0.4%, cum 0)
    assert km.initial_margin_nb(30_000.0, 10.0) == 3_000.0
    # long: (3,000 + 0 - 30,000) / (0.004 - 1) = 27,000 / 0.996 = 27,108.4337
    assert liquidation_price(1, 1, 30_000, 3_000) == pytest.approx(27_000 / 0.996, rel=1e-12)
    # short: (3,000 + 0 + 30,000) / (0.004 + 1) = 33,000 / 1.004 = 32,868.5259
    assert liquidation_price(-1, 1, 30_000, 3_000) == pytest.approx(33_000 / 1.004, rel=1e-12)
    # bankruptcy: 30,000 -/+ 3,000
    assert km.bankruptcy_price_nb(1.0, 1.0, 30_000.0, 3_000.0, 0.0) == 27_000.0
    assert km.bankruptcy_price_nb(-1.0, 1.0, 30_000.0, 3_000.0, 0.0) == 33_000.0


def test_unlevered_long_never_liquidated_short_always_has_a_price():
    # 1x long: (30,000 - 30,000 + 0) / (0.004 - 1) = 0 -> never
    assert liquidation_price(1, 1, 30_000, 30_000) == 0.0
    # 1x short: tier 1 would give (30,000 + 30,000) / 1.004 = 59,760.96, a notional in tier 2 (> 50,000);
    # tier 2 (0.5%, cum 50): (30,000 + 50 + 30,000) / 1.005 = 59,751.24 (about a doubling loses the margin)
    assert liquidation_price(-1, 1, 30_000, 30_000) == pytest.approx(60_050 / 1.005, rel=1e-12)
    # a short under its maintenance margin at any price: 0.0, which a high >= 0 always hits
    assert liquidation_price(-1, 1, 30_000, -40_000) == 0.0
    assert km.liquidation_fill_nb(-1.0, 0.0, 5.0, 6.0, 4.0) == 5.0


def test_spot_50x_short_liquidates_instead_of_negative_equity():
    # the bug: 10,000 of equity, a 50x short of 5,000 units @ 100 (notional 500,000, tier 3: 1%, cum 1,300)
    # LP = (10,000 + 1,300 + 500,000) / (5,000 * 0.01 + 5,000) = 511,300 / 5,050 = 101.2475
    lp = liquidation_price(-1, 5_000, 100, 10_000)
    assert lp == pytest.approx(511_300 / 5_050, rel=1e-12)
    # the price runs to 130 inside one bar (open 100.5): liquidated at LP, margin forfeited, equity 0 not -140,000
    fill = km.liquidation_fill_nb(-1.0, lp, 100.5, 130.0, 100.0)
    assert fill == lp
    maint = mm(5_000 * fill)
    returned, pnl, fee, absorbed = km.settle_isolated_nb(-5_000.0, 100.0, 10_000.0, fill, np.nan, maint)
    assert pnl == pytest.approx(-5_000 * (lp - 100))
    assert returned == pytest.approx(0.0, abs=1e-9) and absorbed == 0.0
    assert fee == pytest.approx(10_000 + pnl)  # the remaining (maintenance) margin


def test_gap_through_the_liquidation_price_fills_at_the_open():
    lp = liquidation_price(1, 1, 30_000, 3_000)  # 27,108.43
    # open above, low through: fills at LP
    assert km.liquidation_fill_nb(1.0, lp, 29_000.0, 29_500.0, 27_000.0) == lp
    # open below LP (gap): fills at the open 26,000; loss 4,000 > margin 3,000: returned 0, 1,000 absorbed
    fill = km.liquidation_fill_nb(1.0, lp, 26_000.0, 26_500.0, 25_000.0)
    assert fill == 26_000.0
    returned, pnl, fee, absorbed = km.settle_isolated_nb(1.0, 30_000.0, 3_000.0, fill, 0.005, mm(fill))
    assert (returned, pnl, fee, absorbed) == (0.0, -4_000.0, 0.0, 1_000.0)
    # not reached: NaN
    assert math.isnan(km.liquidation_fill_nb(1.0, lp, 29_000.0, 29_500.0, 27_200.0))
    # short mirrored: open 34,000 above LP 32,868.53 -> 34,000
    sl = liquidation_price(-1, 1, 30_000, 3_000)
    assert km.liquidation_fill_nb(-1.0, sl, 34_000.0, 35_000.0, 33_900.0) == 34_000.0
    assert km.liquidation_fill_nb(-1.0, sl, 31_000.0, 33_000.0, 30_500.0) == sl


def test_liquidation_fee_rate_and_forfeit():
    lp = liquidation_price(1, 1, 30_000, 3_000)
    maint = mm(lp)  # 27,108.43 * 0.4% = 108.43 = what is left at LP
    # default: the remaining margin is forfeited
    returned, pnl, fee, _ = km.settle_isolated_nb(1.0, 30_000.0, 3_000.0, lp, np.nan, maint)
    assert fee == pytest.approx(108.433734939759, rel=1e-9) and returned == pytest.approx(0.0, abs=1e-9)
    # a rate: 0.1% of 27,108.43 = 27.108; 108.434 - 27.108 = 81.325 comes back
    returned, pnl, fee, _ = km.settle_isolated_nb(1.0, 30_000.0, 3_000.0, lp, 0.001, maint)
    assert fee == pytest.approx(27.108433734939757) and returned == pytest.approx(81.32530120481928)
    # a fee never exceeds what is left
    assert km.liquidation_fee_nb(1.0, 100.0, 0.5, 0.0, 10.0) == 10.0


def test_stop_or_liquidation_first():
    # long, liquidation at 27,108: a stop at 28,000 lies between the open and LP: the stop first
    assert not km.liquidation_first_nb(1.0, 27_108.0, 28_000.0)
    # a stop at or below LP never saves the position
    assert km.liquidation_first_nb(1.0, 27_108.0, 27_108.0)
    assert km.liquidation_first_nb(1.0, 27_108.0, 26_000.0)
    assert km.liquidation_first_nb(1.0, 27_108.0, np.nan)
    # short mirrored
    assert not km.liquidation_first_nb(-1.0, 32_868.0, 32_000.0)
    assert km.liquidation_first_nb(-1.0, 32_868.0, 33_000.0)


# -- cross ----------------------------------------------------------------------------------

#: ETH tiers built so the 4.9M position sits in a tier of Binance's example figures (10%, cum 135,365):
#: tier 2 starts at 135,365 / (10% - 0.5%), the recurrence then gives cum = 135,365.
ETH = Tiers.build([(0, 135_365 / 0.095, 0.005, 100), (135_365 / 0.095, 1e9, 0.10, 5)])


def _cross_books():
    # Binance FAQ cross example (as in freqtrade's tests): wallet 1,535,443.01,
    # BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27), ETHUSDT long 3,683.979 @ 1,456.84 (mark 1,335.18)
    sizes = np.array([109.488, 3_683.979])
    entries = np.array([32_481.98, 1_456.84])
    marks = np.array([31_967.27, 1_335.18])
    tables = pack_tiers([DEFAULT_TIERS, ETH])
    return sizes, entries, marks, 1_535_443.01, tables


def test_cross_two_positions_hand_computed():
    sizes, entries, marks, wallet, (f, c, m, cum, lev, counts) = _cross_books()
    assert ETH.cum[1] == pytest.approx(135_365)
    # TMM: BTC 3,500,032.458 * 2.5% - 16,300 = 71,200.811; ETH 4,918,775.081 * 10% - 135,365 = 356,512.508
    tmm = km.total_maintenance_nb(sizes, marks, f, c, m, cum, counts)
    assert tmm == pytest.approx(71_200.811444 + 356_512.508122, abs=1e-5)
    # UPNL: 109.488 * (31,967.27 - 32,481.98) = -56,354.568; 3,683.979 * (1,335.18 - 1,456.84) = -448,192.885
    mb = km.margin_balance_nb(sizes, entries, marks, wallet)
    assert mb == pytest.approx(1_535_443.01 - 56_354.56848 - 448_192.88514, abs=1e-5)
    assert not km.cross_liquidated_nb(sizes, entries, marks, wallet, f, c, m, cum, counts)
    # ETH's cross LP given BTC at its mark: (WB - 71,200.811 - 56,354.568 + 135,365 - 3,683.979 * 1,456.84)
    # / (3,683.979 * 0.1 - 3,683.979) = 1,153.26 (freqtrade's expected figure)
    lp_eth = km.cross_liquidation_price_nb(1, sizes, entries, marks, wallet, f, c, m, cum, counts)
    assert round(lp_eth, 2) == 1153.26
    # BTC's given ETH at its mark: 26,316.89
    lp_btc = km.cross_liquidation_price_nb(0, sizes, entries, marks, wallet, f, c, m, cum, counts)
    assert round(lp_btc, 2) == 26316.89
    # the wallet check agrees: ETH a cent above its LP survives, at its LP it is liquidated
    for price, hit in ((lp_eth + 0.01, False), (lp_eth, True)):
        mk = np.array([marks[0], price])
        assert km.cross_liquidated_nb(sizes, entries, mk, wallet, f, c, m, cum, counts) == hit


def test_cross_pessimistic_bar_uses_each_adverse_extreme():
    sizes = np.array([1.0, -2.0])
    out = km.adverse_marks_nb(sizes, np.array([110.0, 55.0]), np.array([90.0, 45.0]), np.empty(2))
    assert out.tolist() == [90.0, 55.0]  # the long at its low, the short at its high


# -- funding --------------------------------------------------------------------------------

@pytest.mark.parametrize("size, rate, flow", [
    (2.0, 0.0001, -0.02),    # long, positive rate: pays 2 * 100 * 0.01% = 0.02
    (-2.0, 0.0001, 0.02),    # short, positive rate: receives 0.02
    (2.0, -0.0003, 0.06),    # long, negative rate: receives 2 * 100 * 0.03% = 0.06
    (-2.0, -0.0003, -0.06),  # short, negative rate: pays 0.06
    (0.0, 0.01, 0.0),        # flat: nothing
])
def test_funding_sign_conventions(size, rate, flow):
    assert km.funding_flow_nb(size, 100.0, rate) == pytest.approx(flow, abs=1e-15)


def test_funding_inside_a_bar_counts_payments_only_for_the_check():
    flows = np.array([-5.0, 3.0, -1.0])
    assert km.funding_check_margin_nb(100.0, flows, 3) == 94.0


# -- bad input ------------------------------------------------------------------------------

GOOD = [(0, 100, 0.01, 0, 50), (100, 1000, 0.02, 1, 25)]


@pytest.mark.parametrize("rows, match", [
    ([], "at least one tier"),
    ([(0, 100, 0.01, 0)], r"expected \(floor, cap, mmr, cum, max_leverage\)"),
    ([(10, 100, 0.01, 0, 50)], "start at notional 0"),
    ([(0, 100, 0.01, 0, 50), (100, 100, 0.02, 1, 25)], "cap 100.0 must be above its floor"),
    ([(0, 100, 0.01, 0, 50), (90, 1000, 0.02, 0.9, 25)], "overlaps tier 1's cap"),
    ([(0, 100, 0.01, 0, 50), (110, 1000, 0.02, 1.1, 25)], "leaves a gap"),
    ([(0, 100, 0.01, 0, 50), (100, 1000, 0.02, 5, 25)], r"cum\) 5.0 inconsistent"),
    ([(0, 100, 0.01, 3, 50)], r"cum\) 3.0 inconsistent"),
    ([(0, 100, 0.02, 0, 25), (100, 1000, 0.01, -1, 20)], "must not decrease"),
    ([(0, 100, 0.01, 0, 40), (100, 1000, 0.02, 1, 45)], "must not increase"),
    ([(0, 100, 0.01, 0, 0)], "max_leverage must be > 0"),
    ([(0, 100, 0.01, 0, -2)], "max_leverage must be > 0"),
    ([(0, 100, 1.0, 0, 1)], r"in \[0, 1\)"),
    ([(0, 100, 0.05, 0, 20)], ">= 1"),
    ([(0, math.inf, 0.01, 0, 50), (math.inf, math.inf, 0.02, 0, 25)], "infinite cap|must be above"),
    ([(0, "x", 0.01, 0, 50)], "cap must be a number"),
    ([(0, math.nan, 0.01, 0, 50)], "cap must be a number"),
])
def test_tiers_refused(rows, match):
    with pytest.raises(ValueError, match=match) as e:
        Tiers(rows)
    assert "maintenance" in str(e.value)


def test_tiers_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"maintenance\['ETH'\] tier 2: floor 90"):
        margin_settings(["BTC", "ETH"], instrument="perp", maintenance={"ETH": [(0, 100, 0.01, 0, 50),
                                                                              (90, 1000, 0.02, 0.9, 25)]})


@pytest.mark.parametrize("kwargs, match", [
    (dict(leverage=0), "leverage must be > 0"),
    (dict(leverage=-3), "leverage must be > 0"),
    (dict(leverage=math.inf), "leverage must be > 0"),
    (dict(leverage="x"), "leverage must be a number"),
    (dict(leverage=126), "leverage 126 is above the maximum 125"),
    (dict(leverage={"ETH": 60}, maintenance=Tiers(GOOD)), r"leverage\['ETH'\] 60 is above the maximum 50"),
    (dict(leverage={"DOGE": 2}), r"leverage names symbols not in the data: \['DOGE'\]"),
    (dict(instrument="future"), "instrument for 'BTC' must be one of"),
    (dict(instrument={"XRP": "perp"}), "instrument names symbols not in the data"),
    (dict(margin="portfolio", instrument="perp"), "margin must be one of"),
    (dict(margin="cross"), "margin='cross' applies to perpetuals"),
    (dict(maintenance={"SOL": Tiers(GOOD)}), "maintenance names symbols not in the data"),
    (dict(maintenance=3), "maintenance must be a Tiers"),
    (dict(liquidation_fee=1.5), "liquidation_fee must be None or a rate"),
    (dict(liquidation_fee="high"), "liquidation_fee must be None or a rate"),
])
def test_margin_settings_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        margin_settings(["BTC", "ETH"], **kwargs)


def test_margin_settings_resolved():
    s = margin_settings(["BTC", "ETH"], instrument={"ETH": "perp"}, margin="cross", leverage={"ETH": 20},
                        maintenance={"ETH": Tiers(GOOD)}, liquidation_fee=0.01)
    assert s.instrument == ("spot", "perp") and s.margin == "cross" and s.leverage == (1.0, 20.0)
    assert s.tiers[0] is DEFAULT_TIERS and s.tiers[1].rows() == [tuple(map(float, r)) for r in GOOD]
    assert s.liquidation_fee == 0.01 and s.any_perp and s.is_perp().tolist() == [False, True]
    d = margin_settings(["BTC"])
    assert d.margin == "isolated" and math.isnan(d.liquidation_fee) and not d.any_perp


def test_liquidation_price_helper_refuses_bad_input():
    with pytest.raises(ValueError, match="side must be"):
        liquidation_price(0, 1, 100, 10)
    with pytest.raises(ValueError, match="qty must be > 0"):
        liquidation_price(1, 0, 100, 10)
    with pytest.raises(ValueError, match="entry must be > 0"):
        liquidation_price(1, 1, -5, 10)


# -- exchange table shapes ----------------------------------------------------------------------

def test_from_binance_leverage_bracket():
    # the shape of GET /fapi/v1/leverageBracket (Binance USD-M docs "Notional and Leverage Brackets"),
    # strings as some clients keep them; brackets out of order are sorted by floor
    reply = {"symbol": "ETHUSDT", "notionalCoef": 1.5, "brackets": [
        {"bracket": 2, "initialLeverage": 50, "notionalCap": "50000", "notionalFloor": "10000",
         "maintMarginRatio": "0.01", "cum": "35"},
        {"bracket": 1, "initialLeverage": 75, "notionalCap": 10000, "notionalFloor": 0, "maintMarginRatio": 0.0065,
         "cum": 0.0},
    ]}
    t = Tiers.from_binance(reply)
    assert t.rows() == [(0.0, 10000.0, 0.0065, 0.0, 75.0), (10000.0, 50000.0, 0.01, 35.0, 50.0)]
    assert Tiers.from_binance(reply["brackets"]).rows() == t.rows()
    with pytest.raises(ValueError, match="lacks 'cum'"):
        Tiers.from_binance([{"notionalFloor": 0, "notionalCap": 1, "maintMarginRatio": 0.01,
                             "initialLeverage": 20}])


def test_from_ccxt_leverage_tiers():
    # ccxt fetch_leverage_tiers() rows, ZEC/USDT of freqtrade tests/exchange/test_binance.py
    # (test_fill_leverage_tiers_binance): cum 0, 750, 4,500, 17,000, 29,500, 154,500, 654,500
    spec = [(0, 50_000, 0.01, 50, 0), (50_000, 150_000, 0.025, 20, 750), (150_000, 250_000, 0.05, 10, 4500),
            (250_000, 500_000, 0.1, 5, 17000), (500_000, 1_000_000, 0.125, 4, 29500),
            (1_000_000, 2_000_000, 0.25, 2, 154500), (2_000_000, 30_000_000, 0.5, 1, 654500)]
    ccxt_rows = [{"minNotional": f, "maxNotional": c, "maintenanceMarginRate": m, "maxLeverage": lev,
                  "info": {"cum": str(cum)}} for f, c, m, lev, cum in spec]
    t = Tiers.from_ccxt(ccxt_rows)
    assert t.cum == tuple(float(s[4]) for s in spec)
    no_info = [{k: v for k, v in r.items() if k != "info"} for r in ccxt_rows]
    assert Tiers.from_ccxt(no_info).cum == pytest.approx(t.cum)


def test_pack_tiers_pads_with_the_last_tier():
    f, c, m, cum, lev, counts = pack_tiers([Tiers(GOOD), Tiers.flat(0.01, 20)])
    assert f.shape == (2, 2) and counts.tolist() == [2, 1]
    assert c[1].tolist() == [math.inf, math.inf] and m[1].tolist() == [0.01, 0.01]
    # a padded row gives the same answers as the unpadded table
    assert km.maintenance_margin_nb(f[1], c[1], m[1], cum[1], counts[1], 1e12) == pytest.approx(1e10)


def test_missing_mark_candle_liquidates_nothing():
    lp = liquidation_price(1, 1, 30_000, 3_000)
    assert math.isnan(km.liquidation_fill_nb(1.0, lp, np.nan, np.nan, np.nan))
    assert math.isnan(km.liquidation_fill_nb(-1.0, lp, np.nan, np.nan, np.nan))


def test_kernels_compose_inside_a_jitted_loop():
    # how the bar loop will call them: one long, liquidated on the first bar whose low reaches its price
    from numba import njit

    @njit
    def walk(low, f, c, m, cum, n):
        lp = km.liquidation_price_nb(1.0, 1.0, 30_000.0, 3_000.0, 0.0, f, c, m, cum, n)
        for i in range(low.shape[0]):
            px = km.liquidation_fill_nb(1.0, lp, 30_000.0, 30_000.0, low[i])
            if px == px:
                return i, px
        return -1, np.nan

    i, px = walk(np.array([29_000.0, 28_000.0, 27_000.0, 26_000.0]), F, C, M, CUM, N)
    assert i == 2 and px == pytest.approx(27_000 / 0.996)
