"""Margin rules of leveraged positions: maintenance tiers, liquidation, funding (issue #17).

Building blocks: :class:`Tiers` (a validated maintenance table per symbol), the option
resolver (:func:`margin_settings`), input checks (:func:`check_funding`, :func:`check_mark`),
the funding-to-bar mapping (:func:`funding_schedule`) and, in ``nbtrade.kernels.margin``, the
scalar kernels the loops call. The pure-Python twin of the rules is
``tests/engine/reference_margin.py``. This docstring is the spec the integration follows.

Wired so far (signals path, ``nbtrade.backtest``; ``kernels/engine.py`` ``margin_phase_nb``,
``cross_phase_nb``, ``funding_nb``; reference ``tests/engine/reference_engine.py`` with
``reference_perp.py`` for whole runs of both modes, ``reference_margin.py`` for single events): isolated margin for spot
leverage > 1 or shorts and for ``instrument="perp"`` (``maintenance=``, ``liquidation_fee=``),
cross margin for perpetuals (``margin="cross"``: every symbol a perpetual, one cash account),
leverage per symbol (``leverage={symbol: x}``), liquidation on the mark candles (price candles
without them, and on a bar without a mark candle), the tier's max leverage at entry (reject reason
``leverage``), funding from the panel's funding events. Differences from the order below, for now:
the take side of stops (take-profit, ROI) and time stops are not ordered against the liquidation (the
liquidation, checked first, wins when both happen in one bar unless a stop-side level lies
between the open and the liquidation price; in cross mode the wallet check always comes before
the bar's stops). The same rules run in every way of driving the engine: signals, target
weights (``simulate_weights_nb``: no stops; spot weights with leverage > 1 or a negative weight
follow the spot rule below), callbacks and the class API.

Speed (the fused signals loop): an isolated liquidation price changes only when its position or
margin does, so it is cached per position and each bar compares the mark candle's row to it in
one branch-free pass (``triggered_nb``); only bars with funding or a mark reaching a position's
liquidation price run the phased margin logic. Cross runs take the phased loop on every bar.

Instruments and modes
    Each symbol is ``"spot"`` or ``"perp"`` (a USD-margined linear perpetual). A perpetual
    position takes a leverage per symbol and a margin mode for the run: ``"isolated"`` (each
    position has its own margin; its loss is capped at that margin) or ``"cross"`` (one wallet
    backs every perpetual position; the wallet is liquidated as a whole).

Margins (Binance USD-M, one-way mode)
    * Initial margin = entry notional / leverage. An entry (or increase) is refused with a
      reason when the leverage exceeds the ``max_leverage`` of the tier of the resulting
      position's notional (``kernels.margin.max_leverage_nb``; 0 above the last cap).
    * Maintenance margin ``MM = notional * mmr - cum`` with the tier of the notional at the
      mark price; tiers ``floor < notional <= cap`` (Binance lists "0 < Position <= 50,000").
    * Isolated liquidation price, Binance's formula with the maintenance amount::

          LP = (WB + cum - side * qty * EP) / (qty * mmr - side * qty)

      ``WB`` = the position's isolated margin, ``side`` = +1 long / -1 short, ``qty`` = |size|,
      ``EP`` = entry price; ``mmr``, ``cum`` of the tier of ``qty * LP`` (Binance: "if the
      position at the liquidation price and at the opening price are of different levels,
      recalculate with the level at the liquidation price"). Cross mode adds
      ``UPNL - TMM`` of the other positions (at their marks) to the numerator and uses the
      cross wallet balance as ``WB``. Source: Binance FAQ "How to Calculate Liquidation Price
      of USDⓈ-M Futures Contracts" (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93).
    * Bankruptcy price: where the margin balance is zero (``EP - side * WB / qty``).
    * Isolated margin ``WB`` of a position: its initial margin, plus the funding it received,
      minus the funding it paid (fees are paid from the wallet). An increase (weights
      rebalancing) adds the increase's initial margin and averages the entry price by size; a
      partial close releases margin in proportion to the size closed, its realized PnL going to
      the wallet. These three are nbtrade's bookkeeping choices, stated here so the engine and
      the reference agree.

Accounting
    The engine's cash bookkeeping (a fill moves ``-size * price`` of cash, equity is
    ``cash + sum(size * mark)``) already gives a perpetual's equity ``wallet + sum(UPNL)``:
    margin is a constraint, not a cash movement. A liquidation books the close at its fill
    price and the fee like any exit, then adds back ``absorbed`` (``settle_isolated_nb``), so
    an isolated position loses at most its margin; a cross wallet whose balance would end
    below zero is brought back to zero the same way.

    Free margin for sizing, one rule in every mode and on every path (signals, callbacks, class
    API, weights: ``kernels.engine.margin_state_nb``, which ``kernels.rebalance.free_margin_nb``
    calls; the reference engines restate it): the smaller of
    (a) the account's equity (cash + every position at the price of the moment, its last close
        without a candle) less each open position's initial margin at that price,
        ``|size| * price / leverage`` with its symbol's leverage: Binance's cross-margin
        available balance (margin balance - initial margins at the mark), where a loss counts;
    (b) the wallet less the positions' margins, ``cash + sum(size * entry) - sum(WB)``:
        Binance's isolated available balance, where an unrealised profit does not count (a run
        without the margin rule, 1x spot, keeps no ``WB``: each position's entry notional /
        leverage stands for it; with long positions only (b) then equals (a), the free cash).
    An entry fills when its own initial margin and fees fit in it. Taking both keeps the
    isolated margins within the wallet (each position loses at most its margin, so liquidating
    every one leaves the wallet at or above zero) and never lets an unrealised loss back a new
    entry. It
    is stricter than Binance in each mode alone (cross: a profit does not back a new entry;
    isolated: a loss reduces what is free): nbtrade's choice for one rule.

Liquidation
    Checked every bar against the mark candle, pessimistically: a long at the mark low, a
    short at the mark high (cross: every position at its own adverse extreme together). The
    position closes at its liquidation price, or at the mark open when the bar opens through
    it (gap rule of stops); the trade's exit reason is ``liquidation``. Cross: when the wallet
    is liquidated at the adverse extremes, every position of the wallet closes, each at its
    cross liquidation price computed with the others at their adverse extremes (this price
    always lies in its own bar, or beyond the open: then the open), all in one event. A bar
    with a price candle but no mark candle for a perpetual is checked on its price candle
    (:func:`mark_or_price`; the result's ``assumptions["mark"]`` counts such bars); a bar with
    no candle at all liquidates nothing there, as nothing fills on a missing bar; the next
    candle's open applies the gap rule. Cross positions without a candle keep their last valid
    mark in the wallet check.
    Fee: ``liquidation_fee`` NaN (default) forfeits the remaining maintenance margin, the
    outcome of closing at the bankruptcy price: the pessimistic reading of Binance's
    liquidation protocol (a position still margin-deficient after its IOC orders "will be
    closed at the bankruptcy price", a portion of the remaining collateral going to the
    insurance fund; no single published clearance-fee rate was found to default to). A number
    charges ``rate * notional``. Either is capped by what is left. Isolated balances never go below zero: a loss past
    the bankruptcy price (a gap) is absorbed (the insurance fund's role); a cross wallet is
    floored at zero likewise ("If an account becomes bankrupt (negative wallet balance),
    the Insurance Fund will balance the account back to 0").

Funding
    At each funding timestamp every open perpetual position receives
    ``-size * mark * rate`` (longs pay a positive rate, shorts receive it; negative rates
    reverse both; Binance: "Funding Amount = Nominal Value of Positions x Funding Rate",
    nominal value = mark * size). The mark is the funding row's ``markPrice`` when the data
    has it, else the mark open of the bar holding the timestamp (the symbol's last valid mark
    when that bar has no candle for it). Isolated: the flow goes into
    the position's margin (moving its liquidation price); cross: into the wallet. The
    statistic ``Funding Paid`` is ``-sum(flows)``, per symbol and in total. Only positions
    open at the timestamp pay: an order filling at an open equal to the timestamp fills after
    it (freqtrade's ``funding_fee_cutoff`` likewise excludes positions opened after the
    funding second).

Per-bar order of events (``fill="next_open"``; bar ``i`` spans ``[T, T + dt)``)
    1. At ``T``: funding due at exactly ``T`` on the positions carried in (mark open);
    2. liquidation at the open: a position whose mark open is at or through its liquidation
       price (recomputed after step 1) is liquidated at the mark open;
    3. orders due at the open fill (an order for a position liquidated in step 2 is dropped);
    4. intrabar, one check per position ordered along the adverse path from the open: the
       adverse level nearer the open comes first; between a stop and the liquidation price,
       the stop fills first only when it lies strictly between the open and the liquidation
       price (``kernels.margin.liquidation_first_nb``: ties, and a stop at or beyond the
       liquidation price, go to liquidation, which cancels the position's open orders); a
       take-profit comes after both under ``intrabar="pessimistic"``. Funding timestamps
       strictly inside the bar (step 4a, before these checks; 4b after them): see below;
    5. at the close: marks move to the mark close, equity is recorded.
    With ``fill="close"`` steps 1, 2, 4 run before the close fills and 3 becomes the fills
    at the close (after 4b). Why liquidation first at ties: exchanges trigger it on the mark
    price the moment it crosses, and the liquidation engine cancels all open orders before
    closing (Binance's liquidation protocol), so a stop at the same level never gets to fill.

    Funding strictly inside a bar. OHLC does not say whether the funding instant came before or
    after a stop, a liquidation or a resting entry inside the bar, so the rule is pessimistic,
    per position and per bar (the events inside one bar of a symbol summed: their net flow):
    4a. before the intrabar checks, a position open then (carried into the bar, or filled at its
        open) whose flow is a payment pays it: the liquidation check sees the margin after it,
        and a position stopped or liquidated inside the bar has paid (it may have been open at
        the instant);
    4b. after them, a position whose flow is a receipt receives it only if it is still open (it
        may have closed before the instant). A position entered inside the bar (a resting entry)
        neither pays nor receives, and one entered at the close (``fill="close"``) comes after
        the instant. (Before: every flow was booked at the close on the positions still open, so
        a payer stopped inside the bar paid nothing and the liquidation check ignored the
        payment.) ``kernels.engine.funding_phase_nb``; the reference restates it.

Spot with leverage (margin trading, shorts)
    Today ``leverage`` on spot is a cash account with no liquidation (a 50x short drove
    equity to -98,679). The rule: a spot position with leverage > 1, or a short, is an
    isolated position without funding: margin ``entry notional / leverage``, maintenance from
    the symbol's tiers (default :data:`DEFAULT_TIERS`), liquidation at the spot candle's
    low/high (spot has no mark price: the last price is the mark), same fills and fees as
    above; borrow interest is not modelled. A 1x long is never liquidated (its liquidation
    price is <= 0), so unlevered spot runs are unchanged. Binance's own spot margin rule is a
    margin level ``assets / liabilities`` of 1.1; on one isolated position it equals this
    rule with a single tier of ``mmr = 1 - 1/1.1`` (long) or ``0.1`` (short):
    ``Tiers.flat(0.1, 5)`` is a close stand-in (5x at most).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Tiers", "DEFAULT_TIERS", "MarginSettings", "margin_settings", "pack_tiers", "liquidation_price",
           "check_funding", "check_mark", "funding_schedule", "mark_or_price", "INSTRUMENTS", "MARGIN_MODES"]

INSTRUMENTS = ("spot", "perp")
MARGIN_MODES = ("isolated", "cross")

#: Tolerance of the ``cum`` recurrence check: exchange tables are exact decimals, float sums are not.
CUM_RTOL = 1e-9
CUM_ATOL = 1e-6


def _num(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number; got {x!r}") from None
    if math.isnan(v):
        raise ValueError(f"{what} must be a number; got NaN")
    return v


@dataclass(frozen=True)
class Tiers:
    """A validated maintenance-margin table of one symbol: Binance's leverage brackets.

    Rows ``(floor, cap, mmr, cum, max_leverage)``, quote currency: tier ``k`` covers position
    notionals ``floor < N <= cap``; ``mmr`` is the maintenance margin rate, ``cum`` the
    maintenance amount (``MM = N * mmr - cum``), ``max_leverage`` the highest initial leverage
    allowed in the tier. Refused (``ValueError`` naming ``argument``): fewer than one row, a
    first floor other than 0, a cap not above its floor, overlapping or gapped tiers
    (``floor[k] != cap[k-1]``), ``mmr`` outside ``[0, 1)`` or decreasing, ``max_leverage`` <= 0
    or increasing, ``mmr * max_leverage >= 1`` (an entry at full leverage would already be
    liquidated), and ``cum`` off Binance's recurrence
    ``cum[k] = cum[k-1] + floor[k] * (mmr[k] - mmr[k-1])``, ``cum[0] = 0`` (which makes ``MM``
    continuous across tiers).
    """

    floor: tuple[float, ...]
    cap: tuple[float, ...]
    mmr: tuple[float, ...]
    cum: tuple[float, ...]
    max_leverage: tuple[float, ...]
    argument: str = "maintenance"

    def __init__(self, rows: Iterable[Sequence[float]], *, argument: str = "maintenance") -> None:
        rows = [tuple(r) for r in rows]
        if not rows:
            raise ValueError(f"{argument} needs at least one tier (floor, cap, mmr, cum, max_leverage)")
        cols: list[list[float]] = [[], [], [], [], []]
        names = ("floor", "cap", "mmr", "cum", "max_leverage")
        for k, r in enumerate(rows):
            if len(r) != 5:
                raise ValueError(f"{argument} tier {k + 1}: expected (floor, cap, mmr, cum, max_leverage); got {r!r}")
            for c in range(5):
                cols[c].append(_num(r[c], f"{argument} tier {k + 1} {names[c]}"))
        object.__setattr__(self, "floor", tuple(cols[0]))
        object.__setattr__(self, "cap", tuple(cols[1]))
        object.__setattr__(self, "mmr", tuple(cols[2]))
        object.__setattr__(self, "cum", tuple(cols[3]))
        object.__setattr__(self, "max_leverage", tuple(cols[4]))
        object.__setattr__(self, "argument", argument)
        self._validate()

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def build(cls, rows: Iterable[Sequence[float]], *, argument: str = "maintenance") -> "Tiers":
        """Tiers from ``(floor, cap, mmr, max_leverage)`` rows, ``cum`` computed by the recurrence."""
        out = []
        cum = 0.0
        prev = None
        for k, r in enumerate(rows):
            r = tuple(r)
            if len(r) != 4:
                raise ValueError(f"{argument} tier {k + 1}: expected (floor, cap, mmr, max_leverage); got {r!r}")
            f, c, m, lev = (_num(v, f"{argument} tier {k + 1}") for v in r)
            if prev is not None:
                cum += f * (m - prev)
            prev = m
            out.append((f, c, m, cum, lev))
        return cls(out, argument=argument)

    @classmethod
    def flat(cls, mmr: float, max_leverage: float, cap: float = math.inf, *,
             argument: str = "maintenance") -> "Tiers":
        """One tier for every notional up to ``cap``: ``MM = notional * mmr``."""
        return cls([(0.0, cap, mmr, 0.0, max_leverage)], argument=argument)

    @classmethod
    def from_binance(cls, brackets: Any, *, argument: str = "maintenance") -> "Tiers":
        """From a ``GET /fapi/v1/leverageBracket`` entry (``{"symbol", "brackets": [...]}``) or its
        ``brackets`` list: ``notionalFloor``, ``notionalCap``, ``maintMarginRatio``, ``cum``,
        ``initialLeverage`` (numbers or decimal strings). ``notionalCoef`` is not applied."""
        if isinstance(brackets, Mapping):
            brackets = brackets.get("brackets")
        if not isinstance(brackets, (list, tuple)):
            raise ValueError(f"{argument} must be a leverageBracket entry or its 'brackets' list")
        try:
            rows = [(b["notionalFloor"], b["notionalCap"], b["maintMarginRatio"], b["cum"], b["initialLeverage"])
                    for b in sorted(brackets, key=lambda b: float(b["notionalFloor"]))]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{argument}: a bracket lacks {e}; expected Binance leverageBracket fields") from None
        return cls(rows, argument=argument)

    @classmethod
    def from_ccxt(cls, tiers: Sequence[Mapping[str, Any]], *, argument: str = "maintenance") -> "Tiers":
        """From ccxt's ``fetch_leverage_tiers()[symbol]`` list (``minNotional``, ``maxNotional``,
        ``maintenanceMarginRate``, ``maxLeverage``; ``cum`` from ``info`` when present, else computed)."""
        try:
            rows = sorted(((t["minNotional"], t["maxNotional"], t["maintenanceMarginRate"], t["maxLeverage"],
                            (t.get("info") or {}).get("cum")) for t in tiers), key=lambda r: float(r[0]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{argument}: a tier lacks {e}; expected ccxt leverage tier fields") from None
        if rows and all(r[4] is not None for r in rows):
            return cls([(f, c, m, cum, lev) for f, c, m, lev, cum in rows], argument=argument)
        return cls.build([(f, c, m, lev) for f, c, m, lev, _ in rows], argument=argument)

    # -- checks ------------------------------------------------------------------------
    def _validate(self) -> None:
        a = self.argument
        n = len(self.floor)
        if self.floor[0] != 0.0:
            raise ValueError(f"{a}: the first tier must start at notional 0; got floor {self.floor[0]}")
        for k in range(n):
            t = f"{a} tier {k + 1}"
            f, c, m, cum, lev = self.floor[k], self.cap[k], self.mmr[k], self.cum[k], self.max_leverage[k]
            if not c > f:
                raise ValueError(f"{t}: cap {c} must be above its floor {f} (tiers must increase)")
            if k > 0:
                pc = self.cap[k - 1]
                if f < pc:
                    raise ValueError(f"{t}: floor {f} overlaps tier {k}'s cap {pc}")
                if f > pc:
                    raise ValueError(f"{t}: floor {f} leaves a gap after tier {k}'s cap {pc}")
            if math.isinf(c) and k != n - 1:
                raise ValueError(f"{t}: only the last tier may have an infinite cap")
            if not 0.0 <= m < 1.0:
                raise ValueError(f"{t}: maintenance margin rate must be in [0, 1); got {m}")
            if not (lev > 0.0 and math.isfinite(lev)):
                raise ValueError(f"{t}: max_leverage must be > 0; got {lev}")
            if m * lev >= 1.0:
                raise ValueError(f"{t}: mmr {m} x max_leverage {lev} >= 1: a full-leverage entry would "
                                 f"start below its maintenance margin")
            if k > 0:
                if m < self.mmr[k - 1]:
                    raise ValueError(f"{t}: mmr {m} below tier {k}'s {self.mmr[k - 1]} (must not decrease)")
                if lev > self.max_leverage[k - 1]:
                    raise ValueError(f"{t}: max_leverage {lev} above tier {k}'s {self.max_leverage[k - 1]} "
                                     f"(must not increase)")
            want = 0.0 if k == 0 else self.cum[k - 1] + f * (m - self.mmr[k - 1])
            if abs(cum - want) > CUM_ATOL + CUM_RTOL * abs(want):
                raise ValueError(f"{t}: maintenance amount (cum) {cum} inconsistent with Binance's recurrence "
                                 f"cum[k] = cum[k-1] + floor[k] * (mmr[k] - mmr[k-1]) = {want}")

    # -- lookups -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.floor)

    def tier(self, notional: float) -> int:
        """Index of the tier of ``notional`` (the last one beyond the last cap)."""
        for k, c in enumerate(self.cap):
            if notional <= c:
                return k
        return len(self.cap) - 1

    def maintenance_margin(self, notional: float) -> float:
        """``notional * mmr - cum`` of the tier of ``notional``."""
        k = self.tier(notional)
        return notional * self.mmr[k] - self.cum[k]

    def max_leverage_at(self, notional: float) -> float:
        """Highest leverage allowed for a position of ``notional`` (0 above the last cap)."""
        if notional > self.cap[-1]:
            return 0.0
        return self.max_leverage[self.tier(notional)]

    def check_leverage(self, leverage: float, notional: float = 0.0, *, argument: str = "leverage") -> float:
        """``leverage`` as a float if > 0 and allowed at ``notional``, else ``ValueError`` naming ``argument``."""
        lev = _num(leverage, argument)
        if not (lev > 0.0 and math.isfinite(lev)):
            raise ValueError(f"{argument} must be > 0; got {leverage!r}")
        top = self.max_leverage_at(notional)
        if lev > top:
            where = f"a notional of {notional:g}" if notional > 0 else "the first tier"
            raise ValueError(f"{argument} {lev:g} is above the maximum {top:g} that {self.argument} allows for {where}")
        return lev

    def rows(self) -> list[tuple[float, float, float, float, float]]:
        """``(floor, cap, mmr, cum, max_leverage)`` per tier."""
        return list(zip(self.floor, self.cap, self.mmr, self.cum, self.max_leverage))

    def arrays(self):
        """``(floor, cap, mmr, cum, max_leverage)`` as float64 numpy arrays (the kernels' form)."""
        import numpy as np
        return tuple(np.array(v, dtype=np.float64) for v in (self.floor, self.cap, self.mmr, self.cum,
                                                              self.max_leverage))

    def __repr__(self) -> str:
        body = ", ".join(f"({f:g}, {c:g}, {m:g}, {cum:g}, {lev:g})" for f, c, m, cum, lev in self.rows())
        return f"Tiers([{body}])"


#: Default maintenance table: Binance BTCUSDT USDⓈ-M perpetual, from the announcement "Updates to
#: Leverage and Margin Tiers of Binance Futures Contracts (2021-03-18)"
#: (binance.com/en/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6): position notional (USDT),
#: max leverage, maintenance margin rate; ``cum`` by the recurrence (1,300 at 500,000 and
#: 16,300 for 1M-10M, as in Binance's liquidation-price FAQ). Binance changes its tables over
#: time and per symbol: pass ``Tiers.from_binance`` of a current ``/fapi/v1/leverageBracket``
#: reply for faithful runs.
DEFAULT_TIERS = Tiers.build([
    (0, 50_000, 0.004, 125),
    (50_000, 250_000, 0.005, 100),
    (250_000, 1_000_000, 0.01, 50),
    (1_000_000, 10_000_000, 0.025, 20),
    (10_000_000, 20_000_000, 0.05, 10),
    (20_000_000, 50_000_000, 0.10, 5),
    (50_000_000, 100_000_000, 0.125, 4),
    (100_000_000, 200_000_000, 0.15, 3),
    (200_000_000, 300_000_000, 0.25, 2),
    (300_000_000, 500_000_000, 0.50, 1),
], argument="DEFAULT_TIERS")


def _per_symbol(value: Any, symbols: Sequence[str], argument: str) -> list[Any]:
    """A scalar for every symbol, or a mapping symbol -> value (missing symbols get ``None``)."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in symbols]
        if unknown:
            raise ValueError(f"{argument} names symbols not in the data: {unknown}; symbols: {list(symbols)}")
        return [value.get(s) for s in symbols]
    return [value] * len(symbols)


def _as_tiers(value: Any, argument: str) -> Tiers:
    if isinstance(value, Tiers):
        return value
    if isinstance(value, Mapping) and "brackets" in value:
        return Tiers.from_binance(value, argument=argument)
    if isinstance(value, (list, tuple)):
        return Tiers(value, argument=argument)
    raise ValueError(f"{argument} must be a Tiers, a list of (floor, cap, mmr, cum, max_leverage) rows or a "
                     f"Binance leverageBracket entry; got {type(value).__name__}")


@dataclass(frozen=True)
class MarginSettings:
    """Resolved margin options of a run, one entry per symbol (column order)."""

    instrument: tuple[str, ...]
    margin: str
    leverage: tuple[float, ...]
    tiers: tuple[Tiers, ...]
    liquidation_fee: float

    @property
    def any_perp(self) -> bool:
        return "perp" in self.instrument

    def margin_only_options(self) -> list[str]:
        """The options given that only margined positions use: ``maintenance`` (tiers other than the
        default, compared by value: a pickled copy on a Dask worker is not the same object) and
        ``liquidation_fee``."""
        return [k for k, v in (("maintenance", any(t != DEFAULT_TIERS for t in self.tiers)),
                               ("liquidation_fee", self.liquidation_fee == self.liquidation_fee)) if v]

    def refuse_margin_only(self) -> None:
        """Refuse the :meth:`margin_only_options` given to a run without margined positions (unlevered spot,
        long only): the one message of every way of driving the engine, naming the options."""
        given = self.margin_only_options()
        if given:
            raise ValueError(f"{', '.join(given)} apply to margined positions (leverage > 1, shorts, or "
                             f"instrument='perp'), and this run is unlevered spot with long positions only: drop "
                             f"{' and '.join(given)}, or raise leverage / pass instrument='perp'")

    def is_perp(self):
        """Boolean numpy array: which columns are perpetuals."""
        import numpy as np
        return np.array([k == "perp" for k in self.instrument], dtype=np.bool_)


def margin_settings(symbols: Sequence[str], *, instrument: Any = "spot", margin: str | None = None,
                    leverage: Any = 1.0, maintenance: Any = None,
                    liquidation_fee: float | None = None) -> MarginSettings:
    """Validate and resolve the margin options of a run (errors name the argument).

    ``instrument``: ``"spot"`` | ``"perp"`` or a mapping symbol -> kind (missing: spot).
    ``margin``: ``"isolated"`` (default) | ``"cross"``; ``"cross"`` needs a perpetual.
    ``leverage``: > 0, a scalar or a mapping symbol -> leverage (missing: 1), at most the first
    tier's ``max_leverage`` (larger notionals are checked per entry by the engine).
    ``maintenance``: :class:`Tiers` (or rows, or a leverageBracket entry) for all symbols, or a
    mapping symbol -> those (missing: :data:`DEFAULT_TIERS`).
    ``liquidation_fee``: None/NaN = the remaining margin is forfeited, else a rate in [0, 1).
    """
    symbols = list(symbols)
    kinds = []
    for s, k in zip(symbols, _per_symbol(instrument, symbols, "instrument")):
        k = "spot" if k is None else k
        if k not in INSTRUMENTS:
            raise ValueError(f"instrument for {s!r} must be one of {INSTRUMENTS}; got {k!r}")
        kinds.append(k)
    if margin is None:
        mode = "isolated"
    elif margin not in MARGIN_MODES:
        raise ValueError(f"margin must be one of {MARGIN_MODES}; got {margin!r}")
    else:
        mode = margin
    if margin is not None and "perp" not in kinds:
        raise ValueError(f"margin={margin!r} applies to perpetuals, and every symbol is spot (spot leverage and "
                         f"shorts always follow the isolated rule): pass instrument='perp' (or a mapping naming the "
                         f"perpetual symbols), or drop margin")
    tiers = []
    for s, t in zip(symbols, _per_symbol(maintenance, symbols, "maintenance")):
        arg = f"maintenance[{s!r}]" if isinstance(maintenance, Mapping) else "maintenance"
        tiers.append(DEFAULT_TIERS if t is None else _as_tiers(t, arg))
    levs = []
    for s, lev, t in zip(symbols, _per_symbol(leverage, symbols, "leverage"), tiers):
        arg = f"leverage[{s!r}]" if isinstance(leverage, Mapping) else "leverage"
        levs.append(t.check_leverage(1.0 if lev is None else lev, argument=arg))
    if liquidation_fee is None:
        fee = math.nan
    else:
        try:
            fee = float(liquidation_fee)
        except (TypeError, ValueError):
            raise ValueError(f"liquidation_fee must be None or a rate in [0, 1); got {liquidation_fee!r}") from None
        if not (math.isnan(fee) or 0.0 <= fee < 1.0):
            raise ValueError(f"liquidation_fee must be None or a rate in [0, 1); got {liquidation_fee!r}")
    return MarginSettings(tuple(kinds), mode, tuple(levs), tuple(tiers), fee)


def pack_tiers(tiers: Sequence[Tiers]):
    """Per-symbol tables as padded 2-D float64 arrays ``(n_symbols, max_tiers)`` for the kernels:
    ``(floor, cap, mmr, cum, max_leverage, counts)``; padding repeats each symbol's last tier."""
    import numpy as np
    m = len(tiers)
    width = max((len(t) for t in tiers), default=1)
    out = [np.zeros((m, width)) for _ in range(5)]
    counts = np.zeros(m, dtype=np.int64)
    for j, t in enumerate(tiers):
        counts[j] = len(t)
        for c, col in enumerate((t.floor, t.cap, t.mmr, t.cum, t.max_leverage)):
            out[c][j, :len(t)] = col
            out[c][j, len(t):] = col[-1]
    return (*out, counts)


def liquidation_price(side: int, qty: float, entry: float, margin: float, tiers: Tiers = DEFAULT_TIERS,
                      other: float = 0.0) -> float:
    """Liquidation price of one position (``side`` +1 long / -1 short, ``qty`` base units > 0,
    ``entry`` price, ``margin`` = isolated margin or cross wallet balance, ``other`` = ``UPNL - TMM``
    of the other cross positions), with the tier at that price. 0.0: never (long) or already
    (short). A convenience over ``nbtrade.kernels.margin.liquidation_price_nb``."""
    if side not in (1, -1):
        raise ValueError(f"side must be 1 (long) or -1 (short); got {side!r}")
    if not qty > 0:
        raise ValueError(f"qty must be > 0; got {qty!r}")
    if not entry > 0:
        raise ValueError(f"entry must be > 0; got {entry!r}")
    from nbtrade.kernels.margin import liquidation_price_nb
    f, c, m, cum, _ = tiers.arrays()
    return float(liquidation_price_nb(float(side), float(qty), float(entry), float(margin), float(other),
                                      f, c, m, cum, len(tiers)))


def check_funding(funding: Mapping[str, Any], symbols: Sequence[str], *, argument: str = "funding") -> dict:
    """Validate funding series: ``{symbol: (times, rates)}`` or ``(times, rates, marks)``.

    ``times`` datetime64 (or int64 ns), strictly increasing (out of order or duplicated
    timestamps are refused), ``rates`` finite fractions per period (0.0001 = 0.01 %),
    ``marks`` > 0 or NaN (then the bar's mark open is used). Every symbol must be in
    ``symbols``. Returns ``{symbol: (times int64 ns, rates float64, marks float64)}``.
    """
    import numpy as np
    if not isinstance(funding, Mapping):
        raise ValueError(f"{argument} must be a mapping symbol -> (times, rates[, marks]); "
                         f"got {type(funding).__name__}")
    unknown = [k for k in funding if k not in symbols]
    if unknown:
        raise ValueError(f"{argument} has series for symbols not in the data: {unknown}; symbols: {list(symbols)}")
    out = {}
    for sym, series in funding.items():
        a = f"{argument}[{sym!r}]"
        if not isinstance(series, (tuple, list)) or len(series) not in (2, 3):
            raise ValueError(f"{a} must be (times, rates) or (times, rates, marks)")
        times = np.asarray(series[0])
        if times.dtype.kind == "M":
            times = times.astype("datetime64[ns]").astype(np.int64)
        elif times.dtype.kind not in "iu":
            raise ValueError(f"{a} times must be datetime64 or int64 nanoseconds; got dtype {times.dtype}")
        times = times.astype(np.int64)
        rates = np.asarray(series[1], dtype=np.float64)
        marks = (np.asarray(series[2], dtype=np.float64) if len(series) == 3
                 else np.full(rates.shape, np.nan))
        if times.ndim != 1 or rates.shape != times.shape or marks.shape != times.shape:
            raise ValueError(f"{a}: times, rates and marks must be 1-D of one length; got {times.shape}, "
                             f"{rates.shape}, {marks.shape}")
        steps = np.diff(times)
        if (steps <= 0).any():
            k = int(np.argmax(steps <= 0)) + 1
            what = "duplicated" if steps[k - 1] == 0 else "out of order"
            raise ValueError(f"{a}: funding timestamps must be strictly increasing; row {k} is {what}")
        if not np.isfinite(rates).all():
            raise ValueError(f"{a}: rates must be finite; row {int(np.argmax(~np.isfinite(rates)))} is not")
        bad = marks <= 0
        if bad.any():
            raise ValueError(f"{a}: mark prices must be > 0; row {int(np.argmax(bad))} is {marks[bad][0]}")
        out[sym] = (times, rates, marks)
    return out


def check_mark(open_, high, low, close, *, argument: str = "mark") -> None:
    """Refuse mark candles with a price <= 0 or an inconsistent range (``high`` below the open or
    close, ``low`` above them); NaN marks a missing candle. Arrays of one shape."""
    import numpy as np
    arrs = [np.asarray(x, dtype=np.float64) for x in (open_, high, low, close)]
    if len({a.shape for a in arrs}) != 1:
        raise ValueError(f"{argument} open, high, low and close must have one shape; got {[a.shape for a in arrs]}")
    for name, a in zip(("open", "high", "low", "close"), arrs):
        bad = a <= 0
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{argument} prices must be > 0; {name} at {at} is {a[at]}")
    o, h, lo, c = arrs
    with np.errstate(invalid="ignore"):
        bad = (h < np.fmax(o, c)) | (lo > np.fmin(o, c)) | (h < lo)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{argument} candle at {at} is inconsistent: open {o[at]}, high {h[at]}, low {lo[at]}, "
                         f"close {c[at]}")


def mark_or_price(perp, mark, price):
    """The candles liquidation and funding read: ``((open, high, low, close), n_fallback)``.

    ``perp``: ``(m,)`` booleans (perpetual columns); ``mark`` and ``price``: ``(open, high, low, close)``
    ``(n, m)`` float arrays. A perpetual column takes its mark candle where it has one (mark open not
    NaN), else its price candle (the issue's rule: "when mark candles are absent, the engine may use the
    last price candles", bar by bar: a bar with a price candle but no mark candle is checked on the price
    candle, never skipped); spot columns take their price candles. ``n_fallback``: how many perpetual
    bars with a price candle took it for want of a mark candle (the result's assumptions say so).
    Returned arrays are C-contiguous float64."""
    import numpy as np
    perp = np.asarray(perp, dtype=np.bool_)[None, :]
    mark = [np.asarray(a, dtype=np.float64) for a in mark]
    price = [np.asarray(a, dtype=np.float64) for a in price]
    use = perp & ~np.isnan(mark[0])
    out = tuple(np.ascontiguousarray(np.where(use, mk, px)) for mk, px in zip(mark, price))
    return out, n_mark_fallbacks(perp[0], mark[0], price[3])


def n_mark_fallbacks(perp, mark_open, close) -> int:
    """How many perpetual bars (``perp``: ``(m,)`` booleans) have a price candle (``close`` not NaN) but no
    mark candle (``mark_open`` NaN): the bars :func:`mark_or_price` checks on the price candle."""
    import numpy as np
    return int(np.count_nonzero(np.asarray(perp, dtype=np.bool_)[None, :] & np.isnan(mark_open) & ~np.isnan(close)))


def funding_schedule(bar_open, bar_ns: int, times):
    """Bar of each funding timestamp, without look-ahead: ``(bar, at_open)`` int64 / bool arrays.

    ``bar_open``: the bars' open times (datetime64 or int64 ns, increasing), ``bar_ns`` the bar
    length in ns. A timestamp in ``[open, open + bar_ns)`` belongs to that bar (``at_open`` when
    equal to the open: step 1 of the per-bar order, else inside: step 4); one falling in a gap
    between bars (missing candles) is applied at the next bar's open, never earlier than it
    happened; one before the first bar or after the last bar's end gets bar -1 (dropped).
    """
    import numpy as np

    def ns(x):
        x = np.asarray(x)
        return x.astype("datetime64[ns]").astype(np.int64) if x.dtype.kind == "M" else x.astype(np.int64)

    opens = ns(bar_open)
    t = ns(times)
    i = np.searchsorted(opens, t, side="right") - 1
    bar = i.copy()
    at_open = np.zeros(t.shape, dtype=np.bool_)
    valid = i >= 0
    inside = valid & (t < opens[np.maximum(i, 0)] + bar_ns)
    at_open[inside] = t[inside] == opens[i[inside]]
    late = valid & ~inside
    bar[late] = i[late] + 1
    at_open[late] = True
    bar[bar >= opens.shape[0]] = -1
    at_open[bar < 0] = False
    return bar.astype(np.int64), at_open
