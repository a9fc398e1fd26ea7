"""One task's client-side life: receive, set up, start, wait, and follow the restart policy.

Owns ``TaskRunner``. It drives its driver handle and reports every step to its allocation
actor with ``ask``; the actor decides the events. Killing and user restarts are done by the
actor's effect tasks through ``handle``/``cancel_delay``.

A runner only has a trio task while it works (starting, reporting, waiting out a restart delay),
always as a child of its actor. While its task runs it is *parked*: no trio task, just a listener
on the handle (``on_exit``); the exit asks the actor to resume the runner (``resume_runner``),
which re-activates a passivated actor, and the resumed runner reports the exit and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import trio

from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.jobs import find_group, find_task, task_restart_policy
from allocsvc.domain.model import RestartPolicy, Task, TaskGroup, TaskStatus
from allocsvc.domain.restarts import restarts_on_success
from allocsvc.drivers.base import ExitResult, TaskHandle, TaskLaunch
from allocsvc.drivers.taskdir import build_task_dirs, task_dirs, task_env
from allocsvc.errors import AllocsvcError, DriverError

if TYPE_CHECKING:
    from allocsvc.actors.runtime import Runtime
    from allocsvc.domain.lifecycle import AllocAggregate

logger = logging.getLogger("allocsvc.task")


class RunnerOwner(Protocol):
    """What a runner needs from its allocation actor."""

    def ask(self, command: cmd.AnyCommand) -> Awaitable[list[ev.Recorded]]:
        """Send a command; its committed records or its error."""
        ...

    def resume_runner(self, runner: TaskRunner, result: ExitResult) -> None:
        """A parked runner's task exited: run ``runner.resume(result)`` as the actor's child."""
        ...


class _Policy(NamedTuple):
    policy: RestartPolicy
    restart_on_success: bool
    jitter: float


class TaskRunner:
    """Runs one task of one allocation until it is dead."""

    __slots__ = ("_delay_scope", "_owner", "alloc_id", "finished", "handle", "parked", "rt", "task")

    def __init__(self, alloc_id: str, task: str, rt: Runtime, owner: RunnerOwner) -> None:
        self.alloc_id = alloc_id
        self.task = task
        self.rt = rt
        self._owner = owner
        self.handle: TaskHandle | None = None
        self._delay_scope: trio.CancelScope | None = None
        self.parked = False
        """The task runs and the runner waits for its exit without a trio task."""
        self.finished = False
        """The task is dead for good (or the runner gave up); nothing more will happen here."""

    async def _ask(self, command: cmd.AnyCommand) -> list[ev.Recorded]:
        return await self._owner.ask(command)

    # --- spec lookups ---------------------------------------------------------------------------

    def _state(self) -> AllocAggregate:
        state = self.rt.model.alloc(self.alloc_id)
        assert state is not None
        return state

    def spec(self) -> tuple[TaskGroup, Task, str]:
        """The task group, task spec and job type this runner executes."""
        state = self._state()
        job = self.rt.model.job_for(state)
        assert job is not None
        group = find_group(job, state.alloc.TaskGroup)
        return group, find_task(group, self.task), job.type

    def _policy(self) -> _Policy:
        group, task, job_type = self.spec()
        job = self.rt.model.job_for(self._state())
        assert job is not None
        hook = str((task.lifecycle or {}).get("Hook", ""))
        sidecar = bool((task.lifecycle or {}).get("Sidecar", False))
        return _Policy(
            task_restart_policy(job, group, task), restarts_on_success(job_type, hook, sidecar), self.rt.rng.random()
        )

    def _task_status(self) -> str:
        return (self._state().alloc.TaskStates or {})[self.task].State

    async def launch(self) -> TaskLaunch:
        """Build the launch description (and the task's directories, off the event loop)."""
        state = self._state()
        job = self.rt.model.job_for(state)
        assert job is not None
        group, task, _ = self.spec()
        dirs = None
        if self.rt.data_dir is not None:
            dirs = task_dirs(self.rt.data_dir, self.alloc_id, self.task)
            await trio.to_thread.run_sync(build_task_dirs, dirs)
        env = task_env(
            job=job, group=group.name, task=task, alloc_id=self.alloc_id, alloc_name=state.alloc.Name, dirs=dirs
        )
        return TaskLaunch(
            alloc_id=self.alloc_id,
            alloc_name=state.alloc.Name,
            namespace=state.alloc.Namespace,
            job_id=job.id,
            group=group.name,
            task=self.task,
            config=dict(task.config or {}),
            env=env,
            task_dir=dirs.task_dir if dirs else None,
            alloc_dir=dirs.alloc_dir if dirs else None,
            stdout_path=dirs.stdout if dirs else None,
            stderr_path=dirs.stderr if dirs else None,
        )

    # --- control from the actor -----------------------------------------------------------------

    async def recover_leftovers(self) -> None:
        """After an agent restart: have the driver kill what the earlier agent left running."""
        if self.rt.data_dir is None:
            return
        _, task, _ = self.spec()
        driver = self.rt.drivers.get(task.driver)
        if driver is not None:
            await driver.recover(await self.launch())

    def cancel_delay(self) -> None:
        """Interrupt a restart delay (the task is being killed)."""
        if self._delay_scope is not None:
            self._delay_scope.cancel()

    # --- the loop -------------------------------------------------------------------------------

    async def run(self, mode: str) -> None:
        """Run until the task is dead or parked. ``mode``: ``fresh``, ``restore`` or ``rerun``."""
        try:
            await self._run(mode)
        except AllocsvcError as exc:
            logger.info("task runner %s/%s stopped: %s", self.alloc_id, self.task, exc.message)
        finally:
            self.finished = not self.parked

    async def resume(self, result: ExitResult) -> None:
        """After a parked task exited: report the exit and go on (run by the actor)."""
        try:
            if await self._report_exit(result):
                await self._loop()
        except AllocsvcError as exc:
            logger.info("task runner %s/%s stopped: %s", self.alloc_id, self.task, exc.message)
        finally:
            self.finished = not self.parked

    def _exited(self, result: ExitResult) -> None:
        """The handle's exit listener: the runner is no longer parked; its actor resumes it."""
        if self.parked:
            self.parked = False
            self._owner.resume_runner(self, result)

    async def _run(self, mode: str) -> None:
        state = self._state()
        task_state = (state.alloc.TaskStates or {})[self.task]
        if mode == "restore":
            await self.recover_leftovers()
        if mode == "fresh" and not task_state.Events:
            await self._ask(cmd.RecordTaskReceived(task=self.task))
        elif mode == "restore" and task_state.State == TaskStatus.RUNNING:
            p = self._policy()
            records = await self._ask(
                cmd.RecordRestoreFailed(
                    task=self.task,
                    message="failed to restore task after agent restart",
                    policy=p.policy,
                    restart_on_success=p.restart_on_success,
                    jitter=p.jitter,
                )
            )
            if not await self._follow(records):
                return
        await self._loop()

    async def _loop(self) -> None:
        """Start the task, and again after each restart decision, until it is dead or parked."""
        while True:
            if self._task_status() == TaskStatus.DEAD or self._state().runtime[self.task].kill_requested:
                return
            if not self._state().runtime[self.task].started_once:
                await self._ask(cmd.RecordTaskSetup(task=self.task, message="Building Task Directory"))
            _, task, _ = self.spec()
            driver = self.rt.drivers.get(task.driver)
            try:
                if driver is None:
                    raise DriverError(f'Driver "{task.driver}" is not available on this node', recoverable=False)
                handle = await driver.start(await self.launch())
            except DriverError as exc:
                p = self._policy()
                records = await self._ask(
                    cmd.ReportStartFailed(
                        task=self.task,
                        error=exc.message,
                        recoverable=exc.recoverable,
                        policy=p.policy,
                        restart_on_success=p.restart_on_success,
                        jitter=p.jitter,
                    )
                )
                if not await self._follow(records):
                    return
                continue
            self.handle = handle
            try:
                await self._ask(cmd.RecordTaskStarted(task=self.task))
            except AllocsvcError:
                _, task, _ = self.spec()
                await handle.kill(task.kill_signal or "SIGINT", task.kill_timeout / 1e9)
                self.handle = None
                return
            if not handle.exited:
                self.parked = True  # no trio task while it runs: the exit listener resumes us
                handle.on_exit(self._exited)
                return
            if not await self._report_exit(await handle.wait()):
                return

    async def _report_exit(self, result: ExitResult) -> bool:
        """Report how the task exited; returns whether to start it again (after any delay)."""
        self.handle = None
        p = self._policy()
        records = await self._ask(
            cmd.ReportTaskExited(
                task=self.task,
                exit_code=result.exit_code,
                signal=result.signal,
                message=result.message,
                oom_killed=result.oom_killed,
                policy=p.policy,
                restart_on_success=p.restart_on_success,
                jitter=p.jitter,
            )
        )
        return await self._follow(records)

    async def _follow(self, records: Sequence[ev.Recorded]) -> bool:
        """After a restart decision: wait out its delay. Returns whether to start again."""
        last = records[-1].event if records else None
        if not isinstance(last, ev.TaskRestarting):
            return False
        with trio.CancelScope() as scope:
            self._delay_scope = scope
            await trio.sleep(last.delay / 1e9)
        self._delay_scope = None
        return self._task_status() != TaskStatus.DEAD and not self._state().runtime[self.task].kill_requested
