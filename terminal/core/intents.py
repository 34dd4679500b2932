"""What a strategy asks for, and what the risk manager judges it against.

An :class:`OrderIntent` is a strategy's wish, before any check; it becomes an :class:`Order`
only after the risk manager has approved (and perhaps sized) it. Intents use floats because
strategies compute with numpy; prices and amounts become ``Decimal`` when an order is built for
a venue and rounded to its instrument's tick and lot sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from terminal.core.errors import InvalidArgument
from terminal.core.model import OrderSide, OrderType


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A request to trade ``symbol``, made after the candle closing at ``created_at``.

    ``amount`` None leaves the size to the risk manager (risk per trade, or all available
    equity when no per-trade risk is set). ``stop_loss``, ``take_profit`` and
    ``trailing_stop_pct`` are protective exits attached to the position the order opens.
    ``reduce_only`` marks exits: they may only shrink a position.
    """

    symbol: str
    side: OrderSide
    created_at: int
    type: OrderType = OrderType.MARKET
    amount: float | None = None
    price: float | None = None
    stop_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop_pct: float | None = None
    reduce_only: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.amount is not None and not self.amount > 0:
            raise InvalidArgument(f"an order amount must be positive, got {self.amount}")
        if self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.price is None:
            raise InvalidArgument(f"a {self.type.value} order needs a limit price")
        if self.type in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop_price is None:
            raise InvalidArgument(f"a {self.type.value} order needs a stop price")
        if self.trailing_stop_pct is not None and not 0 < self.trailing_stop_pct < 100:
            raise InvalidArgument("a trailing stop is a percentage between 0 and 100")


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account as the risk manager sees it when judging an intent (quote currency).

    ``exposure`` is the marked value of each open position; ``peak_equity`` is the highest
    equity reached so far and ``day_start_equity`` the equity at 00:00 UTC of ``time_ms``'s day.
    """

    time_ms: int
    equity: float
    cash: float
    peak_equity: float
    day_start_equity: float
    prices: Mapping[str, float]
    exposure: Mapping[str, float] = field(default_factory=dict)
    open_trades: int = 0
    trades_today: int = 0


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk manager's verdict on one intent.

    When ``approved``, ``amount`` is the size to trade (the intent's own, or the one the risk
    manager computed or capped, with the reasons in ``adjustments``). When not, ``reason`` says
    why, in words a user reads.
    """

    approved: bool
    amount: float = 0.0
    reason: str = ""
    adjustments: tuple[str, ...] = ()

    @classmethod
    def reject(cls, reason: str) -> RiskDecision:
        return cls(False, 0.0, reason)


class RiskCheck(Protocol):
    """What the backtest engine and the paper and live runners ask before every order.

    :class:`terminal.core.risk.RiskManager` is the implementation; the protocol keeps the
    engine free of its configuration.
    """

    def check(self, intent: OrderIntent, account: AccountSnapshot) -> RiskDecision:
        """Approve ``intent`` with the amount to trade, or reject it with a reason."""
        ...
