"""Replay and startup benchmark: generate a large event log, then time decode, fold and startup.

Usage: ``.venv/bin/python scripts/bench_replay.py [--events 1000000] [--dir DIR] [--keep]``

The log is written straight through the SQLite adapter's schema (``allocsvc.store.sqlite.SCHEMA``,
one big transaction per 50,000 rows) with events a real agent writes: namespaces, job versions,
evaluations, placements, and per-allocation task lifecycles (received, setup, started, crash and
restart cycles, signals, stop, kill). Allocation streams are interleaved in index order as they
are on a busy agent. Measured, each best of ``--repeat``:

- SQLite read only (rows fetched, no decode), then ``msgspec`` decode-only (the replay ceiling:
  read + checksum + decode, no state building);
- full replay: ``ClusterState`` folded over ``iter_file_records`` (events/s);
- snapshot write and load (size, seconds);
- state restore (``restore_state``: what startup does before actors start) and full
  ``open_service`` startup, which also restores the actors of running allocations, on the data
  dir with a snapshot (tail replay) and without one (full replay).
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from allocsvc.config import AgentConfig
from allocsvc.domain import events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.jobs import allocated_resources, canonicalize_job
from allocsvc.domain.model import DesiredStatus, Evaluation, Job, Namespace
from allocsvc.service import log_path, open_service
from allocsvc.store import snapshot
from allocsvc.store.codec import FORMAT_VERSION, checksum, decode_event, encode_event, event_tag
from allocsvc.store.sqlite import SCHEMA, connect, iter_file_records
from allocsvc.tools.logfile import LogFile

WALL_BASE = 1_700_000_000_000_000_000
MS = 1_000_000
FLUSH_EVERY = 50_000


class _Writer:
    """Numbers records like the log does and writes them in big transactions."""

    def __init__(self, conn: sqlite3.Connection, limit: int) -> None:
        self.conn = conn
        self.limit = limit
        self.index = 0
        self.versions: dict[str, int] = {}
        self.rows: list[tuple[int, str, int, int, str, bytes, int]] = []
        self.time = WALL_BASE

    @property
    def full(self) -> bool:
        return self.index >= self.limit

    def emit(self, stream: str, event: ev.Event) -> None:
        if self.full:
            return
        self.index += 1
        self.time += MS
        version = self.versions[stream] = self.versions.get(stream, 0) + 1
        data = encode_event(event)
        self.rows.append((self.index, stream, version, self.time, event_tag(event), data, checksum(data)))
        if len(self.rows) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", self.rows)
        self.conn.execute("COMMIT")
        self.rows.clear()


def _job(job_id: str, namespace: str, count: int, version: int) -> Job:
    spec = {
        "ID": job_id,
        "Name": job_id,
        "Namespace": namespace,
        "Type": "service",
        "Datacenters": ["dc1"],
        "Meta": {"revision": str(version)},
        "TaskGroups": [
            {
                "Name": "app",
                "Count": count,
                "Tasks": [
                    {
                        "Name": "server",
                        "Driver": "mock",
                        "Config": {"run_for": "30s", "exit_code": 1},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
    job = canonicalize_job(msgspec.convert(spec, Job))
    return msgspec.structs.replace(job, version=version, status="pending")


def _lifecycle(rng: random.Random, restarts_mean: float, window_start: int) -> list[ev.Event]:
    """One allocation's task events after placement, ending stopped (90 %) or running."""
    out: list[ev.Event] = [
        ev.TaskReceived(task="server"),
        ev.TaskSetupRan(task="server", message="Building Task Directory"),
        ev.TaskStarted(task="server"),
    ]
    restarts = min(int(rng.expovariate(1 / restarts_mean)) if restarts_mean else 0, 60)
    for attempt in range(1, restarts + 1):
        out.append(ev.TaskTerminated(task="server", exit_code=1, message="exit status 1"))
        out.append(
            ev.TaskRestarting(
                task="server",
                delay=15_000_000_000,
                reason="Restart within policy",
                attempts=attempt,
                window_start=window_start,
            )
        )
        out.append(ev.TaskStarted(task="server"))
        if rng.random() < 0.1:
            out.append(ev.TaskSignaled(task="server", signal="SIGHUP"))
    if rng.random() < 0.9:
        out.append(
            ev.AllocDesiredStatusChanged(
                desired_status=DesiredStatus.STOP, description="alloc not needed due to job update"
            )
        )
        out.append(ev.TaskKilling(task="server", kill_timeout=5_000_000_000))
        out.append(ev.TaskTerminated(task="server", exit_code=0, signal=2))
        out.append(ev.TaskKilled(task="server"))
    return out


def generate(path: Path, total: int, *, allocs_per_job: int, restarts_mean: float, seed: int) -> None:
    """Write a log of exactly ``total`` events at ``path``."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
    conn.execute(
        "INSERT INTO meta VALUES ('node_id', ?)", (str(uuid.UUID(int=rng.getrandbits(128), version=4)),)
    )
    conn.execute("PRAGMA synchronous=OFF")
    w = _Writer(conn, total)
    new_id: Callable[[], str] = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))  # noqa: E731
    namespaces = ["default", "prod", "staging"]
    for name in namespaces[1:]:
        w.emit(
            ev.namespace_stream(name), ev.NamespaceUpserted(namespace=Namespace(Name=name, Description=name))
        )
    job_versions: dict[tuple[str, str], int] = {}
    wave = 0
    while not w.full:
        wave += 1
        pending: list[tuple[str, list[ev.Event]]] = []
        for j in range(20):
            namespace = namespaces[j % len(namespaces)]
            job_id = f"job-{rng.randrange(2000)}"
            version = job_versions[(namespace, job_id)] = job_versions.get((namespace, job_id), -1) + 1
            job = _job(job_id, namespace, allocs_per_job, version)
            eval_id = new_id()
            w.emit(ev.job_stream(namespace, job_id), ev.JobRegistered(job=job))
            w.emit(
                ev.eval_stream(eval_id),
                ev.EvalCreated(
                    eval=Evaluation(
                        ID=eval_id, Namespace=namespace, Priority=50, Type="service", TriggeredBy="job-register",
                        JobID=job_id, Status="complete",
                    )
                ),
            )  # fmt: skip
            group = (job.task_groups or [])[0]
            for i in range(allocs_per_job):
                alloc_id = new_id()
                w.emit(
                    ev.alloc_stream(alloc_id),
                    ev.AllocPlaced(
                        alloc_id=alloc_id, namespace=namespace, eval_id=eval_id, name=f"{job_id}.app[{i}]",
                        node_id="node", node_name="bench", job_id=job_id, job_version=version, task_group="app",
                        tasks=("server",), allocated_resources=allocated_resources(group),
                    ),
                )  # fmt: skip
                pending.append((ev.alloc_stream(alloc_id), _lifecycle(rng, restarts_mean, w.time)))
        step = 0
        while any(step < len(events) for _, events in pending):
            for stream, events in pending:
                if step < len(events):
                    w.emit(stream, events[step])
            step += 1
    w.flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest wall time of ``repeat`` runs, and the last result."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def spread(fn: Callable[[], float], repeat: int) -> str:
    """``min / median / max`` of ``repeat`` self-timed runs."""
    times = sorted(fn() for _ in range(repeat))
    return f"min {times[0]:6.2f}s  median {statistics.median(times):6.2f}s  max {times[-1]:6.2f}s"


def restore(data_dir: Path) -> ClusterState:
    """What startup does before actors start: newest valid snapshot plus the tail, or a full replay."""
    return snapshot.restore_state(LogFile(data_dir), snapshot.snapshot_dir(data_dir)).state


def read_only(path: Path) -> int:
    """Fetch every row, decode nothing: the SQLite floor."""
    conn = connect(path, readonly=True)
    count = 0
    try:
        for _row in conn.execute("SELECT idx, stream, version, time, data, crc FROM events ORDER BY idx"):
            count += 1
    finally:
        conn.close()
    return count


def decode_only(path: Path) -> int:
    """Read, checksum and decode every event, build no state: the replay ceiling."""
    conn = connect(path, readonly=True)
    count = 0
    try:
        for _idx, _stream, _version, _time, data, crc in conn.execute(
            "SELECT idx, stream, version, time, data, crc FROM events ORDER BY idx"
        ):
            if checksum(data) != crc:
                raise SystemExit("checksum mismatch")
            decode_event(data)
            count += 1
    finally:
        conn.close()
    return count


def full_replay(path: Path) -> ClusterState:
    """The fold a startup without a snapshot runs, with the GC handled as ``restore_state`` does
    (paused; a state of ``FREEZE_AFTER`` events or more frozen before it runs again)."""
    state = ClusterState()
    with snapshot.paused_gc():
        state.apply_all(iter_file_records(path))
        if state.last_index >= snapshot.FREEZE_AFTER:
            gc.freeze()
    return state


async def _startup(config: AgentConfig) -> float:
    start = time.perf_counter()
    async with open_service(config) as service:
        elapsed = time.perf_counter() - start
        service.nursery.cancel_scope.cancel()
    return elapsed


def startup(pristine: Path, scratch: Path) -> float:
    """Seconds from ``open_service`` entry until the service is ready, on a fresh copy of the data dir
    (restored allocations append events, so every run starts from the same bytes)."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(pristine, scratch)
    config = AgentConfig(data_dir=str(scratch), snapshot_every=10**12)
    return trio.run(_startup, config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--allocs-per-job", type=int, default=5)
    parser.add_argument("--restarts-mean", type=float, default=5.0)
    parser.add_argument("--tail", type=int, default=10_000, help="events appended after the snapshot")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data dir")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    data_dir = root / "data"
    scratch = root / "scratch"
    path = log_path(data_dir)
    n = args.events
    out = sys.stdout
    try:
        if data_dir.exists():
            shutil.rmtree(data_dir)
        start = time.perf_counter()
        generate(
            path,
            n - args.tail,
            allocs_per_job=args.allocs_per_job,
            restarts_mean=args.restarts_mean,
            seed=args.seed,
        )
        state = full_replay(path)
        anchor = snapshot.anchor_of(next(iter(iter_file_records(path, state.last_index - 1))))
        taken = snapshot.write_snapshot(snapshot.snapshot_dir(data_dir), state, anchor)
        generate_tail(path, n, seed=args.seed)
        print(f"generated {n:,} events in {time.perf_counter() - start:.1f}s ({path.stat().st_size / 1e6:.0f} MB): "
              f"{len(state.allocs):,} allocs, {len(state.jobs):,} jobs; snapshot at index {state.last_index:,} "
              f"({taken.stat().st_size / 1e6:.1f} MB), then a {args.tail:,}-event tail", file=out)  # fmt: skip

        t, count = best(lambda: read_only(path), args.repeat)
        print(f"sqlite read only:        {t:6.2f}s  {count / t:10,.0f} rows/s", file=out)
        t, count = best(lambda: decode_only(path), args.repeat)
        print(f"read+crc+decode only:    {t:6.2f}s  {count / t:10,.0f} events/s  (replay ceiling)", file=out)
        t, state = best(lambda: full_replay(path), args.repeat)
        print(f"full replay (fold):      {t:6.2f}s  {n / t:10,.0f} events/s", file=out)
        t_copy, copied = best(lambda: snapshot.copy_state(state), args.repeat)
        t_write, written = best(
            lambda: snapshot.write_snapshot(root / "scratch-snapshots", copied, anchor), args.repeat
        )
        t_load, loaded = best(lambda: snapshot.read_snapshot(written), args.repeat)
        assert loaded == state, "snapshot round trip differs from the replayed state"
        print(f"snapshot copy (loop):    {t_copy:6.2f}s", file=out)
        print(f"snapshot write (thread): {t_write:6.2f}s  {written.stat().st_size / 1e6:.1f} MB", file=out)
        print(f"snapshot load:           {t_load:6.2f}s", file=out)

        running = sum(1 for a in state.allocs.values() if a.alloc.ClientStatus == "running")
        print(f"startup = open_service until ready, incl. restoring {running:,} running allocations' actors", file=out)
        t, _ = best(lambda: restore(data_dir), args.repeat)
        print(f"state restore with snapshot ({args.tail:,}-event tail): {t:6.2f}s", file=out)
        print(f"startup with snapshot:    {spread(lambda: startup(data_dir, scratch), args.repeat)}", file=out)
        shutil.rmtree(snapshot.snapshot_dir(data_dir))
        t, _ = best(lambda: restore(data_dir), args.repeat)
        print(f"state restore without snapshot (full replay): {t:6.2f}s", file=out)
        print(f"startup without snapshot: {spread(lambda: startup(data_dir, scratch), args.repeat)}", file=out)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def generate_tail(path: Path, total: int, *, seed: int) -> None:
    """Append task events to running allocations until the log holds ``total`` events."""
    state = full_replay(path)
    conn = connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    w = _Writer(conn, total)
    w.index = state.last_index
    w.versions = dict(state.stream_versions)
    w.time = WALL_BASE + state.last_index * MS
    running = [a for a, agg in state.allocs.items() if agg.alloc.ClientStatus == "running"]
    rng = random.Random(seed + 1)
    while not w.full and running:
        stream = ev.alloc_stream(rng.choice(running))
        w.emit(stream, ev.TaskSignaled(task="server", signal="SIGHUP"))
    w.flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
