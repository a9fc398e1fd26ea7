"""The seeded workload: which jobs exist, what their mock tasks do, and which user calls come when.

Owns ``Workload`` (job specs drawn from distributions, scale changes, the mix and timing of user
operations). Pure: it draws only from the ``random.Random`` it is given and never touches trio, the
service or the clock, so the same seed always yields the same plan. The harness asks it what to
do next and carries the operations out through the HTTP app.
"""

from __future__ import annotations

import math
import random
from typing import Any

import msgspec

from allocsvc.gocompat import MINUTE, SECOND

NAMESPACES = ("default", "sim")
"""Jobs are spread over the default namespace and one the harness creates."""

OP_KINDS = ("stop", "signal", "restart")
OP_WEIGHTS = (3, 4, 3)
SIGNALS = ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT")


class JobPlan(msgspec.Struct, kw_only=True):
    """One job the workload registered: its spec body and current count."""

    job_id: str
    namespace: str
    job_type: str
    body: dict[str, Any]
    count: int
    tasks: tuple[str, ...]
    deregistered: bool = False


class Op(msgspec.Struct, frozen=True, kw_only=True):
    """A user operation on one allocation, drawn before the target is chosen."""

    kind: str
    signal: str = ""
    task_index: int = -1
    """For signal/restart: which task (-1: all tasks / running tasks)."""
    all_tasks: bool = False
    no_shutdown_delay: bool = False


def _seconds(value: float) -> str:
    return f"{max(1, round(value))}s"


class Workload:
    """Draws jobs and operations from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.jobs: list[JobPlan] = []

    # --- jobs -----------------------------------------------------------------------------------

    def _task(self, name: str, job_type: str) -> dict[str, Any]:
        r = self.rng
        config: dict[str, Any] = {}
        if job_type == "batch":
            config["run_for"] = _seconds(r.lognormvariate(math.log(300), 1.0))
            config["exit_code"] = 0 if r.random() < 0.8 else 1
        else:
            if r.random() >= 0.3:  # 30 % of service tasks run until stopped
                config["run_for"] = _seconds(r.lognormvariate(math.log(600), 1.0))
            config["exit_code"] = r.choices((0, 1, 2), weights=(6, 3, 1))[0]
        if r.random() < 0.01:
            config["start_error"] = "sim: image not found"
            config["start_error_recoverable"] = r.random() < 0.5
        if r.random() < 0.2:
            config["kill_after"] = _seconds(r.uniform(1, 8))
        return {
            "Name": name,
            "Driver": "mock",
            "Config": config,
            "KillTimeout": r.choice((2, 5, 10)) * SECOND,
            "Resources": {"CPU": 100, "MemoryMB": 64},
        }

    def new_job(self, count: int) -> JobPlan:
        """A new job spec with ``count`` allocations."""
        r = self.rng
        number = len(self.jobs)
        job_type = "batch" if r.random() < 0.2 else "service"
        namespace = NAMESPACES[0] if r.random() < 0.75 else NAMESPACES[1]
        job_id = f"sim-{number:05d}"
        n_tasks = r.choices((1, 2, 3), weights=(70, 25, 5))[0]
        tasks = tuple(("main", "sidecar", "logger")[:n_tasks])
        group: dict[str, Any] = {
            "Name": "app",
            "Count": count,
            "RestartPolicy": {
                "Attempts": r.randint(1, 3),
                "Interval": r.choice((10, 20, 30)) * MINUTE,
                "Delay": r.choice((5, 15, 30)) * SECOND,
                "Mode": "fail" if r.random() < 0.7 else "delay",
            },
            "Tasks": [self._task(t, job_type) for t in tasks],
        }
        if r.random() < 0.1:
            group["ShutdownDelay"] = r.randint(1, 5) * SECOND
        body = {
            "Job": {
                "ID": job_id,
                "Name": job_id,
                "Namespace": namespace,
                "Type": job_type,
                "Datacenters": ["dc1"],
                "TaskGroups": [group],
            }
        }
        plan = JobPlan(job_id=job_id, namespace=namespace, job_type=job_type, body=body, count=count, tasks=tasks)
        self.jobs.append(plan)
        return plan

    def initial_counts(self, total_allocs: int) -> list[int]:
        """Counts of the initial jobs: 1 to 20 each, summing to exactly ``total_allocs``."""
        counts: list[int] = []
        left = total_allocs
        while left > 0:
            count = min(left, self.rng.randint(1, 20))
            counts.append(count)
            left -= count
        return counts

    @staticmethod
    def body_with_count(plan: JobPlan, count: int) -> dict[str, Any]:
        """The job's spec with another group count (a scale change re-registers it)."""
        job = dict(plan.body["Job"])
        group = dict(job["TaskGroups"][0], Count=count)
        job["TaskGroups"] = [group]
        return {"Job": job}

    def scale_choice(self) -> tuple[JobPlan, int] | None:
        """A live job and a different count for it (0 to 20), or None when no job is live."""
        live = [p for p in self.jobs if not p.deregistered]
        if not live:
            return None
        plan = self.rng.choice(live)
        count = self.rng.randint(0, 20)
        if count == plan.count:
            count = (count + 1) % 21
        return plan, count

    def wants_deregister(self) -> bool:
        """One scale step in twenty deregisters its job instead."""
        return self.rng.random() < 0.05

    # --- user operations ------------------------------------------------------------------------

    def next_delay(self, per_minute: float) -> float:
        """Seconds to the next event of a Poisson process with this rate (inf when 0)."""
        if per_minute <= 0:
            return math.inf
        return self.rng.expovariate(per_minute / 60.0)

    def next_op(self) -> Op:
        """The next user call: kind and its parameters."""
        r = self.rng
        kind = r.choices(OP_KINDS, weights=OP_WEIGHTS)[0]
        if kind == "stop":
            return Op(kind=kind, no_shutdown_delay=r.random() < 0.3)
        if kind == "signal":
            return Op(kind=kind, signal=r.choice(SIGNALS), task_index=r.choice((-1, 0, 0, 1)))
        mode = r.random()
        if mode < 0.2:
            return Op(kind=kind, all_tasks=True)
        return Op(kind=kind, task_index=-1 if mode < 0.5 else r.choice((0, 1)))

    def pick(self, n: int) -> int:
        """A uniform index below ``n``."""
        return self.rng.randrange(n)
