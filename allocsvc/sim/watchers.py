"""Blocking-query clients: readers that follow allocations with ``?index=`` like Nomad's UI and CLI.

Owns ``Watcher``. Each watcher picks a target (one allocation, the allocation list, or a job's
allocations), reads it once for its index, then blocks on it for a few rounds with a random
``wait``. Every answer goes to ``Checker.check_blocking``; with the disconnect fault on, a
watcher sometimes hangs up before its answer arrives (the handler is cancelled, as it is under
hypercorn when a client goes away).
"""

from __future__ import annotations

import random
from collections import Counter

import trio

from allocsvc.actors.runtime import Clock
from allocsvc.sim.invariants import ALLOC_TABLE_KEY, Checker
from allocsvc.sim.ops import HttpOps
from allocsvc.sim.workload import Workload

WAITS = (("10s", 10.0), ("1m", 60.0), ("5m", 300.0))


class Watcher:
    """One blocking-query client, driven by its own seeded generator."""

    def __init__(self, rng: random.Random, checker: Checker, workload: Workload, disconnects: float, counts: Counter[str]) -> None:
        self.rng = rng
        self.checker = checker
        self.workload = workload
        self.disconnects = disconnects
        self.counts = counts

    def _target(self) -> tuple[str, str, dict[str, str]] | None:
        """(path, watch key, fixed query) of the next thing to follow."""
        r = self.rng
        choice = r.random()
        live = self.checker.live_allocs
        if choice < 0.6 and len(live):
            alloc_id = live[r.randrange(len(live))]
            return f"/v1/allocation/{alloc_id}", f"alloc:{alloc_id}", {}
        if choice < 0.85:
            return "/v1/allocations", ALLOC_TABLE_KEY, {"namespace": "*", "per_page": "3", "task_states": "false"}
        jobs = self.workload.jobs
        if not jobs:
            return None
        plan = jobs[r.randrange(len(jobs))]
        return f"/v1/job/{plan.job_id}/allocations", ALLOC_TABLE_KEY, {"namespace": plan.namespace}

    async def run(self, ops: HttpOps, clock: Clock) -> None:
        """Follow targets until cancelled."""
        while True:
            target = self._target()
            if target is None:
                await trio.sleep(1.0)
                continue
            path, key, query = target
            first = await ops.request("watch", "GET", path, query=query)
            index = first.index
            for _ in range(self.rng.randint(1, 6)):
                wait, wait_seconds = self.rng.choice(WAITS)
                hang_up = self.rng.uniform(0.0, wait_seconds) if self.rng.random() < self.disconnects else None
                sent_at = trio.current_time()
                with trio.move_on_after(hang_up if hang_up is not None else float("inf")) as scope:
                    answer = await ops.request("watch", "GET", path, query={**query, "index": str(index), "wait": wait})
                if scope.cancelled_caught:
                    self.counts["disconnects"] += 1
                    continue
                answered_at = trio.current_time()
                self.counts["answered"] += 1
                if answer.index <= index:
                    self.counts["timeouts"] += 1
                if answer.status == 200:
                    self.checker.check_blocking(key, index, answer.index, sent_at, answered_at, clock.now_ns())
                index = answer.index
