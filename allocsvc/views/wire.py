"""Nomad list-stub shapes and the JSON encoding every response uses.

Owns ``AllocListStub`` (all keys always present, Nomad declaration order) and ``encode``, which
produces Go-identical JSON bytes (compact, no trailing newline, U+2028/9 escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.domain.model import AnyMap, DesiredTransition, Job, TaskState
from allocsvc.gocompat import go_json_fixup

_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """Encode a response body exactly as Nomad's JSON handle would."""
    return go_json_fixup(_encoder.encode(value))


def json_array(items: Sequence[bytes]) -> bytes:
    """``[a,b,…]`` from already-encoded elements, copying the bytes once (a 20 MB list: 3 copies → 1)."""
    if not items:
        return b"[]"
    if len(items) == 1:
        return b"[" + items[0] + b"]"
    parts = list(items)
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"
    return b",".join(parts)


def pretty(body: bytes) -> bytes:
    """Nomad's ``?pretty`` form: 4-space indentation plus a trailing newline."""
    return msgspec.json.format(body, indent=4) + b"\n"


class AllocListStub(msgspec.Struct, kw_only=True):
    """Nomad ``AllocListStub`` without resources; every key is always present."""

    ID: str
    EvalID: str
    Name: str
    Namespace: str
    NodeID: str
    NodeName: str
    JobID: str
    JobType: str
    JobVersion: int
    TaskGroup: str
    DesiredStatus: str
    DesiredDescription: str
    ClientStatus: str
    ClientDescription: str
    DesiredTransition: DesiredTransition
    TaskStates: dict[str, TaskState] | None
    DeploymentStatus: AnyMap | None
    FollowupEvalID: str
    NextAllocation: str
    RescheduleTracker: AnyMap | None
    PreemptedAllocations: list[str] | None
    PreemptedByAllocation: str
    CreateIndex: int
    ModifyIndex: int
    CreateTime: int
    ModifyTime: int


class AllocListStubWithResources(msgspec.Struct, kw_only=True):
    """Nomad ``AllocListStub`` with ``AllocatedResources`` (``?resources=true``)."""

    ID: str
    EvalID: str
    Name: str
    Namespace: str
    NodeID: str
    NodeName: str
    JobID: str
    JobType: str
    JobVersion: int
    TaskGroup: str
    AllocatedResources: AnyMap | None
    DesiredStatus: str
    DesiredDescription: str
    ClientStatus: str
    ClientDescription: str
    DesiredTransition: DesiredTransition
    TaskStates: dict[str, TaskState] | None
    DeploymentStatus: AnyMap | None
    FollowupEvalID: str
    NextAllocation: str
    RescheduleTracker: AnyMap | None
    PreemptedAllocations: list[str] | None
    PreemptedByAllocation: str
    CreateIndex: int
    ModifyIndex: int
    CreateTime: int
    ModifyTime: int


def stub_fields(agg: AllocAggregate, job: Job | None, *, task_states: bool) -> dict[str, Any]:
    """The stub's field values for one allocation."""
    a = agg.alloc
    return {
        "ID": a.ID,
        "EvalID": a.EvalID,
        "Name": a.Name,
        "Namespace": a.Namespace,
        "NodeID": a.NodeID,
        "NodeName": a.NodeName,
        "JobID": a.JobID,
        "JobType": job.type if job is not None else "",
        "JobVersion": agg.job_version,
        "TaskGroup": a.TaskGroup,
        "DesiredStatus": a.DesiredStatus,
        "DesiredDescription": a.DesiredDescription,
        "ClientStatus": a.ClientStatus,
        "ClientDescription": a.ClientDescription,
        "DesiredTransition": a.DesiredTransition or DesiredTransition(),
        "TaskStates": a.TaskStates if task_states else None,
        "DeploymentStatus": a.DeploymentStatus,
        "FollowupEvalID": a.FollowupEvalID,
        "NextAllocation": a.NextAllocation,
        "RescheduleTracker": a.RescheduleTracker,
        "PreemptedAllocations": a.PreemptedAllocations,
        "PreemptedByAllocation": a.PreemptedByAllocation,
        "CreateIndex": a.CreateIndex,
        "ModifyIndex": a.ModifyIndex,
        "CreateTime": a.CreateTime,
        "ModifyTime": a.ModifyTime,
    }


def encode_stub(agg: AllocAggregate, job: Job | None, *, task_states: bool, resources: bool) -> bytes:
    """Encode one list stub."""
    fields = stub_fields(agg, job, task_states=task_states)
    if resources:
        return encode(AllocListStubWithResources(AllocatedResources=agg.alloc.AllocatedResources, **fields))
    return encode(AllocListStub(**fields))
