"""Passivation of idle running allocations: no trio task per idle allocation, yet every command
and every task exit still reaches the allocation's actor, one at a time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from allocsvc.actors import supervisor as supervisor_module
from allocsvc.actors.alloc import AllocActor
from allocsvc.actors.mailbox import Envelope
from allocsvc.config import AgentConfig
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.drivers.mock import MockDriver, MockHandle
from allocsvc.service import Service, open_service
from allocsvc.store.memory import MemoryEventLog
from tests.conftest import FIXED_WALL
from tests.helpers import example_job, job_from, wait_until

STOP_EVAL = "22222222-2222-4222-8222-222222222222"


def running(svc: Service) -> bool:
    allocs = svc.model.state.allocs.values()
    return bool(allocs) and all(a.alloc.ClientStatus == "running" for a in allocs)


def task_events(svc: Service, alloc_id: str, task: str = "server") -> list[str]:
    return [e.Type for e in (svc.model.state.allocs[alloc_id].alloc.TaskStates or {})[task].Events]


def handle_of(svc: Service, alloc_id: str, task: str = "server") -> MockHandle:
    handle = svc.supervisor.actors[alloc_id].runners[task].handle
    assert isinstance(handle, MockHandle)
    return handle


async def settle(svc: Service) -> None:
    """Let every actor finish what it is doing (and passivate)."""
    await trio.testing.wait_all_tasks_blocked()


async def test_idle_running_allocs_have_no_trio_tasks(
    memory_service: Service, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    await settle(svc)
    tasks_before = len(svc.nursery.child_tasks)
    await svc.scheduler.register(job_from(example_job(count=5, Config={})))
    await wait_until(svc, lambda: running(svc))
    await settle(svc)
    assert svc.supervisor.statistics() == {"actors": 5, "active": 0}
    assert len(svc.nursery.child_tasks) == tasks_before
    for alloc_id, actor in svc.supervisor.actors.items():
        runner = actor.runners["server"]
        assert runner.parked
        assert not runner.finished
        assert not handle_of(svc, alloc_id).exited
        assert actor.stopped.is_set()


async def test_commands_to_a_passive_alloc_are_serialised(
    memory_service: Service, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    (alloc_id,) = svc.model.state.allocs
    await wait_until(svc, lambda: running(svc))
    await settle(svc)
    assert not svc.supervisor.actors[alloc_id].active
    in_flight = 0
    most = 0
    original = AllocActor._process

    async def counting(self: AllocActor, envelope: Envelope[cmd.AnyCommand, list[ev.Recorded]]) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await trio.sleep(0.01)  # mock time: other asks arrive while this one is processed
            await original(self, envelope)
        finally:
            in_flight -= 1

    monkeypatch.setattr(AllocActor, "_process", counting)
    results: list[list[ev.Recorded]] = []

    async def signal(name: str) -> None:
        results.append(await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal=name)))

    names = ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGTERM", "SIGQUIT"]
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(signal, name)
    assert most == 1
    versions = sorted(r.version for records in results for r in records)
    assert versions == list(range(versions[0], versions[0] + len(names)))
    assert sorted(handle_of(svc, alloc_id).signals) == sorted(names)
    await settle(svc)
    assert not svc.supervisor.actors[alloc_id].active


async def test_mailbox_stays_bounded_while_active(autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_service(AgentConfig(mailbox_size=2), log=MemoryEventLog(), wall_base_ns=FIXED_WALL) as svc:
        await svc.scheduler.register(job_from(example_job(count=1, Config={})))
        (alloc_id,) = svc.model.state.allocs
        await wait_until(svc, lambda: running(svc))
        await settle(svc)
        release = trio.Event()
        original = AllocActor._process

        async def blocked(self: AllocActor, envelope: Envelope[cmd.AnyCommand, list[ev.Recorded]]) -> None:
            await release.wait()
            await original(self, envelope)

        monkeypatch.setattr(AllocActor, "_process", blocked)
        done: list[int] = []

        async def signal() -> None:
            done.append(len(await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(signal)
            await settle(svc)
            actor = svc.supervisor.actors[alloc_id]
            # one envelope is being processed, two fill the mailbox, two senders wait for room
            assert actor.mailbox.statistics().queued == 2
            assert actor.mailbox.send.statistics().tasks_waiting_send == 2
            release.set()
        assert done == [1] * 5
        await settle(svc)
        assert not svc.supervisor.actors[alloc_id].active


async def test_exit_of_a_passive_alloc_is_reported(
    memory_service: Service, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=2, Config={})))
    await wait_until(svc, lambda: running(svc))
    await settle(svc)
    alloc_id, other = svc.supervisor.actors
    handle_of(svc, alloc_id).exit_now(exit_code=3)
    assert svc.supervisor.actors[alloc_id].active  # the exit activated it

    def restarted() -> bool:
        state = (svc.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"]
        return state.Restarts == 1 and state.State == "running"

    await wait_until(svc, restarted)
    assert task_events(svc, alloc_id)[-3:] == ["Terminated", "Restarting", "Started"]
    terminated = [e for e in (svc.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"].Events if e.Type == "Terminated"]
    assert terminated[-1].ExitCode == 3
    assert task_events(svc, other)[-1] == "Started"
    await settle(svc)
    assert svc.supervisor.statistics() == {"actors": 2, "active": 0}
    # the restarted task has a new live handle, parked again
    assert not handle_of(svc, alloc_id).exited


async def test_scripted_exits_share_one_timer(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    driver = svc.runtime.drivers["mock"]
    assert isinstance(driver, MockDriver)
    for job_id, run_for in (("slow", "20s"), ("fast", "10s")):
        await svc.scheduler.register(job_from(example_job(job_id, count=2, Config={"run_for": run_for})))
    await wait_until(svc, lambda: running(svc))
    await settle(svc)
    assert svc.supervisor.statistics()["active"] == 0
    assert driver.pending_timers() == 4
    start = trio.current_time()

    def terminated(job_id: str) -> bool:
        return all(
            "Terminated" in task_events(svc, a.alloc.ID) for a in svc.model.state.allocs.values() if a.alloc.JobID == job_id
        )

    await wait_until(svc, lambda: terminated("fast"), timeout=60)
    assert trio.current_time() - start == pytest.approx(10, abs=0.1)
    assert not terminated("slow")
    await wait_until(svc, lambda: terminated("slow"), timeout=60)
    assert trio.current_time() - start == pytest.approx(20, abs=0.1)


async def test_stop_of_a_passive_alloc(memory_service: Service, autojump_clock: trio.testing.MockClock) -> None:
    svc = memory_service
    await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    (alloc_id,) = svc.model.state.allocs
    await wait_until(svc, lambda: running(svc))
    await settle(svc)
    handle = handle_of(svc, alloc_id)
    await svc.supervisor.ask(alloc_id, cmd.StopAlloc(eval_id=STOP_EVAL))
    await wait_until(svc, lambda: svc.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    assert handle.exited
    assert task_events(svc, alloc_id)[-2:] == ["Terminated", "Killed"]
    replacement = svc.model.state.allocs[alloc_id].alloc.NextAllocation
    await wait_until(svc, lambda: svc.model.state.allocs[replacement].alloc.ClientStatus == "running")
    await settle(svc)
    # the finished allocation's actor is gone; the replacement's is passive
    assert alloc_id not in svc.supervisor.actors
    assert svc.supervisor.statistics() == {"actors": 1, "active": 0}


async def test_agent_restart_restores_passive_allocs(autojump_clock: trio.testing.MockClock) -> None:
    log = MemoryEventLog()
    async with open_service(AgentConfig(), log=log, wall_base_ns=FIXED_WALL) as svc:
        await svc.scheduler.register(job_from(example_job(count=3, Config={})))
        await wait_until(svc, lambda: running(svc))
        await settle(svc)
        assert svc.supervisor.statistics() == {"actors": 3, "active": 0}
        ids = sorted(svc.model.state.allocs)
    async with open_service(AgentConfig(), log=log, wall_base_ns=FIXED_WALL) as svc:

        def restored() -> bool:
            return all(
                task_events(svc, a)[-3:] == ["Failed Restoring Task", "Restarting", "Started"] for a in ids
            )

        await wait_until(svc, restored, timeout=120)
        await settle(svc)
        assert svc.supervisor.statistics() == {"actors": 3, "active": 0}
        records = await svc.supervisor.ask(ids[0], cmd.SignalTask(task="server", signal="SIGHUP"))
        assert [type(r.event) for r in records] == [ev.TaskSignaled]
        assert handle_of(svc, ids[0]).signals == ["SIGHUP"]


async def test_start_slots_bound_concurrent_starts(
    memory_service: Service, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = memory_service
    monkeypatch.setattr(supervisor_module, "MAX_STARTING", 3)
    most = 0
    original = AllocActor.run

    async def tracking(self: AllocActor, **kwargs: object) -> None:
        nonlocal most
        most = max(most, svc.supervisor.statistics()["active"])
        await original(self)

    monkeypatch.setattr(AllocActor, "run", tracking)
    await svc.scheduler.register(job_from(example_job(count=12, Config={})))
    assert svc.supervisor.queued() == 9
    await wait_until(svc, lambda: running(svc) and len(svc.model.state.allocs) == 12)
    assert most <= 3
    # a start that blocks gives its slot back after START_SLOT_HOLD, so the others still start
    await svc.scheduler.register(job_from(example_job("blocked", count=3, Config={"start_block_for": "1h"})))
    await svc.scheduler.register(job_from(example_job("later", count=2, Config={})))

    def later_running() -> bool:
        allocs = [a for a in svc.model.state.allocs.values() if a.alloc.JobID == "later"]
        return all(a.alloc.ClientStatus == "running" for a in allocs)

    start = trio.current_time()
    await wait_until(svc, later_running, timeout=60)
    assert trio.current_time() - start == pytest.approx(supervisor_module.START_SLOT_HOLD, abs=0.1)
