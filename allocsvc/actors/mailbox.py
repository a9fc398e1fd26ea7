"""Bounded mailboxes and asks.

Owns ``Envelope`` (a command plus a one-shot reply slot) and ``Mailbox``. ``ask`` returns the
actor's real result or raises its real error (not wrapped in an ExceptionGroup); when an actor
stops, queued asks fail with ``ActorStoppedError``. A mailbox may have an ``on_idle`` hook: when
the actor asks for the next envelope and none is queued, the hook may passivate the actor (it
closes the send side), and the receive ends with ``EndOfChannel`` instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
import outcome
import trio

from allocsvc.errors import ActorStoppedError

C = TypeVar("C")
R = TypeVar("R")

DEFAULT_CAPACITY = 64


class Envelope(Generic[C, R]):
    """A command on its way to an actor, with where to put the answer."""

    __slots__ = ("_done", "_result", "command")

    def __init__(self, command: C) -> None:
        self.command = command
        self._done = trio.Event()
        self._result: outcome.Outcome[R] | None = None

    def reply(self, result: outcome.Outcome[R]) -> None:
        """Deliver the answer (first one wins)."""
        if self._result is None:
            self._result = result
            self._done.set()

    async def answer(self) -> R:
        """Wait for the answer and unwrap it."""
        await self._done.wait()
        assert self._result is not None
        return self._result.unwrap()


class MailboxStatistics(msgspec.Struct, frozen=True):
    """Queue depth and capacity."""

    queued: int
    capacity: int


class Receiver(Generic[C, R]):
    """The actor's end of a mailbox; knows whether the actor is waiting for work."""

    __slots__ = ("_channel", "_on_idle", "waiting")

    def __init__(self, channel: trio.MemoryReceiveChannel[Envelope[C, R]], on_idle: Callable[[], bool] | None) -> None:
        self._channel = channel
        self._on_idle = on_idle
        self.waiting = False
        """The actor is blocked in ``receive`` with nothing queued."""

    def empty(self) -> bool:
        """Nothing queued and no sender waiting for room."""
        stats = self._channel.statistics()
        return stats.current_buffer_used == 0 and stats.tasks_waiting_send == 0

    async def receive(self) -> Envelope[C, R]:
        """The next envelope; ``EndOfChannel`` once closed and drained, or when ``on_idle`` passivated."""
        if self._on_idle is not None and self.empty() and self._on_idle():
            raise trio.EndOfChannel
        self.waiting = True
        try:
            return await self._channel.receive()
        finally:
            self.waiting = False

    def receive_nowait(self) -> Envelope[C, R]:
        """The next queued envelope, or ``trio.WouldBlock``."""
        return self._channel.receive_nowait()


class Mailbox(Generic[C, R]):
    """A bounded FIFO of envelopes, processed one at a time in arrival order."""

    __slots__ = ("capacity", "receive", "send")

    def __init__(self, capacity: int = DEFAULT_CAPACITY, on_idle: Callable[[], bool] | None = None) -> None:
        self.capacity = capacity
        self.send, channel = trio.open_memory_channel[Envelope[C, R]](capacity)
        self.receive = Receiver(channel, on_idle)

    async def ask(self, command: C) -> R:
        """Send a command and wait for its answer."""
        envelope: Envelope[C, R] = Envelope(command)
        try:
            await self.send.send(envelope)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise ActorStoppedError("allocation actor is not running") from exc
        return await envelope.answer()

    def close(self) -> None:
        """Refuse new asks and fail the queued ones."""
        self.send.close()
        while True:
            try:
                envelope = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            envelope.reply(outcome.Error(ActorStoppedError("allocation actor stopped")))

    def statistics(self) -> MailboxStatistics:
        """Current depth."""
        return MailboxStatistics(queued=self.send.statistics().current_buffer_used, capacity=self.capacity)
