"""Bounded mailboxes and asks.

Owns ``Envelope`` (a command plus a one-shot reply slot) and ``Mailbox``. ``ask`` returns the
actor's real result or raises its real error (not wrapped in an ExceptionGroup); when an actor
stops, queued asks fail with ``ActorStoppedError``.
"""

from __future__ import annotations

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


class Mailbox(Generic[C, R]):
    """A bounded FIFO of envelopes, processed one at a time in arrival order."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.send, self.receive = trio.open_memory_channel[Envelope[C, R]](capacity)

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
