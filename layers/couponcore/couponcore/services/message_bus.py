"""An in-process event bus: handlers run after the change that raised the event is done (the seed's
``@TransactionalEventListener(AFTER_COMMIT)``).

Events of a MySQL transaction reach it only through the unit of work, after commit. A seat given back in
Redis is an atomic step of its own, with no transaction around it: the service that gave it back
publishes ``SeatsReleased`` right after the release script answered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from couponcore.domain.events import DomainEvent
from couponcore.observability import logger

EventHandler = Callable[[Any], object]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[EventHandler]] = defaultdict(list)

    def subscribe(self, event_type: type, handler: EventHandler) -> None:
        self._handlers[event_type].append(handler)

    def publish_all(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            for handler in self._handlers[type(event)]:
                # The transaction has committed: a failing listener is logged, never surfaced to the client.
                try:
                    handler(event)
                except Exception:
                    logger.exception("event handler failed", extra={"event": repr(event)})
