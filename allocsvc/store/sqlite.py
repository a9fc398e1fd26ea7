"""Durable event log on embedded SQLite: WAL, ``synchronous=FULL``, one group-committing writer.

Owns the on-disk schema (design/event-log.md), the writer task and reading records back with
corruption checks. Appends from many actors queue on one channel; the writer drains whatever is
waiting, commits it in one transaction (one fsync), hands the records to the ordered consumer,
then acknowledges each appender. Reads use their own connections, so tools can read a live log.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time as _time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import outcome
import trio

from allocsvc.domain.events import Recorded
from allocsvc.errors import LogCorruptError
from allocsvc.store.codec import FORMAT_VERSION, checksum, encode_event, event_tag, verified_event
from allocsvc.store.log import CommitListener, StreamWrite, check_and_number

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    idx     INTEGER PRIMARY KEY,
    stream  TEXT    NOT NULL,
    version INTEGER NOT NULL,
    time    INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    data    BLOB    NOT NULL,
    crc     INTEGER NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

MAX_BATCH = 1024
"""Most append requests folded into one transaction (more wait for the next one)."""

INLINE_COMMIT_BUDGET = 0.001
"""A lone append commits on the event loop's own thread while commits take less than this
(smoothed); slower disks, and any commit with company, go to the writer thread (decision 0005)."""

_SMOOTHING = 0.2

_INSERT = "INSERT INTO events (idx, stream, version, time, type, data, crc) VALUES (?, ?, ?, ?, ?, ?, ?)"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the log database with the pragmas every connection needs."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def read_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """One value from the meta table."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def iter_file_records(path: Path, after: int = 0, *, chunk: int = 256) -> Iterator[Recorded]:
    """Yield records with index > after from a log file, checking order, checksums and schema."""
    conn = connect(path, readonly=True)
    verified = verified_event
    try:
        expected = after + 1
        while True:
            rows = conn.execute(
                "SELECT idx, stream, version, time, data, crc FROM events WHERE idx >= ? ORDER BY idx LIMIT ?",
                (expected, chunk),
            ).fetchall()
            if not rows:
                return
            for idx, stream, version, time, data, crc in rows:
                if idx != expected:
                    raise LogCorruptError(f"index gap: expected {expected}, found {idx}", position=expected)
                yield Recorded(index=idx, stream=stream, version=version, time=time, event=verified(data, crc, idx))
                expected += 1
    finally:
        conn.close()


class _WriterThread:
    """One long-lived thread that runs the writer's transactions.

    A round trip costs about 35 µs against ``trio.to_thread.run_sync``'s 70-110 µs (thread-cache
    hand-off, capacity limiter, thread renaming): a third of a single append's overhead
    (design/performance.md). A call cannot be abandoned: cancellation waits for the commit.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Callable[[outcome.Outcome[object]], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="allocsvc-sqlite-writer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, deliver = job
            deliver(outcome.capture(fn))

    async def run(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the writer thread and return its result (or raise its error)."""
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[object]) -> None:
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._jobs.put((fn, deliver))
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def stop(self) -> None:
        """Let the thread finish (after the job in flight, if any)."""
        self._jobs.put(None)


class _Pending:
    __slots__ = ("error", "records", "time", "writes")

    def __init__(self, writes: Sequence[StreamWrite], time: int) -> None:
        self.writes = writes
        self.time = time
        self.records: list[Recorded] = []
        self.error: BaseException | None = None


class _Batch:
    """Appends that share one transaction and one wake-up (one ``trio.Event`` per commit)."""

    __slots__ = ("done", "items")

    def __init__(self) -> None:
        self.items: list[_Pending] = []
        self.done = trio.Event()


class SqliteEventLog:
    """The durable adapter; create it with ``open_sqlite_log``.

    Appenders join the open batch and all wait on its one event; the writer takes whole batches
    in order. (A memory channel plus an event per append cost three times the fsync: see
    design/performance.md.)
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._listeners: list[CommitListener] = []
        rows = conn.execute("SELECT stream, MAX(version) FROM events GROUP BY stream").fetchall()
        self._versions: dict[str, int] = dict(rows)
        self._last_index: int = conn.execute("SELECT COALESCE(MAX(idx), 0) FROM events").fetchone()[0]
        self._queued: deque[_Batch] = deque()
        self._open: _Batch | None = None
        self._wake = trio.Event()
        self._closed = False
        self._stopped = False
        self.commit_delay: float = 0.0
        self.write_inline = False
        """Write on the trio thread instead of a worker thread (the simulator, for determinism)."""
        self.commits = 0
        self.inline_commits = 0
        self.commit_seconds = 0.0
        """Smoothed duration of a commit (transaction plus fsync), measured where it ran."""
        self._writer_thread: _WriterThread | None = None

    def _thread(self) -> _WriterThread:
        if self._writer_thread is None:
            self._writer_thread = _WriterThread()
        return self._writer_thread

    @property
    def last_index(self) -> int:
        return self._last_index

    def subscribe(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def stream_version(self, stream: str) -> int:
        return self._versions.get(stream, 0)

    def meta(self, key: str) -> str | None:
        """Read a meta value (node id, format version)."""
        return read_meta(self._conn, key)

    def set_meta(self, key: str, value: str) -> None:
        """Write a meta value; used once at open for the node id."""
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    async def append(self, writes: Sequence[StreamWrite], *, time: int) -> list[Recorded]:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the event log is closed")
        if self._stopped:
            raise trio.BrokenResourceError("the event log writer has stopped")
        batch = self._open
        if batch is None or len(batch.items) >= MAX_BATCH:
            batch = self._open = _Batch()
            self._queued.append(batch)
        pending = _Pending(writes, time)
        batch.items.append(pending)
        self._wake.set()
        await batch.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.records

    def iter_records(self, after: int = 0) -> Iterator[Recorded]:
        return iter_file_records(self.path, after)

    async def run_writer(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The single writer: take the oldest batch, commit once, publish in order, acknowledge."""
        task_status.started()
        try:
            while True:
                if not self._queued:
                    if self._closed:
                        return
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                batch = self._queued.popleft()
                if batch is self._open:
                    self._open = None
                await self._commit(batch)
        finally:
            self._stopped = True
            self._open = None
            if self._writer_thread is not None:
                self._writer_thread.stop()
                self._writer_thread = None
            while self._queued:
                batch = self._queued.popleft()
                for pending in batch.items:
                    pending.error = RuntimeError("log writer stopped")
                batch.done.set()

    async def _commit(self, batch: _Batch) -> None:
        undo = {w.stream: self._versions.get(w.stream) for p in batch.items for w in p.writes}
        next_index = self._last_index + 1
        accepted: list[_Pending] = []
        for pending in batch.items:
            try:
                pending.records = check_and_number(pending.writes, self._versions, next_index, pending.time)
            except Exception as exc:
                pending.error = exc
                continue
            next_index += len(pending.records)
            accepted.append(pending)
        rows = [
            (r.index, r.stream, r.version, r.time, event_tag(r.event), data, checksum(data))
            for p in accepted
            for r in p.records
            for data in (encode_event(r.event),)
        ]
        if rows:
            if self.commit_delay:
                await trio.sleep(self.commit_delay)
            try:
                if self.write_inline or self._commit_here(batch):
                    self._timed_write(rows)  # no await: nothing can cancel it
                    self.inline_commits += 1
                else:
                    with trio.CancelScope(shield=True):
                        await self._thread().run(lambda: self._timed_write(rows))
            except BaseException as exc:
                for stream, version in undo.items():
                    if version is None:
                        self._versions.pop(stream, None)
                    else:
                        self._versions[stream] = version
                for pending in accepted:
                    pending.error = exc if isinstance(exc, Exception) else RuntimeError("log writer stopped")
                batch.done.set()
                raise
            self._last_index = next_index - 1
            self.commits += 1
            committed = [r for p in accepted for r in p.records]
            for listener in self._listeners:
                listener(committed)
        batch.done.set()

    def _commit_here(self, batch: _Batch) -> bool:
        """Whether to commit on the event loop's thread instead of handing off to the writer thread.

        The hand-off costs two cross-thread wake-ups (about 100 µs here, more after idle), which is
        most of a lone append's overhead. It is skipped only when nothing can use the loop during
        the fsync: one appender, no other runnable task, and a disk whose commits stay under
        ``INLINE_COMMIT_BUDGET``. Anything else keeps the loop free while the disk works.
        """
        return (
            len(batch.items) == 1
            and self.commit_seconds < INLINE_COMMIT_BUDGET
            and trio.lowlevel.current_statistics().tasks_runnable == 0
        )

    def _timed_write(self, rows: list[tuple[int, str, int, int, str, bytes, int]]) -> None:
        start = _time.perf_counter()
        self._write_rows(rows)
        elapsed = _time.perf_counter() - start
        self.commit_seconds += _SMOOTHING * (elapsed - self.commit_seconds)

    def _write_rows(self, rows: list[tuple[int, str, int, int, str, bytes, int]]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if len(rows) == 1:  # a lone event: execute skips executemany's per-call iterator setup
                conn.execute(_INSERT, rows[0])
            else:
                conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def aclose(self) -> None:
        """Stop accepting appends; the writer finishes what is queued."""
        self._closed = True
        self._wake.set()
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_sqlite_log(path: Path) -> AsyncIterator[SqliteEventLog]:
    """Open (creating if needed) the log at ``path`` and run its writer until exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    conn.executescript(SCHEMA)
    stored = read_meta(conn, "format")
    if stored is None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('format', ?)", (str(FORMAT_VERSION),))
    elif int(stored) > FORMAT_VERSION:
        conn.close()
        raise LogCorruptError(f"log format {stored} is newer than this build supports ({FORMAT_VERSION})", position=0)
    log = SqliteEventLog(path, conn)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(log.run_writer)
            try:
                yield log
            finally:
                await log.aclose()
    finally:
        conn.close()
