"""Property tests over random command sequences of the pure domain."""

from __future__ import annotations

from hypothesis import given, strategies as st

from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.lifecycle import (
    MAX_TASK_EVENTS,
    TASK_RULES,
    AllocAggregate,
    decide,
    evolve,
    place,
    replay,
)
from allocsvc.domain.model import RestartPolicy
from allocsvc.errors import AllocsvcError
from allocsvc.gocompat import SECOND

TASKS = ("web", "side")
POLICY = RestartPolicy(attempts=3, interval=300 * SECOND, delay=5 * SECOND, mode="delay")

task_names = st.sampled_from(TASKS)
commands = st.one_of(
    st.builds(cmd.RecordTaskReceived, task=task_names),
    st.builds(cmd.RecordTaskSetup, task=task_names, message=st.just("Building Task Directory")),
    st.builds(cmd.RecordTaskStarted, task=task_names),
    st.builds(
        cmd.ReportTaskExited,
        task=task_names,
        exit_code=st.integers(0, 3),
        policy=st.just(POLICY),
        restart_on_success=st.booleans(),
        jitter=st.floats(0, 0.99),
    ),
    st.builds(cmd.SignalTask, task=st.one_of(st.just(""), task_names), signal=st.just("SIGHUP")),
    st.builds(cmd.RestartTask, task=st.one_of(st.just(""), task_names), all_tasks=st.booleans()),
    st.builds(cmd.BeginKill, task=task_names, kill_timeout=st.just(SECOND)),
    st.builds(cmd.StopAlloc, eval_id=st.just("e")),
    st.builds(cmd.MarkAllocStopped, description=st.just("alloc is being migrated")),
)


def run_sequence(seq: list[cmd.AnyCommand], gaps: list[int]) -> tuple[AllocAggregate, list[ev.Recorded], int]:
    placed = ev.AllocPlaced(
        alloc_id="a", namespace="default", eval_id="e", name="j.g[0]", node_id="n", node_name="n",
        job_id="j", job_version=0, task_group="g", tasks=TASKS,
    )  # fmt: skip
    now = 1_700_000_000 * SECOND
    records = [ev.Recorded(index=1, stream="alloc/a", version=1, time=now, event=placed)]
    state = place(records[0])
    accepted = 0
    for command, gap in zip(seq, gaps, strict=False):
        now += gap
        try:
            events = decide(state, command, now)
        except AllocsvcError:
            continue
        accepted += 1
        for event in events:
            recorded = ev.Recorded(
                index=records[-1].index + 1, stream="alloc/a", version=state.version + 1, time=now, event=event
            )
            before = state
            state = evolve(state, recorded)
            assert state.alloc.ModifyIndex >= before.alloc.ModifyIndex
            records.append(recorded)
    return state, records, accepted


@given(st.lists(commands, max_size=60), st.lists(st.integers(0, 20 * SECOND), min_size=60, max_size=60))
def test_replay_rebuilds_live_state(seq: list[cmd.AnyCommand], gaps: list[int]) -> None:
    state, records, _ = run_sequence(seq, gaps)
    assert replay(records) == state
    assert [r.index for r in records] == list(range(1, len(records) + 1))
    assert [r.version for r in records] == list(range(1, len(records) + 1))


@given(st.lists(commands, max_size=80), st.lists(st.integers(0, 20 * SECOND), min_size=80, max_size=80))
def test_ten_event_limit_and_counters(seq: list[cmd.AnyCommand], gaps: list[int]) -> None:
    state, records, _ = run_sequence(seq, gaps)
    for task in TASKS:
        nomad_events = [
            r for r in records if isinstance(r.event, ev.TaskEventBase) and r.event.task == task
            and type(r.event) not in (ev.TaskCompleted,)
        ]  # fmt: skip
        kept = (state.alloc.TaskStates or {})[task].Events
        assert len(kept) == min(len(nomad_events), MAX_TASK_EVENTS)
        assert [e.Time for e in kept] == [r.time for r in nomad_events][-MAX_TASK_EVENTS:] if kept else True
        restarts = sum(1 for r in nomad_events if isinstance(r.event, ev.TaskRestarting))
        assert (state.alloc.TaskStates or {})[task].Restarts == restarts


@given(st.lists(commands, max_size=60), st.lists(st.integers(0, 20 * SECOND), min_size=60, max_size=60))
def test_every_history_is_a_path_of_the_table(seq: list[cmd.AnyCommand], gaps: list[int]) -> None:
    _, records, _ = run_sequence(seq, gaps)
    status = dict.fromkeys(TASKS, "pending")
    for r in records[1:]:
        if isinstance(r.event, ev.TaskEventBase):
            rule = TASK_RULES[type(r.event)]
            assert status[r.event.task] in rule.allowed_from
            if rule.to is not None:
                status[r.event.task] = rule.to
