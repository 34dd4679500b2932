from decimal import Decimal

import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.model import (
    DAY_MS,
    Candle,
    Instrument,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Prediction,
    Timeframe,
    normalize_symbol,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1m", Timeframe.M1), ("4h", Timeframe.H4), (" 1D ", Timeframe.D1), ("1w", Timeframe.W1)],
)
def test_timeframe_parse(text: str, expected: Timeframe) -> None:
    assert Timeframe.parse(text) is expected


def test_unknown_timeframe_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown timeframe '7m'.*1m, 3m, 5m"):
        Timeframe.parse("7m")


def test_weekly_candles_open_on_monday() -> None:
    monday = 1_704_067_200_000 - 1_704_067_200_000 % DAY_MS  # 2024-01-01 was a Monday
    assert Timeframe.W1.floor(monday + 3 * DAY_MS + 5) == monday
    assert Timeframe.W1.is_aligned(monday)
    assert not Timeframe.W1.is_aligned(monday + DAY_MS)


def test_divides() -> None:
    assert Timeframe.M1.divides(Timeframe.H4)
    assert Timeframe.M15.divides(Timeframe.H1)
    assert not Timeframe.H4.divides(Timeframe.H6)
    assert Timeframe.D1.divides(Timeframe.W1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("BTC/USDT", "BTC/USDT"), ("btc-usdt", "BTC/USDT"), ("ETHUSDT", "ETH/USDT"),
     ("sol_usdc", "SOL/USDC"), ("ETHBTC", "ETH/BTC")],
)
def test_normalize_symbol(text: str, expected: str) -> None:
    assert normalize_symbol(text) == expected


@pytest.mark.parametrize("text", ["", "BTC", "BTC/USDT/X", "BTC/BTC", "B TC/USDT", "ABCXYZ"])
def test_bad_symbols_are_rejected_with_the_expected_form(text: str) -> None:
    with pytest.raises(InvalidArgument, match="expected BASE/QUOTE"):
        normalize_symbol(text)


def test_candle_problems() -> None:
    assert Candle(0, 10, 11, 9, 10.5, 1).problems() == []
    assert "high 9.0 is below low 11.0" in Candle(0, 10, 9.0, 11.0, 10, 1).problems()
    assert Candle(0, 10, 11, 9, 12, 1).problems() == [
        "open and close must lie between low and high"]
    assert Candle(0, 10, 11, 9, 10, -1).problems() == ["volume -1 is negative"]
    assert Candle(0, float("nan"), 11, 9, 10, 1).problems()


def test_instrument_rounding() -> None:
    btc = Instrument("sim", "BTC/USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"))
    assert btc.round_price(Decimal("61234.5678")) == Decimal("61234.57")
    assert btc.round_amount(Decimal("0.123456789")) == Decimal("0.12345")


def test_order_validation_and_state() -> None:
    with pytest.raises(InvalidArgument, match="needs a price"):
        Order("c1", "sim", "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal(1), 0)
    with pytest.raises(InvalidArgument, match="must be positive"):
        Order("c1", "sim", "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal(0), 0)
    order = Order("c1", "sim", "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal(2), 0)
    filled = order.with_status(OrderStatus.FILLED, filled=Decimal(2))
    assert filled.status.is_final and filled.remaining == 0 and not order.status.is_final


def test_prediction_validation() -> None:
    with pytest.raises(InvalidArgument, match="ordered"):
        Prediction("sim", "BTC/USDT", Timeframe.H1, 0, 1, 0.0, 0.1, 0.0, 0.2, 0.5, "m", 0)
    prediction = Prediction("sim", "BTC/USDT", Timeframe.H1, 0, 4, 0.0, -0.1, 0.0, 0.1, 0.5,
                            "m", 0)
    assert prediction.target_time == 4 * Timeframe.H1.ms
