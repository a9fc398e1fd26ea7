"""Median latency of stop, signal and restart over HTTP against a real agent, durable commit included.

Usage: ``.venv/bin/python scripts/bench_lifecycle.py [--signals 200] [--restarts 40] [--stops 40] [--commits 100]
[--signal SIGWINCH] [--json]``

Starts ``python -m allocsvc agent --dev`` (raw_exec on; SQLite log in WAL mode with
``synchronous=FULL``) on a temporary data dir and an ephemeral 127.0.0.1 port, registers a
raw_exec job whose ``/bin/sh`` task traps SIGUSR1, then times each call from request to response
with one keep-alive ``httpx`` client:

- **signal**: ``POST /v1/client/allocation/:id/signal {"Signal":"SIGWINCH","Task":"server"}``:
  decide, deliver to the process group, durable commit of ``Signaling``, reply. SIGWINCH is
  ignored by the task, so no process churn competes for the CPU; ``--signal SIGUSR1`` makes the
  task's trap run (and its ``sleep`` child die and be replaced) on every call.
- **restart**: ``POST /v1/client/allocation/:id/restart {"TaskName":"server"}``: durable commit
  of ``Restart Signaled``, reply; the kill and restart follow in the background and the next call
  waits (untimed) until the task runs again.
- **stop**: ``POST /v1/allocation/:id/stop``: durable commit of the transition and the
  ``alloc-stop`` eval, reply; the next stop targets the replacement once it runs.

Ceiling, measured in the same run on the same filesystem, as a block of ``--commits`` commits
right before each phase while the agent is idle (so both see about the same disk and machine
load): one single-row ``INSERT`` + ``COMMIT`` on a fresh WAL + ``synchronous=FULL`` SQLite
database. The ratio is an operation's median latency over its phase's median commit.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
SCRIPT = "trap ':' USR1; while :; do sleep 1; done"


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def stats(samples: list[float]) -> dict[str, float]:
    """Median, p90 and p99 in milliseconds."""
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 0.9),
        "p99_ms": percentile(ms, 0.99),
    }


class CommitCeiling:
    """Single-row durable commits (WAL, synchronous=FULL) on a fresh database, timed one at a time."""

    def __init__(self, directory: Path) -> None:
        self.conn = sqlite3.connect(directory / "ceiling.db", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        self.body = b"x" * 200
        self.count = 0

    def commit(self) -> float:
        """One ``INSERT`` + ``COMMIT``; returns its latency."""
        self.count += 1
        start = time.perf_counter()
        self.conn.execute("BEGIN")
        self.conn.execute("INSERT INTO t VALUES (?, ?)", (self.count, self.body))
        self.conn.execute("COMMIT")
        return time.perf_counter() - start


class Agent:
    """``python -m allocsvc agent --dev`` on a data dir; stopped with SIGINT."""

    def __init__(self, data_dir: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "allocsvc",
            "agent",
            "--dev",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = URL.search(line)
            if match:
                self.base = f"http://127.0.0.1:{match.group(1)}"
                return
        raise RuntimeError(f"agent exited before listening (rc {self.proc.wait()})")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(
    client: httpx.Client, alloc_id: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Poll the allocation until ``ready`` holds (untimed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/allocation/{alloc_id}")
        if r.status_code == 200:
            alloc: dict[str, Any] = r.json()
            if ready(alloc):
                return alloc
        time.sleep(0.005)
    raise TimeoutError(f"allocation {alloc_id} did not become ready")


def running(restarts: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(alloc: dict[str, Any]) -> bool:
        task = (alloc.get("TaskStates") or {}).get("server") or {}
        return task.get("State") == "running" and (restarts is None or task.get("Restarts") == restarts)

    return check


def timed(client: httpx.Client, path: str, body: dict[str, Any] | None) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    r = client.post(path, json=body)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"{path}: {r.status_code} {r.text}")
    return elapsed, r


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the three operations; each phase gets its own ceiling block measured right before it."""
    samples: dict[str, list[float]] = {"signal": [], "restart": [], "stop": []}
    ceilings: dict[str, list[float]] = {"signal": [], "restart": [], "stop": []}
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        directory = Path(tmp)
        ceiling = CommitCeiling(directory)
        agent = Agent(directory / "data")
        try:
            with httpx.Client(base_url=agent.base, timeout=60) as client:

                def measure(name: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
                    if not ceilings[
                        name
                    ]:  # the phase's ceiling, taken just before it while the agent is idle
                        ceilings[name] = [ceiling.commit() for _ in range(args.commits)]
                    elapsed, response = timed(client, path, body)
                    samples[name].append(elapsed)
                    return response

                job = {
                    "Job": {
                        "ID": "bench", "Name": "bench", "Type": "service", "Datacenters": ["dc1"],
                        "TaskGroups": [{
                            "Name": "app", "Count": 1,
                            "RestartPolicy": {"Attempts": 2, "Interval": 1_800_000_000_000, "Delay": 15_000_000_000, "Mode": "fail"},
                            "Tasks": [{"Name": "server", "Driver": "raw_exec", "KillTimeout": 2_000_000_000,
                                       "Config": {"command": "/bin/sh", "args": ["-c", SCRIPT]}}],
                        }],
                    }
                }  # fmt: skip
                assert client.put("/v1/jobs", json=job).status_code == 200
                alloc_id = ""
                while not alloc_id:
                    listed = client.get("/v1/allocations").json()
                    alloc_id = listed[0]["ID"] if listed else ""
                wait_for(client, alloc_id, running())
                for _ in range(args.signals):
                    measure(
                        "signal",
                        f"/v1/client/allocation/{alloc_id}/signal",
                        {"Signal": args.signal, "Task": "server"},
                    )
                for n in range(1, args.restarts + 1):
                    measure("restart", f"/v1/client/allocation/{alloc_id}/restart", {"TaskName": "server"})
                    wait_for(client, alloc_id, running(restarts=n))
                for _ in range(args.stops):
                    measure("stop", f"/v1/allocation/{alloc_id}/stop", None)
                    alloc = wait_for(client, alloc_id, lambda a: bool(a.get("NextAllocation")))
                    alloc_id = alloc["NextAllocation"]
                    wait_for(client, alloc_id, running())
        finally:
            agent.stop()
    report: dict[str, Any] = {}
    for name, timings in samples.items():
        row = stats(timings)
        commit = stats(ceilings[name])
        row["commit_median_ms"] = commit["median_ms"]
        row["ratio_to_commit"] = row["median_ms"] / commit["median_ms"]
        report[name] = row
    report["sqlite_full_commit"] = stats([c for values in ceilings.values() for c in values])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=40)
    parser.add_argument("--stops", type=int, default=40)
    parser.add_argument("--commits", type=int, default=100, help="ceiling commits per phase")
    parser.add_argument("--signal", default="SIGWINCH", help="the signal sent (default ignored by the task; it traps SIGUSR1)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{'operation':<20}{'n':>5}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'commit ms':>11}{'x commit':>10}"
    )
    for name in ("signal", "restart", "stop", "sqlite_full_commit"):
        row = report[name]
        commit = f"{row['commit_median_ms']:.2f}" if "commit_median_ms" in row else "-"
        ratio = f"{row['ratio_to_commit']:.2f}" if "ratio_to_commit" in row else "1.00"
        print(
            f"{name:<20}{row['n']:>5}{row['median_ms']:>11.2f}{row['p90_ms']:>9.2f}{row['p99_ms']:>9.2f}{commit:>11}{ratio:>10}"
        )


if __name__ == "__main__":
    main()
