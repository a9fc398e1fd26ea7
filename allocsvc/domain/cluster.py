"""The cluster state every read model and tool derives from the log: a fold of all events.

Owns ``ClusterState.apply(recorded)``: namespaces, job versions, evaluations, allocation
aggregates and per-table indexes (Nomad's ``state.Index("allocs")``). Projections, replay
tooling and the simulator all use this one fold, so replay rebuilds exactly the live state.
Pure: in-memory only.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from allocsvc.domain import events as ev
from allocsvc.domain.acl_events import ACL_STREAM_PREFIX
from allocsvc.domain.acl_state import ACLState
from allocsvc.domain.lifecycle import BULK_FOLDS, AllocAggregate, AllocWork, evolve, place
from allocsvc.domain.model import Evaluation, Job, Namespace

DEFAULT_NAMESPACE = Namespace(Name="default", Description="Default shared namespace")


class JobRecord(msgspec.Struct, kw_only=True):
    """All registered versions of one job, and whether it is stopped or purged."""

    versions: dict[int, Job]
    current: Job
    stopped: bool = False
    purged: bool = False


class ClusterState:
    """Everything the log says, folded in index order."""

    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {"default": DEFAULT_NAMESPACE}
        self.jobs: dict[tuple[str, str], JobRecord] = {}
        self.evals: dict[str, Evaluation] = {}
        self.allocs: dict[str, AllocAggregate] = {}
        self.table_index: dict[str, int] = {}
        self.last_index = 0
        self.stream_versions: dict[str, int] = {}
        self.acl = ACLState()

    def apply_all(self, records: Iterable[ev.Recorded]) -> int:
        """Apply records in order (a batch: startup replay, time travel); returns how many.

        Equals ``apply`` per record, faster: allocation records are folded into mutable
        ``AllocWork`` copies that become ``AllocAggregate`` values again when the batch ends
        (or fails), so ``allocs`` is only current once this returns.
        """
        allocs = self.allocs
        work: dict[str, AllocWork] = {}  # by stream
        folds = BULK_FOLDS
        versions = self.stream_versions
        last = self.last_index
        touched = 0  # index of the last record that changed an allocation, not yet in table_index
        count = 0
        try:
            for recorded in records:
                index, stream = recorded.index, recorded.stream
                fold = folds.get(type(recorded.event))
                state = work.get(stream)  # only allocation streams are ever in work
                if fold is None or (state is None and not stream.startswith("alloc/")):
                    # everything else, AllocPlaced included, goes through apply, after the
                    # allocation it may touch is brought up to date
                    event = recorded.event
                    if isinstance(event, ev.AllocPlaced):
                        self._freeze(work, ev.alloc_stream(event.alloc_id))
                    self._freeze(work, stream)
                    if touched:
                        self.table_index["allocs"] = touched
                        touched = 0
                    self.last_index = last
                    self.apply(recorded)
                    last = index
                    count += 1
                    continue
                if index <= last:
                    raise ValueError(f"record index {index} not after {last}")
                last = index
                versions[stream] = recorded.version
                if state is None:
                    self.last_index = last  # as apply leaves it if the allocation is unknown
                    state = work[stream] = AllocWork(allocs[stream[6:]])
                fold(state, recorded)
                touched = index
                count += 1
        finally:
            self.last_index = last
            if touched:
                self.table_index["allocs"] = touched
            while work:  # each working copy is freed right after its freeze, while still in cache
                stream, state = work.popitem()
                allocs[stream[6:]] = state.freeze()
        return count

    def _freeze(self, work: dict[str, AllocWork], stream: str) -> None:
        """Write back the working copy of ``stream``'s allocation, if a batch holds one."""
        state = work.pop(stream, None)
        if state is not None:
            self.allocs[stream[6:]] = state.freeze()

    def _touch(self, table: str, index: int) -> None:
        self.table_index[table] = index

    def apply(self, recorded: ev.Recorded) -> None:
        """Fold one committed record; records must arrive in strictly increasing index order."""
        index, stream, event = recorded.index, recorded.stream, recorded.event
        if index <= self.last_index:
            raise ValueError(f"record index {index} not after {self.last_index}")
        self.last_index = index
        self.stream_versions[stream] = recorded.version
        if type(event) is ev.AllocPlaced:  # before the match below: one per allocation
            self.allocs[event.alloc_id] = place(recorded)
            self.table_index["allocs"] = index
            return
        if stream.startswith("alloc/"):
            # the replay hot path: most records are allocation events
            allocs, alloc_id = self.allocs, stream[6:]
            allocs[alloc_id] = evolve(allocs[alloc_id], recorded)
            if type(event) is not ev.ExecSessionRecorded:  # audit records change nothing a client sees
                self.table_index["allocs"] = index
            return
        match event:
            case ev.NamespaceUpserted(namespace=ns):
                old = self.namespaces.get(ns.Name)
                create = old.CreateIndex if old is not None and old.CreateIndex else index
                self.namespaces[ns.Name] = msgspec.structs.replace(ns, CreateIndex=create, ModifyIndex=index)
                self._touch("namespaces", index)
            case ev.NamespaceDeleted(name=name):
                self.namespaces.pop(name, None)
                self._touch("namespaces", index)
            case ev.JobRegistered(job=job):
                key = (job.namespace, job.id)
                record = self.jobs.get(key)
                create = record.current.create_index if record is not None else index
                snapshot = msgspec.structs.replace(
                    job, create_index=create, modify_index=index, job_modify_index=index, submit_time=recorded.time
                )
                if record is None:
                    self.jobs[key] = JobRecord(versions={job.version: snapshot}, current=snapshot)
                else:
                    record.versions[job.version] = snapshot
                    record.current = snapshot
                    record.stopped = False
                    record.purged = False
                self._touch("jobs", index)
            case ev.JobDeregistered(namespace=namespace, job_id=job_id, purge=purge):
                key = (namespace, job_id)
                if key in self.jobs:
                    record = self.jobs[key]
                    record.stopped = True
                    record.purged = purge
                    record.current = msgspec.structs.replace(record.current, stop=True, modify_index=index)
                self._touch("jobs", index)
            case ev.EvalCreated(eval=evaluation):
                self.evals[evaluation.ID] = msgspec.structs.replace(
                    evaluation, CreateIndex=index, ModifyIndex=index, CreateTime=recorded.time, ModifyTime=recorded.time
                )
                self._touch("evals", index)
            case ev.EvalStatusChanged(eval_id=eval_id, status=status, description=description):
                old_eval = self.evals.get(eval_id)
                if old_eval is not None:
                    self.evals[eval_id] = msgspec.structs.replace(
                        old_eval, Status=status, StatusDescription=description, ModifyIndex=index, ModifyTime=recorded.time
                    )
                self._touch("evals", index)
            case ev.AllocPlaced(alloc_id=alloc_id):
                self.allocs[alloc_id] = place(recorded)
                self._touch("allocs", index)
            case _ if recorded.stream.startswith("alloc/"):
                alloc_id = recorded.stream[len("alloc/") :]
                self.allocs[alloc_id] = evolve(self.allocs[alloc_id], recorded)
                if not isinstance(event, ev.ExecSessionRecorded):
                    self._touch("allocs", index)
            case _ if recorded.stream.startswith(ACL_STREAM_PREFIX):
                self.acl.apply(recorded)
                self._touch("acl", index)

    def __eq__(self, other: object) -> bool:
        """Field-by-field equality: replay, snapshot load and the live fold must agree exactly."""
        if not isinstance(other, ClusterState):
            return NotImplemented
        return _fields(self) == _fields(other)

    __hash__ = None  # type: ignore[assignment]

    def index(self, table: str) -> int:
        """The last index that wrote ``table`` (0 if never)."""
        return self.table_index.get(table, 0)

    def job_snapshot(self, namespace: str, job_id: str, version: int) -> Job | None:
        """The job version an allocation was placed from."""
        record = self.jobs.get((namespace, job_id))
        if record is None:
            return None
        return record.versions.get(version)


def _fields(obj: object) -> dict[str, object]:
    """An object's attributes, with nested plain (non-Struct) objects such as ``ACLState`` expanded."""
    return {k: _fields(v) if hasattr(v, "__dict__") else v for k, v in vars(obj).items()}
