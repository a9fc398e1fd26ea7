"""Nomad's event stream as a projection of the log: which record becomes which stream event.

Owns the NDJSON wire shapes (``StreamEvent``, ``EventsLine``), ``Topics`` (a parsed
``?topic=`` subscription and Nomad's key matching), ``describe`` (a record's Topic, Type, Key,
Namespace and FilterKeys, or None when Nomad would publish nothing), ``AsOfStates`` (each
record's object as of its index, for payloads) and ``LineCache`` (encoded lines shared by
every subscriber of one service). The HTTP endpoint (``allocsvc.http.events_stream``) drives
these; it owns parameters, ACLs and heartbeats.

Types follow Nomad's Raft message types (``nomad/state/events.go``): a placement or scheduler
stop is ``PlanResult``, a client task update ``AllocationUpdated``, a stop request
``AllocationUpdateDesiredStatus`` (its eval too), a job write ``JobRegistered`` /
``JobDeregistered`` (its eval too), an eval status change ``EvaluationUpdated``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from allocsvc.domain import events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.errors import BadRequestError
from allocsvc.store.log import EventLog
from allocsvc.views.history import LogHistory, StreamObject, stream_object
from allocsvc.views.wire import encode

TOPIC_ALL = "*"
TOPIC_ALLOCATION = "Allocation"
TOPIC_JOB = "Job"
TOPIC_EVALUATION = "Evaluation"

NAMESPACED_TOPICS = frozenset({TOPIC_ALLOCATION, TOPIC_JOB, TOPIC_EVALUATION, "Deployment", "Service"})
"""Topics whose events belong to a namespace; subscribing needs ``read-job`` there."""

EVAL_TYPES = {
    "job-register": "JobRegistered",
    "job-deregister": "JobDeregistered",
    "alloc-stop": "AllocationUpdateDesiredStatus",
}
"""The Type of a new eval's event: the Raft message that created it, known by its trigger."""


class StreamEvent(msgspec.Struct, frozen=True):
    """Nomad ``structs.Event``; keys in Go declaration order."""

    Topic: str
    Type: str
    Key: str
    Namespace: str
    FilterKeys: list[str] | None
    Index: int
    Payload: dict[str, Any]


class EventsLine(msgspec.Struct, frozen=True):
    """Nomad ``structs.Events``: one NDJSON line."""

    Index: int
    Events: list[StreamEvent]


class EventHead(msgspec.Struct, frozen=True):
    """What a record publishes, without its payload (enough to filter on)."""

    topic: str
    type: str
    key: str
    namespace: str
    filter_keys: tuple[str, ...] | None


class Topics:
    """A subscription's topics: topic name -> keys (``*`` means every key)."""

    def __init__(self, topics: dict[str, frozenset[str]]) -> None:
        self.topics = topics

    @classmethod
    def parse(cls, raw: Iterable[str] | None) -> Topics:
        """Nomad's ``parseEventTopics``: None (no ``topic`` param) means ``*:*``.

        Raises BadRequestError with Nomad's text for a value with more than one colon.
        """
        if raw is None:
            return cls({TOPIC_ALL: frozenset({"*"})})
        topics: dict[str, set[str]] = {}
        for value in raw:
            parts = value.split(":")
            if len(parts) == 1:
                name, key = value, "*"
            elif len(parts) == 2:
                name, key = parts
            else:
                raise BadRequestError(
                    f"Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: {value}"
                )
            topics.setdefault(name, set()).add(key)
        return cls({name: frozenset(keys) for name, keys in topics.items()})

    @property
    def names(self) -> frozenset[str]:
        """The subscribed topic names."""
        return frozenset(self.topics)

    def matches(self, head: EventHead) -> bool:
        """Whether the event's topic is subscribed with ``*`` or with its Key or a FilterKey."""
        keys = self.topics.get(TOPIC_ALL, frozenset()) | self.topics.get(head.topic, frozenset())
        if "*" in keys or head.key in keys:
            return True
        return any(k in keys for k in head.filter_keys or ())


def _alloc_head(type_: str, alloc_id: str, state: ClusterState) -> EventHead | None:
    agg = state.allocs.get(alloc_id)
    if agg is None:
        return None
    alloc = agg.alloc
    return EventHead(TOPIC_ALLOCATION, type_, alloc_id, alloc.Namespace, (alloc.JobID, alloc.DeploymentID))


def describe(recorded: ev.Recorded, state: ClusterState) -> EventHead | None:
    """The stream event a record publishes, or None (namespace, ACL and exec-audit records).

    ``state`` is the live state; only immutable facts (an allocation's namespace and job, an
    eval's namespace and job) are read from it.
    """
    event = recorded.event
    match event:
        case ev.AllocPlaced():
            return EventHead(TOPIC_ALLOCATION, "PlanResult", event.alloc_id, event.namespace, (event.job_id, ""))
        case ev.AllocDesiredStatusChanged():
            return _alloc_head("PlanResult", recorded.stream[len("alloc/") :], state)
        case ev.AllocStopRequested():
            return _alloc_head("AllocationUpdateDesiredStatus", recorded.stream[len("alloc/") :], state)
        case ev.TaskEventBase():
            return _alloc_head("AllocationUpdated", recorded.stream[len("alloc/") :], state)
        case ev.JobRegistered(job=job):
            return EventHead(TOPIC_JOB, "JobRegistered", job.id, job.namespace, None)
        case ev.JobDeregistered(purge=False):
            return EventHead(TOPIC_JOB, "JobDeregistered", event.job_id, event.namespace, None)
        case ev.EvalCreated(eval=evaluation):
            type_ = EVAL_TYPES.get(evaluation.TriggeredBy, "EvaluationUpdated")
            return EventHead(TOPIC_EVALUATION, type_, evaluation.ID, evaluation.Namespace, (evaluation.JobID, ""))
        case ev.EvalStatusChanged(eval_id=eval_id):
            found = state.evals.get(eval_id)
            if found is None:
                return None
            return EventHead(TOPIC_EVALUATION, "EvaluationUpdated", eval_id, found.Namespace, (found.JobID, ""))
    return None


def payload(head: EventHead, obj: StreamObject) -> dict[str, Any]:
    """The event's payload: ``{"Allocation": <without Job>}``, ``{"Job": ...}`` or ``{"Evaluation": ...}``."""
    return {head.topic: obj}


class AsOfStates:
    """Each record's stream object as of the record's index, for one subscriber.

    In order of preference: the object the read model kept beside the record in the log's tail;
    the live object when the record is its stream's newest; else the stream folded from its own
    records. Folded states are kept per stream (LRU-bounded), and ``prepare`` loads, in one read,
    the history of every stream of a chunk that is not cached at the right version, so replaying
    a long log costs one fold per record.
    """

    def __init__(self, live: ClusterState, history: LogHistory, log: EventLog, *, capacity: int = 8192) -> None:
        self._live = live
        self._history = history
        self._log = log
        self._capacity = capacity
        self._states: OrderedDict[str, ClusterState] = OrderedDict()

    def _cached(self, stream: str, version: int) -> bool:
        state = self._states.get(stream)
        return state is not None and state.stream_versions.get(stream, 0) == version

    def _known(self, recorded: ev.Recorded) -> StreamObject | None:
        """The object without folding, if the tail or the live state has it."""
        obj = self._history.object_at(recorded.index)
        if obj is None and self._live.stream_versions.get(recorded.stream) == recorded.version:
            obj = stream_object(recorded.stream, self._live)
        return obj

    async def prepare(self, records: Sequence[ev.Recorded]) -> None:
        """Load the histories of the streams ``records`` will need to fold, all at once."""
        first: dict[str, ev.Recorded] = {}
        for recorded in records:
            if recorded.stream not in first and self._known(recorded) is None:
                first[recorded.stream] = recorded
        wanted = {
            stream: recorded.index - 1
            for stream, recorded in first.items()
            if not self._cached(stream, recorded.version - 1)
        }
        for stream, prior in (await self._history.streams_records(self._log, wanted)).items():
            state = ClusterState()
            state.apply_all(prior)
            self._remember(stream, state)

    def _remember(self, stream: str, state: ClusterState) -> None:
        self._states[stream] = state
        self._states.move_to_end(stream)
        if len(self._states) > self._capacity:
            self._states.popitem(last=False)

    async def object_for(self, recorded: ev.Recorded) -> StreamObject:
        """The object of ``recorded.stream`` right after ``recorded``."""
        known = self._known(recorded)
        if known is not None:
            return known
        stream = recorded.stream
        if not self._cached(stream, recorded.version - 1):
            await self.prepare([recorded])
        state = self._states[stream]
        state.apply(recorded)
        self._remember(stream, state)
        obj = stream_object(stream, state)
        if obj is None:
            raise LookupError(f"record {recorded.index} of {stream} folds into nothing")
        return obj


class LineCache:
    """Encoded NDJSON lines by record index, shared by one service's subscribers.

    Bounded by bytes (oldest evicted first); a line bigger than a quarter of the bound is not kept.
    """

    def __init__(self, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lines: OrderedDict[int, bytes] = OrderedDict()

    def __contains__(self, index: int) -> bool:
        return index in self._lines

    def get(self, index: int) -> bytes | None:
        """The cached line of a record, if any."""
        line = self._lines.get(index)
        if line is not None:
            self._lines.move_to_end(index)
        return line

    def put(self, index: int, line: bytes) -> None:
        """Remember a record's line."""
        if len(line) > self._max_bytes // 4 or index in self._lines:
            return
        self._lines[index] = line
        self._bytes += len(line)
        while self._bytes > self._max_bytes:
            _, dropped = self._lines.popitem(last=False)
            self._bytes -= len(dropped)


def encode_line(recorded: ev.Recorded, head: EventHead, obj: StreamObject) -> bytes:
    """One NDJSON line (with its newline) for one record."""
    event = StreamEvent(
        Topic=head.topic,
        Type=head.type,
        Key=head.key,
        Namespace=head.namespace,
        FilterKeys=None if head.filter_keys is None else list(head.filter_keys),
        Index=recorded.index,
        Payload=payload(head, obj),
    )
    return encode(EventsLine(Index=recorded.index, Events=[event])) + b"\n"
