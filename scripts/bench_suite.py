"""The one benchmark suite: every issue-8 row, each next to its ceiling measured in the same run.

Usage: ``scripts/bench [--quick] [--out DIR] [--only ROW,...]`` (this module is its body).
Writes ``bench/report.json``, ``bench/report.md`` and ``bench/scaling.png``. HTTP rows hit a real
``python -m allocsvc agent`` process populated through ``PUT /v1/jobs``; load generators (wrk,
``bench_client.py``, ``bench_blocking_client.py``) are separate processes on 127.0.0.1 with
bounded work. ``--quick`` scales the big rows down (stated in each row's notes) to finish in
under two minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_append
import bench_blocking
import bench_replay
from bench_lib import (
    ROOT,
    AgentProcess,
    BareProcess,
    Row,
    client,
    cpu_info,
    fmt,
    low_p99,
    populate,
    run_wrk,
    summary,
    wrk_path,
)

from allocsvc.store.codec import checksum, encode_event, event_tag
from allocsvc.store.sqlite import SCHEMA, connect


@dataclass(frozen=True)
class Plan:
    """How big and how long each benchmark runs."""

    name: str
    sizes: tuple[int, ...]
    list_size: int
    read_runs: int
    read_seconds: float
    list_requests: int
    page_passes: int
    waiters: int
    changes: int
    lifecycle_ops: int
    append_events: int
    append_repeat: int
    replay_events: int
    replay_repeat: int
    peer_sequential: int
    peer_concurrent: int
    peer_repeat: int


QUICK = Plan("quick", (1_000, 5_000), 5_000, 3, 2, 6, 2, 2_000, 100, 100, 20_000, 2, 100_000, 2, 1_000, 10_000, 4)
FULL = Plan("full", (1_000, 10_000, 100_000), 10_000, 5, 4, 20, 3, 10_000, 100, 200, 20_000, 3, 500_000, 2, 1_000, 20_000, 5)
SMOKE = Plan("smoke", (200,), 200, 1, 1, 2, 1, 50, 5, 5, 2_000, 1, 5_000, 1, 50, 640, 1)


class Suite:
    """Runs the rows in order and collects them."""

    def __init__(self, plan: Plan, work: Path, only: set[str] | None) -> None:
        self.plan = plan
        self.work = work
        self.only = only
        self.rows: list[Row] = []
        self.scaling: list[dict[str, float]] = []
        self.timings: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def wants(self, *keys: str) -> bool:
        return self.only is None or any(k in self.only for k in keys)

    def step(self, name: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        try:
            fn()
        except Exception as exc:  # a failing row is reported, the others still run
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"[bench] {name} failed: {exc}", file=sys.stderr, flush=True)
        self.timings[name] = round(time.perf_counter() - start, 1)

    # --- HTTP rows on one real agent --------------------------------------------------------------

    def http_rows(self) -> None:
        plan = self.plan
        data_dir = self.work / "agent-data"
        with AgentProcess(data_dir) as agent:
            time.sleep(0.5)
            rss_empty = agent.rss_kb()
            have = 0
            needs_all = self.wants("paging", "memory", "lifecycle", "scaling")
            for size in plan.sizes if needs_all else [s for s in plan.sizes if s <= plan.list_size]:
                took = populate(agent.base, size, start=have)
                have = size
                rss_idle = agent.rss_kb()
                point: dict[str, float] = {"allocs": size, "populate_s": took, "rss_idle_kb": rss_idle}
                for variant, query in (("default", ""), ("lite", "?task_states=false")):
                    repeats = max(3, plan.list_requests // 2) if size <= plan.list_size else 3
                    lat = client("seq", f"{agent.base}/v1/allocations{query}", repeats)
                    point[f"list_{variant}_median_ms"] = statistics.median(lat["lat_ms"])
                    point[f"list_{variant}_bytes"] = lat["bytes"]
                point["rss_after_list_kb"] = agent.rss_kb()
                self.scaling.append(point)
                print(f"[bench]   {size:,} allocs: {json.dumps(point)}", file=sys.stderr, flush=True)
                if size == plan.list_size:
                    if self.wants("read"):
                        self.step("read", lambda: self.read_row(agent))
                    if self.wants("list"):
                        self.step("list", lambda: self.list_rows(agent))
            largest = plan.sizes[-1]
            if self.wants("paging"):
                self.step("paging", lambda: self.paging_row(agent, largest))
            if self.wants("memory"):
                point = self.scaling[-1]
                self.memory_row(rss_empty, point)
            if self.wants("lifecycle"):
                self.step("lifecycle", lambda: self.lifecycle_rows(agent))

    def read_row(self, agent: AgentProcess) -> None:
        plan = self.plan
        with httpx.Client(base_url=agent.base) as http:
            alloc_id = http.get("/v1/allocations?per_page=1&task_states=false").json()[0]["ID"]
            body = http.get(f"/v1/allocation/{alloc_id}").content
        body_file = self.work / "read-body.json"
        body_file.write_bytes(body)
        ours: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        with BareProcess(body_file) as ceiling:
            url = f"{agent.base}/v1/allocation/{alloc_id}"
            run_wrk(url, connections=10, seconds=1)  # warm-up
            run_wrk(f"{ceiling.base}/", connections=10, seconds=1)
            for _ in range(plan.read_runs):
                ours.append(run_wrk(url, connections=10, seconds=plan.read_seconds))
                bare.append(run_wrk(f"{ceiling.base}/", connections=10, seconds=plan.read_seconds))
        rps = [r["rps"] for r in ours]
        bare_rps = [r["rps"] for r in bare]
        ratio = statistics.median(rps) / statistics.median(bare_rps)
        self.rows.append(
            Row(
                key="read",
                what="GET /v1/allocation/:id, 10 connections",
                unit="req/s",
                median=statistics.median(rps),
                p99=low_p99(rps),
                ceiling_what=f"bare hypercorn trio ASGI app, same {len(body):,}-byte body",
                ceiling_median=statistics.median(bare_rps),
                ceiling_p99=low_p99(bare_rps),
                ratio=ratio,
                ratio_meaning="allocsvc / ceiling",
                target="≥ 0.60",
                met=ratio >= 0.60,
                samples=len(rps),
                notes=f"{'wrk' if wrk_path() else 'python load generator'} -t1 -c10, {plan.read_seconds:g} s runs; "
                "p99 column = slowest run; request latency p99 "
                f"{statistics.median(r['p99_ms'] for r in ours):.2f} ms (ceiling "
                f"{statistics.median(r['p99_ms'] for r in bare):.2f} ms)",
                extra={"runs": ours, "ceiling_runs": bare, "body_bytes": len(body)},
            )
        )

    def list_rows(self, agent: AgentProcess) -> None:
        plan = self.plan
        for variant, query in (("task_states=false", "?task_states=false"), ("default (TaskStates)", "")):
            url = f"{agent.base}/v1/allocations{query}"
            with httpx.Client(timeout=120) as http:
                body = http.get(url).content
            body_file = self.work / "list-body.json"
            body_file.write_bytes(body)
            ours = client("seq", url, plan.list_requests)["lat_ms"]
            with BareProcess(body_file) as ceiling:
                bare = client("seq", f"{ceiling.base}/", plan.list_requests)["lat_ms"]
            s, c = summary(ours), summary(bare)
            ratio = s["median"] / c["median"]
            self.rows.append(
                Row(
                    key=f"list_{'lite' if 'false' in variant else 'default'}",
                    what=f"GET /v1/allocations, {plan.list_size:,} allocs, {variant}",
                    unit="ms",
                    median=s["median"],
                    p99=s["p99"],
                    ceiling_what=f"bare app serving the same {len(body):,} bytes",
                    ceiling_median=c["median"],
                    ceiling_p99=c["p99"],
                    ratio=ratio,
                    ratio_meaning="allocsvc / ceiling (latency)",
                    target="median ≤ 2.0x",
                    met=ratio <= 2.0,
                    samples=len(ours),
                    notes="sequential requests on one keep-alive connection from bench_client.py (h11)",
                    extra={"body_bytes": len(body)},
                )
            )

    def paging_row(self, agent: AgentProcess, size: int) -> None:
        result = client("pages", f"{agent.base}/v1/allocations?per_page=100", self.plan.page_passes)
        passes: list[list[float]] = result["pages"]
        per_page = [statistics.median(run[i] for run in passes) for i in range(min(len(r) for r in passes))]
        flat = [x for run in passes for x in run]
        worst = max(per_page)
        rss = agent.rss_kb()
        self.rows.append(
            Row(
                key="paging",
                what=f"GET /v1/allocations?per_page=100 to the end, {size:,} allocs ({len(per_page)} pages)",
                unit="ms/page",
                median=statistics.median(per_page),
                p99=summary(flat)["p99"],
                ceiling_what="— (worst page's median is the target figure)",
                ceiling_median=None,
                ceiling_p99=None,
                ratio=worst / 10.0,
                ratio_meaning="worst page median / 10 ms budget",
                target="each page's median ≤ 10 ms",
                met=worst <= 10.0,
                samples=len(flat),
                notes=f"worst page median {worst:.2f} ms over {len(passes)} passes; agent RSS {rss / 1024:.0f} MiB; "
                f"items seen {result['items']:,}",
                extra={"worst_page_median_ms": worst, "rss_kb": rss, "pages": len(per_page)},
            )
        )

    def memory_row(self, rss_empty: int, point: dict[str, float]) -> None:
        size = int(point["allocs"])
        per_idle = (point["rss_idle_kb"] - rss_empty) / size
        per_cached = (point["rss_after_list_kb"] - rss_empty) / size
        self.rows.append(
            Row(
                key="memory",
                what=f"RSS per idle running allocation at {size:,} allocations",
                unit="KiB/alloc",
                median=per_idle,
                p99=per_cached,
                ceiling_what="— (budget 10 KiB)",
                ceiling_median=None,
                ceiling_p99=None,
                ratio=per_idle / 10.0,
                ratio_meaning="KiB per alloc / 10 KiB budget",
                target="≤ 10 KiB each",
                met=per_idle <= 10.0,
                samples=1,
                notes=f"(RSS after populating - RSS of the empty agent) / allocs; p99 column = same after "
                f"full lists filled the encoded caches; empty agent {rss_empty / 1024:.0f} MiB, "
                f"loaded {point['rss_idle_kb'] / 1024:.0f} MiB. Each allocation runs a live mock task "
                "(its actor a trio task only while it has work, its runner parked on the handle).",
                extra={"rss_empty_kb": rss_empty, **point},
            )
        )

    def lifecycle_rows(self, agent: AgentProcess) -> None:
        plan = self.plan
        n = plan.lifecycle_ops
        with httpx.Client(base_url=agent.base, timeout=60) as http:
            stubs = http.get("/v1/allocations?task_states=false").json()
        running = [s["ID"] for s in stubs if s["ClientStatus"] == "running"]
        ops: list[tuple[str, str, str, str, float]] = [
            ("signal", "POST", "/v1/client/allocation/{}/signal", '{"Signal":"SIGHUP"}', 0.0),
            ("restart", "POST", "/v1/client/allocation/{}/restart", "{}", 0.05),
            ("stop", "PUT", "/v1/allocation/{}/stop", "", 0.05),
        ]
        client_routes = (ROOT / "allocsvc" / "http" / "client_allocs.py").exists()
        offset = 0
        for name, method, template, body, gap in ops:
            if name != "stop" and not client_routes:
                continue
            c = summary(raw_commit_latencies(self.work / f"raw-commit-{name}.db", max(200, n) if not gap else n, gap=gap))
            targets = running[offset : offset + n]
            offset += n
            paths_file = self.work / f"{name}-paths.txt"
            paths_file.write_text("".join(template.format(t) + "\n" for t in targets))
            result = client("writes", agent.base, method, paths_file, body, gap)
            s = summary(result["lat_ms"])
            ratio = s["median"] / c["median"]
            ok = set(result["statuses"]) == {"200"}
            self.rows.append(
                Row(
                    key=f"lifecycle_{name}",
                    what=f"{method} {template.format(':id')} latency, durable commit included",
                    unit="ms",
                    median=s["median"],
                    p99=s["p99"],
                    ceiling_what="raw SQLite synchronous=FULL single-row commit",
                    ceiling_median=c["median"],
                    ceiling_p99=c["p99"],
                    ratio=ratio,
                    ratio_meaning="allocsvc / ceiling (latency)",
                    target="median ≤ 5x",
                    met=ratio <= 5.0 and ok,
                    samples=len(result["lat_ms"]),
                    notes=f"sequential on distinct running allocations, {gap * 1e3:.0f} ms apart (untimed: lets the "
                    "previous operation's kill/restart/replacement work settle); ceiling measured right before, "
                    f"its commits {gap * 1e3:.0f} ms apart too; "
                    f"statuses {result['statuses']}",
                )
            )

    # --- storage rows ---------------------------------------------------------------------------

    def append_row(self) -> None:
        plan = self.plan
        rates: list[float] = []
        ceilings: list[float] = []
        bounds: list[float] = []
        for r in range(plan.append_repeat):
            with tempfile.TemporaryDirectory(dir=self.work) as tmp:
                ceilings.append(bench_append.raw_sqlite(Path(tmp) / "raw.db", plan.append_events))
                rate, _ = trio.run(bench_append.group_commit, Path(tmp) / f"log{r}.db", plan.append_events, 64)
                rates.append(rate)
                bounds.append(64 / statistics.median(raw_commit_latencies(Path(tmp) / "bound.db", 100, rows=64)) * 1e3)
        ratio = statistics.median(rates) / statistics.median(ceilings)
        bound = statistics.median(bounds)
        self.rows.append(
            Row(
                key="append",
                what="durable append, group commit, 64 concurrent actors (1 event per append)",
                unit="events/s",
                median=statistics.median(rates),
                p99=low_p99(rates),
                ceiling_what="raw SQLite executemany of the same rows, one transaction",
                ceiling_median=statistics.median(ceilings),
                ceiling_p99=low_p99(ceilings),
                ratio=ratio,
                ratio_meaning="allocsvc / ceiling",
                target="≥ 0.50",
                met=ratio >= 0.50,
                samples=len(rates),
                notes=f"{plan.append_events:,} events per run. Disk bound measured in the same run: a 64-row "
                f"synchronous=FULL commit allows at most {bound:,.0f} events/s "
                f"({bound / statistics.median(ceilings):.2f} of the ceiling); allocsvc reaches "
                f"{statistics.median(rates) / bound:.2f} of that bound.",
                extra={"io_bound_events_per_s": bound},
            )
        )

    def replay_row(self) -> None:
        plan = self.plan
        path = self.work / "replay" / "allocsvc.db"
        if path.parent.exists():
            shutil.rmtree(path.parent)
        bench_replay.generate(path, plan.replay_events, allocs_per_job=5, restarts_mean=5.0, seed=1)
        replay: list[float] = []
        decode: list[float] = []
        for _ in range(plan.replay_repeat):
            start = time.perf_counter()
            count = bench_replay.decode_only(path)
            decode.append(count / (time.perf_counter() - start))
            start = time.perf_counter()
            state = bench_replay.full_replay(path)
            replay.append(state.last_index / (time.perf_counter() - start))
        ratio = statistics.median(replay) / statistics.median(decode)
        self.rows.append(
            Row(
                key="replay",
                what=f"replay (startup fold) of {plan.replay_events:,} events",
                unit="events/s",
                median=statistics.median(replay),
                p99=low_p99(replay),
                ceiling_what="read + checksum + msgspec decode of the same rows, no state",
                ceiling_median=statistics.median(decode),
                ceiling_p99=low_p99(decode),
                ratio=ratio,
                ratio_meaning="allocsvc / ceiling",
                target="≥ 0.30 and ≥ 200,000 events/s",
                met=ratio >= 0.30 and statistics.median(replay) >= 200_000,
                samples=len(replay),
                notes=f"log from scripts/bench_replay.py's generator ({len(state.allocs):,} allocations)",
            )
        )
        shutil.rmtree(path.parent)

    def blocking_row(self) -> None:
        plan = self.plan
        result = bench_blocking.run(plan.waiters, plan.changes)
        s = summary(result["latency_ms"])
        only_matching = (
            result["hub_wakeups"] == plan.changes
            and result["hub_woken"] == plan.changes
            and result["responses"] == plan.changes
            and not result["unexpected_responses"]
            and not result["missing_responses"]
        )
        self.rows.append(
            Row(
                key="blocking",
                what=f"{plan.waiters:,} blocked reads on distinct allocs, then {plan.changes} changes",
                unit="ms wake→response",
                median=s["median"],
                p99=s["p99"],
                ceiling_what="— (budget 50 ms p99)",
                ceiling_median=None,
                ceiling_p99=None,
                ratio=s["p99"] / 50.0,
                ratio_meaning="p99 / 50 ms budget",
                target="only matching waiters wake; p99 ≤ 50 ms",
                met=only_matching and s["p99"] <= 50.0,
                samples=len(result["latency_ms"]),
                notes=f"hub wake-ups {result['hub_wakeups']}, waiters woken {result['hub_woken']}, responses "
                f"{result['responses']} (unexpected {len(result['unexpected_responses'])}); RSS per blocked "
                f"waiter {result['rss_per_waiter_kb']:.1f} KiB (connection + request included); latency = "
                "commit of the change (server CLOCK_MONOTONIC) → response fully read by the client process",
                extra={k: v for k, v in result.items() if k != "latency_ms"},
            )
        )

    def peer_rows(self) -> None:
        import bench_peer  # needs the bench extra (eventsourcing); the CI smoke run skips this row

        plan = self.plan
        result = bench_peer.run(sequential=plan.peer_sequential, concurrent=plan.peer_concurrent, repeat=plan.peer_repeat)
        samples = result["samples"]
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(result["eventsourcing_synchronous"], "?")
        for key, label, ours, theirs in (
            ("peer_append_seq", "append, 1 writer, 1 event per durable append", "as_seq", "es_seq"),
            ("peer_append_c64", "append, 64 concurrent writers, 1 event per append", "as_c64", "es_c64"),
            ("peer_read", "read every event back in order", "as_read", "es_read"),
        ):
            m, c = statistics.median(samples[ours]), statistics.median(samples[theirs])
            self.rows.append(
                Row(
                    key=key,
                    what=f"peer: {label}",
                    unit="events/s",
                    median=m,
                    p99=low_p99(samples[ours]),
                    ceiling_what=f"eventsourcing SQLiteApplicationRecorder (WAL, synchronous={sync})",
                    ceiling_median=c,
                    ceiling_p99=low_p99(samples[theirs]),
                    ratio=m / c,
                    ratio_meaning="allocsvc / eventsourcing",
                    target="≥ 1.0",
                    met=m >= c,
                    samples=len(samples[ours]),
                    notes="read: allocsvc also verifies each CRC and decodes each event; eventsourcing returns raw bytes"
                    if key == "peer_read"
                    else "same encoded events, same disk, same run",
                )
            )

    # --- output -------------------------------------------------------------------------------

    def run(self) -> None:
        if self.wants("read", "list", "paging", "memory", "lifecycle", "scaling"):
            self.step("http", self.http_rows)
        if self.wants("blocking"):
            self.step("blocking", self.blocking_row)
        if self.wants("append"):
            self.step("append", self.append_row)
        if self.wants("replay"):
            self.step("replay", self.replay_row)
        if self.wants("peer"):
            self.step("peer", self.peer_rows)


def raw_commit_latencies(path: Path, n: int, *, rows: int = 1, gap: float = 0.0) -> list[float]:
    """Milliseconds per ``synchronous=FULL`` commit of ``rows`` event rows on the log's schema.

    ``gap`` idles (untimed) before each commit, as the lifecycle rows do between operations: after
    an idle gap a commit takes two to three times as long on this kind of machine, so a ceiling
    measured back to back would not be the same-conditions ceiling for operations sent apart.
    """
    conn = connect(path)
    conn.executescript(SCHEMA)
    event = bench_append.sample_event(0)
    data = encode_event(event)
    latencies: list[float] = []
    index = 0
    for _ in range(n):
        batch = []
        for i in range(rows):
            index += 1
            batch.append((index, f"alloc/{i}", index, 0, event_tag(event), data, checksum(data)))
        if gap:
            time.sleep(gap)  # untimed: the same idle cadence as the operations it is the ceiling for
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events (idx, stream, version, time, type, data, crc) VALUES (?,?,?,?,?,?,?)", batch)
        conn.execute("COMMIT")
        latencies.append((time.perf_counter() - start) * 1e3)
    conn.close()
    return latencies


def write_report(suite: Suite, out: Path, elapsed: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "mode": suite.plan.name,
        "elapsed_s": round(elapsed, 1),
        "machine": cpu_info(),
        "sqlite": sqlite3.sqlite_version,
        "load_generator": "wrk" if wrk_path() else "python (bench_client.py)",
        "timings_s": suite.timings,
        "errors": suite.errors,
        "unix_time": int(time.time()),
        "load_average_at_end": os.getloadavg(),
    }
    report = {"meta": meta, "rows": [r.as_dict() for r in suite.rows], "scaling": suite.scaling}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [
        f"# allocsvc benchmark report ({suite.plan.name} mode)",
        "",
        f"{meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']}), Python {meta['machine']['python']}, "
        f"SQLite {meta['sqlite']}, load generator: {meta['load_generator']}; took {elapsed:.0f} s; "
        f"load average at the end {meta['load_average_at_end'][0]:.1f} (other work on the machine skews absolute numbers).",
        "Every figure is the median over repeated runs, with its p99, next to a ceiling measured in the same run.",
        "",
        "| row | median | p99 | ceiling / peer | ceiling median | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in suite.rows:
        lines.append(
            f"| {r.what} | {fmt(r.median, r.unit)} | {fmt(r.p99, r.unit)} | {r.ceiling_what} | "
            f"{fmt(r.ceiling_median, r.unit) if r.ceiling_median is not None else '—'} | "
            f"{fmt(r.ratio)} ({r.ratio_meaning}) | {r.target} | {'yes' if r.met else 'NO'} |"
        )
    lines += ["", "## Notes per row", ""]
    lines += [f"- **{r.key}**: {r.notes} ({r.samples} samples)" for r in suite.rows]
    if suite.scaling:
        lines += ["", "## Scaling (see scaling.png)", "", "| allocs | list default (ms) | list task_states=false (ms) | RSS idle (MiB) | RSS after lists (MiB) |", "|---|---|---|---|---|"]
        for p in suite.scaling:
            lines.append(
                f"| {int(p['allocs']):,} | {p['list_default_median_ms']:.1f} | {p['list_lite_median_ms']:.1f} | "
                f"{p['rss_idle_kb'] / 1024:.0f} | {p['rss_after_list_kb'] / 1024:.0f} |"
            )
    if suite.errors:
        lines += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in suite.errors.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    if suite.scaling:
        plot_scaling(suite.scaling, out / "scaling.png")


def plot_scaling(points: list[dict[str, float]], path: Path) -> None:
    """List latency and RSS against allocation count."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib missing: no scaling.png (pip install -e '.[bench]')", file=sys.stderr)
        return
    xs = [p["allocs"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(xs, [p["list_default_median_ms"] for p in points], "o-", label="default (TaskStates)")
    left.plot(xs, [p["list_lite_median_ms"] for p in points], "s-", label="task_states=false")
    left.set(xscale="log", yscale="log", xlabel="allocations", ylabel="median latency (ms)", title="GET /v1/allocations (full list)")
    left.legend()
    left.grid(True, which="both", alpha=0.3)
    right.plot(xs, [p["rss_idle_kb"] / 1024 for p in points], "o-", label="after populating")
    right.plot(xs, [p["rss_after_list_kb"] / 1024 for p in points], "s-", label="after full lists (caches filled)")
    right.set(xscale="log", yscale="log", xlabel="allocations", ylabel="agent RSS (MiB)", title="agent memory")
    right.legend()
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="scaled-down run, under 2 minutes")
    mode.add_argument("--smoke", action="store_true", help="seconds-long run that only checks the script works")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="report directory (default bench/)")
    parser.add_argument("--only", default="", help="comma-separated rows: read,list,paging,memory,lifecycle,"
                        "blocking,append,replay,peer")  # fmt: skip
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    only = {x.strip() for x in args.only.split(",") if x.strip()} or None
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="allocsvc-bench-"))
    try:
        suite = Suite(plan, work, only)
        suite.run()
        elapsed = time.perf_counter() - started
        write_report(suite, args.out, elapsed)
    finally:
        # The agent's data dir holds ~10 directories per allocation: delete it in the background
        # rather than make the report wait minutes for it.
        subprocess.Popen(["rm", "-rf", str(work)], start_new_session=True)
    print((args.out / "report.md").read_text())
    return 1 if suite.errors else 0


if __name__ == "__main__":
    sys.exit(main())
