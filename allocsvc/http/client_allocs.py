"""``/v1/client/allocation/:id/signal`` and ``/v1/client/allocation/:id/restart``.

Owns the client-allocation routing (Nomad's ``ClientAllocRequest``: the suffix must be exactly
``<id>/<action>``, anything else is 404 ``resource not found``) and the signal and restart
handlers. Bodies are decoded as Go's ``encoding/json`` would (``gojson``). Checks run in
Nomad's order; the allocation's actor serialises the command: a signal is delivered, then
recorded, then answered; a restart is answered once ``Restart Signaled`` is durable and its kill
starts right after. ``exec`` belongs to the WebSocket blueprint registered for its exact path;
this catch-all never answers a WebSocket and treats a plain request for ``exec`` as Werkzeug
would without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, request
from werkzeug.routing.exceptions import WebsocketMismatch

from allocsvc.domain import commands as cmd
from allocsvc.domain.ids import normalize_alloc_id
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.errors import BadRequestError, MethodNotAllowedError, NotFoundError, PermissionDeniedError
from allocsvc.http.auth import Authorizer, authorizer_for
from allocsvc.http.gojson import GoJSONError, GoType, decode_body, go_bool, go_string, go_struct
from allocsvc.http.query import parse_list_options, request_token
from allocsvc.http.responses import error_response, json_response

if TYPE_CHECKING:
    from allocsvc.service import Service

READ_JOB = "read-job"
ALLOC_LIFECYCLE = "alloc-lifecycle"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
RESOURCE_NOT_FOUND = "resource not found"
EMPTY_BODY = "Request body is empty"

_QUERY_OPTIONS = dict.fromkeys(("Region", "Namespace", "Prefix", "AuthToken", "Filter", "NextToken"), go_string())
SIGNAL_REQUEST = go_struct(
    "structs.AllocSignalRequest",
    dict.fromkeys(("AllocID", "Task", "Signal"), go_string()),
    embedded={"QueryOptions": _QUERY_OPTIONS | dict.fromkeys(("AllowStale", "Reverse"), go_bool())},
)
"""``structs.AllocSignalRequest`` as the body decodes into it (QueryOptions keys included)."""

RESTART_REQUEST = go_struct("struct { TaskName string; AllTasks bool }", {"TaskName": go_string(), "AllTasks": go_bool()})
"""The anonymous struct Nomad's ``allocRestart`` decodes the body into."""


def _is_empty_body(data: bytes) -> bool:
    """Go's ``http.NoBody``: no bytes and not chunked (a chunked empty body decodes to ``EOF``)."""
    return not data and "chunked" not in request.headers.get("Transfer-Encoding", "").lower()


def client_alloc_routes(service: Service) -> Blueprint:
    """The client allocation endpoints bound to one service."""
    bp = Blueprint("client_allocs", __name__)

    @bp.route("/v1/client/allocation/", defaults={"rest": ""}, methods=ALL_METHODS)
    @bp.route("/v1/client/allocation/<path:rest>", methods=ALL_METHODS)
    async def client_alloc(rest: str) -> Response:
        parts = rest.split("/")
        if len(parts) != 2:
            return error_response(404, RESOURCE_NOT_FOUND)
        alloc_id, action = parts
        if action == "signal":
            return await signal_alloc(alloc_id)
        if action == "restart":
            return await restart_alloc(alloc_id)
        if action == "exec":
            raise WebsocketMismatch()
        return error_response(404, RESOURCE_NOT_FOUND)

    def caller(body_token: str) -> Authorizer:
        """The caller: header token, else the body's ``AuthToken`` (Go decodes it into QueryOptions)."""
        header_token = request_token(request.headers)
        return authorizer_for(service, request.headers, token=header_token or body_token)

    def lifecycle_target(raw_id: str, authz: Authorizer) -> str:
        """Find the allocation and check ``alloc-lifecycle`` on its namespace; returns its ID."""
        alloc_id = normalize_alloc_id(raw_id)
        agg: AllocAggregate | None = service.model.alloc(alloc_id)
        unknown = NotFoundError(f'Unknown allocation "{raw_id}"')
        if agg is None:
            raise unknown
        namespace = agg.alloc.Namespace
        if not authz.allow_namespace_op(namespace, ALLOC_LIFECYCLE):
            if not authz.allow_namespace_op(namespace, READ_JOB):
                raise unknown
            raise PermissionDeniedError()
        return alloc_id

    async def signal_alloc(raw_id: str) -> Response:
        if request.method not in ("POST", "PUT"):
            raise MethodNotAllowedError()
        data: bytes = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        if _is_empty_body(data):
            raise BadRequestError(f"Failed to decode body: {EMPTY_BODY}")
        body = _decode(data, SIGNAL_REQUEST, prefix="Failed to decode body: ")
        parse_list_options(request.args)
        alloc_id = lifecycle_target(raw_id, caller(body.get("AuthToken", "")))
        command = signal_command(body)
        await service.supervisor.ask(alloc_id, command)
        return json_response({"Index": 0})

    async def restart_alloc(raw_id: str) -> Response:
        parse_list_options(request.args)
        data: bytes = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        body = _decode(data, RESTART_REQUEST, prefix="", empty_ok=True)
        alloc_id = lifecycle_target(raw_id, caller(""))
        command = restart_command(body)
        await service.supervisor.ask(alloc_id, command)
        return json_response({"Index": 0})

    return bp


def signal_command(body: dict[str, Any]) -> cmd.SignalTask:
    """The command a decoded ``AllocSignalRequest`` asks for (the route and ``fast_writes`` share it)."""
    return cmd.SignalTask(task=body.get("Task", ""), signal=body.get("Signal", ""))


def restart_command(body: dict[str, Any]) -> cmd.RestartTask:
    """The command a decoded restart body asks for (the route and ``fast_writes`` share it)."""
    return cmd.RestartTask(task=body.get("TaskName", ""), all_tasks=body.get("AllTasks", False))


def _decode(data: bytes, target: GoType, *, prefix: str, empty_ok: bool = False) -> dict[str, Any]:
    """Decode a body like Go; Nomad's 500 for a client's bad JSON is our 400, same text."""
    try:
        fields: dict[str, Any] = decode_body(data, target) or {}
        return fields
    except GoJSONError as exc:
        if empty_ok and exc.message == "EOF":
            return {}
        raise BadRequestError(prefix + exc.message) from exc
