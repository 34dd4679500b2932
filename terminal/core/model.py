"""The domain model shared by backtest, paper and live trading.

Values are immutable. Time is UTC epoch milliseconds (``int``). Order prices and amounts are
``Decimal`` because they are compared against exchange precision and limits; bulk market data is
float64 in :class:`terminal.core.series.CandleSeries`. Enums carry stable string codes, which are
what the store and the CLI use, so renaming a member never changes stored data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum, unique

from terminal.core.errors import InvalidArgument

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# 1970-01-01 was a Thursday; exchanges open weekly candles on Monday 00:00 UTC.
_WEEK_ORIGIN_MS = 4 * DAY_MS


def to_decimal(value: float) -> Decimal:
    """The shortest decimal that reads back as the float ``value`` (numpy floats too).

    Going through the float's shortest representation keeps ``float(to_decimal(x)) == x``
    while never inventing the binary expansion's trailing digits.
    """
    return Decimal(repr(float(value)))


@unique
class Timeframe(Enum):
    """A candle length. The value is the code used by exchanges, the store and the CLI."""

    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    W1 = "1w"

    @property
    def code(self) -> str:
        return self.value

    @property
    def ms(self) -> int:
        """Length of one candle in milliseconds."""
        return _TIMEFRAME_MS[self]

    @property
    def origin_ms(self) -> int:
        """The instant candle boundaries are counted from (weeks start on Monday)."""
        return _WEEK_ORIGIN_MS if self is Timeframe.W1 else 0

    def floor(self, time_ms: int) -> int:
        """Open time of the candle that contains ``time_ms``."""
        return time_ms - (time_ms - self.origin_ms) % self.ms

    def is_aligned(self, time_ms: int) -> bool:
        return (time_ms - self.origin_ms) % self.ms == 0

    def divides(self, coarser: Timeframe) -> bool:
        """True when whole candles of this timeframe tile every candle of ``coarser``."""
        return coarser.ms % self.ms == 0 and (coarser.origin_ms - self.origin_ms) % self.ms == 0

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Read a timeframe code such as ``1m``, ``4h`` or ``1d``."""
        cleaned = text.strip()
        for member in cls:
            if member.value == cleaned or member.value == cleaned.lower():
                return member
        known = ", ".join(m.value for m in cls)
        raise InvalidArgument(f"unknown timeframe {text!r}; use one of: {known}")

    def __str__(self) -> str:
        return self.value


_TIMEFRAME_MS: dict[Timeframe, int] = {
    Timeframe.M1: MINUTE_MS,
    Timeframe.M3: 3 * MINUTE_MS,
    Timeframe.M5: 5 * MINUTE_MS,
    Timeframe.M15: 15 * MINUTE_MS,
    Timeframe.M30: 30 * MINUTE_MS,
    Timeframe.H1: HOUR_MS,
    Timeframe.H2: 2 * HOUR_MS,
    Timeframe.H4: 4 * HOUR_MS,
    Timeframe.H6: 6 * HOUR_MS,
    Timeframe.H8: 8 * HOUR_MS,
    Timeframe.H12: 12 * HOUR_MS,
    Timeframe.D1: DAY_MS,
    Timeframe.W1: 7 * DAY_MS,
}

# Quote currencies tried, longest first, when a symbol comes without a separator ("BTCUSDT").
_KNOWN_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "JPY",
    "BTC", "ETH", "BNB",
)
_ASSET_RE = re.compile(r"^[A-Z0-9]{1,20}$")


def normalize_symbol(text: str) -> str:
    """Return the canonical ``BASE/QUOTE`` form of a spot symbol.

    Accepts ``btc/usdt``, ``BTC-USDT``, ``BTC_USDT`` and, for common quote currencies,
    ``BTCUSDT``. Anything else is rejected with a message that shows the expected form.
    """
    cleaned = text.strip().upper()
    for separator in ("-", "_", ":"):
        cleaned = cleaned.replace(separator, "/")
    parts = cleaned.split("/")
    if len(parts) == 1:
        parts = _split_concatenated(cleaned)
    if len(parts) != 2 or not all(_ASSET_RE.match(p) for p in parts) or parts[0] == parts[1]:
        raise InvalidArgument(f"invalid symbol {text!r}; expected BASE/QUOTE such as BTC/USDT")
    return f"{parts[0]}/{parts[1]}"


def _split_concatenated(text: str) -> list[str]:
    for quote in _KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return [text[: -len(quote)], quote]
    return [text]


@unique
class VenueKind(Enum):
    """How real a venue's money is; shown to the user wherever the venue appears."""

    SIMULATED = "simulated"
    PAPER = "paper"
    LIVE = "live"

    @property
    def label(self) -> str:
        return self.value.upper()


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable spot pair on one venue, with the venue's precision and limits."""

    venue: str
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_amount: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.symbol != f"{self.base}/{self.quote}":
            raise InvalidArgument(f"symbol {self.symbol!r} does not match {self.base}/{self.quote}")
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise InvalidArgument(f"{self.symbol}: tick and lot size must be positive")

    def round_price(self, price: Decimal) -> Decimal:
        """Round a price to the nearest tick."""
        return (price / self.tick_size).quantize(Decimal(1)) * self.tick_size

    def round_amount(self, amount: Decimal) -> Decimal:
        """Round an amount down to the lot size, as exchanges do."""
        return (amount // self.lot_size) * self.lot_size


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar, identified by its open time. A bulk history is a ``CandleSeries``."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def problems(self) -> list[str]:
        """Reasons this bar is not a valid candle; empty when it is."""
        values = (self.open, self.high, self.low, self.close, self.volume)
        if any(v != v or v in (float("inf"), float("-inf")) for v in values):
            return ["a price or the volume is not a finite number"]
        found = []
        if min(self.open, self.high, self.low, self.close) <= 0:
            found.append("prices must be positive")
        if self.high < self.low:
            found.append(f"high {self.high} is below low {self.low}")
        elif not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            found.append("open and close must lie between low and high")
        if self.volume < 0:
            found.append(f"volume {self.volume} is negative")
        return found


@unique
class OrderSide(Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


@unique
class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


@unique
class TimeInForce(Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


@unique
class OrderStatus(Enum):
    """Life cycle of an order. ``PENDING`` is sent but not yet acknowledged by the venue."""

    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


@unique
class Liquidity(Enum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as we know it. ``client_order_id`` is ours and makes retries idempotent."""

    client_order_id: str
    venue: str
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    created_at: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    status: OrderStatus = OrderStatus.PENDING
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    venue_order_id: str | None = None
    reject_reason: str | None = None

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidArgument(f"order amount must be positive, got {self.amount}")
        if self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.price is None:
            raise InvalidArgument(f"a {self.type.value} order needs a price")
        if self.type in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop_price is None:
            raise InvalidArgument(f"a {self.type.value} order needs a stop price")
        if not Decimal(0) <= self.filled <= self.amount:
            raise InvalidArgument(f"filled {self.filled} must lie between 0 and {self.amount}")

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def with_status(self, status: OrderStatus, **changes: object) -> Order:
        return replace(self, status=status, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order."""

    trade_id: str
    client_order_id: str
    venue: str
    symbol: str
    side: OrderSide
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int
    liquidity: Liquidity = Liquidity.TAKER

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount


@dataclass(frozen=True, slots=True)
class Position:
    """Net holding of one instrument. ``amount`` is signed: positive long, negative short."""

    venue: str
    symbol: str
    amount: Decimal
    average_price: Decimal
    realized_pnl: Decimal = Decimal(0)

    @property
    def is_flat(self) -> bool:
        return self.amount == 0

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        return (mark_price - self.average_price) * self.amount


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    free: Decimal
    used: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's forecast, made from closed candles up to ``made_from`` (an open time).

    Returns are log returns over ``horizon_bars`` candles of ``timeframe``; the quantiles bound
    the same return. ``prob_up`` is the calibrated probability that the return is positive.
    """

    venue: str
    symbol: str
    timeframe: Timeframe
    made_from: int
    horizon_bars: int
    expected_return: float
    quantile_10: float
    quantile_50: float
    quantile_90: float
    prob_up: float
    model_id: str
    created_at: int

    def __post_init__(self) -> None:
        if self.horizon_bars < 1:
            raise InvalidArgument("a prediction horizon is at least one bar")
        if not 0.0 <= self.prob_up <= 1.0:
            raise InvalidArgument(f"prob_up {self.prob_up} is not a probability")
        if not self.quantile_10 <= self.quantile_50 <= self.quantile_90:
            raise InvalidArgument("prediction quantiles must be ordered 10% <= 50% <= 90%")

    @property
    def target_time(self) -> int:
        """Open time of the last candle the forecast covers."""
        return self.made_from + self.horizon_bars * self.timeframe.ms


@dataclass(frozen=True, slots=True)
class Ticker:
    """The latest trade price and the best bid and ask of one pair on one venue."""

    venue: str
    symbol: str
    timestamp: int
    last: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    bid_amount: Decimal | None = None
    ask_amount: Decimal | None = None
