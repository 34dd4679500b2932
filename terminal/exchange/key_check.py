"""Checking an exchange API key: can it read the account, and may it withdraw funds?

Used by the API-keys dialog's "Test connection". It only reads: balances and, where the
exchange tells, the key's permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from terminal.core.errors import TerminalError
from terminal.core.model import Balance
from terminal.core.secrets import ApiCredentials
from terminal.exchange.ccxt_venue import CcxtVenue

VenueFactory = Callable[[str, ApiCredentials], CcxtVenue]


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What a key can do: the balances it read and whether it can withdraw (None: unknown).

    ``permission_error`` says why the permissions could not be read when the balances could.
    """

    exchange_id: str
    balances: tuple[Balance, ...]
    can_withdraw: bool | None
    permission_error: str | None = None

    @property
    def summary(self) -> str:
        held = [b for b in self.balances if b.total > 0]
        assets = ", ".join(f"{b.total.normalize():f} {b.currency}" for b in held[:6])
        more = f" and {len(held) - 6} more" if len(held) > 6 else ""
        return (f"Connected: the key reads the account ({len(held)} assets held"
                f"{': ' + assets if assets else ''}{more}).")


def connect(exchange_id: str, credentials: ApiCredentials) -> CcxtVenue:
    """The exchange with these keys, as the live app would reach it."""
    return CcxtVenue(exchange_id, api_key=credentials.api_key, secret=credentials.secret,
                     password=credentials.password, websocket=False)


async def check_key(exchange_id: str, credentials: ApiCredentials, *,
                    venue_factory: VenueFactory = connect) -> KeyCheck:
    """Read the balances with the key and, where the exchange tells, its withdrawal
    permission. Raises the venue's :class:`TerminalError` (authentication, network...)."""
    venue = venue_factory(exchange_id, credentials)
    try:
        balances = tuple(await venue.fetch_balances())
        try:
            can_withdraw = await venue.can_withdraw()
            problem = None
        except TerminalError as error:
            can_withdraw, problem = None, str(error)
        return KeyCheck(exchange_id, balances, can_withdraw, problem)
    finally:
        await venue.close()
