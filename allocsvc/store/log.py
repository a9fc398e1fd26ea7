"""The event-log port: a narrow interface every store adapter implements.

Owns ``EventLog`` (the Protocol), ``StreamWrite`` and the version check shared by adapters.
An append is atomic across its writes: all events commit, or none. Committed records are
handed to the subscriber in global index order before ``append`` returns, which is how read
models stay read-your-writes. A networked store (PostgreSQL next) implements the same four
methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import msgspec

from allocsvc.domain.events import Event, Recorded
from allocsvc.errors import VersionConflictError


class StreamWrite(msgspec.Struct, frozen=True):
    """Events for one stream, appended only if the stream is at ``expected_version``."""

    stream: str
    expected_version: int
    events: Sequence[Event]


CommitListener = Callable[[Sequence[Recorded]], None]
"""Called with each committed batch, in index order, before the appender is acknowledged."""


class EventLog(Protocol):
    """An append-only, totally ordered, durable event log."""

    @property
    def last_index(self) -> int:
        """The index of the newest committed record (0 when empty)."""
        ...

    def subscribe(self, listener: CommitListener) -> None:
        """Register the one ordered consumer of committed records."""
        ...

    async def append(self, writes: Sequence[StreamWrite], *, time: int) -> list[Recorded]:
        """Commit all writes atomically; return their records. Raises VersionConflictError."""
        ...

    def iter_records(self, after: int = 0) -> Iterator[Recorded]:
        """Yield committed records with index > ``after``, in order (safe on a live log)."""
        ...

    def stream_version(self, stream: str) -> int:
        """The version of a stream's newest event (0 if it has none)."""
        ...


def check_and_number(
    writes: Sequence[StreamWrite], versions: dict[str, int], next_index: int, time: int
) -> list[Recorded]:
    """Validate expected versions and assign indexes; ``versions`` is updated only on success."""
    staged: dict[str, int] = {}
    records: list[Recorded] = []
    index = next_index
    for write in writes:
        current = staged.get(write.stream, versions.get(write.stream, 0))
        if current != write.expected_version:
            raise VersionConflictError(
                f"stream {write.stream} is at version {current}, expected {write.expected_version}"
            )
        for event in write.events:
            current += 1
            records.append(Recorded(index=index, stream=write.stream, version=current, time=time, event=event))
            index += 1
        staged[write.stream] = current
    versions.update(staged)
    return records
