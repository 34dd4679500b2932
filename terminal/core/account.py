"""The account at a glance: balances valued in the quote currency, an equity curve rebuilt
from fills and candles, and the figures a dashboard shows (30-day P/L, trades, win ratio,
maximum drawdown, exposure). Also the trade history's CSV export.

The equity curve is *realised plus marked*: at each candle close, the cash the fills left
(starting cash plus every fill's cash flow, fees included) plus each position's amount marked
at that close. The starting cash is what the quote balance is now minus what the fills moved,
so the curve ends where the account stands.
"""

from __future__ import annotations

import bisect
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.model import DAY_MS, Balance, Fill, OrderSide
from terminal.core.portfolio import ClosedTrade
from terminal.core.timefmt import format_ms

#: The window of the dashboard's recent P/L.
RECENT_DAYS = 30


@dataclass(frozen=True, slots=True)
class AssetValue:
    """One balance with its value in the quote currency (None: no price to value it)."""

    currency: str
    free: Decimal
    used: Decimal
    value: float | None

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """Closes of one symbol: ``times`` (epoch ms, ascending) and ``closes``, same length."""

    times: Sequence[int]
    closes: Sequence[float]


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """What the dashboard shows. Money is in ``quote``; ratios are fractions (0.25 = 25 %).

    ``win_ratio`` is None without closed trades; ``max_drawdown`` is the largest fall of the
    equity curve from a running peak.
    """

    quote: str
    cash: float
    equity: float
    assets: tuple[AssetValue, ...]
    curve_times: tuple[int, ...]
    curve_equity: tuple[float, ...]
    pnl_recent: float
    realized_recent: float
    total_trades: int
    wins: int
    max_drawdown: float
    exposure: float

    @property
    def win_ratio(self) -> float | None:
        return self.wins / self.total_trades if self.total_trades else None


def summarize_account(*, quote: str, balances: Iterable[Balance], fills: Sequence[Fill],
                      trades: Sequence[ClosedTrade], marks: Mapping[str, float],
                      prices: Mapping[str, PriceHistory], now_ms: int) -> AccountSummary:
    """The dashboard's figures for an account whose money is in ``quote``.

    ``fills`` are the account's fills in time order, ``trades`` the round trips they closed,
    ``marks`` the latest price per symbol (``BASE/QUOTE``) and ``prices`` the candle closes
    the equity curve is drawn at.
    """
    if now_ms <= 0:
        raise InvalidArgument("the summary needs the current time")
    held = list(balances)
    assets = tuple(_valued(b, quote, marks) for b in held)
    cash_balance = next((b for b in held if b.currency == quote), None)
    cash = float(cash_balance.total) if cash_balance else 0.0
    equity = sum(a.value for a in assets if a.value is not None)
    exposure_value = sum(abs(a.value) for a in assets
                         if a.value is not None and a.currency != quote)
    times, curve = equity_curve(fills, prices, cash_now=cash, marks=marks, now_ms=now_ms)
    since = now_ms - RECENT_DAYS * DAY_MS
    start = bisect.bisect_right(times, since) - 1
    baseline = curve[start] if start >= 0 else (curve[0] if curve else equity)
    recent = [t for t in trades if t.exit_time >= since]
    return AccountSummary(
        quote=quote, cash=cash, equity=equity, assets=assets, curve_times=tuple(times),
        curve_equity=tuple(curve), pnl_recent=(curve[-1] if curve else equity) - baseline,
        realized_recent=float(sum((t.pnl for t in recent), Decimal(0))),
        total_trades=len(trades), wins=sum(1 for t in trades if t.pnl > 0),
        max_drawdown=max_drawdown(curve), exposure=exposure_value / equity if equity else 0.0)


def equity_curve(fills: Sequence[Fill], prices: Mapping[str, PriceHistory], *,
                 cash_now: float, marks: Mapping[str, float], now_ms: int
                 ) -> tuple[list[int], list[float]]:
    """Times and equity from the first fill to ``now_ms`` (empty without fills).

    Points are the candle closes of the traded symbols after the first fill, each fill's own
    time, and ``now_ms`` marked at ``marks``.
    """
    if not fills:
        return [], []
    ordered = sorted(fills, key=lambda f: f.timestamp)
    flows = [_cash_flow(f) for f in ordered]
    cash = cash_now - sum(flows)
    first = ordered[0].timestamp
    symbols = {f.symbol for f in ordered}
    grid = {f.timestamp for f in ordered}
    for symbol in symbols:
        history = prices.get(symbol)
        if history is not None:
            grid.update(t for t in history.times if first <= t < now_ms)
    amounts = dict.fromkeys(symbols, 0.0)
    # Where no candle has closed yet, a position is marked at its latest fill's price.
    last_price: dict[str, float] = {}
    times: list[int] = []
    values: list[float] = []
    index = 0
    for time in sorted(grid):
        while index < len(ordered) and ordered[index].timestamp <= time:
            fill = ordered[index]
            cash += flows[index]
            amounts[fill.symbol] += _base_change(fill)
            last_price[fill.symbol] = float(fill.price)
            index += 1
        marked = sum(amount * _close_at(prices.get(symbol), time, last_price[symbol])
                     for symbol, amount in amounts.items() if amount)
        times.append(time)
        values.append(cash + marked)
    final = cash + sum(amount * marks.get(symbol, last_price[symbol])
                       for symbol, amount in amounts.items() if amount)
    if times and times[-1] >= now_ms:
        values[-1] = final
    else:
        times.append(now_ms)
        values.append(final)
    return times, values


def max_drawdown(curve: Sequence[float]) -> float:
    """The largest fall from a running peak, as a positive fraction of that peak."""
    peak = 0.0
    worst = 0.0
    for value in curve:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def _valued(balance: Balance, quote: str, marks: Mapping[str, float]) -> AssetValue:
    if balance.currency == quote:
        value: float | None = float(balance.total)
    else:
        price = marks.get(f"{balance.currency}/{quote}")
        value = None if price is None else float(balance.total) * price
    return AssetValue(balance.currency, balance.free, balance.used, value)


def _cash_flow(fill: Fill) -> float:
    """What ``fill`` did to the quote balance (fees in the quote currency included)."""
    _base, _, quote = fill.symbol.partition("/")
    notional = float(fill.price * fill.amount)
    fee = float(fill.fee) if fill.fee_currency in (quote, "") else 0.0
    return (-notional if fill.side is OrderSide.BUY else notional) - fee


def _base_change(fill: Fill) -> float:
    base, _, _quote = fill.symbol.partition("/")
    amount = float(fill.amount)
    fee = float(fill.fee) if fill.fee_currency == base else 0.0
    return amount - fee if fill.side is OrderSide.BUY else -amount - fee


def _close_at(history: PriceHistory | None, time: int, fallback: float) -> float:
    if history is None or not history.times:
        return fallback
    index = bisect.bisect_right(history.times, time) - 1
    return float(history.closes[index]) if index >= 0 else fallback


#: Columns of the trade history's CSV export, in order.
TRADE_CSV_COLUMNS = ("exit_utc", "entry_utc", "symbol", "side", "amount", "entry_price",
                     "exit_price", "fees", "pnl", "return_pct", "strategy", "mode", "venue")


@dataclass(frozen=True, slots=True)
class TradeLine:
    """A closed trade as the history lists and exports it."""

    trade: ClosedTrade
    strategy: str
    mode: str


def trades_csv(lines: Iterable[TradeLine]) -> str:
    """The trades as CSV text with a header row (UTC times, exact decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRADE_CSV_COLUMNS)
    for line in lines:
        trade = line.trade
        writer.writerow((format_ms(trade.exit_time), format_ms(trade.entry_time), trade.symbol,
                         trade.side, trade.amount, trade.entry_price, trade.exit_price,
                         trade.fees, trade.pnl, f"{trade.return_pct:.4f}", line.strategy,
                         line.mode, trade.venue))
    return out.getvalue()


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a failure leaves no half-written file behind.

    Raises :class:`TerminalError` naming the file and the reason.
    """
    folder = path.parent
    if not folder.is_dir():
        raise TerminalError(f"cannot write {path}: the folder {folder} does not exist")
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise TerminalError(f"cannot write {path}: {error.strerror or error}") from error
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
