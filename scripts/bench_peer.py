"""Peer benchmark: allocsvc's SQLite log against the ``eventsourcing`` library's SQLite recorder.

Both store the same encoded events (allocsvc's msgpack bytes) in a WAL database on the same disk
in the same run. Workloads, each durable per append (``synchronous`` is read back and reported):

- append, 1 writer: one event per append, sequentially (allocsvc: one actor; eventsourcing:
  ``insert_events`` per event);
- append, 64 writers: allocsvc's group commit with 64 trio actors; eventsourcing with 64 threads;
- read: every event back in order (allocsvc: ``iter_file_records``, which also verifies checksums
  and decodes each event; eventsourcing: ``select_notifications`` pages of raw bytes).

Each repetition runs both sides once per append workload, alternating which goes first.

Called by ``bench_suite.py``; ``python scripts/bench_peer.py`` prints the JSON alone.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import trio
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_append import sample_event

from allocsvc.store.codec import encode_event
from allocsvc.store.log import StreamWrite
from allocsvc.store.sqlite import iter_file_records, open_sqlite_log

STREAMS = 64


def _stored(i: int, per_stream_version: int, ids: list[uuid.UUID]) -> StoredEvent:
    event = sample_event(i)
    return StoredEvent(
        originator_id=ids[i % STREAMS],
        originator_version=per_stream_version,
        topic=f"allocsvc.domain.events:{type(event).__name__}",
        state=encode_event(event),
    )


def _recorder(path: Path) -> tuple[SQLiteApplicationRecorder, SQLiteDatastore]:
    datastore = SQLiteDatastore(str(path), lock_timeout=60, pool_size=70, max_overflow=10)
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    return recorder, datastore


def _synchronous(datastore: SQLiteDatastore) -> int:
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        return int(cursor.fetchone()[0])


def es_append(path: Path, n: int, writers: int) -> tuple[float, int]:
    """eventsourcing: ``writers`` threads, one event per ``insert_events`` call."""
    recorder, datastore = _recorder(path)
    ids = [uuid.uuid4() for _ in range(STREAMS)]
    per_writer = n // writers

    def writer(w: int) -> None:
        for k in range(per_writer):
            i = k * writers + w
            recorder.insert_events([_stored(i, i // STREAMS + 1, ids)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    sync = _synchronous(datastore)
    datastore.close()
    return per_writer * writers / elapsed, sync


async def _allocsvc_append(path: Path, n: int, writers: int) -> float:
    async with open_sqlite_log(path) as log:
        per_writer = n // writers

        async def actor(w: int) -> None:
            for k in range(per_writer):
                i = k * writers + w
                stream = f"alloc/{i % STREAMS}"
                await log.append([StreamWrite(stream, log.stream_version(stream), [sample_event(i)])], time=i)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(actor, w)
        return per_writer * writers / (time.perf_counter() - start)


def allocsvc_append(path: Path, n: int, writers: int) -> float:
    return trio.run(_allocsvc_append, path, n, writers)


def es_read(path: Path) -> float:
    recorder, datastore = _recorder(path)
    start = time.perf_counter()
    count = 0
    position = 1
    while True:
        page = recorder.select_notifications(start=position, limit=5000)
        if not page:
            break
        count += len(page)
        position = page[-1].id + 1
    elapsed = time.perf_counter() - start
    datastore.close()
    return count / elapsed


def allocsvc_read(path: Path) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in iter_file_records(path))
    return count / (time.perf_counter() - start)


def run(*, sequential: int = 3000, concurrent: int = 20000, repeat: int = 3) -> dict[str, Any]:
    """Median events/s of each side, per workload."""
    out: dict[str, list[float]] = {k: [] for k in ("es_seq", "as_seq", "es_c64", "as_c64", "es_read", "as_read")}
    sync = -1
    for r in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for peer_first in (r % 2 == 0, r % 2 == 1):  # alternate who runs first in each pair
                if peer_first:
                    rate, sync = es_append(root / f"es-seq{r}.db", sequential, 1)
                    out["es_seq"].append(rate)
                else:
                    out["as_seq"].append(allocsvc_append(root / f"as-seq{r}.db", sequential, 1))
            for peer_first in (r % 2 == 0, r % 2 == 1):
                if peer_first:
                    rate, sync = es_append(root / f"es-c{r}.db", concurrent, 64)
                    out["es_c64"].append(rate)
                else:
                    out["as_c64"].append(allocsvc_append(root / f"as-c{r}.db", concurrent, 64))
            out["es_read"].append(es_read(root / f"es-c{r}.db"))
            out["as_read"].append(allocsvc_read(root / f"as-c{r}.db"))
    return {"samples": out, "eventsourcing_synchronous": sync, "sequential": sequential, "concurrent": concurrent}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
