"""The read model: the cluster state projected from committed events, with encoded caches.

Owns ``ReadModel``. The log's one ordered consumer calls ``apply`` with each committed batch
(in index order, before the writer is acknowledged), so every read after a write sees it.
Encoded list stubs and details are cached per allocation and dropped when it changes, so a
10,000-alloc list joins cached bytes instead of re-encoding.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

import msgspec

from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.events import ExecSessionRecorded, Recorded
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.domain.model import Allocation, Job
from allocsvc.views.history import LogHistory
from allocsvc.views.watch import WatchHub
from allocsvc.views.wire import encode, encode_stub, json_array

LIST_BODY_BUDGET = 64 * 1024 * 1024
"""Most bytes of assembled list bodies kept between changes (10,000 allocs with TaskStates: 23 MB)."""


class _Cache:
    __slots__ = ("detail", "stub", "stub_lite")

    def __init__(self) -> None:
        self.stub: bytes | None = None
        self.stub_lite: bytes | None = None
        self.detail: bytes | None = None


class ReadModel:
    """In-memory projections plus waiters; fed only by the log's commit listener."""

    def __init__(self, state: ClusterState | None = None) -> None:
        self.state = state or ClusterState()
        self.hub = WatchHub()
        self.history = LogHistory()
        self._cache: dict[str, _Cache] = {}
        self._order: list[str] | None = None
        self._by_job: dict[tuple[str, str], list[str]] | None = None
        self._lists: dict[tuple[frozenset[str] | None, bool, bool], list[bytes]] = {}
        self._bodies: dict[tuple[frozenset[str] | None, bool, bool], bytes] = {}

    # --- projection -----------------------------------------------------------------------------

    def apply(self, records: Sequence[Recorded]) -> None:
        """Fold a committed batch and wake exactly the waiters it concerns."""
        keys: set[str] = {"table:log"}
        for recorded in records:
            self.state.apply(recorded)
            self.history.apply(recorded, self.state)
            stream = recorded.stream
            if stream.startswith("alloc/"):
                if isinstance(recorded.event, ExecSessionRecorded):
                    continue  # audit only: no visible change, nobody to wake
                alloc_id = stream[6:]
                self._cache.pop(alloc_id, None)
                self._lists.clear()
                self._bodies.clear()
                keys.add(f"alloc:{alloc_id}")
                keys.add("table:allocs")
                if recorded.version == 1:
                    # A placement's CreateIndex is its record index, which only grows: append in
                    # place (O(1)); readers iterate the list synchronously, never across an await.
                    if self._order is not None:
                        self._order.append(alloc_id)
                    if self._by_job is not None:
                        alloc = self.state.allocs[alloc_id].alloc
                        self._by_job.setdefault((alloc.Namespace, alloc.JobID), []).append(alloc_id)
            elif stream.startswith("job/"):
                keys.add("table:jobs")
                keys.add(f"job:{stream[4:]}")
            elif stream.startswith("eval/"):
                keys.add("table:evals")
            elif stream.startswith("namespace/"):
                keys.add("table:namespaces")
            else:
                keys.add("table:acl")
        self.hub.notify(keys)

    # --- allocation reads -----------------------------------------------------------------------

    def alloc(self, alloc_id: str) -> AllocAggregate | None:
        """One allocation aggregate by exact ID."""
        return self.state.allocs.get(alloc_id)

    def job_for(self, agg: AllocAggregate) -> Job | None:
        """The job snapshot an allocation was placed from."""
        return self.state.job_snapshot(agg.alloc.Namespace, agg.alloc.JobID, agg.job_version)

    def alloc_detail(self, agg: AllocAggregate) -> Allocation:
        """The full Allocation with its Job snapshot attached."""
        return msgspec.structs.replace(agg.alloc, Job=self.job_for(agg))

    def encoded_detail(self, agg: AllocAggregate) -> bytes:
        """Cached JSON of ``GET /v1/allocation/:id``."""
        cache = self._cache.setdefault(agg.alloc.ID, _Cache())
        if cache.detail is None:
            cache.detail = encode(self.alloc_detail(agg))
        return cache.detail

    def encoded_stub(self, agg: AllocAggregate, *, task_states: bool = True, resources: bool = False) -> bytes:
        """Cached JSON of one list stub."""
        if resources:
            return encode_stub(agg, self.job_for(agg), task_states=task_states, resources=True)
        cache = self._cache.get(agg.alloc.ID)
        if cache is None:
            cache = self._cache[agg.alloc.ID] = _Cache()
        if task_states:
            if cache.stub is None:
                cache.stub = encode_stub(agg, self.job_for(agg), task_states=True, resources=False)
            return cache.stub
        if cache.stub_lite is None:
            cache.stub_lite = encode_stub(agg, self.job_for(agg), task_states=False, resources=False)
        return cache.stub_lite

    def encoded_list(self, namespaces: frozenset[str] | None, *, task_states: bool, reverse: bool) -> list[bytes]:
        """Every stub in create order (or reversed), kept until the next allocation change.

        What an unfiltered, unpaginated ``GET /v1/allocations`` serves; repeated lists between two
        changes reuse the same list of cached stubs (references only: 80 KB per 10,000 allocs).
        """
        key = (namespaces, task_states, reverse)
        items = self._lists.get(key)
        if items is None:
            ids = self.allocs_in_create_order()
            items = self.encoded_stubs(ids[::-1] if reverse else ids, namespaces, task_states=task_states)
            if len(self._lists) >= 8:
                self._lists.clear()
            self._lists[key] = items
        return items

    def encoded_list_body(self, namespaces: frozenset[str] | None, *, task_states: bool, reverse: bool) -> bytes:
        """The JSON array of ``encoded_list``, kept (within ``LIST_BODY_BUDGET``) until the next change.

        Joining 23 MB of stubs costs more than sending them; an unchanged list is served as is.
        """
        key = (namespaces, task_states, reverse)
        body = self._bodies.get(key)
        if body is None:
            body = json_array(self.encoded_list(namespaces, task_states=task_states, reverse=reverse))
            if len(body) + sum(len(b) for b in self._bodies.values()) <= LIST_BODY_BUDGET:
                self._bodies[key] = body
        return body

    def encoded_stubs(self, ids: Iterable[str], namespaces: Container[str] | None, *, task_states: bool) -> list[bytes]:
        """Cached stubs (no resources) of many allocations in order: the full list's hot loop."""
        allocs = self.state.allocs
        cache = self._cache
        out: list[bytes] = []
        for alloc_id in ids:
            agg = allocs[alloc_id]
            if namespaces is not None and agg.alloc.Namespace not in namespaces:
                continue
            entry = cache.get(alloc_id)
            data = None if entry is None else entry.stub if task_states else entry.stub_lite
            out.append(data if data is not None else self.encoded_stub(agg, task_states=task_states))
        return out

    def allocs_in_create_order(self) -> list[str]:
        """All alloc IDs ordered by (CreateIndex, ID): Nomad's ``create`` index order."""
        if self._order is None:
            allocs = self.state.allocs
            self._order = sorted(allocs, key=lambda a: (allocs[a].alloc.CreateIndex, a))
        return self._order

    def allocs_by_id_order(self) -> list[str]:
        """All alloc IDs in ID byte order (Nomad's ``id`` index)."""
        return sorted(self.state.allocs)

    def allocs_of_job(self, namespace: str, job_id: str) -> list[AllocAggregate]:
        """A job's allocations in create order (an index by job, built on first use)."""
        allocs = self.state.allocs
        if self._by_job is None:
            self._by_job = {}
            for a in self.allocs_in_create_order():
                alloc = allocs[a].alloc
                self._by_job.setdefault((alloc.Namespace, alloc.JobID), []).append(a)
        return [allocs[a] for a in self._by_job.get((namespace, job_id), ())]

    def namespaces(self) -> Iterable[str]:
        """Existing namespace names."""
        return self.state.namespaces.keys()

    def index(self, table: str) -> int:
        """A table's index, as Nomad's ``state.Index(table)``."""
        return self.state.index(table)
