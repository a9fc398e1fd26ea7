"""The in-process scheduler: jobs, namespaces and placements on the agent's one node.

Owns ``Scheduler``. It serialises job and namespace commands (one at a time, like an actor),
writes job, eval and placement events in one atomic append, then spawns the new allocations'
actors and asks superseded allocations' actors to stop.
"""

from __future__ import annotations

import msgspec
import trio

from allocsvc.actors.runtime import Runtime
from allocsvc.actors.supervisor import Supervisor
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.jobs import allocated_resources, canonicalize_job, job_spec_changed, validate_job
from allocsvc.domain.model import DesiredStatus, Evaluation, Job, Namespace
from allocsvc.errors import BadRequestError, NotFoundError
from allocsvc.store.log import StreamWrite

UPDATE_DESCRIPTION = "alloc is being updated due to job update"
NOT_NEEDED_DESCRIPTION = "alloc not needed due to job update"
NAMESPACE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class RegisterResult(msgspec.Struct, frozen=True):
    """What ``PUT /v1/jobs`` answers."""

    eval_id: str
    eval_create_index: int
    job_modify_index: int
    index: int


class Scheduler:
    """Serialised job and namespace writes."""

    def __init__(self, rt: Runtime, supervisor: Supervisor) -> None:
        self.rt = rt
        self.supervisor = supervisor
        self._lock = trio.Lock()

    # --- jobs -----------------------------------------------------------------------------------

    async def register(self, job: Job) -> RegisterResult:
        """Register a job version: record it, create an eval, place its allocations."""
        async with self._lock:
            model = self.rt.model
            validate_job(job, self.rt.drivers.keys())
            job = canonicalize_job(job)
            if job.namespace not in model.state.namespaces:
                raise BadRequestError(f'job "{job.id}" is in nonexistent namespace "{job.namespace}"')
            record = model.state.jobs.get((job.namespace, job.id))
            if record is not None and not record.stopped and not record.purged and not job_spec_changed(record.current, job):
                current = record.current
                return RegisterResult("", 0, current.job_modify_index, current.job_modify_index)
            version = record.current.version + 1 if record is not None else 0
            job = msgspec.structs.replace(job, version=version, status="pending", stop=False)
            now = self.rt.clock.now_ns()
            eval_id = self.rt.new_id()
            evaluation = Evaluation(
                ID=eval_id,
                Namespace=job.namespace,
                Priority=job.priority,
                Type=job.type,
                TriggeredBy="job-register",
                JobID=job.id,
                Status="complete",
            )
            job_key = ev.job_stream(job.namespace, job.id)
            writes = [
                StreamWrite(job_key, self.rt.log.stream_version(job_key), [ev.JobRegistered(job=job)]),
                StreamWrite(ev.eval_stream(eval_id), 0, [ev.EvalCreated(eval=evaluation)]),
            ]
            placed: list[str] = []
            for group in job.task_groups or []:
                # one (immutable) resources dict and tasks tuple shared by the group's placements
                resources = allocated_resources(group)
                tasks = tuple(t.name for t in group.tasks or [])
                for i in range(group.count):
                    alloc_id = self.rt.new_id()
                    placed.append(alloc_id)
                    writes.append(
                        StreamWrite(
                            ev.alloc_stream(alloc_id),
                            0,
                            [
                                ev.AllocPlaced(
                                    alloc_id=alloc_id,
                                    namespace=job.namespace,
                                    eval_id=eval_id,
                                    name=f"{job.id}.{group.name}[{i}]",
                                    node_id=self.rt.node_id,
                                    node_name=self.rt.node_name,
                                    job_id=job.id,
                                    job_version=version,
                                    task_group=group.name,
                                    tasks=tasks,
                                    allocated_resources=resources,
                                )
                            ],
                        )
                    )
            old = [a.alloc.ID for a in model.allocs_of_job(job.namespace, job.id) if a.alloc.DesiredStatus == DesiredStatus.RUN]
            records = await self.rt.log.append(writes, time=now)
            for alloc_id in placed:
                self.supervisor.place(alloc_id)
            await self._stop_allocs(old, UPDATE_DESCRIPTION)
            by_stream = {r.stream: r for r in records}
            job_index = by_stream[job_key].index
            eval_index = by_stream[ev.eval_stream(eval_id)].index
            return RegisterResult(eval_id, eval_index, job_index, records[-1].index)

    async def deregister(self, namespace: str, job_id: str, *, purge: bool) -> tuple[str, int]:
        """Stop a job's allocations; returns (eval id, index)."""
        async with self._lock:
            record = self.rt.model.state.jobs.get((namespace, job_id))
            if record is None or record.purged:
                raise NotFoundError("job not found")
            now = self.rt.clock.now_ns()
            eval_id = self.rt.new_id()
            job = record.current
            evaluation = Evaluation(
                ID=eval_id,
                Namespace=namespace,
                Priority=job.priority,
                Type=job.type,
                TriggeredBy="job-deregister",
                JobID=job_id,
                Status="complete",
            )
            job_key = ev.job_stream(namespace, job_id)
            records = await self.rt.log.append(
                [
                    StreamWrite(
                        job_key,
                        self.rt.log.stream_version(job_key),
                        [ev.JobDeregistered(namespace=namespace, job_id=job_id, purge=purge)],
                    ),
                    StreamWrite(ev.eval_stream(eval_id), 0, [ev.EvalCreated(eval=evaluation)]),
                ],
                time=now,
            )
            live = [
                a.alloc.ID
                for a in self.rt.model.allocs_of_job(namespace, job_id)
                if a.alloc.DesiredStatus == DesiredStatus.RUN
            ]
            await self._stop_allocs(live, NOT_NEEDED_DESCRIPTION)
            return eval_id, records[-1].index

    async def _stop_allocs(self, alloc_ids: list[str], description: str) -> None:
        for alloc_id in alloc_ids:
            await self.supervisor.ask(alloc_id, cmd.MarkAllocStopped(description=description))

    # --- namespaces -----------------------------------------------------------------------------

    async def upsert_namespace(self, namespace: Namespace) -> int:
        """Create or update a namespace; returns the write index."""
        name = namespace.Name
        if not name or len(name) > 128 or not set(name) <= NAMESPACE_NAME_CHARS:
            raise BadRequestError(f'invalid name "{name}". Must match regex ^[a-zA-Z0-9-]{{1,128}}$')
        async with self._lock:
            stream = ev.namespace_stream(name)
            clean = msgspec.structs.replace(namespace, CreateIndex=0, ModifyIndex=0)
            records = await self.rt.log.append(
                [StreamWrite(stream, self.rt.log.stream_version(stream), [ev.NamespaceUpserted(namespace=clean)])],
                time=self.rt.clock.now_ns(),
            )
            return records[-1].index

    async def delete_namespace(self, name: str) -> int:
        """Delete an empty namespace; returns the write index."""
        async with self._lock:
            state = self.rt.model.state
            if name == "default":
                raise BadRequestError("default namespace can not be deleted")
            if name not in state.namespaces:
                raise BadRequestError(f"namespace {name!r} does not exist")
            live_jobs = [k for k, r in state.jobs.items() if k[0] == name and not r.purged]
            if live_jobs:
                raise BadRequestError(
                    f'namespace "{name}" has non-terminal jobs in regions: [{self.rt.model.state.jobs[live_jobs[0]].current.region}]'
                )
            stream = ev.namespace_stream(name)
            records = await self.rt.log.append(
                [StreamWrite(stream, self.rt.log.stream_version(stream), [ev.NamespaceDeleted(name=name)])],
                time=self.rt.clock.now_ns(),
            )
            return records[-1].index
