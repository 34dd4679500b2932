"""One event bus, owned by the asyncio loop's thread.

Handlers run synchronously, in subscription order, on the loop thread; state has changed before
an event is published, so a handler may read it. Code on other threads (and results arriving
from worker processes) hands events in through :meth:`EventBus.publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Name the loop whose thread owns the bus (needed for :meth:`publish_threadsafe`)."""
        self._loop = loop

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` for every published event of ``event_type``; returns an unsubscriber."""
        self._handlers[event_type].append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers[event_type]:
                self._handlers[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: object) -> None:
        # A failing subscriber must not stop the others from hearing about the event.
        for handler in list(self._handlers.get(type(event), ())):
            try:
                handler(event)
            except Exception:
                log.exception("handler %r failed on %r", handler, event)

    def publish_threadsafe(self, event: object) -> None:
        if self._loop is None:
            raise RuntimeError("EventBus.bind_loop() must be called before publish_threadsafe()")
        self._loop.call_soon_threadsafe(self.publish, event)
