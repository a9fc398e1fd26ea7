"""A framework-free path for the plain lifecycle writes: stop, signal and restart.

Owns ``fast_write_path``, ASGI middleware in front of Quart (installed by ``create_app``). It
takes only the common, well-formed request: ``PUT|POST /v1/allocation/<id>/stop`` and
``POST|PUT /v1/client/allocation/<id>/signal|restart`` with no query string, a canonical ID of
an allocation that exists, ACLs off, and a body that decodes cleanly. Anything else — query
parameters, ACL tokens, bad or unknown IDs, bad bodies, chunked bodies — goes to the Quart
routes (with the body replayed), so every validation error keeps one implementation. Once the
command is sent to the actor, its answer or its error is written here in the Quart routes' exact
form (status, text, ``Content-Type``, ``Vary``, gzip). The routes' handlers stay the reference:
``tests/http/test_fast_write_path.py`` checks both paths answer alike. Quart's request context,
routing and hooks cost more than the handler itself (design/performance.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from allocsvc.domain import commands as cmd
from allocsvc.errors import AllocsvcError
from allocsvc.http.allocs import stop_answer
from allocsvc.http.client_allocs import RESTART_REQUEST, SIGNAL_REQUEST, restart_command, signal_command
from allocsvc.http.gojson import GoJSONError, decode_body
from allocsvc.http.responses import JSON, TEXT, gzip_body
from allocsvc.views.wire import encode

if TYPE_CHECKING:
    from allocsvc.http.allocs import ASGIApp
    from allocsvc.service import Service

logger = logging.getLogger("allocsvc.http")

STOP_PREFIX = "/v1/allocation/"
CLIENT_PREFIX = "/v1/client/allocation/"
ID_LENGTH = 36
MAX_FAST_BODY = 64 * 1024
"""A larger body is handed to Quart (which applies its own size limit)."""

Headers = list[tuple[bytes, bytes]]


def _target(path: str) -> tuple[str, str] | None:
    """``(alloc_id, action)`` for the three lifecycle paths, else None."""
    for prefix, actions in ((STOP_PREFIX, ("stop",)), (CLIENT_PREFIX, ("signal", "restart"))):
        if path.startswith(prefix) and len(path) > len(prefix) + ID_LENGTH and path[len(prefix) + ID_LENGTH] == "/":
            action = path[len(prefix) + ID_LENGTH + 1 :]
            if action in actions:
                return path[len(prefix) : len(prefix) + ID_LENGTH], action
    return None


def _command(service: Service, action: str, body: bytes, chunked: bool) -> cmd.AnyCommand | None:
    """The command a well-formed body asks for, or None when the Quart route must answer."""
    if action == "stop":
        return cmd.StopAlloc(eval_id=service.runtime.new_id(), no_shutdown_delay=False, reschedule=False)
    if chunked:
        return None
    try:
        if action == "signal":
            if not body:
                return None
            return signal_command(decode_body(body, SIGNAL_REQUEST) or {})
        return restart_command((decode_body(body, RESTART_REQUEST) or {}) if body else {})
    except GoJSONError:
        return None


async def _send(send: Any, status: int, body: bytes, content_type: str, raw_headers: Headers, extra: Headers) -> None:
    """Answer as the routes do (the ``compress`` hook's ``Vary`` and gzip included)."""
    headers: Headers = [(b"content-type", content_type.encode()), *extra, (b"vary", b"Accept-Encoding")]
    if body and any(k == b"accept-encoding" and b"gzip" in v.lower() for k, v in raw_headers):
        body = gzip_body(body)
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def fast_write_path(service: Service, inner: ASGIApp) -> ASGIApp:
    """Wrap ``inner`` (the Quart app) with the fast lifecycle writes."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("PUT", "POST")
            or scope["query_string"]
            or service.config.acl_enabled
        ):
            await inner(scope, receive, send)
            return
        target = _target(scope["path"])
        if target is None or service.model.alloc(target[0]) is None:
            await inner(scope, receive, send)
            return
        alloc_id, action = target
        raw_headers: Headers = scope["headers"]
        chunked = any(k == b"transfer-encoding" and b"chunked" in v.lower() for k, v in raw_headers)
        body, more = await _read_body(receive) if action != "stop" else (b"", False)
        if more is None:
            return  # the client went away before sending its body
        command = None if more else _command(service, action, body, chunked)
        if command is None:
            await inner(scope, _replay(body, more, receive) if action != "stop" else receive, send)
            return
        try:
            records = await service.supervisor.ask(alloc_id, command)
        except AllocsvcError as exc:
            await _send(send, exc.status_hint, exc.message.encode(), TEXT, raw_headers, [])
            return
        except Exception as exc:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await _send(send, 500, f"internal error: {type(exc).__name__}".encode(), TEXT, raw_headers, [])
            return
        if isinstance(command, cmd.StopAlloc):
            index = records[-1].index
            payload = encode(stop_answer(command.eval_id, index))
            await _send(send, 200, payload, JSON, raw_headers, [(b"x-nomad-index", str(index).encode())])
        else:
            await _send(send, 200, encode({"Index": 0}), JSON, raw_headers, [])

    return app


async def _read_body(receive: Any) -> tuple[bytes, bool | None]:
    """The body read so far and whether more follows (past ``MAX_FAST_BODY``); None: disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if not more or size > MAX_FAST_BODY:
            return b"".join(chunks), more


def _replay(body: bytes, more: bool, receive: Any) -> Any:
    """A ``receive`` that first hands back the part of the body already read."""
    pending = True

    async def replayed() -> Any:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
