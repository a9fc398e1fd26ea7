"""The Quart-Trio application: routes, the one error mapper, gzip and Nomad's fallthroughs.

Owns ``create_app(service)``. It starts nothing itself: the service's own nursery runs actors
and the log; the app only reads the read model and asks actors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from quart import Blueprint, Response, request
from quart.wrappers.response import DataBody
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from allocsvc.errors import AllocsvcError
from allocsvc.http.acl import acl_routes
from allocsvc.http.allocs import alloc_routes, fast_read_path
from allocsvc.http.client_allocs import client_alloc_routes
from allocsvc.http.events_stream import event_stream_routes
from allocsvc.http.exec import exec_routes
from allocsvc.http.fast_writes import fast_write_path
from allocsvc.http.jobs import job_routes
from allocsvc.http.responses import error_response, maybe_gzip
from allocsvc.http.ui import ui_routes

if TYPE_CHECKING:
    from allocsvc.service import Service

logger = logging.getLogger("allocsvc.http")

ROUTES: tuple[Callable[[Service], Blueprint], ...] = (
    alloc_routes,
    job_routes,
    acl_routes,
    event_stream_routes,
    client_alloc_routes,
    exec_routes,
    ui_routes,
)
"""Every endpoint module's blueprint factory; add new endpoint modules here."""


def create_app(service: Service) -> QuartTrio:
    """Build the app bound to a running service."""
    app = QuartTrio("allocsvc")
    app.config["RESPONSE_TIMEOUT"] = None
    app.config["BODY_TIMEOUT"] = 60
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.strict_slashes = False
    for factory in ROUTES:
        app.register_blueprint(factory(service))
    app.asgi_app = fast_read_path(service, app.asgi_app)  # type: ignore[method-assign,assignment]
    app.asgi_app = fast_write_path(service, app.asgi_app)  # type: ignore[method-assign,assignment]

    @app.errorhandler(AllocsvcError)
    async def allocsvc_error(exc: AllocsvcError) -> Response:
        return error_response(exc.status_hint, exc.message)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        if exc.code == 404:
            return Response(b"", status=404)
        if exc.code == 405:
            return error_response(405, "Invalid method")
        return error_response(exc.code or 500, exc.description or "error")

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(exc).__name__}")

    @app.after_request
    async def compress(response: Response) -> Response:
        if not isinstance(response.response, DataBody):
            return response
        accept = request.headers.get("Accept-Encoding", "")
        body = await response.get_data(as_text=False)
        compressed = maybe_gzip(response, body, accept)
        if compressed is not None:
            response.set_data(compressed)
        return response

    return app
