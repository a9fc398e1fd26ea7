"""Commands an allocation actor accepts: user lifecycle requests and its task runners' reports.

Frozen, tagged msgspec Structs, named imperatively. ``decide`` (lifecycle.py) turns each into
events or raises ``LifecycleError``. Pure.
"""

from __future__ import annotations

import msgspec

from allocsvc.domain.model import RestartPolicy


class Command(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="Command"):
    """Base of every allocation command."""


class StopAlloc(Command, frozen=True, kw_only=True):
    """``/v1/allocation/:id/stop``: record the desired transition and an ``alloc-stop`` eval."""

    eval_id: str
    no_shutdown_delay: bool = False
    reschedule: bool = False


class MarkAllocStopped(Command, frozen=True, kw_only=True):
    """The scheduler sets DesiredStatus ``stop`` (and links the replacement, if one is placed)."""

    description: str
    next_allocation: str = ""


class SignalTask(Command, frozen=True, kw_only=True):
    """``/v1/client/allocation/:id/signal``: signal one task, or every task when ``task`` is empty.

    ``live`` names the tasks that have a driver handle (the actor fills it in); a task without
    one is not running even if its state still says so (Nomad: ``Task not running``).
    """

    task: str = ""
    signal: str = ""
    live: frozenset[str] | None = None


class RestartTask(Command, frozen=True, kw_only=True):
    """``/v1/client/allocation/:id/restart``: restart one task, the running tasks, or all tasks.

    ``rerunnable`` names the dead tasks that ``AllTasks`` may re-run (prestart/poststart, non-sidecar).
    """

    task: str = ""
    all_tasks: bool = False
    rerunnable: frozenset[str] = frozenset()


class RecordTaskReceived(Command, frozen=True, kw_only=True):
    """A task runner was created for the task."""

    task: str


class RecordTaskSetup(Command, frozen=True, kw_only=True):
    """A task runner ran a prestart step with this message."""

    task: str
    message: str


class RecordTaskStarted(Command, frozen=True, kw_only=True):
    """The driver started the task."""

    task: str


class ReportTaskExited(Command, frozen=True, kw_only=True):
    """The driver reports the task's process exited; the restart policy decides what follows."""

    task: str
    exit_code: int
    policy: RestartPolicy
    restart_on_success: bool
    signal: int = 0
    message: str = ""
    oom_killed: bool = False
    jitter: float = 0.0


class ReportStartFailed(Command, frozen=True, kw_only=True):
    """The driver failed to start the task."""

    task: str
    error: str
    policy: RestartPolicy
    restart_on_success: bool
    recoverable: bool = True
    jitter: float = 0.0


class BeginKill(Command, frozen=True, kw_only=True):
    """The task runner starts killing the task (stop, job update, or a failed sibling)."""

    task: str
    kill_timeout: int
    reason: str = ""
    shutdown_delay: int = 0
    skip_shutdown_delay: bool = False
    sibling: str = ""


class RecordRestoreFailed(Command, frozen=True, kw_only=True):
    """After an agent restart, the task's process could not be reattached."""

    task: str
    message: str
    policy: RestartPolicy
    restart_on_success: bool
    jitter: float = 0.0


class RecordExecSession(Command, frozen=True, kw_only=True):
    """An exec session into a task ended; record it for audit."""

    task: str
    command: tuple[str, ...]
    tty: bool
    accessor_id: str
    exit_code: int
    started_at: int
    error: str = ""


AnyCommand = (
    StopAlloc
    | MarkAllocStopped
    | SignalTask
    | RestartTask
    | RecordTaskReceived
    | RecordTaskSetup
    | RecordTaskStarted
    | ReportTaskExited
    | ReportStartFailed
    | BeginKill
    | RecordRestoreFailed
    | RecordExecSession
)
