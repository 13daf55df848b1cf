"""The simulator's fan-out: every exchange ``Result`` reaches the sockets that want it.

The venue publishes each ``Result`` the exchange returns (from a REST call, a WS request,
a market step, an expiry or a dead-man's switch firing) exactly once, in order. Public
WebSocket connections listen for book changes and trades; private connections listen for
one account's execution reports. Listeners are plain callables that must not block: a
WebSocket connection queues what it receives and writes from its own task.

This module owns the listener registry only; it knows nothing of frames or sockets.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.sim.matching import ExecEvent, Result

__all__ = ["Bus", "PrivateListener", "PublicListener"]

PublicListener = Callable[[Result], None]
"""Called with every published ``Result`` (use ``.book`` and ``.trades``)."""

PrivateListener = Callable[[tuple[ExecEvent, ...]], None]
"""Called with one account's execution reports from one ``Result``, in order."""


class Bus:
    """Publish-subscribe for exchange results. Subscribing returns the unsubscribe call."""

    def __init__(self) -> None:
        self._public: dict[int, PublicListener] = {}
        self._private: dict[str, dict[int, PrivateListener]] = {}
        self._next = 0

    def subscribe_public(self, listener: PublicListener) -> Callable[[], None]:
        key = self._key()
        self._public[key] = listener
        return lambda: self._public.pop(key, None) and None

    def subscribe_private(self, account: str, listener: PrivateListener) -> Callable[[], None]:
        key = self._key()
        listeners = self._private.setdefault(account, {})
        listeners[key] = listener
        return lambda: listeners.pop(key, None) and None

    def publish(self, result: Result) -> None:
        if result.book or result.trades:
            for listener in tuple(self._public.values()):
                listener(result)
        if result.executions and self._private:
            by_account: dict[str, list[ExecEvent]] = {}
            for event in result.executions:
                by_account.setdefault(event.order.account, []).append(event)
            for account, events in by_account.items():
                for private in tuple(self._private.get(account, {}).values()):
                    private(tuple(events))

    @property
    def public_listeners(self) -> int:
        return len(self._public)

    def _key(self) -> int:
        self._next += 1
        return self._next
