"""The simulation's invariant checker on hand-made histories: each check catches what it should."""

from __future__ import annotations

from allocsvc.domain import events as ev
from allocsvc.sim.invariants import Checker, Violation

BASE = 1_700_000_000_000_000_000


def placed(index: int = 1, alloc: str = "a") -> ev.Recorded:
    event = ev.AllocPlaced(
        alloc_id=alloc,
        namespace="default",
        eval_id="e",
        name="job.app[0]",
        node_id="n",
        node_name="node",
        job_id="job",
        job_version=0,
        task_group="app",
        tasks=("web",),
    )
    return ev.Recorded(index=index, stream=ev.alloc_stream(alloc), version=1, time=BASE + index, event=event)


def task_event(index: int, version: int, event: ev.Event, alloc: str = "a") -> ev.Recorded:
    return ev.Recorded(index=index, stream=ev.alloc_stream(alloc), version=version, time=BASE + index, event=event)


def new_checker() -> tuple[Checker, list[Violation]]:
    seen: list[Violation] = []
    checker = Checker(seed=42, where=lambda: 17, on_violation=seen.append)
    return checker, seen


async def test_a_valid_history_passes() -> None:
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(2, 2, ev.TaskReceived(task="web"))])
    checker.on_commit([task_event(3, 3, ev.TaskStarted(task="web"))])
    assert seen == []
    assert checker.violation is None
    assert checker.checks["task_rules"] == 2
    assert checker.status_counts["running"] == 1


async def test_a_transition_outside_the_lifecycle_table_is_caught() -> None:
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(2, 2, ev.TaskStarted(task="web"))])
    checker.on_commit([task_event(3, 3, ev.TaskStarted(task="web"))])
    assert len(seen) == 1
    violation = seen[0]
    assert violation.invariant == "task_rules"
    assert "TaskStarted at 3" in violation.detail
    assert (violation.seed, violation.step) == (42, 17)
    checker.on_commit([task_event(4, 4, ev.TaskStarted(task="web"))])
    assert len(seen) == 1, "checking stops at the first violation"


async def test_an_index_gap_and_a_version_gap_are_caught() -> None:
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(3, 2, ev.TaskReceived(task="web"))])
    assert [v.invariant for v in seen] == ["index_monotonic"]
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(2, 3, ev.TaskReceived(task="web"))])
    assert [v.invariant for v in seen] == ["stream_versions"]


async def test_blocking_answers_must_be_prompt_and_miss_nothing() -> None:
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(2, 2, ev.TaskReceived(task="web"))])
    committed = checker.commit_times[2]
    checker.check_blocking("alloc:a", 1, 2, sent_at=committed - 5, answered_at=committed, answered_wall_ns=BASE + 2)
    assert seen == []
    assert checker.latencies_ms == [0.0]
    checker.check_blocking("alloc:a", 1, 1, sent_at=committed + 1, answered_at=committed + 1, answered_wall_ns=BASE + 9)
    assert [v.invariant for v in seen] == ["blocking_no_missed_change"]
    checker, seen = new_checker()
    checker.on_commit([placed(), task_event(2, 2, ev.TaskReceived(task="web"))])
    committed = checker.commit_times[2]
    checker.check_blocking("alloc:a", 1, 2, sent_at=committed - 5, answered_at=committed + 1, answered_wall_ns=BASE + 9)
    assert [v.invariant for v in seen] == ["blocking_prompt_wakeup"]
