"""Performance figures of an equity curve and its trades.

Conventions: returns are fractions (0.25 is +25 %); ``max_drawdown`` is the largest fall from
a running peak as a positive fraction; Sharpe and Sortino ratios use per-bar returns of the
equity curve, a risk-free rate of 0, and are annualised with ``sqrt(bars per year)`` where a
year is 365 days of bars (crypto trades around the clock); CAGR uses the same year.
Figures that do not exist (a ratio over zero variance, a profit factor without losing trades,
a win rate without trades) are ``None``, which JSON writes as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from terminal.core.model import DAY_MS, Timeframe
from terminal.core.timefmt import format_ms

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

YEAR_MS = 365 * DAY_MS
#: Above this log growth per year, CAGR is reported as infinite (exp would overflow).
_MAX_LOG_GROWTH = 700.0


def bars_per_year(timeframe: Timeframe) -> float:
    return YEAR_MS / timeframe.ms


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip of a long position, in quote currency.

    ``pnl`` is what the exit brought in minus what the entry cost, both fees included;
    ``return_`` is ``pnl`` over the entry's cost. ``bars_held`` counts the candle closes the
    position was open at. A position still open when the test ends is marked to the last
    close without an exit fee, with the exit reason ``end_of_test``.
    """

    entry_bar: int
    exit_bar: int
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    amount: float
    entry_fee: float
    exit_fee: float
    exit_reason: str

    @property
    def cost(self) -> float:
        return self.entry_price * self.amount + self.entry_fee

    @property
    def proceeds(self) -> float:
        return self.exit_price * self.amount - self.exit_fee

    @property
    def pnl(self) -> float:
        return self.proceeds - self.cost

    @property
    def return_(self) -> float:
        return self.pnl / self.cost

    @property
    def bars_held(self) -> int:
        return self.exit_bar - self.entry_bar

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_time": self.entry_time,
            "entry_utc": format_ms(self.entry_time),
            "exit_time": self.exit_time,
            "exit_utc": format_ms(self.exit_time),
            "entry_price": self.entry_price,
            "exit_price": self.exit_price,
            "amount": self.amount,
            "fees": self.entry_fee + self.exit_fee,
            "pnl": self.pnl,
            "return": self.return_,
            "bars_held": self.bars_held,
            "exit_reason": self.exit_reason,
        }


@dataclass(frozen=True, slots=True)
class Metrics:
    """The figures of one equity curve (a strategy, or buy-and-hold over the same bars)."""

    initial_equity: float
    final_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    win_rate: float | None
    profit_factor: float | None
    exposure: float
    trades: int
    avg_trade_return: float | None
    avg_trade_pnl: float | None
    fees_paid: float

    def to_json(self) -> dict[str, Any]:
        return {name: _json_number(value) for name, value in asdict(self).items()}


def compute_metrics(equity: FloatArray, held: BoolArray, trades: Sequence[Trade],
                    timeframe: Timeframe) -> Metrics:
    """Figures for ``equity``, marked at each bar's close, starting before the first trade.

    ``held[i]`` says a position was open at bar ``i``'s close; exposure is the share of bars
    after the first with one.
    """
    initial, final = float(equity[0]), float(equity[-1])
    per_year = bars_per_year(timeframe)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity[1:] / equity[:-1] - 1.0
    returns = returns[np.isfinite(returns)]
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = np.where(peaks > 0, 1.0 - equity / peaks, 0.0)
    pnls = np.array([t.pnl for t in trades], dtype=np.float64)
    trade_returns = np.array([t.return_ for t in trades], dtype=np.float64)
    gains = float(pnls[pnls > 0].sum())
    losses = float(-pnls[pnls < 0].sum())
    return Metrics(
        initial_equity=initial,
        final_equity=final,
        total_return=final / initial - 1.0,
        cagr=_cagr(initial, final, (len(equity) - 1) / per_year),
        sharpe=_ratio(returns, float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0,
                      per_year),
        sortino=_ratio(returns, math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
                       if len(returns) else 0.0, per_year),
        max_drawdown=float(drawdowns.max()) if len(drawdowns) else 0.0,
        win_rate=float((pnls > 0).mean()) if len(pnls) else None,
        profit_factor=gains / losses if losses > 0 else None,
        exposure=float(held[1:].mean()) if len(held) > 1 else 0.0,
        trades=len(trades),
        avg_trade_return=float(trade_returns.mean()) if len(trades) else None,
        avg_trade_pnl=float(pnls.mean()) if len(trades) else None,
        fees_paid=sum(t.entry_fee + t.exit_fee for t in trades),
    )


def _cagr(initial: float, final: float, years: float) -> float | None:
    if years <= 0 or initial <= 0:
        return None
    if final <= 0:
        return -1.0
    # Compounding a short run to a year can exceed any float (a 3 % minute is 1.03^525600);
    # the honest answer is then "infinite", not an overflow error.
    growth = math.log(final / initial) / years
    return math.inf if growth > _MAX_LOG_GROWTH else math.expm1(growth)


def _ratio(returns: FloatArray, risk: float, per_year: float) -> float | None:
    if not len(returns) or not risk > 0:
        return None
    return float(np.mean(returns)) / risk * math.sqrt(per_year)


def _json_number(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
