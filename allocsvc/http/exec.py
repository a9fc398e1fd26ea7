"""``/v1/client/allocation/:alloc_id/exec``: run a command or a shell inside a running task.

Owns the endpoint (FACTS §1.6, §5.1, §7): the Origin check on the upgrade, the ``ws_handshake``
token frame, the parameters, and Nomad's validation order with its close codes (an HTTP-style 500
closes with 1011, any other code with 1008) and reasons. A caller who may neither read jobs nor
exec in the allocation's namespace is told ``Unknown allocation``, exactly as for a missing one.
A request that passes starts an ``ExecStream`` (``exec_stream.py``). A plain (non-upgrade)
request gets the error Nomad's handler would give, as a 400. Called by Quart for each request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from quart import Blueprint, Response, request, websocket

from allocsvc.acl import CAP_ALLOC_EXEC, CAP_ALLOC_NODE_EXEC, CAP_READ_JOB
from allocsvc.domain.ids import normalize_alloc_id
from allocsvc.domain.jobs import find_group, find_task
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.domain.model import TaskStatus, is_terminal_client_status
from allocsvc.drivers.exec_session import ExecSpec
from allocsvc.drivers.process import host_env
from allocsvc.drivers.taskdir import task_dirs, task_env
from allocsvc.errors import AllocsvcError
from allocsvc.gocompat import GoSyntaxError, go_quote, parse_bool
from allocsvc.http.auth import Authorizer, authorizer_for
from allocsvc.http.exec_stream import ExecStream, ExecTarget, close_reason
from allocsvc.http.gojson import GoJSONError, decode_first, go_int, go_slice, go_string, go_struct, unmarshal
from allocsvc.http.query import HeaderLookup, request_token
from allocsvc.http.responses import TEXT, error_response

if TYPE_CHECKING:
    from allocsvc.service import Service

logger = logging.getLogger("allocsvc.exec")

PATH = "/v1/client/allocation/<alloc_id>/exec"
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
NO_WEBSOCKET = "websocket connection not found in context"
HANDSHAKE_VERSION = 1
REFUSED_UPGRADE_HEADERS = {"Sec-Websocket-Version": "13", "Connection": "close"}
"""gorilla's answer to a refused upgrade, plus ``Connection: close`` (hypercorn cannot reuse it)."""

COMMAND = go_slice(go_string())
"""The ``command`` parameter: Go's ``[]string``."""

HANDSHAKE = go_struct("agent.wsHandshakeMessage", {"version": go_int(), "auth_token": go_string()})
"""The first frame with ``ws_handshake``."""


class ExecRefusedError(AllocsvcError):
    """Nomad refuses the exec; ``status_hint`` is Nomad's internal code (500 closes 1011, others 1008)."""

    @property
    def ws_code(self) -> int:
        """The WebSocket close code (Nomad's ``toWsCode``)."""
        return 1011 if self.status_hint == 500 else 1008


def _refuse(status: int, message: str) -> ExecRefusedError:
    return ExecRefusedError(message, status_hint=status)


# --- parameters ---------------------------------------------------------------------------------


def parse_command(args: Mapping[str, str]) -> tuple[str, ...]:
    """``command``: a JSON array of strings (Go's ``json.Unmarshal`` errors, code 500)."""
    try:
        value = unmarshal(args.get("command", ""), COMMAND)
    except GoJSONError as exc:
        raise _refuse(500, f"failed to marshal command into json: {exc.message}") from exc
    return tuple(value or ())


def parse_tty(args: Mapping[str, str]) -> bool:
    """``tty``: a Go boolean, false when absent (code 500 when malformed)."""
    text = args.get("tty", "")
    if not text:
        return False
    try:
        return parse_bool(text)
    except GoSyntaxError as exc:
        raise _refuse(500, f"tty value is not a boolean: {exc}") from exc


def origin_allowed(headers: HeaderLookup, allowed: Sequence[str]) -> bool:
    """gorilla's same-origin check (no Origin, or its host is Host), plus ``allowed_origins``."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    wanted = origin.rstrip("/").lower()
    if any(a == "*" or a.rstrip("/").lower() == wanted for a in allowed):
        return True
    try:
        host = urlsplit(origin).netloc.rpartition("@")[2]
    except ValueError:
        return False
    return bool(host) and host.lower() == headers.get("Host", "").lower()


async def read_handshake(args: Mapping[str, str], headers: HeaderLookup) -> str | None:
    """With ``ws_handshake``, read ``{"version":1,"auth_token":...}``; returns its token (None: no handshake)."""
    value = args.get("ws_handshake", "")
    if not value:
        return None
    try:
        wanted = parse_bool(value)
    except GoSyntaxError as exc:
        raise _refuse(400, f"ws_handshake value is not a boolean: {exc}") from exc
    if not wanted:
        return None
    header_token = request_token(headers)
    message = await websocket.receive()
    try:
        frame = decode_first(message, HANDSHAKE) or {}
    except GoJSONError as exc:
        raise _refuse(400, exc.message) from exc
    token = str(frame.get("auth_token", ""))
    if header_token and header_token != token:
        raise _refuse(400, "handshake auth token mismatched auth header token")
    version = frame.get("version", 0)
    if version != HANDSHAKE_VERSION:
        raise _refuse(400, f"unexpected handshake value: {version}")
    return token


# --- validation in Nomad's order ------------------------------------------------------------------


def _visible_alloc(service: Service, raw_id: str, authz: Authorizer) -> AllocAggregate:
    """The allocation, or ``Unknown allocation`` when it is missing or hidden from the caller."""
    try:
        alloc_id = normalize_alloc_id(raw_id)
    except AllocsvcError:
        alloc_id = ""
    agg = service.model.alloc(alloc_id) if alloc_id else None
    if agg is not None:
        namespace = agg.alloc.Namespace
        if authz.allow_namespace_op(namespace, CAP_READ_JOB) or authz.allow_namespace_op(namespace, CAP_ALLOC_EXEC):
            return agg
    raise _refuse(404, f"Unknown allocation {go_quote(raw_id)}")


def resolve_target(
    service: Service, raw_id: str, task: str, command: tuple[str, ...], tty: bool, authz: Authorizer
) -> ExecTarget:
    """Nomad's checks after the caller is known (FACTS §7.2 rows 4-18); raises ExecRefusedError."""
    agg = _visible_alloc(service, raw_id, authz)
    alloc = agg.alloc
    if not authz.allow_namespace_op(alloc.Namespace, CAP_ALLOC_EXEC):
        raise _refuse(500, "Permission denied")
    if is_terminal_client_status(alloc.ClientStatus):
        raise _refuse(400, f"exec not possible, client status of allocation {alloc.ID} is {alloc.ClientStatus}")
    if not task:
        raise _refuse(400, "must provide task name")
    if not command:
        raise _refuse(400, "command is not present")
    job = service.model.job_for(agg)
    if task not in agg.tasks or job is None:
        raise _refuse(500, "task not found")
    group = find_group(job, alloc.TaskGroup)
    spec = find_task(group, task)
    driver = service.runtime.drivers.get(spec.driver)
    fs_isolation = driver.fs_isolation if driver is not None else "none"
    if fs_isolation == "none" and not authz.allow_namespace_op(alloc.Namespace, CAP_ALLOC_NODE_EXEC):
        raise _refuse(500, "Permission denied")
    state = (alloc.TaskStates or {}).get(task)
    if state is None:
        raise _refuse(400, f"unknown task name {go_quote(task)}")
    if state.StartedAt is None:
        raise _refuse(404, f"task {go_quote(task)} not started yet.")
    if state.State != TaskStatus.RUNNING:
        raise _refuse(404, f"task {go_quote(task)} is not running.")
    data_dir = service.runtime.data_dir
    dirs = task_dirs(data_dir, alloc.ID, task) if data_dir is not None else None
    env = task_env(job=job, group=group.name, task=spec, alloc_id=alloc.ID, alloc_name=alloc.Name, dirs=dirs)
    return ExecTarget(
        alloc_id=alloc.ID,
        task=task,
        started_at=state.StartedAt,
        accessor_id=authz.accessor_id,
        spec=ExecSpec(argv=command, env=host_env(env), cwd=dirs.task_dir if dirs else None, tty=tty),
    )


# --- the blueprint --------------------------------------------------------------------------------


def exec_routes(service: Service) -> Blueprint:
    """The exec endpoint bound to one service."""
    bp = Blueprint("exec", __name__)

    @bp.websocket(PATH)
    async def exec_socket(alloc_id: str) -> Response | None:
        headers = websocket.headers
        if not origin_allowed(headers, service.config.allowed_origins):
            return Response(b"Forbidden\n", status=403, content_type=TEXT, headers=REFUSED_UPGRADE_HEADERS)
        await websocket.accept()
        args = websocket.args
        try:
            token = await read_handshake(args, headers)
            command = parse_command(args)
            tty = parse_tty(args)
            try:
                authz = authorizer_for(service, headers, token=token)
            except AllocsvcError as exc:
                raise _refuse(400, exc.message) from exc
            target = resolve_target(service, alloc_id, args.get("task", ""), command, tty, authz)
        except ExecRefusedError as exc:
            logger.info("exec into %s refused: %s", alloc_id, exc.message)
            await websocket.close(exc.ws_code, close_reason(exc.message))
            return None
        await ExecStream(service, websocket, target, authz).serve()
        return None

    @bp.route(PATH, methods=HTTP_METHODS)
    async def exec_plain(alloc_id: str) -> Response:
        try:
            parse_command(request.args)
            parse_tty(request.args)
        except ExecRefusedError as exc:
            return error_response(400, exc.message)
        return error_response(400, NO_WEBSOCKET)

    return bp

