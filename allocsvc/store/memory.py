"""In-memory event log adapter: the log contract without durability, for tests and simulation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from allocsvc.domain.events import Recorded
from allocsvc.store.log import CommitListener, StreamWrite, check_and_number


class MemoryEventLog:
    """Keeps records in a list; appends commit immediately."""

    def __init__(self) -> None:
        self._records: list[Recorded] = []
        self._versions: dict[str, int] = {}
        self._listeners: list[CommitListener] = []

    @property
    def last_index(self) -> int:
        return len(self._records)

    def subscribe(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    async def append(self, writes: Sequence[StreamWrite], *, time: int) -> list[Recorded]:
        records = check_and_number(writes, self._versions, self.last_index + 1, time)
        self._records.extend(records)
        for listener in self._listeners:
            listener(records)
        return records

    def iter_records(self, after: int = 0) -> Iterator[Recorded]:
        yield from self._records[after:]

    def stream_version(self, stream: str) -> int:
        return self._versions.get(stream, 0)
