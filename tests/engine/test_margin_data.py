"""Funding and mark-price inputs of the margin rules: validation (errors name the argument) and the
funding-timestamp-to-bar mapping (no look-ahead)."""
import numpy as np
import pytest

from nbtrade.margin import check_funding, check_mark, funding_schedule

H = 3_600_000_000_000  # one hour in ns
T0 = np.datetime64("2024-01-01T00:00", "ns")


def times(*hours):
    return np.array([T0 + np.timedelta64(h, "h") for h in hours])


def test_check_funding_accepts_and_normalises():
    out = check_funding({"BTC": (times(0, 8, 16), [0.0001, -0.0002, 0.0], [42_000.0, np.nan, 41_000.0])},
                        ["BTC", "ETH"])
    t, r, m = out["BTC"]
    assert t.dtype == np.int64 and (np.diff(t) == 8 * H).all()
    assert r.tolist() == [0.0001, -0.0002, 0.0] and np.isnan(m[1])
    t2, _, m2 = check_funding({"ETH": (times(0).astype(np.int64), [0.0])}, ["ETH"])["ETH"]
    assert t2.tolist() == t[:1].tolist() and np.isnan(m2).all()


@pytest.mark.parametrize("funding, match", [
    ({"DOGE": (times(0), [0.0])}, r"funding has series for symbols not in the data: \['DOGE'\]"),
    ({"BTC": (times(0, 16, 8), [0.0] * 3)}, r"funding\['BTC'\]: .*strictly increasing; row 2 is out of order"),
    ({"BTC": (times(0, 8, 8), [0.0] * 3)}, r"funding\['BTC'\]: .*row 2 is duplicated"),
    ({"BTC": (times(0, 8), [0.0, np.nan])}, r"funding\['BTC'\]: rates must be finite; row 1"),
    ({"BTC": (times(0, 8), [0.0, 0.1], [1.0, 0.0])}, r"funding\['BTC'\]: mark prices must be > 0; row 1"),
    ({"BTC": (times(0, 8), [0.0])}, "must be 1-D of one length"),
    ({"BTC": (["a", "b"], [0.0, 0.0])}, "times must be datetime64 or int64"),
    ({"BTC": [times(0)]}, r"must be \(times, rates\)"),
    ([("BTC", 1)], "funding must be a mapping"),
])
def test_check_funding_refuses(funding, match):
    with pytest.raises(ValueError, match=match):
        check_funding(funding, ["BTC", "ETH"])


def test_check_mark():
    o = np.array([[10.0, np.nan], [11.0, 5.0]])
    check_mark(o, o + 1, o - 1, o)  # NaN = missing candle: fine
    with pytest.raises(ValueError, match=r"mark prices must be > 0; low at \(1, 1\) is -1.0"):
        check_mark(o, o + 1, o - 6, o)
    with pytest.raises(ValueError, match=r"mark candle at \(0, 0\) is inconsistent"):
        check_mark(o, o - 0.5, o - 1, o)
    with pytest.raises(ValueError, match="one shape"):
        check_mark(o, o[0], o, o)


def test_funding_schedule_bars_at_open_inside_gap_and_outside():
    # 4h bars at 00, 04, 08, (12 missing), 16, 20
    opens = times(0, 4, 8, 16, 20)
    f = times(-8, 0, 6, 8, 13, 22, 24, 30)
    bar, at_open = funding_schedule(opens, 4 * H, f)
    # -8h: before the data -> dropped; 00 -> bar 0 at its open; 06 -> inside bar 1; 08 -> bar 2 open;
    # 13 (the missing 12-16 bar) -> next bar (16h, index 3) at its open; 22 -> inside bar 4;
    # 24 and 30: after the last bar's end -> dropped
    assert bar.tolist() == [-1, 0, 1, 2, 3, 4, -1, -1]
    assert at_open.tolist() == [False, True, False, True, True, False, False, False]
    # int64 ns in, same answer
    b2, a2 = funding_schedule(opens.astype(np.int64), 4 * H, f.astype(np.int64))
    assert b2.tolist() == bar.tolist() and a2.tolist() == at_open.tolist()
