"""The allocation lifecycle: one rule table, ``decide`` and ``evolve``.

Rule 1 (after h11's ``_state.py``): everything that decides which task event may follow which
task state lives in ``TASK_RULES`` in this file. ``decide(state, command, now)`` turns a command
into events or raises ``LifecycleError``; ``evolve(state, recorded)`` folds one committed event.
Both are pure; actors call ``decide``, projections and replay call ``evolve``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgspec

from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.display import TASK_EVENT_BUILDERS, TaskEventBuilder
from allocsvc.domain.model import (
    Allocation,
    AllocState,
    ClientStatus,
    DesiredStatus,
    DesiredTransition,
    TaskState,
    TaskStatus,
    is_terminal_client_status,
)
from allocsvc.domain.restarts import Decision, Finish, GiveUp, Restart, Tracker, decide_after_exit
from allocsvc.errors import LifecycleError, NotFoundError
from allocsvc.gocompat import rfc3339nano

MAX_TASK_EVENTS = 10
"""Nomad keeps the newest 10 events per task (``defaultMaxEvents``)."""

P, R, D = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.DEAD


class TaskRule(msgspec.Struct, frozen=True):
    """Which task states an event may follow, and the state it leaves (None: unchanged)."""

    allowed_from: frozenset[TaskStatus]
    to: TaskStatus | None


TASK_RULES: dict[type[ev.TaskEventBase], TaskRule] = {
    ev.TaskReceived: TaskRule(frozenset({P}), None),
    ev.TaskSetupRan: TaskRule(frozenset({P}), None),
    ev.TaskDriverMessaged: TaskRule(frozenset({P, R}), None),
    ev.TaskStarted: TaskRule(frozenset({P}), R),
    ev.TaskDriverFailed: TaskRule(frozenset({P}), None),
    ev.TaskSignaled: TaskRule(frozenset({R}), None),
    ev.TaskRestartSignaled: TaskRule(frozenset({R, D}), None),
    ev.TaskSiblingFailed: TaskRule(frozenset({P, R}), None),
    ev.TaskKilling: TaskRule(frozenset({P, R}), None),
    ev.TaskShutdownDelayWaited: TaskRule(frozenset({P, R}), None),
    ev.TaskShutdownDelaySkipped: TaskRule(frozenset({P, R}), None),
    ev.TaskTerminated: TaskRule(frozenset({R}), None),
    ev.TaskRestoreFailed: TaskRule(frozenset({P, R}), None),
    ev.TaskKilled: TaskRule(frozenset({P, R}), D),
    ev.TaskRestarting: TaskRule(frozenset({P, R, D}), P),
    ev.TaskNotRestarting: TaskRule(frozenset({P, R}), D),
    ev.TaskCompleted: TaskRule(frozenset({P, R}), D),
}
"""The lifecycle table: task event → (states it may follow, state it leaves)."""


class TaskRuntime(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Client-side bookkeeping for one task that Nomad keeps outside ``TaskState``."""

    tracker: Tracker = Tracker()
    kill_requested: bool = False
    restart_requested: bool = False
    started_once: bool = False


class AllocAggregate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One allocation's state: Nomad's ``Allocation`` plus the bookkeeping replay needs."""

    alloc: Allocation
    version: int
    job_version: int
    tasks: tuple[str, ...]
    runtime: dict[str, TaskRuntime]
    stop_requested: bool = False


# --- evolve -------------------------------------------------------------------------------------


class TaskStatusView(Protocol):
    """What ``derive_client_status`` reads of a task: a ``TaskState`` or a bulk fold's ``TaskWork``."""

    @property
    def State(self) -> str: ...  # noqa: N802 - Nomad's field name

    @property
    def Failed(self) -> bool: ...  # noqa: N802 - Nomad's field name


def derive_client_status(states: Iterable[TaskStatusView]) -> tuple[str, str]:
    """Nomad's client status rules (FACTS §2.5): failed, running, pending, else complete."""
    running = pending = False
    for s in states:  # one pass: this runs for every task event replayed
        if s.State == D:
            if s.Failed:
                return ClientStatus.FAILED, "Failed tasks"
        elif s.State == R:
            running = True
        elif s.State == P:
            pending = True
    if running:
        return ClientStatus.RUNNING, "Tasks are running"
    if pending:
        return ClientStatus.PENDING, "No tasks have started"
    return ClientStatus.COMPLETE, "All tasks have completed"


def place(recorded: ev.Recorded) -> AllocAggregate:
    """Start an aggregate from its ``AllocPlaced`` record."""
    placed = recorded.event
    assert isinstance(placed, ev.AllocPlaced)
    alloc = Allocation(
        ID=placed.alloc_id,
        Namespace=placed.namespace,
        EvalID=placed.eval_id,
        Name=placed.name,
        NodeID=placed.node_id,
        NodeName=placed.node_name,
        JobID=placed.job_id,
        TaskGroup=placed.task_group,
        AllocatedResources=placed.allocated_resources,
        DesiredStatus=DesiredStatus.RUN,
        ClientStatus=ClientStatus.PENDING,
        TaskStates={task: TaskState() for task in placed.tasks},
        PreviousAllocation=placed.previous_allocation,
        CreateIndex=recorded.index,
        ModifyIndex=recorded.index,
        AllocModifyIndex=recorded.index,
        CreateTime=recorded.time,
        ModifyTime=recorded.time,
    )
    return AllocAggregate(
        alloc=alloc,
        version=recorded.version,
        job_version=placed.job_version,
        tasks=placed.tasks,
        runtime={task: TaskRuntime() for task in placed.tasks},
    )


_ONE_TASK_STATUS: dict[tuple[str, bool], tuple[str, str]] = {
    (s, failed): derive_client_status([TaskState(State=s, Failed=failed)])
    for s in (P, R, D)
    for failed in (False, True)
}
"""``derive_client_status`` of a one-task allocation by (State, Failed): most allocations have one task."""


# --- task bookkeeping after each event: None when the event leaves it unchanged -----------------


def _after_started(rt: TaskRuntime, event: ev.TaskStarted) -> TaskRuntime | None:
    if rt.started_once and not rt.restart_requested:
        return None
    return msgspec.structs.replace(rt, started_once=True, restart_requested=False)


def _after_restart_signaled(rt: TaskRuntime, event: ev.TaskRestartSignaled) -> TaskRuntime | None:
    return msgspec.structs.replace(rt, restart_requested=True)


def _after_killing(rt: TaskRuntime, event: ev.TaskKilling) -> TaskRuntime | None:
    return msgspec.structs.replace(rt, kill_requested=True)


def _after_restarting(rt: TaskRuntime, event: ev.TaskRestarting) -> TaskRuntime | None:
    if not (event.attempts or event.window_start):  # a user restart leaves the policy tracker alone
        return None
    return msgspec.structs.replace(rt, tracker=Tracker(attempts=event.attempts, window_start=event.window_start))


def _after_finished(rt: TaskRuntime, event: ev.TaskNotRestarting | ev.TaskCompleted) -> TaskRuntime | None:
    return msgspec.structs.replace(rt, tracker=Tracker(attempts=event.attempts, window_start=event.window_start))


RuntimeUpdate = Callable[[TaskRuntime, Any], TaskRuntime | None]
"""A task's bookkeeping after one event class: ``(runtime, event)`` → new runtime, or None if unchanged."""

_RUNTIME_UPDATES: dict[type[ev.TaskEventBase], RuntimeUpdate] = {
    ev.TaskStarted: _after_started,
    ev.TaskRestartSignaled: _after_restart_signaled,
    ev.TaskKilling: _after_killing,
    ev.TaskRestarting: _after_restarting,
    ev.TaskNotRestarting: _after_finished,
    ev.TaskCompleted: _after_finished,
}
"""The task events that may change a task's ``TaskRuntime``, and how."""

_TASK_FOLD: dict[type[ev.TaskEventBase], tuple[TaskStatus | None, TaskEventBuilder | None, RuntimeUpdate | None]] = {
    t: (rule.to, TASK_EVENT_BUILDERS.get(t), _RUNTIME_UPDATES.get(t)) for t, rule in TASK_RULES.items()
}
"""Per task event class, what ``evolve`` needs in one lookup: the state it leaves (None: unchanged),
its Nomad TaskEvent builder (None: appends none) and its bookkeeping update (None: never changes it)."""


def _evolve_alloc(state: AllocAggregate, recorded: ev.Recorded) -> AllocAggregate:
    """Fold one allocation-level (not task) event."""
    event = recorded.event
    alloc = state.alloc
    index, time = recorded.index, recorded.time
    match event:
        case ev.AllocStopRequested():
            transition = DesiredTransition(
                Migrate=event.migrate, Reschedule=event.reschedule, NoShutdownDelay=event.no_shutdown_delay
            )
            alloc = msgspec.structs.replace(alloc, DesiredTransition=transition, AllocModifyIndex=index)
            state = msgspec.structs.replace(state, stop_requested=True)
        case ev.AllocDesiredStatusChanged():
            alloc = msgspec.structs.replace(
                alloc,
                DesiredStatus=event.desired_status,
                DesiredDescription=event.description,
                NextAllocation=event.next_allocation or alloc.NextAllocation,
                AllocModifyIndex=index,
                ModifyTime=time,
            )
        case ev.ExecSessionRecorded():
            # an audit record: nothing a Nomad client sees changes, so no ModifyIndex bump
            return msgspec.structs.replace(state, version=recorded.version)
        case _:
            raise LifecycleError(f"event {type(event).__name__} does not belong to an allocation stream")
    alloc = msgspec.structs.replace(alloc, ModifyIndex=index)
    return msgspec.structs.replace(state, alloc=alloc, version=recorded.version)


def evolve(state: AllocAggregate, recorded: ev.Recorded) -> AllocAggregate:
    """Fold one committed event of this allocation's stream into its state.

    Task events (nearly every record) are folded here: the task's state and events, its
    bookkeeping, then ClientStatus. This is the replay hot path, so each struct it changes (task
    state, allocation, aggregate) is built in one ``replace`` and each dict is copied once.
    """
    event = recorded.event
    if not isinstance(event, ev.TaskEventBase):
        return _evolve_alloc(state, recorded)
    alloc = state.alloc
    task, time, index = event.task, recorded.time, recorded.index
    states = alloc.TaskStates or {}
    current = states[task]
    task_status, started_at, finished_at = current.State, current.StartedAt, current.FinishedAt
    to, build, update_runtime = _TASK_FOLD[type(event)]
    if to is not None and to != task_status:
        task_status = to
        if to == R:
            started_at = rfc3339nano(time)
        elif to == D and finished_at is None:
            finished_at = rfc3339nano(time)
    failed, restarts, last_restart = current.Failed, current.Restarts, current.LastRestart
    events = current.Events
    if build is not None:
        nomad_event = build(event, time)
        if nomad_event.FailsTask:
            failed = True
        if nomad_event.Type == "Restarting":
            restarts += 1
            last_restart = rfc3339nano(time)
        if len(events) < MAX_TASK_EVENTS:
            events = (*events, nomad_event)
        else:  # keep the newest MAX_TASK_EVENTS
            events = (*events[1 - MAX_TASK_EVENTS :], nomad_event)
    states = {
        **states,
        task: msgspec.structs.replace(
            current,
            State=task_status,
            Failed=failed,
            Restarts=restarts,
            LastRestart=last_restart,
            StartedAt=started_at,
            FinishedAt=finished_at,
            Events=events,
        ),
    }

    runtime = state.runtime
    if update_runtime is not None:
        rt = update_runtime(runtime[task], event)
        if rt is not None:
            runtime = {**runtime, task: rt}

    one_task = _ONE_TASK_STATUS.get((task_status, failed)) if len(states) == 1 else None
    status, description = one_task or derive_client_status(states.values())
    if status == alloc.ClientStatus and description == alloc.ClientDescription:
        alloc = msgspec.structs.replace(alloc, TaskStates=states, ModifyTime=time, ModifyIndex=index)
    else:
        history = alloc.AllocStates or ()
        if status != alloc.ClientStatus:
            history = (*history, AllocState(Field=0, Value=status, Time=rfc3339nano(time)))
        alloc = msgspec.structs.replace(
            alloc,
            TaskStates=states,
            ModifyTime=time,
            ModifyIndex=index,
            ClientStatus=status,
            ClientDescription=description,
            AllocStates=history,
        )
    return msgspec.structs.replace(state, alloc=alloc, runtime=runtime, version=recorded.version)


# --- bulk fold: mutable working state, Nomad structs built once per batch ----------------------
#
# ``evolve`` builds a new TaskEvent, TaskState, Allocation and aggregate per record. A batch fold
# (``ClusterState.apply_all``: startup replay, time travel) instead keeps each touched allocation
# as an ``AllocWork`` with plain mutable fields, keeps its task event *records* (the newest
# MAX_TASK_EVENTS survive, so only those are ever turned into Nomad TaskEvents) and its raw
# timestamps, and builds the aggregate once at the end with ``freeze``. The result equals the
# ``evolve`` fold field for field (tests/property/test_bulk_fold.py); ``evolve`` stays the reference.

_FAILS_TASK: frozenset[type[ev.TaskEventBase]] = frozenset({ev.TaskNotRestarting})
"""Task event classes whose Nomad TaskEvent has ``FailsTask`` set (the task becomes failed)."""

_COUNTS_RESTART: frozenset[type[ev.TaskEventBase]] = frozenset({ev.TaskRestarting})
"""Task event classes whose Nomad TaskEvent is of type ``Restarting`` (counted in ``Restarts``)."""

# What a task event does to the task's ``TaskRuntime`` in a bulk fold (as ``_RUNTIME_UPDATES``)
_RT_NONE, _RT_STARTED, _RT_RESTART_SIGNALED, _RT_KILLING, _RT_RESTARTING, _RT_FINISHED = range(6)

_RT_OPS: dict[RuntimeUpdate, int] = {
    _after_started: _RT_STARTED,
    _after_restart_signaled: _RT_RESTART_SIGNALED,
    _after_killing: _RT_KILLING,
    _after_restarting: _RT_RESTARTING,
    _after_finished: _RT_FINISHED,
}

_BULK_TASK_FOLD: dict[type[ev.TaskEventBase], tuple[TaskStatus | None, bool, bool, bool, int]] = {
    t: (to, build is not None, t in _FAILS_TASK, t in _COUNTS_RESTART, _RT_OPS[update] if update else _RT_NONE)
    for t, (to, build, update) in _TASK_FOLD.items()
}
"""Per task event class: the state it leaves, whether it appends a Nomad TaskEvent, whether that
event fails the task, whether it counts a restart, and what it does to the task's bookkeeping."""

_Stamp = str | int | None
"""A TaskState time while folding: RFC3339 text as stored, Unix ns not yet formatted, or unset."""


def _stamp(value: _Stamp) -> str | None:
    return rfc3339nano(value) if type(value) is int else value  # type: ignore[return-value]


class TaskWork:
    """One task's ``TaskState`` and ``TaskRuntime`` as plain mutable fields while a batch is folded.

    ``events`` holds the state's Nomad TaskEvents and the task events folded since, flattened as
    ``[item, time, item, time, ...]``; a folded event's TaskEvent is built only if it is among the
    newest kept, and the records themselves are not kept (a replay holds thousands of these).
    """

    __slots__ = (
        "Failed", "State", "attempts", "base", "events", "finished_at", "kill_requested", "last_restart",
        "restart_requested", "restarts", "rt", "rt_changed", "started_at", "started_once", "window_start",
    )  # fmt: skip

    def __init__(self, base: TaskState, rt: TaskRuntime | None) -> None:
        self.base = base
        self.State: str = base.State
        self.Failed: bool = base.Failed
        self.restarts = base.Restarts
        self.last_restart: _Stamp = base.LastRestart
        self.started_at: _Stamp = base.StartedAt
        self.finished_at: _Stamp = base.FinishedAt
        self.events: list[Any] | None = None
        """None until an event is appended; then (TaskEvent, None) or (task event, Unix ns) pairs."""
        self.rt = rt
        """The task's bookkeeping at the batch start (None: the aggregate has none for it)."""
        self.rt_changed = False
        if rt is not None:
            self.kill_requested = rt.kill_requested
            self.restart_requested = rt.restart_requested
            self.started_once = rt.started_once
            self.attempts = rt.tracker.attempts
            self.window_start = rt.tracker.window_start

    def freeze(self) -> TaskState:
        """The ``TaskState`` ``evolve`` would have built."""
        events = self.base.Events
        if self.events is not None:
            pairs = iter(self.events[-2 * MAX_TASK_EVENTS :])
            events = tuple(
                item if time is None else TASK_EVENT_BUILDERS[type(item)](item, time) for item, time in zip(pairs, pairs, strict=True)
            )
        return msgspec.structs.replace(
            self.base,
            State=self.State,
            Failed=self.Failed,
            Restarts=self.restarts,
            LastRestart=_stamp(self.last_restart),
            StartedAt=_stamp(self.started_at),
            FinishedAt=_stamp(self.finished_at),
            Events=events,
        )

    def push(self, event: ev.TaskEventBase, time: int) -> None:
        """Append a folded task event (kept as the record's event and time; trimmed in steps)."""
        events = self.events
        if events is None:
            events = self.events = [x for e in self.base.Events for x in (e, None)]
        events.append(event)
        events.append(time)
        if len(events) > 2 * MAX_TASK_EVENTS + 8:
            del events[: -2 * MAX_TASK_EVENTS]

    def freeze_runtime(self) -> TaskRuntime:
        """The ``TaskRuntime`` the ``_RUNTIME_UPDATES`` would have left."""
        rt = self.rt
        assert rt is not None
        tracker = rt.tracker
        if tracker.attempts != self.attempts or tracker.window_start != self.window_start:
            tracker = Tracker(attempts=self.attempts, window_start=self.window_start)
        return TaskRuntime(
            tracker=tracker,
            kill_requested=self.kill_requested,
            restart_requested=self.restart_requested,
            started_once=self.started_once,
        )


class AllocWork:
    """One allocation's aggregate as plain mutable fields while a batch is folded.

    Made from the aggregate at the batch start (``AllocWork(aggregate)``), folded record by record
    through ``BULK_FOLDS``, turned back into the ``AllocAggregate`` ``evolve`` would have built by
    ``freeze`` (once, at the end of the batch).
    """

    __slots__ = (
        "base", "changes", "description", "history", "history_set", "modify_index", "modify_time",
        "runtime_changed", "single", "status", "status_stale", "stop_requested", "tasks", "tasks_touched", "version",
    )  # fmt: skip

    def __init__(self, base: AllocAggregate) -> None:
        alloc = base.alloc
        runtime = base.runtime
        self.base = base
        self.tasks = {name: TaskWork(ts, runtime.get(name)) for name, ts in (alloc.TaskStates or {}).items()}
        self.single = len(self.tasks) == 1
        self.runtime_changed = False
        self.changes: dict[str, Any] = {}
        """Allocation fields set by allocation-level events."""
        self.status = alloc.ClientStatus
        self.description = alloc.ClientDescription
        self.history: list[tuple[str, int]] = []
        """ClientStatus changes since the batch start: (status, Unix ns)."""
        self.history_set = False
        self.status_stale = True
        """Whether ClientStatus must be derived at the next task event (always at the first)."""
        self.modify_time = alloc.ModifyTime
        self.modify_index = alloc.ModifyIndex
        self.version = base.version
        self.stop_requested = base.stop_requested
        self.tasks_touched = False

    def fold_task(self, recorded: ev.Recorded) -> None:
        """Fold one task event record, as ``evolve`` does."""
        event: Any = recorded.event
        to, appends, fails, restarting, rt_op = _BULK_TASK_FOLD[type(event)]
        task = self.tasks[event.task]
        if rt_op and task.rt is None:  # evolve fails before changing anything
            raise KeyError(event.task)
        time = recorded.time
        changed = self.status_stale  # whether ClientStatus may change
        if to is not None and to != task.State:
            task.State = to
            changed = True
            if to == R:
                task.started_at = time
            elif to == D and task.finished_at is None:
                task.finished_at = time
        if appends:
            if fails and not task.Failed:
                task.Failed = changed = True
            if restarting:
                task.restarts += 1
                task.last_restart = time
            task.push(event, time)
        self.tasks_touched = True
        if rt_op:
            if rt_op == _RT_STARTED:
                self._note_started(task)
            elif rt_op == _RT_RESTARTING:
                self._note_restarting(task, event)
            elif rt_op == _RT_KILLING:
                task.kill_requested = task.rt_changed = self.runtime_changed = True
            elif rt_op == _RT_RESTART_SIGNALED:
                task.restart_requested = task.rt_changed = self.runtime_changed = True
            else:  # _RT_FINISHED
                self._note_tracker(task, event)
        if changed:
            self._derive(task, time)
        self._touch(recorded)

    # ``fold_task`` for the three commonest task events (seven in ten records of a typical log),
    # with its table lookups resolved; the property tests hold each to ``evolve``.

    def fold_terminated(self, recorded: ev.Recorded) -> None:
        """``fold_task`` for ``TaskTerminated``: appends an event; no state or bookkeeping change."""
        event: Any = recorded.event
        task = self.tasks[event.task]
        time = recorded.time
        task.push(event, time)
        self.tasks_touched = True
        if self.status_stale:
            self._derive(task, time)
        self._touch(recorded)

    def fold_started(self, recorded: ev.Recorded) -> None:
        """``fold_task`` for ``TaskStarted``: the task runs; bookkeeping as ``_after_started``."""
        event: Any = recorded.event
        task = self._tracked(event.task)
        time = recorded.time
        changed = self.status_stale
        if task.State != R:
            task.State = R
            task.started_at = time
            changed = True
        task.push(event, time)
        self.tasks_touched = True
        self._note_started(task)
        if changed:
            self._derive(task, time)
        self._touch(recorded)

    def fold_restarting(self, recorded: ev.Recorded) -> None:
        """``fold_task`` for ``TaskRestarting``: pending again, one restart more; as ``_after_restarting``."""
        event: Any = recorded.event
        task = self._tracked(event.task)
        time = recorded.time
        changed = self.status_stale
        if task.State != P:
            task.State = P
            changed = True
        task.restarts += 1
        task.last_restart = time
        task.push(event, time)
        self.tasks_touched = True
        self._note_restarting(task, event)
        if changed:
            self._derive(task, time)
        self._touch(recorded)

    def _note_started(self, task: TaskWork) -> None:
        """``_after_started``: the first start, or the first after a user restart, is bookkept."""
        if not task.started_once or task.restart_requested:
            task.started_once = True
            task.restart_requested = False
            task.rt_changed = self.runtime_changed = True

    def _note_restarting(self, task: TaskWork, event: Any) -> None:
        """``_after_restarting``: a policy restart moves the tracker; a user restart leaves it alone."""
        if event.attempts or event.window_start:
            self._note_tracker(task, event)

    def _note_tracker(self, task: TaskWork, event: Any) -> None:
        task.attempts = event.attempts
        task.window_start = event.window_start
        task.rt_changed = self.runtime_changed = True

    def _tracked(self, name: str) -> TaskWork:
        """The task's working copy; a KeyError (as ``evolve`` raises) if it has no bookkeeping."""
        task = self.tasks[name]
        if task.rt is None:
            raise KeyError(name)
        return task

    def _touch(self, recorded: ev.Recorded) -> None:
        """The allocation's modify time and index, and the stream version, after a folded record."""
        self.modify_time = recorded.time
        self.modify_index = recorded.index
        self.version = recorded.version

    def _derive(self, task: TaskWork, time: int) -> None:
        """Derive ClientStatus after ``task`` changed (it depends only on the tasks' State and Failed)."""
        self.status_stale = False
        one_task = _ONE_TASK_STATUS.get((task.State, task.Failed)) if self.single else None
        status, description = one_task or derive_client_status(self.tasks.values())
        if status != self.status or description != self.description:
            if status != self.status:
                self.history.append((status, time))
            self.history_set = True
            self.status = status
            self.description = description

    def fold_alloc(self, recorded: ev.Recorded) -> None:
        """Fold one allocation-level record, as ``_evolve_alloc`` does (audit records are not folded here)."""
        event = recorded.event
        index = recorded.index
        changes = self.changes
        if isinstance(event, ev.AllocStopRequested):
            changes["DesiredTransition"] = DesiredTransition(
                Migrate=event.migrate, Reschedule=event.reschedule, NoShutdownDelay=event.no_shutdown_delay
            )
            changes["AllocModifyIndex"] = index
            self.stop_requested = True
        else:
            assert isinstance(event, ev.AllocDesiredStatusChanged)
            changes["DesiredStatus"] = event.desired_status
            changes["DesiredDescription"] = event.description
            changes["NextAllocation"] = event.next_allocation or changes.get(
                "NextAllocation", self.base.alloc.NextAllocation
            )
            changes["AllocModifyIndex"] = index
            self.modify_time = recorded.time
        self.modify_index = index
        self.version = recorded.version

    def freeze(self) -> AllocAggregate:
        """The aggregate ``evolve`` would have built from the same records."""
        base = self.base
        alloc = base.alloc
        fields: dict[str, Any] = dict(self.changes)
        tasks = self.tasks
        if self.tasks_touched:
            fields["TaskStates"] = {name: work.freeze() for name, work in tasks.items()}
        if self.history_set:
            fields["ClientStatus"] = self.status
            fields["ClientDescription"] = self.description
            added = [AllocState(Field=0, Value=status, Time=rfc3339nano(time)) for status, time in self.history]
            fields["AllocStates"] = (*(alloc.AllocStates or ()), *added)
        if fields or self.modify_index != alloc.ModifyIndex or self.modify_time != alloc.ModifyTime:
            alloc = msgspec.structs.replace(alloc, ModifyTime=self.modify_time, ModifyIndex=self.modify_index, **fields)
        runtime = base.runtime
        if self.runtime_changed:
            runtime = {**runtime, **{name: work.freeze_runtime() for name, work in tasks.items() if work.rt_changed}}
        return msgspec.structs.replace(
            base, alloc=alloc, runtime=runtime, version=self.version, stop_requested=self.stop_requested
        )


BULK_FOLDS: dict[type[ev.Event], Callable[[AllocWork, ev.Recorded], None]] = {
    **dict.fromkeys(_BULK_TASK_FOLD, AllocWork.fold_task),
    ev.TaskTerminated: AllocWork.fold_terminated,
    ev.TaskStarted: AllocWork.fold_started,
    ev.TaskRestarting: AllocWork.fold_restarting,
    ev.AllocStopRequested: AllocWork.fold_alloc,
    ev.AllocDesiredStatusChanged: AllocWork.fold_alloc,
}
"""The allocation-stream events a bulk fold folds into an ``AllocWork``; others (audit records,
which change nothing a client sees, and unknown ones) go through ``evolve``."""


# --- decide -------------------------------------------------------------------------------------


def _task_state(state: AllocAggregate, task: str) -> TaskState:
    return (state.alloc.TaskStates or {})[task]


def _check(state: AllocAggregate, event: ev.TaskEventBase) -> ev.TaskEventBase:
    """Refuse an event the lifecycle table does not allow from the task's current state."""
    current = _task_state(state, event.task).State
    if current not in TASK_RULES[type(event)].allowed_from:
        raise LifecycleError(f"{type(event).__name__} not allowed for task {event.task!r} in state {current}")
    return event


def is_alloc_terminal(alloc: Allocation) -> bool:
    """Whether the allocation should not run: stopped by the server or terminal on the client."""
    return alloc.DesiredStatus != DesiredStatus.RUN or is_terminal_client_status(alloc.ClientStatus)


def _after_exit(task: str, decision: Decision) -> ev.TaskEventBase:
    t = decision.tracker
    match decision:
        case Restart(delay=delay, reason=reason):
            return ev.TaskRestarting(
                task=task, delay=delay, reason=reason, attempts=t.attempts, window_start=t.window_start
            )
        case GiveUp(reason=reason):
            return ev.TaskNotRestarting(task=task, reason=reason, attempts=t.attempts, window_start=t.window_start)
        case Finish():
            return ev.TaskCompleted(task=task, attempts=t.attempts, window_start=t.window_start)
    raise AssertionError(decision)  # pragma: no cover


def _decide_signal(state: AllocAggregate, command: cmd.SignalTask) -> list[ev.Event]:
    states = state.alloc.TaskStates or {}

    def is_running(task: str) -> bool:
        return states[task].State == R and (command.live is None or task in command.live)

    if command.task:
        if command.task not in states:
            raise NotFoundError("Task not found")
        if not is_running(command.task):
            raise LifecycleError("Task not running")
        return [ev.TaskSignaled(task=command.task, signal=command.signal)]
    running = [t for t in state.tasks if is_running(t)]
    if not running:
        raise LifecycleError(signal_failures([(t, "Task not running") for t in state.tasks]))
    # Nomad signals every running task and reports the others (the actor adds them to its error)
    return [ev.TaskSignaled(task=t, signal=command.signal) for t in running]


def signal_failures(failures: list[tuple[str, str]]) -> str:
    """Nomad's go-multierror text for tasks that could not be signalled: (task, error) pairs."""
    head = "1 error occurred" if len(failures) == 1 else f"{len(failures)} errors occurred"
    lines = "".join(f"\t* Failed to signal task: {task}, err: {error}\n" for task, error in failures)
    return f"{head}:\n{lines}\n"


def _decide_restart(state: AllocAggregate, command: cmd.RestartTask) -> list[ev.Event]:
    states = state.alloc.TaskStates or {}
    if command.all_tasks and command.task:
        raise LifecycleError("task name cannot be set when restarting all tasks")
    if command.task:
        if command.task not in states:
            raise NotFoundError(f"Could not find task runner for task: {command.task}")
        if states[command.task].State != R:
            raise LifecycleError("Task not running")
        return [ev.TaskRestartSignaled(task=command.task, reason="User requested task to restart")]
    if is_alloc_terminal(state.alloc):
        raise LifecycleError("restart of an alloc that should not run")
    if command.all_tasks:
        reason = "User requested all tasks to restart"
        chosen = [
            t for t in state.tasks if states[t].State == R or (states[t].State == D and t in command.rerunnable)
        ]
    else:
        reason = "User requested running tasks to restart"
        chosen = [t for t in state.tasks if states[t].State == R]
    out: list[ev.Event] = []
    for t in chosen:
        out.append(ev.TaskRestartSignaled(task=t, reason=reason))
        if states[t].State == D:
            out.append(ev.TaskRestarting(task=t, delay=0))
    return out


def _decide_kill(state: AllocAggregate, command: cmd.BeginKill) -> list[ev.Event]:
    current = _task_state(state, command.task).State
    if current == D or state.runtime[command.task].kill_requested:
        return []
    out: list[ev.Event] = []
    if command.sibling:
        out.append(ev.TaskSiblingFailed(task=command.task, sibling=command.sibling))
    out.append(ev.TaskKilling(task=command.task, kill_timeout=command.kill_timeout, reason=command.reason))
    if command.shutdown_delay and current == R:
        if command.skip_shutdown_delay:
            out.append(ev.TaskShutdownDelaySkipped(task=command.task, delay=command.shutdown_delay))
        else:
            out.append(ev.TaskShutdownDelayWaited(task=command.task, delay=command.shutdown_delay))
    if current == P:
        out.append(ev.TaskKilled(task=command.task))
    return out


def decide(state: AllocAggregate, command: cmd.AnyCommand, now: int) -> list[ev.Event]:
    """Turn a command into this allocation's next events, or raise LifecycleError/NotFoundError.

    ``now`` is the Unix-nanosecond time the command is decided at (restart windows use it).
    """
    alloc = state.alloc
    match command:
        case cmd.StopAlloc():
            return [
                ev.AllocStopRequested(
                    eval_id=command.eval_id,
                    migrate=True,
                    reschedule=command.reschedule,
                    no_shutdown_delay=command.no_shutdown_delay,
                )
            ]
        case cmd.MarkAllocStopped():
            if alloc.DesiredStatus == DesiredStatus.STOP:
                return []
            return [
                ev.AllocDesiredStatusChanged(
                    desired_status=DesiredStatus.STOP,
                    description=command.description,
                    next_allocation=command.next_allocation,
                )
            ]
        case cmd.SignalTask():
            return _decide_signal(state, command)
        case cmd.RestartTask():
            return _decide_restart(state, command)
        case cmd.RecordTaskReceived(task=task):
            return [_check(state, ev.TaskReceived(task=task))]
        case cmd.RecordTaskSetup(task=task, message=message):
            return [_check(state, ev.TaskSetupRan(task=task, message=message))]
        case cmd.RecordTaskStarted(task=task):
            return [_check(state, ev.TaskStarted(task=task))]
        case cmd.ReportTaskExited(task=task):
            rt = state.runtime[task]
            terminated = _check(
                state,
                ev.TaskTerminated(
                    task=task,
                    exit_code=command.exit_code,
                    signal=command.signal,
                    message=command.message,
                    oom_killed=command.oom_killed,
                ),
            )
            if rt.kill_requested:
                return [terminated, ev.TaskKilled(task=task)]
            if rt.restart_requested:
                return [terminated, ev.TaskRestarting(task=task, delay=0)]
            decision = decide_after_exit(
                command.policy,
                rt.tracker,
                now=now,
                exit_code=command.exit_code,
                start_failed=False,
                recoverable=True,
                restart_on_success=command.restart_on_success,
                jitter=command.jitter,
            )
            return [terminated, _after_exit(task, decision)]
        case cmd.ReportStartFailed(task=task):
            rt = state.runtime[task]
            failed = _check(state, ev.TaskDriverFailed(task=task, error=command.error))
            if rt.kill_requested:
                return [failed, ev.TaskKilled(task=task)]
            decision = decide_after_exit(
                command.policy,
                rt.tracker,
                now=now,
                exit_code=0,
                start_failed=True,
                recoverable=command.recoverable,
                restart_on_success=command.restart_on_success,
                jitter=command.jitter,
            )
            return [failed, _after_exit(task, decision)]
        case cmd.BeginKill():
            return _decide_kill(state, command)
        case cmd.RecordRestoreFailed(task=task):
            restore = _check(state, ev.TaskRestoreFailed(task=task, message=command.message))
            decision = decide_after_exit(
                command.policy,
                state.runtime[task].tracker,
                now=now,
                exit_code=1,
                start_failed=False,
                recoverable=True,
                restart_on_success=command.restart_on_success,
                jitter=command.jitter,
            )
            return [restore, _after_exit(task, decision)]
        case cmd.RecordExecSession():
            return [
                ev.ExecSessionRecorded(
                    task=command.task,
                    command=command.command,
                    tty=command.tty,
                    accessor_id=command.accessor_id,
                    exit_code=command.exit_code,
                    started_at=command.started_at,
                    error=command.error,
                )
            ]
    raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover


def replay(records: Iterable[ev.Recorded]) -> AllocAggregate | None:
    """Rebuild one allocation from its stream's records, in order."""
    state: AllocAggregate | None = None
    for recorded in records:
        state = place(recorded) if state is None else evolve(state, recorded)
    return state
