"""Blocking-query benchmark: N reads blocked on distinct allocations, then K changes.

The server is the real service and app in this process (so the bench can read
``service.model.hub.statistics()``), served by hypercorn on 127.0.0.1; the load generator is a
separate process (``bench_blocking_client.py``) holding one connection per blocked read. Checked:
exactly the K changed allocations' waiters wake (hub wake-ups, woken waiters, and responses
seen by the client); measured: change-commit → response-received latency (both ends read the
system-wide ``CLOCK_MONOTONIC``) and RSS per blocked waiter. Called by ``bench_suite.py``;
``python scripts/bench_blocking.py N K`` prints the JSON alone.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lib import PYTHON, SCRIPTS, bench_job, raise_fd_limit, rss_kb

from allocsvc.config import AgentConfig
from allocsvc.domain import commands as cmd
from allocsvc.domain.events import Recorded
from allocsvc.domain.model import Job
from allocsvc.http.app import create_app
from allocsvc.service import Service, open_service

CHUNK = 10_000


async def _populate(service: Service, total: int) -> None:
    made = 0
    while made < total:
        count = min(CHUNK, total - made)
        await service.scheduler.register(msgspec.convert(bench_job(f"bench-{made}", count)["Job"], Job))
        made += count
    with trio.fail_after(600):
        while sum(1 for a in service.model.state.allocs.values() if a.alloc.ClientStatus == "running") < total:
            await service.model.hub.event_for("table:allocs").wait()


async def _bench(data_dir: Path, waiters: int, changes: int, settle: float) -> dict[str, Any]:
    raise_fd_limit()
    async with open_service(AgentConfig(data_dir=str(data_dir))) as service, trio.open_nursery() as nursery:
        started = time.perf_counter()
        await _populate(service, waiters)
        populate_s = time.perf_counter() - started
        allocs = service.model.state.allocs
        ids = sorted(allocs)[:waiters]
        targets = data_dir / "targets.txt"
        targets.write_text("".join(f"{a} {allocs[a].alloc.ModifyIndex}\n" for a in ids))
        step = max(1, len(ids) // changes)
        changed = ids[::step][:changes]
        watched = set(changed)
        committed: dict[str, float] = {}

        def on_commit(records: Sequence[Recorded]) -> None:
            now = time.monotonic()
            for r in records:
                alloc_id = r.stream[6:]
                if alloc_id in watched and alloc_id not in committed:
                    committed[alloc_id] = now

        service.log.subscribe(on_commit)
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.backlog = 4096
        config.keep_alive_timeout = 300
        shutdown = trio.Event()
        app = create_app(service)
        binds = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        port = int(binds[0].rsplit(":", 1)[1])
        gc.collect()
        rss_before = rss_kb_self()
        proc = await trio.lowlevel.open_process(
            [PYTHON, str(SCRIPTS / "bench_blocking_client.py"), str(port), str(targets), str(changes), str(settle)],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        lines = _Lines(proc.stdout)
        line = await lines.next()
        if line.strip() != "sent":
            raise RuntimeError(f"blocking client failed: {line!r}")
        hub = service.model.hub
        with trio.fail_after(120):
            while hub.statistics().watched_keys < waiters:  # noqa: ASYNC110 - a counter, bounded by fail_after
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        gc.collect()
        rss_blocked = rss_kb_self()
        before = hub.statistics()
        for alloc_id in changed:
            await service.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))
        result = json.loads(await lines.next())
        after = hub.statistics()
        await proc.wait()
        shutdown.set()
        received: dict[str, float] = result["received"]
        latencies = sorted((received[a] - committed[a]) * 1e3 for a in changed if a in received and a in committed)
        nursery.cancel_scope.cancel()
        service.nursery.cancel_scope.cancel()
    return {
        "waiters": waiters,
        "changes": changes,
        "populate_s": populate_s,
        "latency_ms": latencies,
        "responses": len(received),
        "unexpected_responses": sorted(set(received) - watched),
        "missing_responses": sorted(watched - set(received)),
        "statuses": sorted(set(result["statuses"].values())),
        "hub_wakeups": after.wakeups - before.wakeups,
        "hub_woken": after.woken - before.woken,
        "rss_before_kb": rss_before,
        "rss_blocked_kb": rss_blocked,
        "rss_per_waiter_kb": (rss_blocked - rss_before) / waiters,
    }


class _Lines:
    """Newline-delimited text from a child's stdout pipe."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buf = b""

    async def next(self) -> str:
        while b"\n" not in self._buf:
            data = await self._stream.receive_some(1 << 20)
            if not data:
                raise RuntimeError(f"blocking client exited: {self._buf[-500:]!r}")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()


def rss_kb_self() -> int:
    import os

    return rss_kb(os.getpid())


def run(waiters: int, changes: int, *, settle: float = 1.0) -> dict[str, Any]:
    """One full blocking-query run on a fresh data dir."""
    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(_bench, Path(tmp), waiters, changes, settle)


if __name__ == "__main__":
    out = run(int(sys.argv[1]), int(sys.argv[2]))
    out["latency_ms"] = [round(x, 2) for x in out["latency_ms"]]
    print(json.dumps(out))
