"""Durable append throughput with group commit, against raw SQLite in the same run.

Usage: .venv/bin/python scripts/bench_append.py [--actors 64] [--events 20000] [--repeat 3]

Ceiling: one ``executemany`` of the same encoded rows in one transaction on a fresh WAL +
``synchronous=FULL`` database. Measured: N concurrent appenders (one per stream, one event per
append, waiting for each durable ack) through ``SqliteEventLog`` with group commit.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import trio

from allocsvc.domain import events as ev
from allocsvc.store.codec import checksum, encode_event, event_tag
from allocsvc.store.log import StreamWrite
from allocsvc.store.sqlite import SCHEMA, open_sqlite_log


def sample_event(i: int) -> ev.Event:
    return ev.TaskTerminated(task="server", exit_code=i % 3, signal=0, message="")


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    rows = []
    for i in range(n):
        data = encode_event(sample_event(i))
        rows.append((i + 1, f"alloc/{i % 64}", i // 64 + 1, i, event_tag(sample_event(i)), data, checksum(data)))
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (idx, stream, version, time, type, data, crc) VALUES (?,?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def group_commit(path: Path, n: int, actors: int) -> tuple[float, int]:
    async with open_sqlite_log(path) as log:
        per_actor = n // actors

        async def actor(a: int) -> None:
            stream = f"alloc/{a}"
            for i in range(per_actor):
                await log.append([StreamWrite(stream, i, [sample_event(i)])], time=i)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for a in range(actors):
                nursery.start_soon(actor, a)
        elapsed = time.perf_counter() - start
        return per_actor * actors / elapsed, log.commits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--actors", type=int, default=64)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ceilings, rates, commits = [], [], []
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            ceilings.append(raw_sqlite(Path(tmp) / "raw.db", args.events))
            rate, n_commits = trio.run(group_commit, Path(tmp) / f"log{r}.db", args.events, args.actors)
            rates.append(rate)
            commits.append(n_commits)
    result = {
        "actors": args.actors,
        "events": args.events,
        "group_commit_events_per_s_median": round(statistics.median(rates)),
        "raw_executemany_events_per_s_median": round(statistics.median(ceilings)),
        "ratio_to_ceiling": round(statistics.median(rates) / statistics.median(ceilings), 3),
        "commits_per_run": commits,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
