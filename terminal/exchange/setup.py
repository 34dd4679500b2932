"""Which market the window shows and where its orders go, as the settings say.

Three set-ups, named as the status bar names them:

* **SIMULATED**: the built-in simulated market, paper trading on its prices (account
  ``paper``). Its clock is the market's own, which may run faster than the wall clock.
* **PAPER**: an exchange's public market data (no key), paper trading on those prices in an
  account of its own (``paper-binance``: the same one ``paper --exchange binance`` uses).
* **LIVE**: the exchange's market data, and orders sent to the exchange with the API key
  stored for it (or given by ``--keys-from-env``).

When the settings ask for something that cannot be had (an exchange ccxt does not know, live
trading without a stored key, a keyring that cannot be read), the window opens on the nearest
set-up that moves less money, and says why. It never goes the other way: nothing ever falls
into live trading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import TerminalError
from terminal.core.fills import FillModel
from terminal.core.model import VenueKind
from terminal.core.portfolio import build_positions
from terminal.core.ports import MarketDataVenue, TradingVenue
from terminal.core.secrets import ApiCredentials, KeyStore
from terminal.core.settings import Settings
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.exchange.paper import PaperVenue, paper_account_id
from terminal.exchange.simulated import DEFAULT_SEED, MarketGenerator, SimulatedMarket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Venues:
    """The market the window shows, and the account its orders go to.

    ``paper`` is that account when it is a paper one (None when trading live). ``pairs``
    are the symbols to follow (None: every one the market lists, as on the simulated
    market). ``notice`` says why this is not the set-up the settings asked for.
    """

    market: MarketDataVenue
    clock: Clock
    account: TradingVenue
    paper: PaperVenue | None
    kind: VenueKind
    history_days: int
    pairs: tuple[str, ...] | None
    notice: str | None = None

    @property
    def mode(self) -> TradingMode:
        return TradingMode.LIVE if self.kind is VenueKind.LIVE else TradingMode.PAPER


def open_venues(settings: Settings, store: Store, *, keys: KeyStore,
                fill_model: FillModel, sim_speed: float | None = None,
                api_url: str | None = None) -> Venues:
    """Build the venues ``settings`` ask for, or the nearest safer ones (see the module).

    ``sim_speed`` overrides the simulated market's speed; ``api_url`` sends an exchange's
    REST requests to another host (a local mirror, or the tests' emulator).
    """
    market = settings.market
    if market.simulated:
        return _simulated(settings, store, fill_model, sim_speed)
    # Imported here: ccxt takes a noticeable time to import, which the simulated market
    # (the default) never needs.
    from terminal.exchange.ccxt_venue import CcxtVenue

    credentials, notice = _live_key(keys, market.source) if market.live_trading else (None, None)
    try:
        # A REST mirror serves no websocket streams: live data is polled through it. With a
        # key, one venue serves both prices and orders: one connection, one clock offset,
        # one rate limiter.
        venue = CcxtVenue(market.source, sandbox=market.sandbox, clock=SystemClock(),
                          api_base_url=api_url, websocket=api_url is None,
                          poll_interval_s=settings.data.poll_interval_s,
                          api_key=credentials.api_key if credentials else None,
                          secret=credentials.secret if credentials else None,
                          password=credentials.password if credentials else None)
    except TerminalError as error:
        return _simulated(settings, store, fill_model, sim_speed,
                          notice=f"Cannot use the market source {market.source!r} ({error});"
                                 " the simulated market is shown instead. Choose another"
                                 " source in Preferences → Market.")
    pairs = _followed_pairs(settings, store, venue.id)
    if credentials is not None:
        return Venues(venue, SystemClock(), venue, None, VenueKind.LIVE, market.history_days,
                      pairs)
    clock = SystemClock()
    paper = PaperVenue(store, venue, venue_id=paper_account_id(venue.id),
                       fill_model=fill_model, clock=clock)
    return Venues(venue, clock, paper, paper, VenueKind.PAPER, market.history_days, pairs,
                  notice)


def _live_key(keys: KeyStore, exchange: str) -> tuple[ApiCredentials | None, str | None]:
    """The key live trading on ``exchange`` uses, or None and why trading stays on paper."""
    try:
        credentials = keys.load(exchange)
    except TerminalError as error:
        reason = f"the API key cannot be read: {error}"
    else:
        if credentials is not None:
            return credentials, None
        reason = f"no API key is stored for {exchange} (File → API keys adds one)"
    return None, f"Live trading is on in the settings, but {reason}. Trading on paper instead."


def exchange_pairs(settings: Settings) -> tuple[str, ...]:
    """The pairs followed on an exchange: the traded ones, then the watchlist's."""
    return tuple(dict.fromkeys((*settings.trading.pairs, *settings.market.watchlist)))


def _followed_pairs(settings: Settings, store: Store, market_id: str) -> tuple[str, ...]:
    """The settings' pairs plus those the account still has orders or holdings in: an
    order on a pair dropped from the settings must go on meeting its prices."""
    held: set[str] = set()
    for account in (market_id, paper_account_id(market_id)):
        held.update(r.order.symbol for r in store.orders.orders(venue=account, open_only=True))
        book, _trades = build_positions(account, store.orders.fills(venue=account))
        held.update(p.symbol for p in book.positions() if p.amount > 0)
    return tuple(dict.fromkeys((*exchange_pairs(settings), *sorted(held))))


def _simulated(settings: Settings, store: Store, fill_model: FillModel,
               sim_speed: float | None, notice: str | None = None) -> Venues:
    simulated = settings.simulated
    seed = DEFAULT_SEED if simulated.seed is None else simulated.seed
    venue = SimulatedMarket(seed=seed,
                            speed=sim_speed if sim_speed is not None else simulated.speed,
                            start_ms=_resume_time(store, MarketGenerator(seed).venue_id))
    paper = PaperVenue(store, venue, venue_id=paper_account_id(venue.id), fill_model=fill_model,
                       clock=venue)
    return Venues(venue, venue, paper, paper, VenueKind.SIMULATED, simulated.history_days,
                  None, notice)


def _resume_time(store: Store, venue_id: str) -> int | None:
    """Where a simulated market that ran faster than real time last time stopped.

    Its history then reaches past the wall clock; the market carries on from there instead
    of showing a present that is older than candles already on the chart.
    """
    ends = [summary.last_time + summary.key.timeframe.ms for summary in store.candles.summaries()
            if summary.key.venue == venue_id]
    latest = max(ends, default=None)
    return latest if latest is not None and latest > SystemClock().now_ms() else None


def describe(venues: Venues) -> str:
    """One line for the log: what the window shows and where orders go."""
    return (f"{venues.kind.label}: prices from {venues.market.display_name},"
            f" orders to {venues.account.display_name}")

