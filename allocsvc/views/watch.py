"""Narrow wake-ups for blocking queries.

Owns ``WatchHub``: a ``trio.Event`` per watched key (``alloc:<id>``, ``table:allocs`` …) created
only while somebody waits. A commit sets and forgets the events of the keys it touched, so a
change to allocation A never wakes a reader blocked on allocation B.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import trio


class WatchStatistics(msgspec.Struct, frozen=True):
    """Live numbers for benchmarks and debugging."""

    watched_keys: int
    wakeups: int


class WatchHub:
    """Per-key events, swapped on every notify (trio events cannot un-happen)."""

    def __init__(self) -> None:
        self._events: dict[str, trio.Event] = {}
        self._wakeups = 0

    def event_for(self, key: str) -> trio.Event:
        """The event that fires on the next change to ``key``."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = trio.Event()
        return event

    def notify(self, keys: Iterable[str]) -> None:
        """Wake every waiter of these keys."""
        for key in keys:
            event = self._events.pop(key, None)
            if event is not None:
                self._wakeups += 1
                event.set()

    async def wait(self, keys: Iterable[str]) -> None:
        """Wait for the next change to any of ``keys``; forget events nobody waits on afterwards.

        Cancellation (a client disconnect, a timeout) leaves no idle entry behind.
        """
        pairs = [(key, self.event_for(key)) for key in keys]
        try:
            await wait_any(event for _, event in pairs)
        finally:
            for key, event in pairs:
                if not event.is_set() and event.statistics().tasks_waiting == 0 and self._events.get(key) is event:
                    del self._events[key]

    def statistics(self) -> WatchStatistics:
        """Current watched-key count and total wake-ups."""
        return WatchStatistics(watched_keys=len(self._events), wakeups=self._wakeups)


async def wait_any(events: Iterable[trio.Event]) -> None:
    """Return as soon as any of the events is set."""
    events = list(events)
    if any(e.is_set() for e in events):
        return
    if len(events) == 1:
        await events[0].wait()
        return
    async with trio.open_nursery() as nursery:
        for event in events:

            async def waiter(e: trio.Event = event) -> None:
                await e.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(waiter)
