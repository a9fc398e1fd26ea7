"""Every event the log can hold: frozen, tagged msgspec Structs named in the past tense.

Owns the event vocabulary and the ``Recorded`` envelope. A tag, once written to a log, never
changes; new fields always get defaults (see design/event-log.md). Pure: no trio, no I/O.
"""

from __future__ import annotations

import msgspec

from allocsvc.domain.model import AnyMap, Evaluation, Job, Namespace


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="Type"):
    """Base of every logged event; the tag is the class name."""


# --- namespaces -------------------------------------------------------------------------------


class NamespaceUpserted(Event, frozen=True, kw_only=True):
    """A namespace was created or updated (``PUT /v1/namespace/:name``)."""

    namespace: Namespace


class NamespaceDeleted(Event, frozen=True, kw_only=True):
    """A namespace was deleted (``DELETE /v1/namespace/:name``)."""

    name: str


# --- jobs and evaluations ---------------------------------------------------------------------


class JobRegistered(Event, frozen=True, kw_only=True):
    """A job version was registered (``PUT /v1/jobs``); the job is the canonical snapshot."""

    job: Job


class JobDeregistered(Event, frozen=True, kw_only=True):
    """A job was stopped (``DELETE /v1/job/:id``); ``purge`` removes it from reads."""

    namespace: str
    job_id: str
    purge: bool = False


class EvalCreated(Event, frozen=True, kw_only=True):
    """An evaluation was created by a job register, deregister or alloc stop."""

    eval: Evaluation


class EvalStatusChanged(Event, frozen=True, kw_only=True):
    """The in-process scheduler finished an evaluation."""

    eval_id: str
    status: str
    description: str = ""


# --- allocations: server side -----------------------------------------------------------------


class AllocPlaced(Event, frozen=True, kw_only=True):
    """The scheduler placed an allocation on the local node (emitted by job register or stop)."""

    alloc_id: str
    namespace: str
    eval_id: str
    name: str
    node_id: str
    node_name: str
    job_id: str
    job_version: int
    task_group: str
    tasks: tuple[str, ...]
    previous_allocation: str = ""
    allocated_resources: AnyMap | None = None


class AllocStopRequested(Event, frozen=True, kw_only=True):
    """A user asked to stop the allocation (``/v1/allocation/:id/stop``): the desired transition."""

    eval_id: str
    migrate: bool = True
    reschedule: bool = False
    no_shutdown_delay: bool = False


class AllocDesiredStatusChanged(Event, frozen=True, kw_only=True):
    """The scheduler changed the allocation's desired status (stop on stop request or job update)."""

    desired_status: str
    description: str
    next_allocation: str = ""


# --- allocations: client side (task events) ---------------------------------------------------


class TaskEventBase(Event, frozen=True, kw_only=True):
    """Base of events about one task; the Nomad TaskEvent time is the record's time."""

    task: str


class TaskReceived(TaskEventBase, frozen=True, kw_only=True):
    """The client received the task (Nomad ``Received``)."""


class TaskSetupRan(TaskEventBase, frozen=True, kw_only=True):
    """A prestart step ran (Nomad ``Task Setup``, e.g. ``Building Task Directory``)."""

    message: str


class TaskDriverMessaged(TaskEventBase, frozen=True, kw_only=True):
    """The driver reported progress (Nomad ``Driver``)."""

    message: str


class TaskStarted(TaskEventBase, frozen=True, kw_only=True):
    """The driver started the task (Nomad ``Started``)."""


class TaskDriverFailed(TaskEventBase, frozen=True, kw_only=True):
    """The driver failed to start the task (Nomad ``Driver Failure``)."""

    error: str


class TaskSignaled(TaskEventBase, frozen=True, kw_only=True):
    """A user sent the task a signal (Nomad ``Signaling``)."""

    signal: str


class TaskRestartSignaled(TaskEventBase, frozen=True, kw_only=True):
    """A user asked the task to restart (Nomad ``Restart Signaled``)."""

    reason: str


class TaskKilling(TaskEventBase, frozen=True, kw_only=True):
    """The client began killing the task (Nomad ``Killing``)."""

    kill_timeout: int
    reason: str = ""


class TaskShutdownDelayWaited(TaskEventBase, frozen=True, kw_only=True):
    """The client waited out the group's shutdown delay (Nomad ``Waiting for shutdown delay``)."""

    delay: int


class TaskShutdownDelaySkipped(TaskEventBase, frozen=True, kw_only=True):
    """The stop asked to skip the shutdown delay (Nomad ``Skipping shutdown delay``)."""

    delay: int


class TaskTerminated(TaskEventBase, frozen=True, kw_only=True):
    """The task's process exited (Nomad ``Terminated``)."""

    exit_code: int
    signal: int = 0
    message: str = ""
    oom_killed: bool = False


class TaskKilled(TaskEventBase, frozen=True, kw_only=True):
    """The task was killed as asked (Nomad ``Killed``)."""

    error: str = ""


class TaskRestarting(TaskEventBase, frozen=True, kw_only=True):
    """The restart policy (or a user) restarts the task after ``delay`` ns (Nomad ``Restarting``).

    ``attempts``/``window_start`` record the restart tracker after this decision.
    """

    delay: int
    reason: str = ""
    attempts: int = 0
    window_start: int = 0


class TaskNotRestarting(TaskEventBase, frozen=True, kw_only=True):
    """The restart policy gave up; the task failed (Nomad ``Not Restarting``)."""

    reason: str
    attempts: int = 0
    window_start: int = 0


class TaskCompleted(TaskEventBase, frozen=True, kw_only=True):
    """The task finished successfully and will not run again (no Nomad event; state ``dead``)."""

    attempts: int = 0
    window_start: int = 0


class TaskSiblingFailed(TaskEventBase, frozen=True, kw_only=True):
    """Another task of the allocation failed, so this one is killed (Nomad ``Sibling Task Failed``)."""

    sibling: str


class TaskRestoreFailed(TaskEventBase, frozen=True, kw_only=True):
    """After an agent restart the task could not be reattached (Nomad ``Failed Restoring Task``)."""

    message: str


class ExecSessionRecorded(Event, frozen=True, kw_only=True):
    """Audit record of one exec session into a task (no Nomad task event; see design/compat.md)."""

    task: str
    command: tuple[str, ...]
    tty: bool
    accessor_id: str
    exit_code: int
    started_at: int
    error: str = ""


AllocEvent = (
    AllocPlaced
    | AllocStopRequested
    | AllocDesiredStatusChanged
    | TaskReceived
    | TaskSetupRan
    | TaskDriverMessaged
    | TaskStarted
    | TaskDriverFailed
    | TaskSignaled
    | TaskRestartSignaled
    | TaskKilling
    | TaskShutdownDelayWaited
    | TaskShutdownDelaySkipped
    | TaskTerminated
    | TaskKilled
    | TaskRestarting
    | TaskNotRestarting
    | TaskCompleted
    | TaskSiblingFailed
    | TaskRestoreFailed
    | ExecSessionRecorded
)

ClusterEvent = (
    NamespaceUpserted | NamespaceDeleted | JobRegistered | JobDeregistered | EvalCreated | EvalStatusChanged
)


class Recorded(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as committed: its global log index, stream, stream version and commit time (ns)."""

    index: int
    stream: str
    version: int
    time: int
    event: Event


def alloc_stream(alloc_id: str) -> str:
    """The stream name of an allocation's events."""
    return f"alloc/{alloc_id}"


def job_stream(namespace: str, job_id: str) -> str:
    """The stream name of a job's events."""
    return f"job/{namespace}/{job_id}"


def eval_stream(eval_id: str) -> str:
    """The stream name of an evaluation's events."""
    return f"eval/{eval_id}"


def namespace_stream(name: str) -> str:
    """The stream name of a namespace's events."""
    return f"namespace/{name}"
