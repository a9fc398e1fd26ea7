"""Nomad's data shapes as frozen msgspec Structs: jobs, evaluations, namespaces, allocations.

Owns the allocation model (statuses, TaskState, TaskEvent, Allocation) and the job spec accepted
by the jobs API. Field names are Nomad's wire names, so the read models encode these structs
directly. Pure: no trio, no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class DesiredStatus(StrEnum):
    """What the scheduler wants for an allocation (Nomad ``AllocDesiredStatus*``)."""

    RUN = "run"
    STOP = "stop"
    EVICT = "evict"


class ClientStatus(StrEnum):
    """What the client reports for an allocation (Nomad ``AllocClientStatus*``)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    LOST = "lost"
    UNKNOWN = "unknown"


TERMINAL_CLIENT_STATUSES = frozenset({ClientStatus.COMPLETE, ClientStatus.FAILED, ClientStatus.LOST})


class TaskStatus(StrEnum):
    """A task's coarse state (Nomad ``TaskStatePending`` …)."""

    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


class _Spec(msgspec.Struct, kw_only=True, frozen=True, rename="pascal", forbid_unknown_fields=True):
    """Base of request-decoded Nomad spec structs: PascalCase keys, unknown keys rejected."""


AnyMap = dict[str, Any]


class RestartPolicy(_Spec, frozen=True, kw_only=True):
    """A group's or task's restart policy; durations are nanoseconds."""

    attempts: int = 0
    interval: int = 0
    delay: int = 0
    mode: str = ""
    render_templates: bool = False


class Resources(_Spec, frozen=True, kw_only=True):
    """Task resources, as Nomad's ``Resources`` (only what the API echoes)."""

    cpu: int = msgspec.field(default=100, name="CPU")
    cores: int = 0
    memory_mb: int = msgspec.field(default=300, name="MemoryMB")
    memory_max_mb: int = msgspec.field(default=0, name="MemoryMaxMB")
    disk_mb: int = msgspec.field(default=0, name="DiskMB")
    iops: int = msgspec.field(default=0, name="IOPS")
    networks: list[AnyMap] | None = None
    devices: list[AnyMap] | None = None
    numa: AnyMap | None = msgspec.field(default=None, name="NUMA")
    secrets_mb: int = msgspec.field(default=0, name="SecretsMB")


class LogConfig(_Spec, frozen=True, kw_only=True):
    """Task log rotation settings."""

    max_files: int = 10
    max_file_size_mb: int = msgspec.field(default=10, name="MaxFileSizeMB")
    disabled: bool = False


class EphemeralDisk(_Spec, frozen=True, kw_only=True):
    """A group's ephemeral disk."""

    sticky: bool = False
    size_mb: int = msgspec.field(default=300, name="SizeMB")
    migrate: bool = False


class Task(_Spec, frozen=True, kw_only=True):
    """One task of a task group (Nomad ``Task``)."""

    name: str = ""
    driver: str = ""
    user: str = ""
    config: AnyMap | None = None
    env: dict[str, str] | None = None
    services: list[AnyMap] | None = None
    vault: AnyMap | None = None
    consul: AnyMap | None = None
    templates: list[AnyMap] | None = None
    constraints: list[AnyMap] | None = None
    affinities: list[AnyMap] | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    dispatch_payload: AnyMap | None = None
    lifecycle: AnyMap | None = None
    meta: dict[str, str] | None = None
    kill_timeout: int = 0
    log_config: LogConfig | None = None
    artifacts: list[AnyMap] | None = None
    leader: bool = False
    shutdown_delay: int = 0
    volume_mounts: list[AnyMap] | None = None
    scaling_policies: list[AnyMap] | None = None
    kill_signal: str = ""
    kind: str = ""
    csi_plugin_config: AnyMap | None = msgspec.field(default=None, name="CSIPluginConfig")
    identity: AnyMap | None = None
    identities: list[AnyMap] | None = None
    actions: list[AnyMap] | None = None
    schedule: AnyMap | None = None


class TaskGroup(_Spec, frozen=True, kw_only=True):
    """A task group: ``Count`` allocations of the same tasks (Nomad ``TaskGroup``)."""

    name: str = ""
    count: int = 1
    update: AnyMap | None = None
    migrate: AnyMap | None = None
    constraints: list[AnyMap] | None = None
    scaling: AnyMap | None = None
    restart_policy: RestartPolicy | None = None
    disconnect: AnyMap | None = None
    tasks: list[Task] | None = None
    ephemeral_disk: EphemeralDisk | None = None
    meta: dict[str, str] | None = None
    reschedule_policy: AnyMap | None = None
    affinities: list[AnyMap] | None = None
    spreads: list[AnyMap] | None = None
    networks: list[AnyMap] | None = None
    consul: AnyMap | None = None
    services: list[AnyMap] | None = None
    volumes: AnyMap | None = None
    shutdown_delay: int | None = None
    stop_after_client_disconnect: int | None = None
    max_client_disconnect: int | None = None
    prevent_reschedule_on_lost: bool = False


class Job(_Spec, frozen=True, kw_only=True):
    """A job as registered and as snapshotted into allocations (Nomad ``Job``).

    Secret fields (``ConsulToken``, ``VaultToken``) are accepted on input but blanked before the job
    is logged, so they are never stored or served.
    """

    stop: bool = False
    region: str = ""
    namespace: str = ""
    id: str = msgspec.field(default="", name="ID")
    parent_id: str = msgspec.field(default="", name="ParentID")
    name: str = ""
    type: str = ""
    priority: int = 0
    all_at_once: bool = False
    datacenters: list[str] | None = None
    node_pool: str = ""
    constraints: list[AnyMap] | None = None
    affinities: list[AnyMap] | None = None
    spreads: list[AnyMap] | None = None
    task_groups: list[TaskGroup] | None = None
    update: AnyMap | None = None
    multiregion: AnyMap | None = None
    periodic: AnyMap | None = None
    parameterized_job: AnyMap | None = None
    dispatched: bool = False
    dispatch_idempotency_token: str = ""
    payload: bytes | None = None
    meta: dict[str, str] | None = None
    consul_token: str = ""
    consul_namespace: str = ""
    vault_token: str = ""
    vault_namespace: str = ""
    nomad_token_id: str = msgspec.field(default="", name="NomadTokenID")
    status: str = ""
    status_description: str = ""
    stable: bool = False
    version: int = 0
    submit_time: int = 0
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0
    version_tag: AnyMap | None = None
    ui: AnyMap | None = msgspec.field(default=None, name="UI")
    reschedule: AnyMap | None = None


class JobRegisterRequest(_Spec, frozen=True, kw_only=True):
    """Body of ``PUT /v1/jobs``; Nomad's write-request keys are accepted and ignored."""

    job: Job | None = None
    enforce_index: bool = False
    job_modify_index: int = 0
    policy_override: bool = False
    preserve_counts: bool = False
    eval_priority: int = 0
    submission: AnyMap | None = None
    region: str = ""
    namespace: str = ""
    secret_id: str = msgspec.field(default="", name="SecretID")


class Evaluation(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An evaluation record (Nomad ``Evaluation``; struct-level omitempty like Nomad's)."""

    ID: str
    Namespace: str
    Priority: int = 0
    Type: str = ""
    TriggeredBy: str = ""
    JobID: str = ""
    JobModifyIndex: int = 0
    NodeID: str = ""
    Status: str = ""
    StatusDescription: str = ""
    NextEval: str = ""
    PreviousEval: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0


class Namespace(msgspec.Struct, kw_only=True, frozen=True):
    """A namespace (Nomad ``Namespace``)."""

    Name: str = ""
    Description: str = ""
    Quota: str = ""
    Meta: dict[str, str] | None = None
    Capabilities: AnyMap | None = None
    NodePoolConfiguration: AnyMap | None = None
    VaultConfiguration: AnyMap | None = None
    ConsulConfiguration: AnyMap | None = None
    CreateIndex: int = 0
    ModifyIndex: int = 0


class TaskEvent(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One Nomad task event; every one of the 24 keys is always present on the wire."""

    Type: str
    Time: int
    Message: str = ""
    DisplayMessage: str = ""
    Details: dict[str, str] = msgspec.field(default_factory=dict)
    FailsTask: bool = False
    RestartReason: str = ""
    SetupError: str = ""
    DriverError: str = ""
    ExitCode: int = 0
    Signal: int = 0
    KillTimeout: int = 0
    KillError: str = ""
    KillReason: str = ""
    StartDelay: int = 0
    DownloadError: str = ""
    ValidationError: str = ""
    DiskLimit: int = 0
    FailedSibling: str = ""
    VaultError: str = ""
    TaskSignalReason: str = ""
    TaskSignal: str = ""
    DriverMessage: str = ""
    GenericSource: str = ""


class TaskState(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A task's state inside an allocation (Nomad ``TaskState``); times are RFC3339Nano or null."""

    State: str = TaskStatus.PENDING
    Failed: bool = False
    Restarts: int = 0
    LastRestart: str | None = None
    StartedAt: str | None = None
    FinishedAt: str | None = None
    Events: tuple[TaskEvent, ...] = ()
    Paused: str = ""


class DesiredTransition(msgspec.Struct, kw_only=True, frozen=True):
    """Server-requested transitions; each flag is true, false or unset (null)."""

    Migrate: bool | None = None
    Reschedule: bool | None = None
    ForceReschedule: bool | None = None
    NoShutdownDelay: bool | None = None
    MigrateDisablePlacement: bool | None = None


class AllocState(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One entry of ``AllocStates``: a ClientStatus change with its time."""

    Field: int
    Value: str
    Time: str


class Allocation(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, gc=False):
    """An allocation as Nomad's ``Allocation`` struct.

    ``omit_defaults`` reproduces Nomad's struct-level omitempty: zero values are dropped from JSON.
    ``Job`` stays None in the aggregate; read models attach the job version's snapshot.
    """

    ID: str
    Namespace: str
    EvalID: str = ""
    Name: str = ""
    NodeID: str = ""
    NodeName: str = ""
    JobID: str = ""
    Job: Job | None = None
    TaskGroup: str = ""
    AllocatedResources: AnyMap | None = None
    Metrics: AnyMap | None = None
    DesiredStatus: str
    DesiredDescription: str = ""
    DesiredTransition: DesiredTransition | None = None
    ClientStatus: str
    ClientDescription: str = ""
    TaskStates: dict[str, TaskState] | None = None
    AllocStates: tuple[AllocState, ...] | None = None
    PreviousAllocation: str = ""
    NextAllocation: str = ""
    DeploymentID: str = ""
    DeploymentStatus: AnyMap | None = None
    RescheduleTracker: AnyMap | None = None
    NetworkStatus: AnyMap | None = None
    FollowupEvalID: str = ""
    PreemptedAllocations: list[str] | None = None
    PreemptedByAllocation: str = ""
    SigningKeyID: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0
    AllocModifyIndex: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0


def is_terminal_client_status(status: str) -> bool:
    """Whether a ClientStatus is terminal (complete, failed or lost)."""
    return status in TERMINAL_CLIENT_STATUSES
