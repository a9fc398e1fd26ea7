"""Actors, mock driver and read model together on the memory log, under trio's autojump clock."""

from __future__ import annotations

import trio

from allocsvc.domain import commands as cmd
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.lifecycle import replay
from allocsvc.service import Service
from tests.helpers import example_job, job_from, wait_until


def statuses(service: Service) -> list[str]:
    return sorted(a.alloc.ClientStatus for a in service.model.state.allocs.values())


async def test_register_places_running_allocs(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    result = await svc.scheduler.register(job_from(example_job(count=2)))
    assert result.eval_id
    assert result.index > 0
    allocs = list(svc.model.state.allocs.values())
    assert sorted(a.alloc.Name for a in allocs) == ["web.app[0]", "web.app[1]"]
    assert all(a.alloc.EvalID == result.eval_id for a in allocs)
    await wait_until(svc, lambda: statuses(svc) == ["running", "running"])


async def test_restart_policy_then_failure(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    body = example_job(count=1, Config={"run_for": "10s", "exit_code": 1})
    await svc.scheduler.register(job_from(body))
    await wait_until(svc, lambda: statuses(svc) == ["failed"], timeout=600)
    agg = next(iter(svc.model.state.allocs.values()))
    task = (agg.alloc.TaskStates or {})["server"]
    assert task.Restarts == 2
    assert task.Failed
    assert task.State == "dead"
    assert task.Events[-1].Type == "Not Restarting"
    state = ClusterState()
    state.apply_all(svc.log.iter_records())
    assert state.allocs[agg.alloc.ID] == agg
    records = [r for r in svc.log.iter_records() if r.stream == f"alloc/{agg.alloc.ID}"]
    assert replay(records) == agg


async def test_stop_kills_and_places_replacement(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    await wait_until(svc, lambda: statuses(svc) == ["running"])
    old_id = next(iter(svc.model.state.allocs))
    records = await svc.supervisor.ask(old_id, cmd.StopAlloc(eval_id="11111111-1111-4111-8111-111111111111"))
    assert records[-1].index == svc.model.state.allocs[old_id].alloc.ModifyIndex or records
    await wait_until(svc, lambda: statuses(svc) == ["complete", "running"])
    old = svc.model.state.allocs[old_id].alloc
    assert old.DesiredStatus == "stop"
    assert old.DesiredDescription == "alloc is being migrated"
    assert old.DesiredTransition is not None
    assert old.DesiredTransition.Migrate
    new = svc.model.state.allocs[old.NextAllocation].alloc
    assert new.PreviousAllocation == old_id
    types = [e.Type for e in (old.TaskStates or {})["server"].Events]
    assert types[-3:] == ["Killing", "Terminated", "Killed"]
    assert svc.model.state.evals["11111111-1111-4111-8111-111111111111"].Status == "complete"


async def test_concurrent_commands_are_serialised(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    await wait_until(svc, lambda: statuses(svc) == ["running"])
    alloc_id = next(iter(svc.model.state.allocs))
    acked: list[int] = []

    async def signal() -> None:
        records = await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))
        acked.append(records[0].index)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(signal)
    logged = [r.index for r in svc.log.iter_records() if r.stream == f"alloc/{alloc_id}" and type(r.event).__name__ == "TaskSignaled"]
    assert sorted(acked) == logged
    assert len(set(acked)) == 20


async def test_exec_audit_record_does_not_move_indexes(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    alloc_id = next(iter(svc.model.state.allocs))
    await wait_until(svc, lambda: statuses(svc) == ["running"])
    before = (svc.model.index("allocs"), svc.model.state.allocs[alloc_id].alloc.ModifyIndex)
    records = await svc.supervisor.ask(
        alloc_id,
        cmd.RecordExecSession(task="server", command=("echo", "hi"), tty=False, accessor_id="anonymous", exit_code=0, started_at=1),
    )
    assert records
    assert records[0].index > before[0]
    assert (svc.model.index("allocs"), svc.model.state.allocs[alloc_id].alloc.ModifyIndex) == before
    state = ClusterState()
    state.apply_all(svc.log.iter_records())
    assert state.index("allocs") == before[0]
