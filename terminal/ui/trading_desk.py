"""Wires the trading panels (order ticket, positions, trade history, dashboard) to the order
manager, the store and the chart.

Every call into the order manager or the venue is a coroutine run as a task on the asyncio
loop (qasync: Qt's loop), so the GUI thread never waits for a venue. State shown comes from
the order manager and the store after the bus says it changed (``OrderUpdated`` /
``OrderFilled`` are published after the store has the new state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from terminal.core.account import PriceHistory, TradeLine, summarize_account
from terminal.core.errors import TerminalError
from terminal.core.events import CandleClosed, CandleUpdated, OrderFilled, OrderUpdated
from terminal.core.intents import OrderIntent
from terminal.core.model import Balance, OrderSide, OrderStatus, Timeframe, VenueKind
from terminal.core.orders import OrderManager, Submission
from terminal.core.storage import Store
from terminal.core.storage.orders import TradeFilter, TradingMode
from terminal.widgets.chart_layers import PriceLine, Side, TradeMarker
from terminal.widgets.dashboard import DashboardPanel
from terminal.widgets.notifications import Severity
from terminal.widgets.order_ticket import OrderTicket, TicketDraft
from terminal.widgets.positions import PositionRow, PositionsPanel
from terminal.widgets.trade_history import HistoryQuery, TradeHistoryPanel

if TYPE_CHECKING:
    from terminal.ui.main_window import MainWindow

log = logging.getLogger(__name__)

#: Shortest time between two refreshes of positions and balances.
REFRESH_MS = 250
#: How often marks move the positions' P/L and the dashboard while prices stream.
MARK_REFRESH_MS = 1000
#: Candles the equity curve is drawn at.
CURVE_TIMEFRAME = Timeframe.H1
#: The longest equity curve drawn, in candles of ``CURVE_TIMEFRAME``.
CURVE_BARS = 24 * 365


class TradingDesk(QObject):
    """The trading panels of ``window`` working on ``orders``."""

    def __init__(self, window: MainWindow, orders: OrderManager, *, ticket: OrderTicket,
                 positions: PositionsPanel, history: TradeHistoryPanel,
                 dashboard: DashboardPanel) -> None:
        super().__init__(window)
        self._window = window
        self._orders = orders
        self._store = orders.store
        self._ticket = ticket
        self._positions = positions
        self._history = history
        self._dashboard = dashboard
        self._marks: dict[str, float] = {}
        self._balances: list[Balance] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._preview_seq = 0
        self._refreshing = False
        self._refresh_again = False
        self._confirm: QMessageBox | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._start_refresh)
        self._mark_timer = QTimer(self)
        self._mark_timer.setInterval(MARK_REFRESH_MS)
        self._mark_timer.timeout.connect(self._show_positions)
        self._mark_timer.start()
        bus = orders.bus
        self._unsubscribers: list[Callable[[], None]] = [
            bus.subscribe(OrderUpdated, lambda _e: self.refresh()),
            bus.subscribe(OrderFilled, lambda _e: self.refresh()),
            bus.subscribe(CandleUpdated, self._on_candle),
            bus.subscribe(CandleClosed, self._on_candle),
        ]
        ticket.draft_changed.connect(self._on_draft)
        ticket.submitted.connect(self._on_submit)
        ticket.lines_changed.connect(self._on_ticket_lines)
        positions.close_requested.connect(self.close_position)
        positions.cancel_requested.connect(self.cancel_order)
        history.query_changed.connect(lambda _q: self._show_history())
        history.exported.connect(self._on_exported)
        self._live = orders.venue.kind is VenueKind.LIVE
        self._started = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """The order manager has started (instruments loaded, account reconciled): show the
        account and let the ticket ask for verdicts."""
        self._started = True
        self.refresh()
        self._ticket.recheck()

    @property
    def started(self) -> bool:
        return self._started

    def close(self) -> None:
        """Stop listening and cancel what is still running (the window is closing)."""
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        self._refresh_timer.stop()
        self._mark_timer.stop()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any] | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coroutine.close()
            self._window.show_error("trading needs the application's event loop")
            return None
        task = loop.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def store(self) -> Store:
        return self._store

    @property
    def refresh_pending(self) -> bool:
        """Whether a refresh is waiting or running."""
        return self._refresh_timer.isActive() or self._refreshing

    @property
    def busy(self) -> bool:
        """Whether a venue call started here is still running."""
        return bool(self._tasks)

    # -- the charted symbol -----------------------------------------------------------------

    def on_chart_symbol(self, symbol: str) -> None:
        """The window charts ``symbol`` now: the ticket trades it, the chart shows its fills
        and open orders."""
        decimals = self._window.price_decimals(symbol)
        self._ticket.set_market(symbol, price_decimals=decimals, live=self._live)
        self._ticket.set_last_price(self._marks.get(symbol))
        self._show_available()
        self._show_chart_layers()

    def _on_candle(self, event: CandleUpdated | CandleClosed) -> None:
        key = event.key
        if key.venue != self._window.market_venue_id or key.timeframe is not Timeframe.M1:
            return
        self._marks[key.symbol] = event.candle.close
        if key.symbol == self._ticket.symbol:
            self._ticket.set_last_price(event.candle.close)

    # -- ticket -----------------------------------------------------------------------------

    def _intent(self, draft: TicketDraft) -> OrderIntent:
        return OrderIntent(draft.symbol, draft.side, self._window.market_now_ms(),
                           type=draft.type, amount=draft.amount, price=draft.price,
                           stop_price=draft.stop_price, stop_loss=draft.stop_loss,
                           take_profit=draft.take_profit,
                           trailing_stop_pct=draft.trailing_stop_pct, reason="order ticket")

    def _on_draft(self, draft: TicketDraft | None) -> None:
        self._preview_seq += 1
        if draft is None:
            return
        if not self._started:
            self._ticket.show_verdict(False, "Trading starts once the market is loaded")
            return
        self._spawn(self._preview(draft, self._preview_seq), "ticket-preview")

    async def _preview(self, draft: TicketDraft, seq: int) -> None:
        try:
            intent = self._intent(draft)
            preview = await self._orders.preview(intent, prices=self._prices(draft.symbol))
        except TerminalError as error:
            if seq == self._preview_seq:
                self._ticket.show_verdict(False, _sentence(str(error)))
            return
        if seq != self._preview_seq:
            return  # the ticket changed while the verdict was computed
        decision, request = preview.decision, preview.request
        if request is None:
            self._ticket.show_verdict(False, f"Refused: {decision.reason}")
            return
        text = f"Approved: {request.side.value} {request.amount} {draft.symbol.split('/')[0]}"
        if request.price is not None:
            text += f" at {request.price}"
        if request.stop_price is not None:
            text += f", trigger {request.stop_price}"
        if decision.adjustments:
            text += " (" + "; ".join(decision.adjustments) + ")"
        self._ticket.show_verdict(True, text)

    def _on_submit(self, draft: TicketDraft) -> None:
        if not self._live:
            self._send(draft)
            return
        self._ask_live(f"{draft.side.value.upper()} {draft.amount:.8g} {draft.symbol}"
                       f" ({draft.type.value})", "Send live order", lambda: self._send(draft))

    def _ask_live(self, what: str, button: str, send: Callable[[], None]) -> None:
        """Every order with real money waits for the user's yes (Cancel is the default)."""
        confirm = QMessageBox(QMessageBox.Icon.Warning, "Send a live order?",
                              f"{what} on {self._orders.venue.display_name}."
                              "\n\nThis order uses real money.",
                              QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel,
                              self._window)
        confirm.button(QMessageBox.StandardButton.Ok).setText(button)
        confirm.setDefaultButton(QMessageBox.StandardButton.Cancel)
        confirm.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        confirm.accepted.connect(send)
        self._confirm = confirm
        confirm.open()  # never exec(): a nested loop would run asyncio steps inside a slot

    @property
    def live(self) -> bool:
        """Whether orders go to an exchange with real money (each asks for confirmation)."""
        return self._live

    @property
    def confirmation(self) -> QMessageBox | None:
        """The live-order confirmation last opened (for tests)."""
        return self._confirm

    def _send(self, draft: TicketDraft) -> None:
        self._ticket.set_busy(True)
        if self._spawn(self._submit(draft), "ticket-submit") is None:
            self._ticket.show_result(False, "Not sent: trading is not running")

    async def _submit(self, draft: TicketDraft) -> None:
        try:
            submission = await self._orders.submit(self._intent(draft),
                                                   prices=self._prices(draft.symbol))
        except TerminalError as error:
            self._ticket.show_result(False, f"Not sent: {error}")
            self._window.notify(Severity.ERROR, f"Order failed: {draft.side.value}"
                                f" {draft.symbol}", str(error))
            return
        self._show_submission(submission)

    def _show_submission(self, submission: Submission) -> None:
        reason = submission.rejected_reason
        order = submission.order
        if order is None or reason is not None:
            # The window's notifications already report refusals and rejections.
            self._ticket.show_result(False, f"Rejected: {reason}")
            return
        verb = order.side.value.capitalize()
        if order.status is OrderStatus.FILLED:
            price = f" at {order.average_price}" if order.average_price is not None else ""
            self._ticket.show_result(True, f"Filled: {verb} {order.filled} {order.symbol}{price}")
        else:
            self._ticket.show_result(
                True, f"Placed: {verb} {order.amount} {order.symbol}"
                      f" ({order.type.value}, {order.status.value.replace('_', ' ')})")
            self._window.notify(Severity.INFO, f"Order placed: {order.side.value}"
                                f" {order.symbol}",
                                f"{order.type.value} {order.amount}", desktop=False)
        self.refresh()

    def _on_ticket_lines(self, lines: list[PriceLine]) -> None:
        self._window.chart.set_price_lines(lines)

    def _prices(self, symbol: str) -> dict[str, float]:
        price = self._marks.get(symbol)
        return {} if price is None else {symbol: price}

    # -- positions and orders ---------------------------------------------------------------

    def close_position(self, symbol: str) -> None:
        """Sell the whole position at market (after a confirmation when trading live)."""
        if not self._live:
            self._spawn(self._close(symbol), f"close-{symbol}")
            return
        self._ask_live(f"SELL the whole {symbol} position at market", "Close position",
                       lambda: self._spawn(self._close(symbol), f"close-{symbol}"))

    async def _close(self, symbol: str) -> None:
        try:
            submission = await self._orders.close_position(symbol)
        except TerminalError as error:
            self._window.notify(Severity.ERROR, f"Cannot close {symbol}", str(error))
            return
        if submission.rejected_reason is None:
            self._window.notify(Severity.INFO, f"Closing {symbol}",
                                "Market sell of the whole position sent.", desktop=False)
        self.refresh()

    def cancel_order(self, client_order_id: str) -> None:
        self._spawn(self._cancel(client_order_id), f"cancel-{client_order_id}")

    async def _cancel(self, client_order_id: str) -> None:
        try:
            order = await self._orders.cancel(client_order_id)
        except TerminalError as error:
            self._window.notify(Severity.ERROR, "Cannot cancel the order", str(error))
            return
        self._window.notify(Severity.INFO, f"Order {order.status.value}",
                            f"{order.side.value} {order.amount} {order.symbol}", desktop=False)
        self.refresh()

    # -- refreshing -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring every panel up to date soon (refreshes are coalesced)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _start_refresh(self) -> None:
        if not self._started:
            return
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        if self._spawn(self._refresh(), "trading-refresh") is None:
            self._refreshing = False

    async def _refresh(self) -> None:
        try:
            self._balances = list(await self._orders.venue.fetch_balances())
        except TerminalError as error:
            log.warning("cannot read the balances: %s", error)
        finally:
            self._refreshing = False
        try:
            self._show_positions()
            self._show_available()
            self._show_history()
            self._show_chart_layers()
            self._show_dashboard()
        except TerminalError as error:
            self._window.show_error(str(error))
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def _show_positions(self) -> None:
        rows = [PositionRow(p.symbol, float(p.amount), float(p.average_price),
                            self._marks.get(p.symbol), float(p.realized_pnl),
                            self._window.price_decimals(p.symbol), self._orders.is_dust(p))
                for p in self._orders.positions()]
        self._positions.set_positions(rows)

    def _show_available(self) -> None:
        symbol = self._ticket.symbol
        if not symbol:
            return
        base, _, quote = symbol.partition("/")
        free = {b.currency: float(b.free) for b in self._balances}
        self._ticket.set_available(free.get(quote, 0.0), free.get(base, 0.0))

    def _show_chart_layers(self) -> None:
        orders = self._orders.open_orders()
        decimals = {o.symbol: self._window.price_decimals(o.symbol) for o in orders}
        self._positions.set_orders(orders, decimals)
        symbol = self._window.symbol
        if symbol is None:
            return
        lines = []
        for order in orders:
            price = order.price if order.price is not None else order.stop_price
            if order.symbol == symbol and price is not None:
                label = f"{order.side.value.upper()} {order.amount:g}"
                lines.append(PriceLine(float(price), label, order.side.value))
        self._window.chart.set_order_lines(lines)
        fills = self._store.orders.fills(venue=self._orders.venue.id, symbol=symbol)
        self._window.set_fill_markers(symbol, [
            TradeMarker(f.timestamp, float(f.price),
                        Side.BUY if f.side is OrderSide.BUY else Side.SELL,
                        f"{f.side.value} {f.amount:g}") for f in fills])

    def _show_history(self) -> None:
        query: HistoryQuery = self._history.query()
        venue = self._orders.venue.id
        everything = self._store.orders.trades(TradeFilter(venue=venue))
        strategies = sorted({record.strategy for record in everything})
        self._history.set_choices(self._window.market_symbols(), strategies)
        records = self._store.orders.trades(TradeFilter(
            venue=venue, start_ms=query.start_ms, end_ms=query.end_ms, symbol=query.symbol,
            side=query.side, strategy=query.strategy,
            mode=None if query.mode is None else TradingMode(query.mode)))
        self._history.set_trades([TradeLine(r.trade, r.strategy, r.mode.value)
                                  for r in records])

    def _show_dashboard(self) -> None:
        venue = self._orders.venue.id
        fills = self._store.orders.fills(venue=venue)
        trades = [r.trade for r in self._store.orders.trades(TradeFilter(venue=venue))]
        now = self._window.market_now_ms()
        prices: dict[str, PriceHistory] = {}
        if fills:
            bars = min(CURVE_BARS, (now - fills[0].timestamp) // CURVE_TIMEFRAME.ms + 2)
            for symbol in sorted({f.symbol for f in fills}):
                series = self._window.market_history(symbol, CURVE_TIMEFRAME, int(bars))
                if series is not None:
                    closes = series.close + 0.0
                    prices[symbol] = PriceHistory(
                        [int(t) + CURVE_TIMEFRAME.ms for t in series.open_time],
                        closes.tolist())
        quote = str(getattr(self._orders.venue, "quote", "") or self._default_quote())
        summary = summarize_account(quote=quote, balances=self._balances, fills=fills,
                                    trades=trades, marks=self._marks, prices=prices, now_ms=now)
        self._dashboard.set_summary(summary)

    def _default_quote(self) -> str:
        symbols = self._window.market_symbols()
        return symbols[0].partition("/")[2] if symbols else "USDT"

    def _on_exported(self, path: str, error: object) -> None:
        if error is None:
            self._window.notify(Severity.SUCCESS, "Trades exported", path, desktop=False)
        else:
            self._window.notify(Severity.ERROR, "Export failed", str(error), desktop=False)

    @property
    def marks(self) -> dict[str, float]:
        return dict(self._marks)

    def set_mark(self, symbol: str, price: float) -> None:
        """A latest price known from elsewhere (start-up: the last stored close)."""
        self._marks[symbol] = price
        if symbol == self._ticket.symbol:
            self._ticket.set_last_price(price)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
