"""Beyond Nomad: an allocation's full event history, and the allocation as it was at an index.

Owns ``GET /v1/allocation/:id/events`` (every logged event of the allocation, in log order,
straight from the log: Nomad keeps only the newest ten per task) and
``GET /v1/allocation/:id?at_index=N`` (time travel: the read rebuilt by replaying the
allocation's and its job's streams up to N, encoded exactly like the live read). Both are
reached through ``allocsvc.http.allocs``' ``/v1/allocation/<path>`` router. Shapes and
parameters are documented in design/compat.md ("Full history (beyond Nomad)").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from quart import Response, request

from allocsvc.domain import events as ev
from allocsvc.domain.display import to_task_event
from allocsvc.domain.ids import normalize_alloc_id
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.domain.model import TaskEvent
from allocsvc.errors import BadRequestError, MethodNotAllowedError, PermissionDeniedError
from allocsvc.http.auth import Authorizer, authorizer_for
from allocsvc.http.query import parse_list_options
from allocsvc.http.responses import error_response, json_bytes_response, meta_headers
from allocsvc.store.codec import event_tag
from allocsvc.views.blocking import QueryResult, blocking_query
from allocsvc.views.history import fold_streams
from allocsvc.views.read_model import ReadModel
from allocsvc.views.wire import encode

if TYPE_CHECKING:
    from collections.abc import Mapping

    from allocsvc.service import Service

READ_JOB = "read-job"


class HistoryItem(msgspec.Struct, frozen=True, kw_only=True):
    """One logged event of an allocation, as ``/v1/allocation/:id/events`` lists it."""

    Index: int
    Time: int
    Task: str
    Type: str
    Event: TaskEvent | None
    Details: dict[str, Any]


def history_item(recorded: ev.Recorded) -> HistoryItem:
    """The listing entry of one record: log position, our tag, Nomad's TaskEvent, our fields."""
    event = recorded.event
    details = msgspec.to_builtins(event)
    details.pop("Type", None)
    task_event = to_task_event(event, recorded.time) if isinstance(event, ev.TaskEventBase) else None
    return HistoryItem(
        Index=recorded.index,
        Time=recorded.time,
        Task=str(getattr(event, "task", "")),
        Type=event_tag(event),
        Event=task_event,
        Details=details,
    )


def parse_uint(args: Mapping[str, str], name: str) -> int:
    """An optional unsigned decimal parameter (0 when absent); 400 ``Invalid <name>`` otherwise."""
    text = args.get(name, "")
    if text == "":
        return 0
    if not text.isdigit() or not text.isascii() or int(text) >= 2**64:
        raise BadRequestError(f"Invalid {name}")
    return int(text)


def _readable(authz: Authorizer, agg: AllocAggregate | None) -> AllocAggregate | None:
    if agg is None or not authz.allow_namespace_op(agg.alloc.Namespace, READ_JOB):
        return None
    return agg


async def alloc_events(service: Service, raw_id: str) -> Response:
    """``GET /v1/allocation/:id/events``: filters ``task``, ``since_index``; paging; blocking."""
    if request.method != "GET":
        raise MethodNotAllowedError()
    args = request.args
    opts = parse_list_options(args)
    since = parse_uint(args, "since_index")
    if opts.next_token and not (opts.next_token.isdigit() and opts.next_token.isascii()):
        raise BadRequestError("Invalid next_token")
    start = int(opts.next_token) if opts.next_token else 0
    task = args.get("task", "")
    alloc_id = normalize_alloc_id(raw_id)
    authz = authorizer_for(service, request.headers)
    model = service.model

    def run() -> QueryResult[AllocAggregate | None]:
        agg = _readable(authz, model.alloc(alloc_id))
        if agg is None:
            return QueryResult(model.index("allocs"), None, ("table:allocs",))
        return QueryResult(agg.alloc.ModifyIndex, agg, (f"alloc:{alloc_id}",))

    async def recheck() -> None:
        if not authz.still_valid():
            raise PermissionDeniedError()

    result = await blocking_query(model.hub, opts.query, run, recheck=recheck)
    if result.value is None:
        return error_response(404, "alloc not found", headers=meta_headers(result.index))
    records = await model.history.stream_records(
        service.log, ev.alloc_stream(alloc_id), upto=result.value.alloc.ModifyIndex
    )
    items: list[HistoryItem] = []
    next_token = ""
    for recorded in records:
        if recorded.index <= since or recorded.index < start:
            continue
        if task and getattr(recorded.event, "task", None) != task:
            continue
        if opts.per_page > 0 and len(items) >= opts.per_page:
            next_token = str(recorded.index)
            break
        items.append(history_item(recorded))
    return json_bytes_response(encode(items), headers=meta_headers(result.index, next_token))


async def detail_at(service: Service, agg: AllocAggregate, at_index: int) -> tuple[int, bytes] | None:
    """The allocation's read (index, body) as of ``at_index``; None if it did not exist yet.

    Replays the allocation's stream and its job's stream up to ``at_index`` with the same fold
    and the same encoding as the live read model.
    """
    alloc = agg.alloc
    history, log = service.model.history, service.log
    alloc_records = await history.stream_records(log, ev.alloc_stream(alloc.ID), upto=at_index)
    if not alloc_records:
        return None
    job_records = await history.stream_records(log, ev.job_stream(alloc.Namespace, alloc.JobID), upto=at_index)
    state = fold_streams(alloc_records, job_records)
    then = state.allocs[alloc.ID]
    return then.alloc.ModifyIndex, ReadModel(state).encoded_detail(then)


async def read_alloc_at(service: Service, raw_id: str) -> Response:
    """``GET /v1/allocation/:id?at_index=N``: the read exactly as it was after index N.

    Blocking parameters are validated but never block (the past does not change).
    """
    parse_list_options(request.args)
    at_index = parse_uint(request.args, "at_index")
    alloc_id = normalize_alloc_id(raw_id)
    authz = authorizer_for(service, request.headers)
    last = service.log.last_index
    if at_index > last:
        raise BadRequestError(f"at_index {at_index} is beyond the last log index {last}")
    agg = _readable(authz, service.model.alloc(alloc_id))
    found = None if agg is None else await detail_at(service, agg, at_index)
    if found is None:
        return error_response(404, "alloc not found", headers=meta_headers(at_index))
    index, body = found
    return json_bytes_response(body, headers=meta_headers(index))
