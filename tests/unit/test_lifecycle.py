"""The lifecycle table, decide and evolve, without trio."""

from __future__ import annotations

import pytest

from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.lifecycle import (
    MAX_TASK_EVENTS,
    TASK_RULES,
    AllocAggregate,
    decide,
    derive_client_status,
    evolve,
    place,
    replay,
)
from allocsvc.domain.model import RestartPolicy, TaskState
from allocsvc.domain.restarts import SERVICE_DEFAULT
from allocsvc.errors import LifecycleError, NotFoundError
from allocsvc.gocompat import SECOND

NOW = 1_700_000_000 * SECOND


class Stream:
    """A tiny in-memory stream: decide, number, evolve."""

    def __init__(self, tasks: tuple[str, ...] = ("web",)) -> None:
        placed = ev.AllocPlaced(
            alloc_id="a", namespace="default", eval_id="e", name="j.g[0]", node_id="n", node_name="node",
            job_id="j", job_version=0, task_group="g", tasks=tasks,
        )  # fmt: skip
        self.index = 1
        self.records = [ev.Recorded(index=1, stream="alloc/a", version=1, time=NOW, event=placed)]
        self.state: AllocAggregate = place(self.records[0])

    def run(self, command: cmd.AnyCommand, at: int = NOW) -> list[ev.Event]:
        events = decide(self.state, command, at)
        for event in events:
            self.index += 1
            recorded = ev.Recorded(index=self.index, stream="alloc/a", version=self.state.version + 1, time=at, event=event)
            self.records.append(recorded)
            self.state = evolve(self.state, recorded)
        return events

    def task(self, name: str = "web") -> TaskState:
        return (self.state.alloc.TaskStates or {})[name]

    def start(self, name: str = "web") -> None:
        self.run(cmd.RecordTaskReceived(task=name))
        self.run(cmd.RecordTaskSetup(task=name, message="Building Task Directory"))
        self.run(cmd.RecordTaskStarted(task=name))


def exited(code: int, policy: RestartPolicy = SERVICE_DEFAULT, task: str = "web") -> cmd.ReportTaskExited:
    return cmd.ReportTaskExited(task=task, exit_code=code, policy=policy, restart_on_success=True, jitter=0.0)


def test_normal_start_sequence_and_client_status() -> None:
    s = Stream()
    assert s.state.alloc.ClientStatus == "pending"
    s.start()
    types = [e.Type for e in s.task().Events]
    assert types == ["Received", "Task Setup", "Started"]
    assert [e.DisplayMessage for e in s.task().Events] == [
        "Task received by client",
        "Building Task Directory",
        "Task started by client",
    ]
    assert s.task().State == "running"
    assert s.task().StartedAt is not None
    assert s.task().StartedAt.endswith("Z")
    assert s.state.alloc.ClientStatus == "running"
    assert s.state.alloc.ClientDescription == "Tasks are running"
    assert s.state.alloc.ModifyIndex == s.index


def test_exit_within_policy_restarts_and_counts() -> None:
    s = Stream()
    s.start()
    events = s.run(exited(1))
    assert isinstance(events[1], ev.TaskRestarting)
    assert events[1].delay == 15 * SECOND
    task = s.task()
    assert task.State == "pending"
    assert task.Restarts == 1
    assert task.LastRestart is not None
    assert task.Events[-2].DisplayMessage == "Exit Code: 1"
    assert task.Events[-1].DisplayMessage == "Task restarting in 15s"


def test_restart_signaled_does_not_count_but_restarting_does() -> None:
    s = Stream()
    s.start()
    s.run(cmd.RestartTask(task="web"))
    assert s.task().Restarts == 0
    events = s.run(exited(0))
    assert isinstance(events[-1], ev.TaskRestarting)
    assert events[-1].delay == 0
    assert s.task().Restarts == 1
    assert s.task().Events[-1].DisplayMessage == "Task restarting in 0s"
    assert s.task().Events[-3].DisplayMessage == "User requested task to restart"


def test_exceeding_attempts_in_fail_mode_fails_the_task() -> None:
    policy = RestartPolicy(attempts=1, interval=60 * SECOND, delay=SECOND, mode="fail")
    s = Stream()
    s.start()
    s.run(exited(1, policy))
    s.run(cmd.RecordTaskStarted(task="web"))
    events = s.run(exited(1, policy))
    assert isinstance(events[-1], ev.TaskNotRestarting)
    assert s.task().State == "dead"
    assert s.task().Failed
    assert s.task().Events[-1].DisplayMessage == 'Exceeded allowed attempts 1 in interval 1m0s and mode is "fail"'
    assert s.state.alloc.ClientStatus == "failed"
    assert s.task().FinishedAt is not None


def test_batch_success_completes_quietly() -> None:
    s = Stream()
    s.start()
    events = s.run(
        cmd.ReportTaskExited(task="web", exit_code=0, policy=SERVICE_DEFAULT, restart_on_success=False)
    )
    assert isinstance(events[-1], ev.TaskCompleted)
    assert [e.Type for e in s.task().Events][-1] == "Terminated"
    assert s.task().State == "dead"
    assert not s.task().Failed
    assert s.state.alloc.ClientStatus == "complete"
    assert s.state.alloc.ClientDescription == "All tasks have completed"


def test_kill_sequence() -> None:
    s = Stream()
    s.start()
    events = s.run(cmd.BeginKill(task="web", kill_timeout=5 * SECOND, shutdown_delay=2 * SECOND))
    assert [type(e) for e in events] == [ev.TaskKilling, ev.TaskShutdownDelayWaited]
    s.run(exited(0))
    types = [e.Type for e in s.task().Events]
    assert types[-4:] == ["Killing", "Waiting for shutdown delay", "Terminated", "Killed"]
    assert s.task().Events[-4].DisplayMessage == "Sent interrupt. Waiting 5s before force killing"
    assert s.task().Events[-3].DisplayMessage == "Waiting for shutdown_delay of 2s before killing the task."
    assert s.task().Events[-1].DisplayMessage == "Task successfully killed"
    assert s.state.alloc.ClientStatus == "complete"


def test_skipped_shutdown_delay() -> None:
    s = Stream()
    s.start()
    events = s.run(
        cmd.BeginKill(task="web", kill_timeout=SECOND, shutdown_delay=2 * SECOND, skip_shutdown_delay=True)
    )
    assert isinstance(events[-1], ev.TaskShutdownDelaySkipped)
    assert s.task().Events[-1].DisplayMessage == "Skipping shutdown_delay of 2s before killing the task."


def test_signal_rules() -> None:
    s = Stream(("web", "side"))
    with pytest.raises(NotFoundError, match="Task not found"):
        s.run(cmd.SignalTask(task="nope"))
    with pytest.raises(LifecycleError, match="Task not running"):
        s.run(cmd.SignalTask(task="web"))
    with pytest.raises(LifecycleError) as info:
        s.run(cmd.SignalTask())
    assert info.value.message.startswith("2 errors occurred:\n\t* Failed to signal task: web, err: Task not running\n")
    s.start("web")
    s.start("side")
    events = s.run(cmd.SignalTask(signal="SIGUSR1"))
    assert len(events) == 2
    assert s.task().Events[-1].Details == {"signal": "SIGUSR1"}
    assert s.task().Events[-1].DisplayMessage == "Task being sent a signal"


def test_restart_errors() -> None:
    s = Stream()
    with pytest.raises(LifecycleError, match="task name cannot be set when restarting all tasks"):
        s.run(cmd.RestartTask(task="web", all_tasks=True))
    with pytest.raises(NotFoundError, match="Could not find task runner for task: x"):
        s.run(cmd.RestartTask(task="x"))
    with pytest.raises(LifecycleError, match="Task not running"):
        s.run(cmd.RestartTask(task="web"))
    s.start()
    s.run(cmd.MarkAllocStopped(description="alloc is being migrated"))
    with pytest.raises(LifecycleError, match="restart of an alloc that should not run"):
        s.run(cmd.RestartTask())


def test_table_refuses_illegal_transitions() -> None:
    s = Stream()
    with pytest.raises(LifecycleError):
        s.run(exited(0))  # Terminated needs a running task
    assert all(rule.allowed_from for rule in TASK_RULES.values())


def test_ten_event_limit_keeps_newest_and_drops_received() -> None:
    s = Stream()
    s.start()
    for _ in range(6):
        s.run(cmd.SignalTask(task="web", signal="SIGHUP"))
    events = s.task().Events
    assert len(events) == MAX_TASK_EVENTS - 1
    s.run(cmd.SignalTask(task="web", signal="SIGHUP"))
    s.run(cmd.SignalTask(task="web", signal="SIGHUP"))
    events = s.task().Events
    assert len(events) == MAX_TASK_EVENTS
    assert events[0].Type == "Task Setup"  # Received fell off
    assert [e.Time for e in events] == sorted(e.Time for e in events)


def test_replay_equals_incremental_state() -> None:
    s = Stream()
    s.start()
    s.run(exited(2))
    s.run(cmd.RecordTaskStarted(task="web"))
    s.run(cmd.StopAlloc(eval_id="e2", reschedule=True))
    assert replay(s.records) == s.state
    assert s.state.alloc.DesiredTransition is not None
    assert s.state.alloc.DesiredTransition.Migrate is True
    assert s.state.alloc.DesiredTransition.NoShutdownDelay is False


def test_client_status_precedence() -> None:
    dead_failed = TaskState(State="dead", Failed=True)
    running = TaskState(State="running")
    pending = TaskState(State="pending")
    dead = TaskState(State="dead")
    assert derive_client_status([dead_failed, running]) == ("failed", "Failed tasks")
    assert derive_client_status([running, pending]) == ("running", "Tasks are running")
    assert derive_client_status([pending, dead]) == ("pending", "No tasks have started")
    assert derive_client_status([dead, dead]) == ("complete", "All tasks have completed")
