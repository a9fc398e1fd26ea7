"""Reading the committed log back: by stream, by position, and folded as of an index.

Owns ``LogHistory``, which the full-history endpoint, time travel and the event stream share:

- the newest records in memory (a tail fed by the read model's commit listener), so a caught-up
  event-stream follower never touches the disk;
- ``records_after``: records in index order after a position, from the tail or else the log;
- ``stream_records``: one stream's records up to an index. SQLite answers from its
  ``UNIQUE(stream, version)`` index; any other log gets a per-stream index built on first use.

``fold_streams`` is the ``ClusterState`` fold over a few streams' records. Every stream's state
depends only on its own records (an allocation on ``alloc/<id>``, a job's versions on
``job/<ns>/<id>``, an evaluation on ``eval/<id>``), so folding just those streams up to N gives
exactly what a full replay up to N gives for them.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import msgspec
import trio

from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.events import Recorded
from allocsvc.errors import LogCorruptError
from allocsvc.store.codec import checksum, decode_event
from allocsvc.store.log import EventLog
from allocsvc.store.sqlite import SqliteEventLog, connect, iter_file_records

TAIL_SIZE = 4096
"""Newest records kept in memory (at least this many once the log has them)."""

READ_CHUNK = 512
"""Most records one ``records_after`` call returns."""


class HistoryStatistics(msgspec.Struct, frozen=True):
    """Live numbers for benchmarks and debugging."""

    tail_records: int
    tail_first_index: int
    indexed_streams: int


def read_stream_file(path: Path, stream: str, upto: int) -> list[Recorded]:
    """One stream's records with index <= ``upto`` from a SQLite log file (safe on a live log).

    Raises LogCorruptError naming the index of a version gap, a checksum mismatch or an
    undecodable event.
    """
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT idx, version, time, data, crc FROM events WHERE stream = ? AND idx <= ? ORDER BY version",
            (stream, upto),
        ).fetchall()
    finally:
        conn.close()
    out: list[Recorded] = []
    for expected, (idx, version, time, data, crc) in enumerate(rows, start=1):
        if version != expected:
            raise LogCorruptError(f"stream {stream} jumps to version {version}, expected {expected}", position=idx)
        if checksum(data) != crc:
            raise LogCorruptError("checksum mismatch", position=idx)
        try:
            event = decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise LogCorruptError(f"undecodable event: {exc}", position=idx) from exc
        out.append(Recorded(index=idx, stream=stream, version=version, time=time, event=event))
    return out


def _take(records: Iterator[Recorded], *, upto: int, limit: int) -> list[Recorded]:
    """Up to ``limit`` records with index <= ``upto``; closes the iterator."""
    try:
        return list(itertools.islice(itertools.takewhile(lambda r: r.index <= upto, records), limit))
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def fold_streams(*streams: Iterable[Recorded]) -> ClusterState:
    """The ClusterState of the given streams' records, merged in index order."""
    state = ClusterState()
    state.apply_all(heapq.merge(*streams, key=lambda r: r.index))
    return state


class LogHistory:
    """Tail and per-stream access to one log; ``apply`` must see every committed batch in order."""

    def __init__(self, *, tail_size: int = TAIL_SIZE) -> None:
        self._tail_size = tail_size
        self._tail: list[Recorded] = []
        self._streams: dict[str, list[Recorded]] | None = None

    def apply(self, records: Sequence[Recorded]) -> None:
        """Remember a committed batch (called from the read model's commit listener)."""
        if not records:
            return
        tail = self._tail
        if tail and records[0].index != tail[-1].index + 1:
            tail.clear()
        tail.extend(records)
        if len(tail) > 2 * self._tail_size:
            del tail[: len(tail) - self._tail_size]
        if self._streams is not None:
            for recorded in records:
                self._streams.setdefault(recorded.stream, []).append(recorded)

    def tail_after(self, after: int, *, upto: int, limit: int = READ_CHUNK) -> list[Recorded] | None:
        """Records in (after, upto] from memory; None when ``after`` is older than the tail."""
        tail = self._tail
        if not tail or after + 1 < tail[0].index:
            return None
        first = tail[0].index
        start = after + 1 - first
        stop = min(start + limit, upto + 1 - first)
        return tail[start:stop] if stop > start else []

    async def records_after(self, log: EventLog, after: int, *, upto: int, limit: int = READ_CHUNK) -> list[Recorded]:
        """Records with after < index <= upto in index order, at most ``limit`` of them.

        ``upto`` must not exceed ``log.last_index`` read in the caller's trio task, so records
        committed to disk but not yet applied to the read model are never returned.
        """
        if upto <= after:
            return []
        cached = self.tail_after(after, upto=upto, limit=limit)
        if cached is not None:
            return cached
        if isinstance(log, SqliteEventLog):
            path = log.path
            chunk = min(limit, upto - after)
            return await trio.to_thread.run_sync(
                lambda: _take(iter_file_records(path, after, chunk=chunk), upto=upto, limit=limit)
            )
        return _take(iter(log.iter_records(after)), upto=upto, limit=limit)

    async def stream_records(self, log: EventLog, stream: str, *, upto: int) -> list[Recorded]:
        """One stream's records with index <= ``upto``, in order."""
        if isinstance(log, SqliteEventLog):
            path = log.path
            return await trio.to_thread.run_sync(read_stream_file, path, stream, upto)
        if self._streams is None:
            streams: dict[str, list[Recorded]] = {}
            for recorded in log.iter_records():
                streams.setdefault(recorded.stream, []).append(recorded)
            self._streams = streams
        records = self._streams.get(stream, [])
        end = bisect.bisect_right(records, upto, key=lambda r: r.index)
        return records[:end]

    def statistics(self) -> HistoryStatistics:
        """Tail size, its first index and how many streams are indexed in memory."""
        return HistoryStatistics(
            tail_records=len(self._tail),
            tail_first_index=self._tail[0].index if self._tail else 0,
            indexed_streams=len(self._streams or {}),
        )
