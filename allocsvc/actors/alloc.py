"""The allocation actor: owns one allocation's stream; a trio task only while it has work.

Owns ``AllocActor``. Commands are processed one at a time in arrival order: ``decide`` on the
current state, append the events (durably), reply, then carry out the effects — spawn or
restart task runners, kill tasks, deliver signals, and run the stop evaluation. A user stop's or
restart's effects wait up to ``EFFECT_DEFERRAL`` (or until the next command arrives) so the HTTP
response goes out first; they always run before the next command is decided. The actor never
awaits its task runners, so their reports can always be processed.

An actor is *active* (a trio task, a bounded mailbox and a nursery for its runners and effects)
only while it has something to do. When its mailbox is empty, no effect is deferred and no child
task is left — every task is either dead or running with its runner parked on the driver
handle — it *passivates*: the mailbox closes and the task ends, leaving this small object. An
ask (through the supervisor) or a parked runner's exit (``resume_runner``) activates it again,
so commands stay serialised per allocation and driver reports always reach it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec
import outcome
import trio

from allocsvc.actors.mailbox import Envelope, Mailbox
from allocsvc.actors.runtime import Runtime
from allocsvc.actors.task_runner import TaskRunner
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.jobs import find_group, find_task
from allocsvc.domain.lifecycle import AllocAggregate, decide, is_alloc_terminal, signal_failures
from allocsvc.domain.model import DesiredStatus, Evaluation, TaskStatus, is_terminal_client_status
from allocsvc.drivers.base import ExitResult
from allocsvc.errors import ActorStoppedError, DriverError, LifecycleError, NotFoundError
from allocsvc.store.log import StreamWrite

logger = logging.getLogger("allocsvc.actor")

STOP_DESCRIPTION = "alloc is being migrated"

EFFECT_DEFERRAL = 0.002
"""How long a user stop's or restart's effects wait (unless another command arrives first), so
the waiting HTTP handler can write its response before the kill and stop-eval work begins."""

DEFERRED_EFFECTS = (cmd.StopAlloc, cmd.RestartTask)

_STOPPED = trio.Event()
_STOPPED.set()
"""What ``stopped`` is while an actor is passive (one shared, already-set event)."""


class ActorHost(Protocol):
    """What an actor needs from its supervisor."""

    def place(self, alloc_id: str) -> None:
        """Start the actor of a newly placed allocation (a replacement)."""
        ...

    def wake(self, actor: AllocActor) -> None:
        """Activate a passive actor (a parked runner's task exited); no-op when shutting down."""
        ...


class AllocActor:
    """Serialises every change to one allocation."""

    __slots__ = (
        "_busy",
        "_deferred",
        "_host",
        "_mailbox",
        "_nursery",
        "_pending",
        "_restoring",
        "_started",
        "alloc_id",
        "discarded",
        "rt",
        "runners",
        "stopped",
    )

    def __init__(self, alloc_id: str, rt: Runtime, host: ActorHost, *, restoring: bool = False) -> None:
        self.alloc_id = alloc_id
        self.rt = rt
        self._host = host
        self._restoring = restoring
        self._started = False  # the first activation starts (or restores) the runners
        self._mailbox: Mailbox[cmd.AnyCommand, list[ev.Recorded]] | None = None  # None while passive
        self.runners: dict[str, TaskRunner] = {}
        self._nursery: trio.Nursery | None = None
        self.stopped = _STOPPED
        """Set when the current (or last) activation has ended."""
        self._deferred: list[ev.Recorded] | None = None
        self._busy = 0  # live child tasks: runners at work and effects
        self._pending: list[tuple[TaskRunner, ExitResult]] | None = None  # exits to resume on activation
        self.discarded = False
        """Crashed and replaced: its runners' late exits are ignored."""

    @property
    def state(self) -> AllocAggregate:
        """The allocation as the read model has it (updated before every append returns)."""
        state = self.rt.model.alloc(self.alloc_id)
        if state is None:
            raise NotFoundError(f'Unknown allocation "{self.alloc_id}"')
        return state

    @property
    def mailbox(self) -> Mailbox[cmd.AnyCommand, list[ev.Recorded]]:
        """The mailbox of the current activation (only while active)."""
        if self._mailbox is None:
            raise ActorStoppedError("allocation actor is not running")
        return self._mailbox

    @property
    def started(self) -> bool:
        """Has been activated at least once (its runners were started or restored)."""
        return self._started

    @property
    def active(self) -> bool:
        """Has a mailbox (and a trio task, or one about to start)."""
        return self._mailbox is not None

    async def ask(self, command: cmd.AnyCommand) -> list[ev.Recorded]:
        """Send a command; return its committed records or raise its error."""
        mailbox = self._mailbox
        if mailbox is None:
            raise ActorStoppedError("allocation actor is not running")
        return await mailbox.ask(command)

    # --- activation -----------------------------------------------------------------------------

    def activate(self) -> None:
        """Give a passive actor a fresh mailbox; the supervisor then runs ``run``."""
        assert self._mailbox is None
        self._mailbox = Mailbox(self.rt.mailbox_size, self._idle)
        self.stopped = trio.Event()

    def _idle(self) -> bool:
        """Called when the mailbox is empty: passivate if nothing else is in flight."""
        if self._busy or self._deferred is not None or self._pending:
            return False
        self._passivate()
        return True

    def _passivate(self) -> None:
        mailbox = self._mailbox
        self._mailbox = None
        self._nursery = None
        if mailbox is not None:
            mailbox.send.close()

    def passivate_if_idle(self) -> bool:
        """Passivate now if the actor waits for work with nothing in flight."""
        mailbox = self._mailbox
        if mailbox is None or not mailbox.receive.waiting or not mailbox.receive.empty():
            return False
        return self._idle()

    def disposable(self) -> bool:
        """Passive with nothing left to resume: finished allocation, no parked or working runner."""
        if self._mailbox is not None or self._pending or not all(r.finished for r in self.runners.values()):
            return False
        state = self.rt.model.alloc(self.alloc_id)
        return state is None or is_terminal_client_status(state.alloc.ClientStatus)

    def resume_runner(self, runner: TaskRunner, result: ExitResult) -> None:
        """A parked runner's task exited: run ``runner.resume`` as a child, activating if passive."""
        if self.discarded or self.runners.get(runner.task) is not runner:
            return
        if self._nursery is not None:
            self._start_child(runner.resume, result)
            return
        if self._pending is None:
            self._pending = []
        self._pending.append((runner, result))
        if self._mailbox is None:
            self._host.wake(self)

    def _start_child(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None
        self._busy += 1
        self._nursery.start_soon(self._child, fn, *args, name=fn)

    async def _child(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        finally:
            self._busy -= 1
            if not self._busy:
                self.passivate_if_idle()

    # --- main loop ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Process the mailbox until passivated or cancelled; fail queued asks on the way out."""
        mailbox, stopped = self._mailbox, self.stopped
        assert mailbox is not None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                if not self._started:
                    self._started = True
                    self._start_runners()
                pending, self._pending = self._pending, None
                for runner, result in pending or ():
                    self._start_child(runner.resume, result)
                await self._serve()
                nursery.cancel_scope.cancel()
        finally:
            mailbox.close()
            if self._mailbox is mailbox:  # ended without passivating (shutdown or crash)
                self._mailbox = None
                self._nursery = None
            if self._mailbox is None:
                self.stopped = _STOPPED
            stopped.set()

    async def _serve(self) -> None:
        """Process commands one at a time; a deferred command's effects run before the next one."""
        receive = self.mailbox.receive
        while True:
            envelope: Envelope[cmd.AnyCommand, list[ev.Recorded]] | None = None
            if self._deferred is not None:
                # the HTTP caller writes its response first, unless another command is waiting
                with trio.move_on_after(EFFECT_DEFERRAL):
                    try:
                        envelope = await receive.receive()
                    except trio.EndOfChannel:
                        pass
                records, self._deferred = self._deferred, None
                await self._react(records)
            if envelope is None:
                try:
                    envelope = await receive.receive()
                except trio.EndOfChannel:
                    return
            await self._process(envelope)

    def can_passivate(self) -> bool:
        """Idle and finished: no live runners, a terminal allocation and nothing queued."""
        if (self._mailbox is not None and self._mailbox.statistics().queued) or self._deferred is not None:
            return False
        state = self.state
        idle = not self._busy and all(r.finished for r in self.runners.values())
        return idle and is_alloc_terminal(state.alloc) and is_terminal_client_status(state.alloc.ClientStatus)

    def _start_runners(self) -> None:
        state = self.state
        if state.alloc.DesiredStatus != DesiredStatus.RUN:
            self._resume_kills(state)
            return
        if is_terminal_client_status(state.alloc.ClientStatus):
            return
        for task in state.tasks:
            if (state.alloc.TaskStates or {})[task].State == TaskStatus.DEAD:
                continue
            if state.runtime[task].kill_requested:  # the agent stopped mid-kill: finish it
                self._start_child(self._kill_task, task, "", "")
            else:
                self._start_runner(task, "restore" if self._restoring else "fresh")

    def _resume_kills(self, state: AllocAggregate) -> None:
        """After a restart, finish killing a stopped allocation's tasks that were still live."""
        self._kill_all(reason="", sibling="")

    def _start_runner(self, task: str, mode: str) -> None:
        runner = TaskRunner(self.alloc_id, task, self.rt, self)
        self.runners[task] = runner
        self._start_child(runner.run, mode)

    # --- one command ----------------------------------------------------------------------------

    async def _process(self, envelope: Envelope[cmd.AnyCommand, list[ev.Recorded]]) -> None:
        command = envelope.command
        try:
            if isinstance(command, cmd.RestartTask) and command.all_tasks:
                command = msgspec.structs.replace(command, rerunnable=self._rerunnable())
            if isinstance(command, cmd.SignalTask):
                records = await self._signal(command)
            else:
                records = await self._execute(command)
        except Exception as exc:
            envelope.reply(outcome.Error(exc))
            return
        envelope.reply(outcome.Value(records))
        if records and isinstance(command, DEFERRED_EFFECTS):
            self._deferred = records
        else:
            await self._react(records)

    def _rerunnable(self) -> frozenset[str]:
        """Dead tasks ``AllTasks`` may run again: finished on their own (not killed), not poststop."""
        state = self.state
        job = self.rt.model.job_for(state)
        if job is None:
            return frozenset()
        group = find_group(job, state.alloc.TaskGroup)
        states = state.alloc.TaskStates or {}
        return frozenset(
            task.name
            for task in group.tasks or []
            if states[task.name].State == TaskStatus.DEAD
            and not state.runtime[task.name].kill_requested
            and (task.lifecycle or {}).get("Hook", "") != "poststop"
        )

    async def _execute(self, command: cmd.AnyCommand) -> list[ev.Recorded]:
        state = self.state
        now = self.rt.clock.now_ns()
        events = decide(state, command, now)
        if not events:
            return []
        writes = [StreamWrite(ev.alloc_stream(self.alloc_id), state.version, events)]
        if isinstance(command, cmd.StopAlloc):
            writes.append(self._stop_eval(state, command.eval_id))
        return await self.rt.log.append(writes, time=now)

    def _stop_eval(self, state: AllocAggregate, eval_id: str) -> StreamWrite:
        job = self.rt.model.job_for(state)
        evaluation = Evaluation(
            ID=eval_id,
            Namespace=state.alloc.Namespace,
            Priority=job.priority if job else 50,
            Type=job.type if job else "service",
            TriggeredBy="alloc-stop",
            JobID=state.alloc.JobID,
            JobModifyIndex=job.job_modify_index if job else 0,
            Status="pending",
        )
        return StreamWrite(ev.eval_stream(eval_id), 0, [ev.EvalCreated(eval=evaluation)])

    async def _signal(self, command: cmd.SignalTask) -> list[ev.Recorded]:
        """Deliver a signal, then record it; a task that could not be signalled records nothing.

        Only tasks with a live driver handle count as running. As on Nomad, an all-task signal
        reaches every running task and reports the rest as one multi-error. A task that is not
        running is a client mistake (400, Nomad 500); a driver failure is 500.
        """
        handles = {t: r.handle for t, r in self.runners.items() if r.handle is not None and not r.handle.exited}
        events = decide(self.state, msgspec.structs.replace(command, live=frozenset(handles)), self.rt.clock.now_ns())
        delivered: list[ev.Event] = []
        failures: dict[str, str] = {}
        driver_failed = False
        for event in events:
            assert isinstance(event, ev.TaskSignaled)
            handle = handles[event.task]
            try:
                await handle.signal(event.signal)
            except DriverError as exc:
                failures[event.task] = "Task not running" if handle.exited else exc.message
                driver_failed = driver_failed or not handle.exited
                continue
            delivered.append(event)
        records: list[ev.Recorded] = []
        if delivered:
            stream = StreamWrite(ev.alloc_stream(self.alloc_id), self.state.version, delivered)
            records = await self.rt.log.append([stream], time=self.rt.clock.now_ns())
        if not command.task:
            signaled = {e.task for e in events if isinstance(e, ev.TaskSignaled)}
            failures.update((t, "Task not running") for t in self.state.tasks if t not in signaled)
        status = 500 if driver_failed else 400
        if command.task and failures:
            raise LifecycleError(failures[command.task], status_hint=status)
        if failures:
            ordered = [(task, failures[task]) for task in self.state.tasks if task in failures]
            raise LifecycleError(signal_failures(ordered), status_hint=status)
        return records

    # --- effects --------------------------------------------------------------------------------

    async def _react(self, records: Sequence[ev.Recorded]) -> None:
        for recorded in records:
            event = recorded.event
            match event:
                case ev.AllocStopRequested(eval_id=eval_id):
                    await self._process_stop_eval(eval_id)
                case ev.AllocDesiredStatusChanged(desired_status=DesiredStatus.STOP):
                    self._kill_all(reason="", sibling="")
                case ev.TaskRestartSignaled(task=task):
                    runner = self.runners.get(task)
                    if runner is not None and runner.handle is not None:
                        self._start_child(self._restart_kill, runner)
                case ev.TaskRestarting(task=task):
                    runner = self.runners.get(task)
                    if runner is None or runner.finished:
                        self._start_runner(task, "rerun")
                case ev.TaskNotRestarting(task=task):
                    if self.state.alloc.DesiredStatus == DesiredStatus.RUN:
                        self._kill_all(reason="", sibling=task)
                case _:
                    pass

    async def _process_stop_eval(self, eval_id: str) -> None:
        """The in-process scheduler's answer to an ``alloc-stop`` eval: stop, and place a replacement."""
        state = self.state
        job = self.rt.model.job_for(state)
        record = self.rt.model.state.jobs.get((state.alloc.Namespace, state.alloc.JobID))
        replace = (
            job is not None
            and record is not None
            and not record.stopped
            and job.type in ("service", "batch")
            and state.alloc.DesiredStatus == DesiredStatus.RUN
            and not is_terminal_client_status(state.alloc.ClientStatus)
        )
        now = self.rt.clock.now_ns()
        new_id = self.rt.new_id() if replace else ""
        events = decide(state, cmd.MarkAllocStopped(description=STOP_DESCRIPTION, next_allocation=new_id), now)
        writes = []
        if events:
            writes.append(StreamWrite(ev.alloc_stream(self.alloc_id), state.version, events))
        if replace and job is not None:
            group = find_group(job, state.alloc.TaskGroup)
            writes.append(
                StreamWrite(
                    ev.alloc_stream(new_id),
                    0,
                    [
                        ev.AllocPlaced(
                            alloc_id=new_id,
                            namespace=state.alloc.Namespace,
                            eval_id=eval_id,
                            name=state.alloc.Name,
                            node_id=state.alloc.NodeID,
                            node_name=state.alloc.NodeName,
                            job_id=state.alloc.JobID,
                            job_version=record.current.version if record is not None else state.job_version,
                            task_group=group.name,
                            tasks=tuple(t.name for t in group.tasks or []),
                            previous_allocation=self.alloc_id,
                            allocated_resources=state.alloc.AllocatedResources,
                        )
                    ],
                )
            )
        version = self.rt.log.stream_version(ev.eval_stream(eval_id))
        writes.append(StreamWrite(ev.eval_stream(eval_id), version, [ev.EvalStatusChanged(eval_id=eval_id, status="complete")]))
        records = await self.rt.log.append(writes, time=now)
        if replace:
            self._host.place(new_id)
        await self._react([r for r in records if r.stream == ev.alloc_stream(self.alloc_id)])

    def _kill_all(self, *, reason: str, sibling: str) -> None:
        state = self.state
        for task in state.tasks:
            if task == sibling:
                continue
            if (state.alloc.TaskStates or {})[task].State != TaskStatus.DEAD:
                self._start_child(self._kill_task, task, reason, sibling)

    async def _kill_task(self, task_name: str, reason: str, sibling: str) -> None:
        """Nomad's kill sequence: Killing, shutdown delay, signal + timeout, then the exit report."""
        state = self.state
        job = self.rt.model.job_for(state)
        if job is None:
            return
        group = find_group(job, state.alloc.TaskGroup)
        task = find_task(group, task_name)
        delay = task.shutdown_delay or (group.shutdown_delay or 0)
        skip = bool(state.alloc.DesiredTransition and state.alloc.DesiredTransition.NoShutdownDelay)
        try:
            records = await self.ask(
                cmd.BeginKill(
                    task=task_name,
                    kill_timeout=task.kill_timeout,
                    reason=reason,
                    shutdown_delay=delay,
                    skip_shutdown_delay=skip,
                    sibling=sibling,
                )
            )
        except Exception as exc:
            logger.info("kill of %s/%s not started: %s", self.alloc_id, task_name, exc)
            return
        runner = self.runners.get(task_name)
        current = self.state
        resumed = runner is None and current.runtime[task_name].kill_requested
        if not records and not (resumed and (current.alloc.TaskStates or {})[task_name].State == TaskStatus.RUNNING):
            return
        if any(isinstance(r.event, ev.TaskShutdownDelayWaited) for r in records):
            await trio.sleep(delay / 1e9)
        if runner is not None:
            runner.cancel_delay()
        handle = runner.handle if runner is not None else None
        if handle is not None:
            await handle.kill(task.kill_signal or "SIGINT", task.kill_timeout / 1e9)
        elif runner is None and (self.state.alloc.TaskStates or {})[task_name].State == TaskStatus.RUNNING:
            # restored after an agent restart: kill what the earlier agent left, report the exit
            await TaskRunner(self.alloc_id, task_name, self.rt, self).recover_leftovers()
            policy = group.restart_policy
            assert policy is not None
            await self.ask(cmd.ReportTaskExited(task=task_name, exit_code=0, policy=policy, restart_on_success=False))

    async def _restart_kill(self, runner: TaskRunner) -> None:
        """A user restart kills the process directly (no Killing event, no shutdown delay)."""
        handle = runner.handle
        if handle is None:
            return
        _, task, _ = runner.spec()
        await handle.kill(task.kill_signal or "SIGINT", task.kill_timeout / 1e9)
