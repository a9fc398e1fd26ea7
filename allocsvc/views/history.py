"""Reading the committed log back: by stream, by position, and folded as of an index.

Owns ``LogHistory``, which the full-history endpoint, time travel and the event stream share:

- the newest records in memory, each with its stream's object as of it (a tail fed by the read
  model's commit listener), so a caught-up event-stream follower neither reads nor folds;
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
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import msgspec
import trio

from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.events import Recorded
from allocsvc.domain.model import Allocation, Evaluation, Job
from allocsvc.errors import LogCorruptError
from allocsvc.store.codec import verified_event
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
    return read_streams_file(path, {stream: upto})[stream]


def read_streams_file(path: Path, wanted: Mapping[str, int]) -> dict[str, list[Recorded]]:
    """Several streams' records, each up to its own index, over one read-only connection."""
    conn = connect(path, readonly=True)
    try:
        return {stream: _stream_rows(conn, stream, upto) for stream, upto in wanted.items()}
    finally:
        conn.close()


def _stream_rows(conn: sqlite3.Connection, stream: str, upto: int) -> list[Recorded]:
    rows = conn.execute(
        "SELECT idx, version, time, data, crc FROM events WHERE stream = ? AND idx <= ? ORDER BY version",
        (stream, upto),
    ).fetchall()
    out: list[Recorded] = []
    for expected, (idx, version, time, data, crc) in enumerate(rows, start=1):
        if version != expected:
            raise LogCorruptError(f"stream {stream} jumps to version {version}, expected {expected}", position=idx)
        out.append(Recorded(index=idx, stream=stream, version=version, time=time, event=verified_event(data, crc, idx)))
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


StreamObject = Allocation | Job | Evaluation
"""What a record's stream is, as a frozen struct: an allocation (without its Job), a job, an eval."""


def stream_object(stream: str, state: ClusterState) -> StreamObject | None:
    """The object ``stream`` folds into in ``state`` (None for other streams or if absent)."""
    kind, _, key = stream.partition("/")
    if kind == "alloc":
        agg = state.allocs.get(key)
        return None if agg is None else agg.alloc
    if kind == "job":
        namespace, _, job_id = key.partition("/")
        record = state.jobs.get((namespace, job_id))
        return None if record is None else record.current
    if kind == "eval":
        return state.evals.get(key)
    return None


class LogHistory:
    """Tail and per-stream access to one log; ``apply`` must see every committed record in order."""

    def __init__(self, *, tail_size: int = TAIL_SIZE) -> None:
        self._tail_size = tail_size
        self._tail: list[Recorded] = []
        self._objects: list[StreamObject | None] = []
        self._streams: dict[str, list[Recorded]] | None = None

    def apply(self, recorded: Recorded, state: ClusterState) -> None:
        """Remember a record just folded into ``state``, with its stream's object as of it.

        Called by the read model's commit listener right after ``state.apply(recorded)``; the
        objects are frozen, so keeping them costs a reference.
        """
        tail, objects = self._tail, self._objects
        if tail and recorded.index != tail[-1].index + 1:
            tail.clear()
            objects.clear()
        tail.append(recorded)
        objects.append(stream_object(recorded.stream, state))
        if len(tail) > 2 * self._tail_size:
            del tail[: len(tail) - self._tail_size]
            del objects[: len(objects) - self._tail_size]
        if self._streams is not None:
            self._streams.setdefault(recorded.stream, []).append(recorded)

    def object_at(self, index: int) -> StreamObject | None:
        """The stream object as of record ``index`` if the record is still in the tail."""
        tail = self._tail
        if not tail or not tail[0].index <= index <= tail[-1].index:
            return None
        return self._objects[index - tail[0].index]

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
        return (await self.streams_records(log, {stream: upto}))[stream]

    async def streams_records(self, log: EventLog, wanted: Mapping[str, int]) -> dict[str, list[Recorded]]:
        """Several streams' records, each with index <= its own bound (one thread hop for SQLite)."""
        if not wanted:
            return {}
        if isinstance(log, SqliteEventLog):
            path = log.path
            return await trio.to_thread.run_sync(read_streams_file, path, dict(wanted))
        if self._streams is None:
            streams: dict[str, list[Recorded]] = {}
            for recorded in log.iter_records():
                streams.setdefault(recorded.stream, []).append(recorded)
            self._streams = streams
        out: dict[str, list[Recorded]] = {}
        for stream, upto in wanted.items():
            records = self._streams.get(stream, [])
            out[stream] = records[: bisect.bisect_right(records, upto, key=lambda r: r.index)]
        return out

    def statistics(self) -> HistoryStatistics:
        """Tail size, its first index and how many streams are indexed in memory."""
        return HistoryStatistics(
            tail_records=len(self._tail),
            tail_first_index=self._tail[0].index if self._tail else 0,
            indexed_streams=len(self._streams or {}),
        )
