"""The simulation harness: the real agent under trio's MockClock, a seeded workload, faults, checks.

Owns ``run_simulation`` and ``Simulation``. One run is one ``trio.run`` with
``MockClock(autojump_threshold=0)``: whenever every task is blocked the clock jumps to the next
deadline, so an hour of cluster time costs only the CPU its events need. The service is the
production one (``open_service``: actors, task runners, read model, scheduler) with the mock
driver, driven through the production HTTP app (``create_app(service)`` under Quart's
``test_app()``). Ids come from ``Runtime.new_id`` seeded through ``rng``, time from the clock,
and trio's scheduler is made deterministic and seeded (as pytest-trio does), so one seed and one
set of options always produce the same log and the same report.

An agent crash cancels everything inside one *incarnation* (service, app, clients) in the middle
of a log write and opens a new one on the same log; the workload, the checker and the random
generators live outside incarnations and carry on. The first invariant violation cancels the run.
"""

from __future__ import annotations

import importlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio
import trio.testing
from quart_trio import QuartTrio

from allocsvc.config import AgentConfig
from allocsvc.domain.events import Recorded
from allocsvc.http.app import create_app
from allocsvc.service import Service, log_path, open_service
from allocsvc.sim.faults import CrashMode, FaultStats, FaultyDriver, SimLog
from allocsvc.sim.invariants import Checker, Violation
from allocsvc.sim.ops import HttpOps
from allocsvc.sim.options import SimOptions
from allocsvc.sim.report import Sample, log_digest, percentiles, sorted_counts
from allocsvc.sim.watchers import Watcher
from allocsvc.sim.workload import NAMESPACES, Workload
from allocsvc.store.log import EventLog
from allocsvc.store.memory import MemoryEventLog
from allocsvc.store.sqlite import iter_file_records, open_sqlite_log

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

EPOCH_NS = 1_700_000_000_000_000_000
"""Wall-clock time (Unix ns) at simulated second 0: 2023-11-14T22:13:20Z."""
NODE_NAME = "sim-node"
IDLE_CRASH_AFTER = 5.0
"""Simulated seconds an armed crash waits for a write before the agent dies between writes."""
SAMPLES = 240
"""Timeline points per run (for the plot)."""

_TRIO_RUN = importlib.import_module("trio._core._run")
"""trio's run loop module: its ``_r`` shuffles each scheduling batch. pytest-trio seeds it and sets
``_ALLOW_DETERMINISTIC_SCHEDULING`` for reproducible tests; the simulator does the same."""


class SimHooks:
    """Test-only hooks into a run (planted bugs subclass this); the defaults do nothing."""

    def on_open(self, sim: Simulation, service: Service) -> None:
        """Called when an incarnation of the service has opened, before any workload."""

    def after_step(self, sim: Simulation, service: Service, step: int) -> None:
        """Called after each workload step was started."""


class CorruptProjection(SimHooks):
    """Planted bug: at ``step``, a live allocation's ClientStatus is overwritten in the read model."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, sim: Simulation, service: Service, step: int) -> None:
        live = sim.checker.live_allocs
        if step != self.step or not len(live):
            return
        alloc_id = live[0]
        agg = service.model.state.allocs[alloc_id]
        corrupted = msgspec.structs.replace(agg.alloc, ClientStatus="lost")
        service.model.state.allocs[alloc_id] = msgspec.structs.replace(agg, alloc=corrupted)


class DropEvent(SimHooks):
    """Planted bug: the read model never sees the record with log index ``index``."""

    def __init__(self, index: int) -> None:
        self.index = index

    def on_open(self, sim: Simulation, service: Service) -> None:
        sim.log.listener_filter = lambda records: [r for r in records if r.index != self.index]


class CrashRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One injected agent crash."""

    sim_time: float
    step: int
    mode: str
    index: int


class _AppSession:
    """The HTTP app's lifespan (``test_app()``), held open by a task that is never cancelled."""

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.stop = trio.Event()
        self.client: TestClientProtocol | None = None

    async def run(self, app: QuartTrio) -> None:
        """Start the lifespan, publish a test client, and shut down once ``stop`` is set."""
        async with app.test_app() as test_app:
            self.client = test_app.test_client()
            self.ready.set()
            await self.stop.wait()


class SimResult(msgspec.Struct, kw_only=True):
    """What a run produced: the deterministic report, the timeline and the wall time."""

    report: dict[str, Any]
    violation: Violation | None
    samples: list[Sample]
    sim_seconds: float
    records: int
    wall_seconds: float


class Simulation:
    """One seeded run; ``run`` is the ``trio.run`` entry point."""

    def __init__(
        self,
        options: SimOptions,
        *,
        data_dir: Path | None = None,
        hooks: SimHooks | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.data_dir = data_dir
        self.hooks = hooks or SimHooks()
        self.progress = progress
        seeds = random.Random(options.seed)
        self.id_rng = random.Random(seeds.getrandbits(64))
        self.workload = Workload(random.Random(seeds.getrandbits(64)))
        self.fault_rng = random.Random(seeds.getrandbits(64))
        crash_rng = random.Random(seeds.getrandbits(64))
        self.node_id = str(uuid.UUID(int=seeds.getrandbits(128), version=4))
        faults = options.faults
        self.memory = MemoryEventLog() if data_dir is None else None
        self.log = SimLog(slow_disk=faults.slow_disk if data_dir is None else 0.0)
        self.checker = Checker(seed=options.seed, where=lambda: self.step, on_violation=self._violated)
        self.log.observe(self.checker.on_commit)
        self.log.on_crash = self._crash
        self.op_counts: Counter[str] = Counter()
        self.bq_counts: Counter[str] = Counter()
        self.fault_stats = FaultStats()
        self.watchers = [
            Watcher(random.Random(seeds.getrandbits(64)), self.checker, self.workload, faults.disconnects, self.bq_counts)
            for _ in range(options.watchers)
        ]
        self.crash_modes = [crash_rng.choice((CrashMode.BEFORE_COMMIT, CrashMode.AFTER_COMMIT)) for _ in range(faults.agent_crashes)]
        self.crash_times = sorted(crash_rng.uniform(0.1, 0.9) * options.duration for _ in range(faults.agent_crashes))
        self.crashes: list[CrashRecord] = []
        self.config = AgentConfig(node_name=NODE_NAME, data_dir=str(data_dir or ""))
        self.step = 0
        self.service: Service | None = None
        self.samples: list[Sample] = []
        self.sample_every = max(options.duration / SAMPLES, 1.0)
        self.actor_crashes = 0
        self.store_commits = 0
        self._latency_mark = 0
        self._setup_done = False
        self._crashed = False
        self._scope: trio.CancelScope | None = None
        self.end_at = 0.0
        self.finished_at = 0.0
        self.next_user_at = self.next_scale_at = self.next_check_at = self.next_sample_at = 0.0

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workload for the simulated duration, recovering from each injected crash."""
        start = trio.current_time()
        self.end_at = start + self.options.duration
        self.next_user_at = start + self.workload.next_delay(self.options.ops_per_minute)
        self.next_scale_at = start + self.workload.next_delay(self.options.scale_per_minute)
        self.next_check_at = start + self.options.check_every
        self.next_sample_at = start
        while await self._incarnation():
            pass
        self.finished_at = trio.current_time() - start

    @asynccontextmanager
    async def _open_store(self) -> AsyncIterator[EventLog]:
        if self.memory is not None:
            yield self.memory
            return
        assert self.data_dir is not None
        async with open_sqlite_log(log_path(self.data_dir)) as store:
            store.write_inline = True
            store.commit_delay = self.options.faults.slow_disk
            try:
                yield store
            finally:
                self.store_commits += store.commits

    async def _incarnation(self) -> bool:
        """Open the service on the log and run until the end, a crash or a violation.

        Returns whether the agent crashed (and should be opened again). A crash or a violation
        cancels ``self._scope``: the service, its log writer and every client. The app's lifespan
        runs in a task outside that scope and is always shut down cleanly afterwards (quart-trio's
        test app breaks if it is cancelled while it starts up or shuts down).
        """
        self._crashed = False
        async with trio.open_nursery() as lifespans:
            session = _AppSession()
            try:
                with trio.CancelScope() as scope:
                    self._scope = scope
                    async with self._open_store() as store:
                        self.log.attach(store)
                        try:
                            wall_base = EPOCH_NS + round(trio.current_time() * 1e9)
                            async with open_service(self.config, log=self.log, wall_base_ns=wall_base, rng=self.id_rng) as service:
                                try:
                                    await self._serve(service, lifespans, session)
                                finally:
                                    self.actor_crashes += sum(service.supervisor.crashes.values())
                        finally:
                            self.log.detach()
                            self.checker.model = None
            finally:
                session.stop.set()
        return self._crashed and self.checker.violation is None

    def _install(self, service: Service) -> None:
        service.runtime.node_id = self.node_id
        faults = self.options.faults
        if faults.start_failures or faults.crashes_per_hour:
            service.runtime.drivers["mock"] = FaultyDriver(service.runtime.drivers["mock"], self.fault_rng, faults, self.fault_stats)
        self.service = service
        self.checker.model = service.model
        self.hooks.on_open(self, service)

    async def _serve(self, service: Service, lifespans: trio.Nursery, session: _AppSession) -> None:
        self._install(service)
        if self.crashes:
            self.checker.verify_from_scratch(self.log, self.log.acked, f"recovery from crash {len(self.crashes)}")
        watched_before = service.model.hub.statistics().watched_keys
        lifespans.start_soon(session.run, create_app(service))
        await session.ready.wait()
        assert session.client is not None
        try:
            ops = HttpOps(session.client, service, self.checker, self.op_counts)
            async with trio.open_nursery() as nursery:
                if self.log.slow_disk:
                    await nursery.start(self.log.run_writer)
                if not self._setup_done:
                    await self._setup(ops)
                nursery.start_soon(self._drive, ops)
                for watcher in self.watchers:
                    nursery.start_soon(watcher.run, ops, service.runtime.clock)
                nursery.start_soon(self._periodic_checks)
                nursery.start_soon(self._sampler)
                if self.crash_times:
                    nursery.start_soon(self._crash_clock)
                await trio.sleep_until(self.end_at)
                nursery.cancel_scope.cancel()
        finally:
            session.stop.set()
        self.log.arm_crash(None)
        self.checker.verify_replay(self.log, self.log.acked, everything=True)
        watched_after = service.model.hub.statistics().watched_keys
        self.checker.check_now(
            "watch_leak",
            watched_after <= watched_before,
            f"{watched_after} watch entries left after every client went away (started with {watched_before})",
        )
        self._take_sample()

    async def _setup(self, ops: HttpOps) -> None:
        """Create the second namespace and register the initial jobs (one step each)."""
        for name in NAMESPACES[1:]:
            await ops.create_namespace(name)
        for count in self.workload.initial_counts(self.options.allocs):
            plan = self.workload.new_job(count)
            self.step += 1
            await ops.register(plan, plan.body)
            self._after_step()
        self._setup_done = True

    def _after_step(self) -> None:
        assert self.service is not None
        self.hooks.after_step(self, self.service, self.step)

    # --- workload ---------------------------------------------------------------------------------

    async def _drive(self, ops: HttpOps) -> None:
        """Start each user operation and scale change at its Poisson-drawn time."""
        workload = self.workload
        async with trio.open_nursery() as running:
            while True:
                at = min(self.next_user_at, self.next_scale_at)
                if at >= self.end_at:
                    await trio.sleep_forever()
                await trio.sleep_until(at)
                self.step += 1
                if self.next_scale_at <= self.next_user_at:
                    self.next_scale_at = at + workload.next_delay(self.options.scale_per_minute)
                    self._start_scale(running, ops)
                else:
                    self.next_user_at = at + workload.next_delay(self.options.ops_per_minute)
                    self._start_user_op(running, ops)
                self._after_step()

    def _start_scale(self, running: trio.Nursery, ops: HttpOps) -> None:
        choice = self.workload.scale_choice()
        if choice is None:
            return
        plan, count = choice
        if self.workload.wants_deregister():
            plan.deregistered = True
            running.start_soon(ops.deregister, plan)
            return
        plan.count = count
        running.start_soon(ops.register, plan, self.workload.body_with_count(plan, count), "scale")

    def _start_user_op(self, running: trio.Nursery, ops: HttpOps) -> None:
        op = self.workload.next_op()
        live = self.checker.live_allocs
        if not len(live):
            self.op_counts[f"{op.kind}:skipped"] += 1
            return
        alloc_id = live[self.workload.pick(len(live))]
        running.start_soon(ops.alloc_op, op, alloc_id, self.checker.shadow.allocs[alloc_id].tasks)

    # --- checks, samples, crashes -----------------------------------------------------------------

    async def _periodic_checks(self) -> None:
        while True:
            await trio.sleep_until(self.next_check_at)
            self.next_check_at += self.options.check_every
            self.checker.verify_replay(self.log, self.log.acked)
            if self.progress is not None:
                now = trio.current_time()
                self.progress(
                    f"simulated {now:.0f}/{self.options.duration:.0f} s, step {self.step}, "
                    f"{self.checker.shadow.last_index} events, {len(self.checker.shadow.allocs)} allocations"
                )

    async def _sampler(self) -> None:
        while True:
            await trio.sleep_until(self.next_sample_at)
            self.next_sample_at += self.sample_every
            self._take_sample()

    def _take_sample(self) -> None:
        window = self.checker.latencies_ms[self._latency_mark :]
        self._latency_mark = len(self.checker.latencies_ms)
        stats = percentiles(window)
        p50, top = stats["p50"], stats["max"]
        self.samples.append(
            Sample(
                time=round(trio.current_time(), 6),
                statuses=sorted_counts(self.checker.status_counts),
                events=self.checker.shadow.last_index,
                latency_p50_ms=None if p50 is None else float(p50),
                latency_max_ms=None if top is None else float(top),
            )
        )

    async def _crash_clock(self) -> None:
        """Arm each scheduled crash; it fires in the next append (or after a quiet spell, between writes)."""
        while self.crash_times:
            await trio.sleep_until(self.crash_times[0])
            self.crash_times.pop(0)
            self.log.arm_crash(self.crash_modes.pop(0))
            await trio.sleep(IDLE_CRASH_AFTER)
            if self.log.crash_armed:
                self.log.crash_now(CrashMode.IDLE)

    def _crash(self, mode: CrashMode) -> None:
        self.crashes.append(
            CrashRecord(sim_time=round(trio.current_time(), 6), step=self.step, mode=str(mode), index=self.checker.shadow.last_index)
        )
        self._crashed = True
        assert self._scope is not None
        self._scope.cancel()

    def _violated(self, violation: Violation) -> None:
        if self._scope is not None:
            self._scope.cancel()

    # --- the report -------------------------------------------------------------------------------

    def stored_records(self) -> Iterator[Recorded]:
        """Every record in the store, read back from it."""
        if self.memory is not None:
            return self.memory.iter_records()
        assert self.data_dir is not None
        return iter_file_records(log_path(self.data_dir))

    def report(self) -> tuple[dict[str, Any], int]:
        """The deterministic JSON report and the number of records in the log."""
        options, checker = self.options, self.checker
        records, digest = log_digest(self.stored_records())
        allocs = checker.shadow.allocs.values()
        operations: dict[str, dict[str, int]] = {}
        for key, count in sorted(self.op_counts.items()):
            op, _, outcome = key.partition(":")
            operations.setdefault(op, {})[outcome] = count
        violation = checker.violation
        return {
            "seed": options.seed,
            "options": msgspec.to_builtins(options),
            "result": "ok" if violation is None else "violation",
            "violation": None if violation is None else msgspec.to_builtins(violation),
            "simulated_seconds": round(self.finished_at, 3),
            "steps": self.step,
            "log": {
                "storage": options.storage,
                "records": records,
                "sha256": digest,
                "appends": self.log.appends,
                "acknowledged_records": len(self.log.acked),
                "commits": self.store_commits or self.log.group_commits or self.log.appends,
            },
            "events_by_type": sorted_counts(checker.events_by_type),
            "allocations": {
                "placed": len(checker.shadow.allocs),
                "by_client_status": sorted_counts(Counter(a.alloc.ClientStatus for a in allocs)),
                "by_desired_status": sorted_counts(Counter(a.alloc.DesiredStatus for a in allocs)),
            },
            "jobs": {
                "registered": len(self.workload.jobs),
                "deregistered": sum(1 for p in self.workload.jobs if p.deregistered),
            },
            "operations": operations,
            "faults": {
                "driver_start_failures": self.fault_stats.start_failures,
                "task_crashes_scheduled": self.fault_stats.crashes_scheduled,
                "agent_crashes": [msgspec.to_builtins(c) for c in self.crashes],
                "client_disconnects": self.bq_counts["disconnects"],
            },
            "invariant_checks": sorted_counts(checker.checks),
            "blocking_queries": {
                "answered": self.bq_counts["answered"],
                "timeouts": self.bq_counts["timeouts"],
                "disconnects": self.bq_counts["disconnects"],
                "latency_ms": percentiles(checker.latencies_ms),
                "wait_ms": percentiles(checker.waits_ms),
            },
            "actor_crashes": self.actor_crashes,
        }, records


def run_simulation(
    options: SimOptions,
    *,
    data_dir: Path | None = None,
    hooks: SimHooks | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimResult:
    """Run one simulation to completion (or its first violation) and build its report.

    Must be called outside any trio run. With ``data_dir`` the log is SQLite in that directory,
    which must not hold a log yet; otherwise it is in memory.
    """
    if data_dir is not None:
        if log_path(data_dir).exists():
            raise FileExistsError(f"{log_path(data_dir)} already exists; simulate needs an empty data dir")
        options = msgspec.structs.replace(options, storage="sqlite")
    sim = Simulation(options, data_dir=data_dir, hooks=hooks, progress=progress)
    saved = (_TRIO_RUN._ALLOW_DETERMINISTIC_SCHEDULING, _TRIO_RUN._r.getstate(), random.getstate())
    started = time.perf_counter()
    try:
        setattr(_TRIO_RUN, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010 (the name is Final in trio)
        _TRIO_RUN._r.seed(options.seed)
        random.seed(options.seed)
        trio.run(sim.run, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        setattr(_TRIO_RUN, "_ALLOW_DETERMINISTIC_SCHEDULING", saved[0])  # noqa: B010
        _TRIO_RUN._r.setstate(saved[1])
        random.setstate(saved[2])
    wall = time.perf_counter() - started
    report, records = sim.report()
    return SimResult(
        report=report,
        violation=sim.checker.violation,
        samples=sim.samples,
        sim_seconds=sim.finished_at,
        records=records,
        wall_seconds=wall,
    )
