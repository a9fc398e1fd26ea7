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


class NamespaceUpserted(Event):
    """A namespace was created or updated (``PUT /v1/namespace/:name``)."""

    namespace: Namespace


class NamespaceDeleted(Event):
    """A namespace was deleted (``DELETE /v1/namespace/:name``)."""

    name: str


# --- jobs and evaluations ---------------------------------------------------------------------


class JobRegistered(Event):
    """A job version was registered (``PUT /v1/jobs``); the job is the canonical snapshot."""

    job: Job


class JobDeregistered(Event):
    """A job was stopped (``DELETE /v1/job/:id``); ``purge`` removes it from reads."""

    namespace: str
    job_id: str
    purge: bool = False


class EvalCreated(Event):
    """An evaluation was created by a job register, deregister or alloc stop."""

    eval: Evaluation


class EvalStatusChanged(Event):
    """The in-process scheduler finished an evaluation."""

    eval_id: str
    status: str
    description: str = ""


# --- allocations: server side -----------------------------------------------------------------


class AllocPlaced(Event):
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


class AllocStopRequested(Event):
    """A user asked to stop the allocation (``/v1/allocation/:id/stop``): the desired transition."""

    eval_id: str
    migrate: bool = True
    reschedule: bool = False
    no_shutdown_delay: bool = False


class AllocDesiredStatusChanged(Event):
    """The scheduler changed the allocation's desired status (stop on stop request or job update)."""

    desired_status: str
    description: str
    next_allocation: str = ""


# --- allocations: client side (task events) ---------------------------------------------------


class TaskEventBase(Event):
    """Base of events about one task; the Nomad TaskEvent time is the record's time."""

    task: str


class TaskReceived(TaskEventBase):
    """The client received the task (Nomad ``Received``)."""


class TaskSetupRan(TaskEventBase):
    """A prestart step ran (Nomad ``Task Setup``, e.g. ``Building Task Directory``)."""

    message: str


class TaskDriverMessaged(TaskEventBase):
    """The driver reported progress (Nomad ``Driver``)."""

    message: str


class TaskStarted(TaskEventBase):
    """The driver started the task (Nomad ``Started``)."""


class TaskDriverFailed(TaskEventBase):
    """The driver failed to start the task (Nomad ``Driver Failure``)."""

    error: str


class TaskSignaled(TaskEventBase):
    """A user sent the task a signal (Nomad ``Signaling``)."""

    signal: str


class TaskRestartSignaled(TaskEventBase):
    """A user asked the task to restart (Nomad ``Restart Signaled``)."""

    reason: str


class TaskKilling(TaskEventBase):
    """The client began killing the task (Nomad ``Killing``)."""

    kill_timeout: int
    reason: str = ""


class TaskShutdownDelayWaited(TaskEventBase):
    """The client waited out the group's shutdown delay (Nomad ``Waiting for shutdown delay``)."""

    delay: int


class TaskShutdownDelaySkipped(TaskEventBase):
    """The stop asked to skip the shutdown delay (Nomad ``Skipping shutdown delay``)."""

    delay: int


class TaskTerminated(TaskEventBase):
    """The task's process exited (Nomad ``Terminated``)."""

    exit_code: int
    signal: int = 0
    message: str = ""
    oom_killed: bool = False


class TaskKilled(TaskEventBase):
    """The task was killed as asked (Nomad ``Killed``)."""

    error: str = ""


class TaskRestarting(TaskEventBase):
    """The restart policy (or a user) restarts the task after ``delay`` ns (Nomad ``Restarting``).

    ``attempts``/``window_start`` record the restart tracker after this decision.
    """

    delay: int
    reason: str = ""
    attempts: int = 0
    window_start: int = 0


class TaskNotRestarting(TaskEventBase):
    """The restart policy gave up; the task failed (Nomad ``Not Restarting``)."""

    reason: str
    attempts: int = 0
    window_start: int = 0


class TaskCompleted(TaskEventBase):
    """The task finished successfully and will not run again (no Nomad event; state ``dead``)."""

    attempts: int = 0
    window_start: int = 0


class TaskSiblingFailed(TaskEventBase):
    """Another task of the allocation failed, so this one is killed (Nomad ``Sibling Task Failed``)."""

    sibling: str


class TaskRestoreFailed(TaskEventBase):
    """After an agent restart the task could not be reattached (Nomad ``Failed Restoring Task``)."""

    message: str


class ExecSessionRecorded(Event):
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


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
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
