"""Narrow wake-ups for blocking queries.

Owns ``WatchHub``: a ``trio.Event`` per watched key (``alloc:<id>``, ``table:allocs`` …) created
only while somebody waits. A commit sets and forgets the events of the keys it touched, so a
change to allocation A never wakes a reader blocked on allocation B. A wait on several keys (an
allocation plus ``table:acl``) parks on one private event registered under each key, so a
blocked read costs one event and no extra tasks (10,000 waiters: design/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import trio


class WatchStatistics(msgspec.Struct, frozen=True):
    """Live numbers for benchmarks and debugging.

    ``wakeups`` counts keys fired while somebody watched them; ``woken`` counts the waiting
    tasks those firings released.
    """

    watched_keys: int
    wakeups: int
    woken: int = 0


class WatchHub:
    """Per-key events, swapped on every notify (trio events cannot un-happen)."""

    def __init__(self) -> None:
        self._events: dict[str, trio.Event] = {}
        self._multi: dict[str, dict[trio.Event, None]] = {}
        self._wakeups = 0
        self._woken = 0

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
            multi = self._multi.pop(key, None)
            if event is None and multi is None:
                continue
            self._wakeups += 1
            if event is not None:
                self._woken += event.statistics().tasks_waiting
                event.set()
            if multi is not None:
                for waiter in multi:
                    if not waiter.is_set():
                        self._woken += 1
                        waiter.set()

    async def wait(self, keys: Iterable[str]) -> None:
        """Wait for the next change to any of ``keys``; leave no idle entry behind.

        Cancellation (a client disconnect, a timeout) removes the waiter from every key.
        """
        keys = tuple(keys)
        if len(keys) == 1:
            key = keys[0]
            event = self.event_for(key)
            try:
                await event.wait()
            finally:
                if not event.is_set() and event.statistics().tasks_waiting == 0 and self._events.get(key) is event:
                    del self._events[key]
            return
        mine = trio.Event()
        for key in keys:
            self._multi.setdefault(key, {})[mine] = None
        try:
            await mine.wait()
        finally:
            # Woken by one key or cancelled: either way drop this waiter from the other keys.
            for key in keys:
                waiters = self._multi.get(key)
                if waiters is not None:
                    waiters.pop(mine, None)
                    if not waiters:
                        del self._multi[key]

    def statistics(self) -> WatchStatistics:
        """Current watched-key count and total wake-ups."""
        return WatchStatistics(
            watched_keys=len(self._events.keys() | self._multi.keys()), wakeups=self._wakeups, woken=self._woken
        )


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
