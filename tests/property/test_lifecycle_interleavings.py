"""Random interleavings of stop, signal, restart and driver exits, on the mock driver and memory log.

Each example runs a whole service under trio's autojump clock: a two-task allocation receives a
generated schedule of lifecycle commands and injected process exits (several may land at the same
instant), then everything settles. Afterwards every allocation's history must be a path of
``TASK_RULES``, replaying the log must rebuild exactly the live state, acknowledged commands must
appear in the log once and in acknowledgement order, a killed task must stay dead, and a stopped
allocation must end terminal.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st

from allocsvc.config import AgentConfig
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.lifecycle import TASK_RULES
from allocsvc.drivers.mock import MockHandle
from allocsvc.errors import AllocsvcError
from allocsvc.gocompat import MINUTE, SECOND
from allocsvc.service import Service, open_service
from allocsvc.store.memory import MemoryEventLog
from tests.conftest import FIXED_WALL
from tests.helpers import job_from, wait_until

TASKS = ("web", "side")
SETTLE = 3600.0

Action = tuple[str, str, Any]

actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(st.just("stop"), st.just(""), st.booleans()),
    st.tuples(
        st.just("signal"), st.sampled_from(["", *TASKS, "nope"]), st.sampled_from(["SIGHUP", "SIGUSR1", ""])
    ),
    st.tuples(st.just("restart"), st.sampled_from(["", *TASKS]), st.booleans()),
    st.tuples(st.just("exit"), st.sampled_from(TASKS), st.integers(0, 2)),
)
schedules = st.lists(
    st.tuples(st.sampled_from([0.0, 0.0, 0.5, 2.0, 3.0, 7.0, 20.0, 60.0]), actions), min_size=1, max_size=16
)


def two_task_job(mode: str, attempts: int) -> dict[str, Any]:
    tasks = [
        {
            "Name": name,
            "Driver": "mock",
            "Config": {},
            "KillTimeout": 5 * SECOND,
            "Resources": {"CPU": 100, "MemoryMB": 64},
        }
        for name in TASKS
    ]
    policy = {"Attempts": attempts, "Interval": 5 * MINUTE, "Delay": SECOND, "Mode": mode}
    group = {"Name": "app", "Count": 1, "RestartPolicy": policy, "Tasks": tasks}
    return {
        "Job": {
            "ID": "prop",
            "Name": "prop",
            "Namespace": "default",
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [group],
        }
    }


def command_for(action: Action, rng: random.Random) -> cmd.AnyCommand:
    kind, task, arg = action
    if kind == "stop":
        return cmd.StopAlloc(
            eval_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), no_shutdown_delay=arg
        )
    if kind == "signal":
        return cmd.SignalTask(task=task, signal=arg)
    return cmd.RestartTask(task=task, all_tasks=arg and not task)


def inject_exit(service: Service, alloc_id: str, task: str, code: int) -> None:
    """Make the task's scripted process exit now, if it has one."""
    actor = service.supervisor.actors.get(alloc_id)
    runner = actor.runners.get(task) if actor is not None else None
    handle = runner.handle if runner is not None else None
    if isinstance(handle, MockHandle):
        handle.exit_now(exit_code=code)


def check_history(service: Service, alloc_id: str) -> None:
    """The alloc's task events follow the lifecycle table; nothing happens to a task after Killed."""
    status = dict.fromkeys(TASKS, "pending")
    killed: set[str] = set()
    restarting = dict.fromkeys(TASKS, 0)
    for r in service.log.iter_records():
        if r.stream != f"alloc/{alloc_id}" or not isinstance(r.event, ev.TaskEventBase):
            continue
        task = r.event.task
        assert task not in killed, f"{type(r.event).__name__} after Killed"
        rule = TASK_RULES[type(r.event)]
        assert status[task] in rule.allowed_from, (type(r.event).__name__, status[task])
        if rule.to is not None:
            status[task] = rule.to
        if isinstance(r.event, ev.TaskKilled):
            killed.add(task)
        restarting[task] += isinstance(r.event, ev.TaskRestarting)
    agg = service.model.state.allocs[alloc_id]
    for task in TASKS:
        state = (agg.alloc.TaskStates or {})[task]
        assert state.State == status[task]
        assert state.Restarts == restarting[task]


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    schedule=schedules,
    mode=st.sampled_from(["fail", "delay"]),
    attempts=st.integers(0, 2),
    seed=st.integers(0, 2**32),
)
async def test_random_interleavings_keep_the_log_consistent(
    schedule: list[tuple[float, Action]],
    mode: str,
    attempts: int,
    seed: int,
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(seed)
    async with open_service(
        AgentConfig(), log=MemoryEventLog(), wall_base_ns=FIXED_WALL, rng=random.Random(seed)
    ) as service:
        await service.scheduler.register(job_from(two_task_job(mode, attempts)))
        (alloc_id,) = service.model.state.allocs
        await wait_until(
            service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "running"
        )
        acked: list[list[ev.Recorded]] = []

        async def act(at: float, action: Action) -> None:
            await trio.sleep(at)
            if action[0] == "exit":
                inject_exit(service, alloc_id, action[1], action[2])
                return
            try:
                acked.append(await service.supervisor.ask(alloc_id, command_for(action, rng)))
            except AllocsvcError:
                pass

        async with trio.open_nursery() as nursery:
            for at, action in schedule:
                nursery.start_soon(act, at, action)
        await trio.sleep(SETTLE)

        log = list(service.log.iter_records())
        assert [r.index for r in log] == list(range(1, len(log) + 1))
        replayed = ClusterState()
        replayed.apply_all(log)
        assert replayed.allocs == service.model.state.allocs
        assert replayed.evals == service.model.state.evals
        assert replayed.table_index == service.model.state.table_index

        by_index = {r.index: r for r in log}
        first_indexes = [records[0].index for records in acked if records]
        assert first_indexes == sorted(first_indexes)
        for records in acked:
            for recorded in records:
                assert by_index[recorded.index] == recorded

        for other in service.model.state.allocs:
            check_history(service, other)
        stopped = any(
            isinstance(r.event, ev.AllocStopRequested) for r in log if r.stream == f"alloc/{alloc_id}"
        )
        alloc = service.model.state.allocs[alloc_id].alloc
        if stopped:
            assert alloc.DesiredStatus == "stop"
            assert alloc.ClientStatus in ("complete", "failed")
            assert all(s.State == "dead" for s in (alloc.TaskStates or {}).values())
        if alloc.ClientStatus in ("complete", "failed"):
            actor = service.supervisor.actors.get(alloc_id)
            assert actor is None or all(r.handle is None for r in actor.runners.values())
