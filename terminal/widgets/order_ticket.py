"""The order ticket: side, type, amount (in the base currency or as a share of the balance),
protective exits, and the risk manager's verdict before anything is sent.

A view: it checks what it can check on its own (numbers, the order of TP, price and SL) and
emits a :class:`TicketDraft`; whoever owns the order manager turns it into an intent, asks for
the verdict (:meth:`OrderTicket.show_verdict`) and sends it on :attr:`OrderTicket.submitted`.
Enter sends, Esc clears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from terminal.core.model import OrderSide, OrderType
from terminal.widgets.chart_layers import PriceLine
from terminal.widgets.forms import show_state

#: Order types the ticket offers, with their labels.
TICKET_TYPES = ((OrderType.MARKET, "Market"), (OrderType.LIMIT, "Limit"),
                (OrderType.STOP, "Stop"))
#: Shares of the balance the quick buttons fill in.
QUICK_SHARES = (25, 50, 75, 100)
#: How long the ticket waits after the last keystroke before asking for a verdict.
VERDICT_DELAY_MS = 150
UNIT_BASE = "base"
UNIT_PERCENT = "percent"


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """An order as typed: ``amount`` is in the base currency (a share was converted)."""

    symbol: str
    side: OrderSide
    type: OrderType
    amount: float
    price: float | None = None
    stop_price: float | None = None
    take_profit: float | None = None
    stop_loss: float | None = None
    trailing_stop_pct: float | None = None

    @property
    def reference_price(self) -> float | None:
        return self.price or self.stop_price


class TicketError(ValueError):
    """What is wrong with the ticket's input, in words for the user."""


def _number(text: str, name: str, *, optional: bool) -> float | None:
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        if optional:
            return None
        raise TicketError(f"enter the {name}")
    try:
        value = float(cleaned)
    except ValueError:
        raise TicketError(f"the {name} must be a number, not {text.strip()!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise TicketError(f"the {name} must be positive")
    return value


class OrderTicket(QWidget):
    """Ticket for one symbol; :meth:`set_market` says which and what the account holds."""

    #: A valid draft changed (ask for a verdict); None when the input has an error.
    draft_changed = Signal(object)
    #: The user sent the ticket (Enter or the button): a :class:`TicketDraft`.
    submitted = Signal(object)
    #: Lines to draw while editing: list of :class:`PriceLine`.
    lines_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("OrderTicket")
        self._symbol = ""
        self._base = "BASE"
        self._quote = "QUOTE"
        self._price_decimals = 2
        self._last_price: float | None = None
        self._quote_free = 0.0
        self._base_free = 0.0
        self._busy = False
        self._verdict_ok = False
        self._send_when_approved = False
        self._live = False

        self._title = QLabel("No market")
        self._title.setObjectName("TicketSymbol")
        self._price = QLabel("")
        self._price.setObjectName("TicketPrice")
        self._price.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header = QHBoxLayout()
        header.addWidget(self._title)
        header.addStretch(1)
        header.addWidget(self._price)

        self._buy = QPushButton("Buy")
        self._buy.setObjectName("BuySide")
        self._sell = QPushButton("Sell")
        self._sell.setObjectName("SellSide")
        sides = QButtonGroup(self)
        sides.setExclusive(True)
        for button in (self._buy, self._sell):
            button.setCheckable(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            sides.addButton(button)
        self._buy.setChecked(True)
        side_row = QHBoxLayout()
        side_row.setSpacing(0)
        side_row.addWidget(self._buy)
        side_row.addWidget(self._sell)

        self._type = QComboBox()
        self._type.setObjectName("TicketType")
        for order_type, label in TICKET_TYPES:
            self._type.addItem(label, order_type)
        self._limit = self._edit("Limit price")
        self._stop = self._edit("Trigger price")
        self._amount = self._edit("0.00")
        self._unit = QComboBox()
        self._unit.setObjectName("TicketUnit")
        self._unit.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._unit.setMinimumContentsLength(7)
        amount_row = QHBoxLayout()
        amount_row.setSpacing(4)
        amount_row.addWidget(self._amount, 1)
        amount_row.addWidget(self._unit)
        shares = QHBoxLayout()
        shares.setSpacing(4)
        self._share_buttons: list[QPushButton] = []
        for share in QUICK_SHARES:
            button = QPushButton(f"{share}%")
            button.setObjectName("ShareButton")
            button.setToolTip(f"{share}% of what is available")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setMinimumWidth(30)
            button.clicked.connect(lambda _=False, s=share: self.set_share(s))
            shares.addWidget(button)
            self._share_buttons.append(button)
        self._take_profit = self._edit("take profit")
        self._take_profit.setToolTip("Take-profit price (optional)")
        self._stop_loss = self._edit("stop loss")
        self._stop_loss.setToolTip("Stop-loss price (optional)")
        self._trailing = self._edit("trailing stop %, optional")

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(5)
        form.addRow("Type", self._type)
        self._limit_label = QLabel("Price")
        form.addRow(self._limit_label, self._limit)
        self._stop_label = QLabel("Stop")
        form.addRow(self._stop_label, self._stop)
        form.addRow("Amount", amount_row)
        form.addRow("", shares)
        separator = QFrame()
        separator.setObjectName("TicketSeparator")
        separator.setFrameShape(QFrame.Shape.HLine)
        form.addRow(separator)
        # Take profit and stop loss side by side: the ticket must fit a short dock.
        exits = QHBoxLayout()
        exits.setSpacing(4)
        exits.addWidget(self._take_profit)
        exits.addWidget(self._stop_loss)
        form.addRow("TP / SL", exits)
        form.addRow("Trailing", self._trailing)
        self._form = form

        self._available = QLabel("")
        self._available.setObjectName("Muted")
        self._estimate = QLabel("")
        self._estimate.setObjectName("Muted")
        self._verdict = QLabel("")
        self._verdict.setObjectName("TicketVerdict")
        self._verdict.setWordWrap(True)
        self._send = QPushButton("Buy")
        self._send.setObjectName("SendBuy")
        self._send.setCursor(Qt.CursorShape.PointingHandCursor)
        self._send.clicked.connect(self.submit)
        self._result = QLabel("")
        self._result.setObjectName("TicketResult")
        self._result.setWordWrap(True)
        self._result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        column = QVBoxLayout(self)
        column.setContentsMargins(10, 6, 10, 6)
        column.setSpacing(6)
        column.addLayout(header)
        column.addLayout(side_row)
        column.addLayout(form)
        column.addWidget(self._available)
        column.addWidget(self._estimate)
        column.addWidget(self._verdict)
        column.addWidget(self._send)
        column.addWidget(self._result)
        column.addStretch(1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(VERDICT_DELAY_MS)
        self._timer.timeout.connect(self._emit_draft)
        sides.buttonToggled.connect(lambda *_: self._changed())
        self._type.currentIndexChanged.connect(lambda _i: self._changed())
        self._unit.currentIndexChanged.connect(lambda _i: self._changed())
        for edit in self._edits():
            edit.textChanged.connect(lambda _t: self._changed())
            edit.installEventFilter(self)
        self._update_fields()
        self._update_units()
        self._set_verdict("", ok=False)
        self.setEnabled(False)

    def _edit(self, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setAlignment(Qt.AlignmentFlag.AlignRight)
        edit.setMinimumWidth(60)
        return edit

    def _edits(self) -> tuple[QLineEdit, ...]:
        return (self._limit, self._stop, self._amount, self._take_profit, self._stop_loss,
                self._trailing)

    # -- what the owner tells the ticket -------------------------------------------------------

    def set_market(self, symbol: str, *, price_decimals: int = 2, live: bool = False) -> None:
        """Trade ``symbol`` (``BASE/QUOTE``); ``live`` marks a venue with real money."""
        changed = symbol != self._symbol
        self._symbol = symbol
        self._base, _, self._quote = symbol.partition("/")
        self._price_decimals = price_decimals
        self._live = live
        self._title.setText(symbol)
        self.setEnabled(True)
        self._update_units()
        if changed:
            self.clear()
        self._changed()

    def set_last_price(self, price: float | None) -> None:
        self._last_price = price
        self._price.setText("" if price is None else self._format_price(price))
        self._update_estimate()

    def set_available(self, quote_free: float, base_free: float) -> None:
        """What the account can spend: free quote and base currency."""
        changed = (quote_free, base_free) != (self._quote_free, self._base_free)
        self._quote_free, self._base_free = quote_free, base_free
        self._available.setText(
            f"Available  {quote_free:,.2f} {self._quote}  ·  {base_free:,.6g} {self._base}")
        if changed and self._unit.currentData() == UNIT_PERCENT and self._amount.text().strip():
            # A share of the balance is another amount now: the last verdict was on the old.
            # A send asked for meanwhile still goes once the new verdict approves.
            send_when_approved = self._send_when_approved
            self.recheck()
            self._send_when_approved = send_when_approved

    def show_verdict(self, approved: bool, text: str) -> None:
        """The risk manager's verdict on the current draft (``text``: the reason or the
        order as it would be sent)."""
        self._set_verdict(text, ok=approved)
        waiting, self._send_when_approved = self._send_when_approved, False
        if waiting and approved:
            self.submit()

    def show_result(self, ok: bool, text: str) -> None:
        """What became of the last order sent."""
        self._busy = False
        show_state(self._result, text, "ok", ok)
        self._update_send()

    def recheck(self) -> None:
        """Ask for a new verdict on the ticket as it is (the account or the rules changed)."""
        if self._symbol:
            self._changed()

    def set_busy(self, busy: bool) -> None:
        """While an order is on its way the ticket does not send another."""
        self._busy = busy
        if busy:
            show_state(self._result, "Sending…", "ok", None)
        self._update_send()

    # -- reading ----------------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def side(self) -> OrderSide:
        return OrderSide.BUY if self._buy.isChecked() else OrderSide.SELL

    @property
    def verdict_text(self) -> str:
        return self._verdict.text()

    @property
    def result_text(self) -> str:
        return self._result.text()

    @property
    def can_send(self) -> bool:
        return self._send.isEnabled()

    def draft(self) -> TicketDraft:
        """The ticket's order; raises :class:`TicketError` saying what to fix."""
        if not self._symbol:
            raise TicketError("no market selected")
        order_type = self._type.currentData()
        assert isinstance(order_type, OrderType)
        price = stop = None
        if order_type is OrderType.LIMIT:
            price = _number(self._limit.text(), "limit price", optional=False)
        if order_type is OrderType.STOP:
            stop = _number(self._stop.text(), "trigger price", optional=False)
        entered = _number(self._amount.text(), "amount", optional=False)
        assert entered is not None
        reference = price or stop or self._last_price
        amount = entered
        if self._unit.currentData() == UNIT_PERCENT:
            if entered > 100:
                raise TicketError("a share of the balance is at most 100%")
            if self.side is OrderSide.BUY:
                if not reference:
                    raise TicketError("no price yet to convert the share into an amount")
                amount = self._quote_free * entered / 100 / reference
            else:
                amount = self._base_free * entered / 100
            if amount <= 0:
                held = self._quote if self.side is OrderSide.BUY else self._base
                raise TicketError(f"no free {held} to trade")
        take_profit = _number(self._take_profit.text(), "take profit", optional=True)
        stop_loss = _number(self._stop_loss.text(), "stop loss", optional=True)
        trailing = _number(self._trailing.text(), "trailing stop", optional=True)
        if trailing is not None and trailing >= 100:
            raise TicketError("the trailing stop is a percentage below 100")
        if reference:
            self._check_exits(reference, take_profit, stop_loss)
        return TicketDraft(self._symbol, self.side, order_type, amount, price, stop,
                           take_profit, stop_loss, trailing)

    def _check_exits(self, reference: float, take_profit: float | None,
                     stop_loss: float | None) -> None:
        buy = self.side is OrderSide.BUY
        above, below = ("take profit", "stop loss") if buy else ("stop loss", "take profit")
        high, low = (take_profit, stop_loss) if buy else (stop_loss, take_profit)
        price = self._format_price(reference)
        if high is not None and high <= reference:
            raise TicketError(f"the {above} must be above the entry price {price}")
        if low is not None and low >= reference:
            raise TicketError(f"the {below} must be below the entry price {price}")

    # -- actions ----------------------------------------------------------------------------

    def set_share(self, percent: int) -> None:
        """Fill the amount with ``percent`` of what is available."""
        index = self._unit.findData(UNIT_PERCENT)
        self._unit.setCurrentIndex(index)
        self._amount.setText(f"{percent:g}")

    def submit(self) -> None:
        """Send the ticket if its input is valid and the last verdict approved it."""
        if self._busy or not self.isEnabled():
            return
        try:
            draft = self.draft()
        except TicketError as error:
            self._set_verdict(str(error), ok=False)
            return
        if not self._verdict_ok:
            # Enter right after typing: send as soon as the pending verdict approves.
            self._send_when_approved = self._timer.isActive() or self._verdict.text() == "Checking…"
            if self._timer.isActive():
                self._timer.stop()
                self._emit_draft()
            return
        self.submitted.emit(draft)

    def clear(self) -> None:
        """Empty every field (Esc)."""
        for edit in self._edits():
            edit.blockSignals(True)
            edit.clear()
            edit.blockSignals(False)
        self._type.setCurrentIndex(0)
        self._unit.setCurrentIndex(0)
        self._result.setText("")
        self._changed()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            return self._handle_key(event)
        return super().eventFilter(watched, event)

    def _handle_key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
            return True
        if event.key() == Qt.Key.Key_Escape:
            self.clear()
            return True
        return False

    # -- internals --------------------------------------------------------------------------

    def _changed(self) -> None:
        self._update_fields()
        self._update_units()
        self._update_estimate()
        self._verdict_ok = False
        self._send_when_approved = False
        self._update_send()
        self._emit_lines()
        self._timer.start()

    def _emit_draft(self) -> None:
        if not self._symbol:
            return
        if not self._amount.text().strip():
            self._set_verdict("Enter an amount", ok=False, muted=True)
            self.draft_changed.emit(None)
            return
        try:
            draft = self.draft()
        except TicketError as error:
            self._set_verdict(str(error)[:1].upper() + str(error)[1:], ok=False)
            self.draft_changed.emit(None)
            return
        self._set_verdict("Checking…", ok=False, muted=True)
        self.draft_changed.emit(draft)

    def _emit_lines(self) -> None:
        lines: list[PriceLine] = []
        for edit, label, kind in ((self._limit, "Limit", "entry"), (self._stop, "Stop", "entry"),
                                  (self._take_profit, "TP", "take_profit"),
                                  (self._stop_loss, "SL", "stop_loss")):
            if not edit.isVisible() and edit in (self._limit, self._stop):
                continue
            try:
                value = _number(edit.text(), label, optional=True)
            except TicketError:
                continue
            if value is not None:
                lines.append(PriceLine(value, label, kind))
        reference = next((line.price for line in lines if line.kind == "entry"),
                         self._last_price)
        try:
            trailing = _number(self._trailing.text(), "trailing", optional=True)
        except TicketError:
            trailing = None
        if trailing is not None and trailing < 100 and reference:
            factor = 1 - trailing / 100 if self.side is OrderSide.BUY else 1 + trailing / 100
            lines.append(PriceLine(reference * factor, f"Trail {trailing:g}%", "trailing_stop"))
        self.lines_changed.emit(lines)

    def _update_fields(self) -> None:
        order_type = self._type.currentData()
        for label, edit, shown in ((self._limit_label, self._limit, order_type is OrderType.LIMIT),
                                   (self._stop_label, self._stop, order_type is OrderType.STOP)):
            label.setVisible(shown)
            edit.setVisible(shown)
        buy = self.side is OrderSide.BUY
        verb = "Buy" if buy else "Sell"
        self._send.setObjectName("SendBuy" if buy else "SendSell")
        suffix = "  ·  LIVE" if self._live else ""
        self._send.setText(f"{verb} {self._base}{suffix}" if self._symbol else verb)
        self._restyle(self._send)

    def _update_units(self) -> None:
        held = self._quote if self.side is OrderSide.BUY else self._base
        texts = (self._base, f"% of {held}")
        if self._unit.count() != 2:
            self._unit.blockSignals(True)
            self._unit.addItem(texts[0], UNIT_BASE)
            self._unit.addItem(texts[1], UNIT_PERCENT)
            self._unit.blockSignals(False)
        for index, text in enumerate(texts):
            self._unit.setItemText(index, text)

    def _update_estimate(self) -> None:
        try:
            draft = self.draft() if self._amount.text().strip() else None
        except TicketError:
            draft = None
        reference = None if draft is None else draft.reference_price or self._last_price
        if draft is None or not reference:
            self._estimate.setText("")
            return
        self._estimate.setText(f"≈ {draft.amount:,.6g} {self._base}  ·  "
                               f"{draft.amount * reference:,.2f} {self._quote}")

    def _update_send(self) -> None:
        self._send.setEnabled(self._verdict_ok and not self._busy and bool(self._symbol))

    def _set_verdict(self, text: str, *, ok: bool, muted: bool = False) -> None:
        self._verdict_ok = ok
        show_state(self._verdict, text, "verdict",
                   "muted" if muted or not text else "ok" if ok else "refused")
        self._update_send()

    def _format_price(self, price: float) -> str:
        return f"{price:,.{self._price_decimals}f}"

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)
