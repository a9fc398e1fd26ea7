"""Job validation, canonicalisation and placement planning (the in-process scheduler's rules).

Owns what ``PUT /v1/jobs`` accepts, the defaults Nomad fills in, and which allocations a job
version needs. Pure: ids and time are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from allocsvc.domain.model import EphemeralDisk, Job, LogConfig, Resources, RestartPolicy, Task, TaskGroup
from allocsvc.domain.restarts import default_policy
from allocsvc.errors import BadRequestError
from allocsvc.gocompat import SECOND

JOB_TYPES = ("service", "batch", "system", "sysbatch")
DEFAULT_KILL_TIMEOUT = 5 * SECOND


def _multierror(errors: list[str]) -> str:
    """Format like hashicorp/go-multierror."""
    head = "1 error occurred" if len(errors) == 1 else f"{len(errors)} errors occurred"
    return head + ":\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


def validate_job(job: Job, drivers: Iterable[str]) -> None:
    """Raise BadRequestError with Nomad-style validation text if the job is invalid."""
    known = set(drivers)
    errors: list[str] = []
    if not job.id:
        errors.append("Missing job ID")
    elif " " in job.id:
        errors.append("Job ID contains a space")
    if not job.name:
        errors.append("Missing job name")
    if job.type and job.type not in JOB_TYPES:
        errors.append(f"Invalid job type: {job.type!r}")
    if not job.task_groups:
        errors.append("Missing job task groups")
    seen: set[str] = set()
    for i, group in enumerate(job.task_groups or [], start=1):
        group_errors: list[str] = []
        if not group.name:
            group_errors.append(f"Job task group {i} missing name")
        elif group.name in seen:
            errors.append(f"Job task group {i} redefines '{group.name}' from group {i - 1}")
        seen.add(group.name)
        if group.count < 0:
            group_errors.append("Task group count can't be negative")
        if not group.tasks:
            group_errors.append("Missing tasks for task group")
        task_names: set[str] = set()
        for j, task in enumerate(group.tasks or [], start=1):
            task_errors: list[str] = []
            if not task.name:
                group_errors.append(f"Task {j} missing name")
                continue
            if task.name in task_names:
                group_errors.append(f"Task {j} redefines '{task.name}' from task {j - 1}")
            task_names.add(task.name)
            if not task.driver:
                task_errors.append("Missing task driver")
            elif task.driver not in known:
                task_errors.append(f'Driver "{task.driver}" is not available on this node')
            if task.kill_timeout < 0:
                task_errors.append("KillTimeout must be a positive value")
            if task_errors:
                group_errors.append(f"Task {task.name} validation failed: {_multierror(task_errors)}")
        if group_errors:
            label = group.name or str(i)
            errors.append(f"Task group {label} validation failed: {_multierror(group_errors)}")
    if errors:
        raise BadRequestError(f"Job validation failed: {_multierror(errors)}")


def canonicalize_job(job: Job, *, region: str = "global") -> Job:
    """Fill in the defaults Nomad's ``Job.Canonicalize`` sets; blank secret fields."""
    job_type = job.type or "service"
    groups = []
    for group in job.task_groups or []:
        policy = group.restart_policy or default_policy(job_type)
        tasks = []
        for task in group.tasks or []:
            tasks.append(
                msgspec.structs.replace(
                    task,
                    resources=task.resources or Resources(),
                    restart_policy=task.restart_policy or policy,
                    kill_timeout=task.kill_timeout or DEFAULT_KILL_TIMEOUT,
                    log_config=task.log_config or LogConfig(),
                )
            )
        groups.append(
            msgspec.structs.replace(
                group,
                restart_policy=policy,
                ephemeral_disk=group.ephemeral_disk or EphemeralDisk(),
                tasks=tasks,
            )
        )
    return msgspec.structs.replace(
        job,
        region=job.region or region,
        namespace=job.namespace or "default",
        name=job.name or job.id,
        type=job_type,
        priority=job.priority or 50,
        datacenters=job.datacenters or ["*"],
        node_pool=job.node_pool or "default",
        task_groups=groups,
        consul_token="",
        vault_token="",
    )


def job_spec_changed(old: Job, new: Job) -> bool:
    """Whether two registrations differ in anything but bookkeeping fields."""

    def spec(job: Job) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(job)
        for field in ("Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex", "Status", "Stable"):
            data.pop(field, None)
        return data

    return spec(old) != spec(new)


def task_restart_policy(job: Job, group: TaskGroup, task: Task) -> RestartPolicy:
    """The effective restart policy for a task."""
    return task.restart_policy or group.restart_policy or default_policy(job.type)


def allocated_resources(group: TaskGroup) -> dict[str, Any]:
    """Nomad's ``AllocatedResources`` for a group placed on our single node."""
    tasks: dict[str, Any] = {}
    lifecycles: dict[str, Any] = {}
    for task in group.tasks or []:
        res = task.resources or Resources()
        tasks[task.name] = {
            "Cpu": {"CpuShares": res.cpu, "ReservedCores": None},
            "Memory": {"MemoryMB": res.memory_mb, "MemoryMaxMB": res.memory_max_mb},
            "Networks": None,
            "Devices": None,
        }
        lifecycles[task.name] = (
            {"Hook": task.lifecycle.get("Hook", ""), "Sidecar": bool(task.lifecycle.get("Sidecar", False))}
            if task.lifecycle
            else None
        )
    disk = group.ephemeral_disk.size_mb if group.ephemeral_disk else 300
    return {"Tasks": tasks, "TaskLifecycles": lifecycles, "Shared": {"Networks": None, "DiskMB": disk, "Ports": None}}


def find_group(job: Job, name: str) -> TaskGroup:
    """The named task group of a job."""
    for group in job.task_groups or []:
        if group.name == name:
            return group
    raise KeyError(name)


def find_task(group: TaskGroup, name: str) -> Task:
    """The named task of a group."""
    for task in group.tasks or []:
        if task.name == name:
            return task
    raise KeyError(name)


IdFactory = Callable[[], str]
"""Makes new UUIDs; the service passes uuid4, the simulator a seeded generator."""
