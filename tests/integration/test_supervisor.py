"""Supervision: crashed actors restart from the log, idle ones passivate, shutdown fails asks cleanly."""

from __future__ import annotations

import pytest
import trio

from allocsvc.actors.alloc import AllocActor
from allocsvc.domain import commands as cmd
from allocsvc.errors import ActorStoppedError, LifecycleError, NotFoundError
from allocsvc.service import Service
from tests.helpers import example_job, job_from, wait_until


async def test_crashed_actor_is_restarted_and_service_survives(
    memory_service: Service, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    alloc_id = next(iter(svc.model.state.allocs))
    await wait_until(svc, lambda: svc.model.state.allocs[alloc_id].alloc.ClientStatus == "running")
    first = svc.supervisor.actors[alloc_id]
    original = AllocActor._react
    crashed = []

    async def exploding(self: AllocActor, records: object) -> None:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("planted crash in an effect")
        await original(self, records)  # type: ignore[arg-type]

    monkeypatch.setattr(AllocActor, "_react", exploding)
    await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))
    await first.stopped.wait()
    assert svc.supervisor.crashes[alloc_id] == 1
    # the restarted actor cannot reattach the old process: Failed Restoring Task, then the restart policy

    def restored() -> bool:
        task = (svc.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"]
        return task.State == "running" and task.Restarts == 1

    await wait_until(svc, restored)
    types = [e.Type for e in (svc.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"].Events]
    assert types[-3:] == ["Failed Restoring Task", "Restarting", "Started"]
    records = await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))
    assert records
    assert svc.supervisor.actors[alloc_id] is not first
    other = await svc.scheduler.register(job_from(example_job("other", count=1, Config={})))
    assert other.eval_id


async def test_errors_reach_the_caller_unwrapped(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    alloc_id = next(iter(svc.model.state.allocs))
    with pytest.raises(NotFoundError, match="Task not found"):
        await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="nope"))
    with pytest.raises(LifecycleError, match="task name cannot be set"):
        await svc.supervisor.ask(alloc_id, cmd.RestartTask(task="server", all_tasks=True))
    with pytest.raises(NotFoundError, match="Unknown allocation"):
        await svc.supervisor.ask("00000000-0000-4000-8000-000000000000", cmd.SignalTask())


async def test_terminal_allocs_passivate_and_reactivate(
    memory_service: Service, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    alloc_id = next(iter(svc.model.state.allocs))
    await wait_until(svc, lambda: svc.model.state.allocs[alloc_id].alloc.ClientStatus == "running")
    await svc.supervisor.ask(alloc_id, cmd.StopAlloc(eval_id="22222222-2222-4222-8222-222222222222"))
    await wait_until(svc, lambda: svc.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    # a finished allocation's actor passivates as soon as it is idle, and is dropped
    await trio.testing.wait_all_tasks_blocked()
    assert alloc_id not in svc.supervisor.actors
    assert svc.supervisor.passivate_idle() == 0
    # a stop of a finished allocation still succeeds (as on Nomad), on a re-spawned actor
    records = await svc.supervisor.ask(alloc_id, cmd.StopAlloc(eval_id="33333333-3333-4333-8333-333333333333"))
    assert records[0].stream == f"alloc/{alloc_id}"


async def test_shutdown_fails_pending_asks_cleanly(
    memory_service: Service, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    alloc_id = next(iter(svc.model.state.allocs))
    await svc.supervisor.aclose()
    with pytest.raises(ActorStoppedError):
        await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server"))
