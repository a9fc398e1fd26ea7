"""``/v1/allocations`` and ``/v1/allocation/:id[/stop|/checks|/services]``.

Owns list (prefix, namespace, pagination, filter, blocking), read (blocking on the alloc's
ModifyIndex, 404 with headers) and stop. Reads serve cached bytes from the read model; writes
go to the allocation's actor and answer after the read model has applied them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from quart import Blueprint, Response, request
from werkzeug.datastructures import Headers

from allocsvc.domain import commands as cmd
from allocsvc.domain.ids import bare_id, normalize_alloc_id, normalize_prefix
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.errors import (
    AllocsvcError,
    BadRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
)
from allocsvc.filter import Filter, FilterFieldError, FilterSyntaxError, compile_filter
from allocsvc.http.auth import Authorizer, authorizer_for
from allocsvc.http.history import alloc_events, read_alloc_at
from allocsvc.http.query import ListOptions, bool_param, parse_list_options, parse_query
from allocsvc.http.responses import (
    error_response,
    gzip_body,
    json_bytes_response,
    json_response,
    meta_headers,
)
from allocsvc.views.blocking import QueryResult, blocking_query
from allocsvc.views.wire import json_array

if TYPE_CHECKING:
    from allocsvc.service import Service

READ_JOB = "read-job"
ALLOC_LIFECYCLE = "alloc-lifecycle"


class Page(msgspec.Struct, frozen=True):
    """One page of list results: encoded stubs (or the whole encoded array) and the next token."""

    items: list[bytes]
    next_token: str
    body: bytes | None = None


def _token_key(token: str) -> tuple[int, str] | None:
    """Parse a ``CreateIndex.ID`` token; None means compare as a plain string."""
    head, dot, rest = token.partition(".")
    if not dot or not head.isdigit():
        return None
    return int(head), rest


def _after_token(agg: AllocAggregate, token: str, *, by_id: bool, reverse: bool) -> bool:
    """Whether an item is at or past the pagination token in scan direction."""
    if not token:
        return True
    alloc = agg.alloc
    if by_id:
        cmp = (token < alloc.ID) - (token > alloc.ID)
    else:
        key = _token_key(token)
        if key is None:
            own = f"{alloc.CreateIndex}.{alloc.ID}"
            cmp = (own > token) - (own < token)
        else:
            mine = (alloc.CreateIndex, alloc.ID)
            cmp = (mine > key) - (mine < key)
    return cmp <= 0 if reverse else cmp >= 0


def _skip_to_token(
    ids: list[str], allocs: Mapping[str, AllocAggregate], token: str, *, by_id: bool, reverse: bool
) -> list[str] | None:
    """The scan from the token on, found by binary search over the sorted order.

    Same result as testing ``_after_token`` on every item (so page N costs O(log n), not O(n));
    None for no token, or one that is not ``CreateIndex.ID`` and so compares as a plain string.
    """
    key: Callable[[str], Any]
    target: Any
    if not token:
        return None
    if by_id:
        key, target = str, token
    else:
        parsed = _token_key(token)
        if parsed is None:
            return None
        key, target = (lambda a: (allocs[a].alloc.CreateIndex, a)), parsed
    if reverse:
        return ids[: bisect_right(ids, target, key=key)][::-1]
    return ids[bisect_left(ids, target, key=key) :]


def filter_datum(service: Service, agg: AllocAggregate) -> dict[str, Any]:
    """The full Allocation as builtins with every field present (filters see Go's struct)."""
    detail = service.model.alloc_detail(agg)
    return {name: msgspec.to_builtins(getattr(detail, name)) for name in detail.__struct_fields__}


def list_page(
    service: Service,
    opts: ListOptions,
    namespaces: set[str] | None,
    flt: Filter | None,
    *,
    task_states: bool,
    resources: bool,
) -> Page:
    """Nomad's paginated scan: order, token, filter, namespace, per_page."""
    model = service.model
    allocs = model.state.allocs
    by_id = bool(opts.prefix)
    limit = opts.per_page
    plain = flt is None and limit == 0 and not resources
    if plain and not by_id and not opts.next_token:
        frozen = None if namespaces is None else frozenset(namespaces)
        return Page([], "", model.encoded_list_body(frozen, task_states=task_states, reverse=opts.reverse))
    if by_id:
        prefix = normalize_prefix(opts.prefix)
        ids = [a for a in model.allocs_by_id_order() if bare_id(a).startswith(prefix)]
    else:
        ids = model.allocs_in_create_order()
    token = opts.next_token
    skipped = _skip_to_token(ids, allocs, token, by_id=by_id, reverse=opts.reverse) if token else None
    if skipped is not None:
        ids, token = skipped, ""
    elif opts.reverse:
        ids = ids[::-1]
    if plain and not token:
        return Page(model.encoded_stubs(ids, namespaces, task_states=task_states), "")
    items: list[bytes] = []
    next_token = ""
    for alloc_id in ids:
        agg = allocs[alloc_id]
        if namespaces is not None and agg.alloc.Namespace not in namespaces:
            continue
        if token and not _after_token(agg, token, by_id=by_id, reverse=opts.reverse):
            continue
        if flt is not None:
            try:
                if not flt.matches(filter_datum(service, agg)):
                    continue
            except FilterFieldError as exc:
                raise BadRequestError(f"failed to read result page: {exc.message}") from exc
        if (limit and len(items) >= limit) or limit < 0:
            next_token = agg.alloc.ID if by_id else f"{agg.alloc.CreateIndex}.{agg.alloc.ID}"
            break
        items.append(model.encoded_stub(agg, task_states=task_states, resources=resources))
    return Page(items, next_token)


def _can_read(authz: Authorizer, agg: AllocAggregate) -> bool:
    return authz.allow_namespace_op(agg.alloc.Namespace, READ_JOB)


def alloc_routes(service: Service) -> Blueprint:
    """The allocation endpoints bound to one service."""
    bp = Blueprint("allocs", __name__)

    @bp.route("/v1/allocations", methods=["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    async def list_allocs() -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        args = request.args
        opts = parse_list_options(args)
        if opts.prefix:
            normalize_prefix(opts.prefix)
        resources = bool_param(args, "resources", False)
        task_states = bool_param(args, "task_states", True)
        authz = authorizer_for(service, request.headers)
        namespaces: set[str] | None
        if opts.namespace == "*":
            if not authz.allow_namespace_op("*", READ_JOB):
                raise PermissionDeniedError()
            namespaces = None if authz.is_management else authz.allowed_namespaces(READ_JOB, service.model.namespaces())
        else:
            if not authz.allow_namespace_op(opts.namespace, READ_JOB):
                raise PermissionDeniedError()
            namespaces = {opts.namespace}
        flt = None
        if opts.filter:
            try:
                flt = compile_filter(opts.filter)
            except FilterSyntaxError as exc:
                raise BadRequestError(f"failed to create result paginator: {exc.message}") from exc

        def run() -> QueryResult[Page]:
            page = list_page(service, opts, namespaces, flt, task_states=task_states, resources=resources)
            return QueryResult(service.model.index("allocs"), page, ("table:allocs",))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=_recheck(authz))
        page = result.value
        body = page.body if page.body is not None else json_array(page.items)
        return json_bytes_response(body, headers=meta_headers(result.index, result.value.next_token))

    @bp.route("/v1/allocation/", defaults={"rest": ""}, methods=["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"])
    @bp.route("/v1/allocation/<path:rest>", methods=["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"])
    async def alloc_specific(rest: str) -> Response:
        parts = rest.split("/")
        if len(parts) > 2:
            return error_response(404, "resource not found")
        if len(parts) == 1:
            return await read_alloc(parts[0])
        alloc_id, action = parts
        if action == "stop":
            return await stop_alloc(alloc_id)
        if action == "checks":
            return await alloc_checks(alloc_id)
        if action == "services":
            return await alloc_services(alloc_id)
        if action == "events":
            return await alloc_events(service, alloc_id)
        return error_response(404, "resource not found")

    async def read_alloc(raw_id: str) -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        if request.args.get("at_index"):
            return await read_alloc_at(service, raw_id)
        opts = parse_list_options(request.args)
        alloc_id = normalize_alloc_id(raw_id)
        authz = authorizer_for(service, request.headers)

        def run() -> QueryResult[AllocAggregate | None]:
            agg = service.model.alloc(alloc_id)
            if agg is None or not _can_read(authz, agg):
                return QueryResult(service.model.index("allocs"), None, ("table:allocs",))
            return QueryResult(agg.alloc.ModifyIndex, agg, (f"alloc:{alloc_id}",))

        result = await blocking_query(service.model.hub, opts.query, run, recheck=_recheck(authz))
        headers = meta_headers(result.index)
        if result.value is None:
            return error_response(404, "alloc not found", headers=headers)
        return json_bytes_response(service.model.encoded_detail(result.value), headers=headers)

    def _visible(alloc_id: str, authz: Authorizer, capability: str) -> AllocAggregate | None:
        agg = service.model.alloc(alloc_id)
        if agg is None:
            return None
        ns = agg.alloc.Namespace
        if not (authz.allow_namespace_op(ns, READ_JOB) or authz.allow_namespace_op(ns, capability)):
            return None
        return agg

    async def stop_alloc(raw_id: str) -> Response:
        if request.method not in ("PUT", "POST"):
            raise MethodNotAllowedError()
        no_delay = bool_param(request.args, "no_shutdown_delay", False)
        reschedule = bool_param(request.args, "reschedule", False)
        authz = authorizer_for(service, request.headers)
        alloc_id = normalize_alloc_id(raw_id)
        agg = _visible(alloc_id, authz, ALLOC_LIFECYCLE)
        if agg is None:
            raise NotFoundError("allocation not found")
        if not authz.allow_namespace_op(agg.alloc.Namespace, ALLOC_LIFECYCLE):
            raise PermissionDeniedError()
        eval_id = service.runtime.new_id()
        records = await service.supervisor.ask(
            alloc_id, cmd.StopAlloc(eval_id=eval_id, no_shutdown_delay=no_delay, reschedule=reschedule)
        )
        index = records[-1].index
        return json_response(stop_answer(eval_id, index), headers={"X-Nomad-Index": str(index)})

    async def alloc_checks(raw_id: str) -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        authz = authorizer_for(service, request.headers)
        agg = _visible(normalize_alloc_id(raw_id), authz, READ_JOB)
        if agg is None or not _can_read(authz, agg):
            raise NotFoundError("alloc not found")
        return json_response({})

    async def alloc_services(raw_id: str) -> Response:
        if request.method != "GET":
            raise MethodNotAllowedError()
        parse_query(request.args)
        authz = authorizer_for(service, request.headers)
        agg = _visible(normalize_alloc_id(raw_id), authz, READ_JOB)
        namespace = request.args.get("namespace", "") or "default"
        if agg is None or not _can_read(authz, agg) or agg.alloc.Namespace != namespace:
            raise NotFoundError("allocation not found")
        return json_response([], headers=meta_headers(service.model.index("allocs")))

    return bp


def stop_answer(eval_id: str, index: int) -> dict[str, Any]:
    """``structs.AllocStopResponse``: the stop evaluation and the index it was committed at."""
    return {"EvalID": eval_id, "Index": index}


def _recheck(authz: Authorizer) -> Any:
    async def recheck() -> None:
        if not authz.still_valid():
            raise PermissionDeniedError()

    return recheck


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application (scope, receive, send)."""

FAST_PREFIX = "/v1/allocation/"


def fast_read_path(service: Service, inner: ASGIApp) -> ASGIApp:
    """ASGI middleware: a plain ``GET /v1/allocation/<id>`` served straight from cached bytes.

    Only the success answer of a non-blocking read without query parameters takes this path;
    everything else (blocking ``?index=``, ``?pretty``, ``at_index``, sub-resources, bad IDs,
    404s, ACL denials, other methods) goes to the Quart route, so either way the client gets the
    same status, headers and body. The profile of the read benchmark had Quart's request context,
    routing and hooks at three times the handler's own cost (design/performance.md).
    """
    wanted_length = len(FAST_PREFIX) + 36

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and len(scope["path"]) == wanted_length
            and scope["path"].startswith(FAST_PREFIX)
        ):
            answer = _fast_read(service, scope["path"][len(FAST_PREFIX) :], scope["headers"])
            if answer is not None:
                headers, body = answer
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await inner(scope, receive, send)

    return app


def _fast_read(
    service: Service, raw_id: str, raw_headers: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """The read's 200 answer, or None to let the Quart route answer (errors, ACL, 404)."""
    try:
        alloc_id = normalize_alloc_id(raw_id)
    except AllocsvcError:
        return None
    agg = service.model.alloc(alloc_id)
    if agg is None:
        return None
    if service.config.acl_enabled:
        lookup = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers])
        try:
            authz = authorizer_for(service, lookup)
        except AllocsvcError:
            return None
        if not _can_read(authz, agg):
            return None
    body = service.model.encoded_detail(agg)
    headers = [
        (b"x-nomad-index", str(agg.alloc.ModifyIndex).encode()),
        (b"x-nomad-knownleader", b"true"),
        (b"x-nomad-lastcontact", b"0"),
        (b"content-type", b"application/json"),
    ]
    gzipped = any(k == b"accept-encoding" and b"gzip" in v.lower() for k, v in raw_headers)
    if gzipped:
        body = gzip_body(body)
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"vary", b"Accept-Encoding"))
    if gzipped:
        headers.append((b"content-encoding", b"gzip"))
    return headers, body
