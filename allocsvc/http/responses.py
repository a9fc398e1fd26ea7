"""Building Nomad-shaped responses: JSON bodies, plain-text errors and ``X-Nomad-*`` headers.

Owns ``json_response``, ``error_response``, ``meta_headers`` and the gzip step (gorilla's
CompressHandler equivalent).
"""

from __future__ import annotations

import gzip

from quart import Response, request

from allocsvc.views.wire import encode, pretty

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def wants_pretty() -> bool:
    """Nomad: ``?pretty`` is on when present and its value is anything but ``0``."""
    if "pretty" not in request.args:
        return False
    return request.args.get("pretty", "") != "0"


def meta_headers(index: int, next_token: str = "") -> dict[str, str]:
    """Nomad's ``setMeta``: index, leader and last-contact headers (single server: always leader)."""
    headers = {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}
    if next_token:
        headers["X-Nomad-NextToken"] = next_token
    return headers


def json_bytes_response(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from already-encoded bytes (``?pretty`` applied here)."""
    if wants_pretty():
        body = pretty(body)
    return Response(body, status=status, content_type=JSON, headers=headers or {})


def json_response(value: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Encode a value the way Nomad's JSON handle does and wrap it."""
    return json_bytes_response(encode(value), status=status, headers=headers)


def empty_response(*, headers: dict[str, str] | None = None) -> Response:
    """Nomad's answer for a nil result: 200 with an empty body."""
    return Response(b"", status=200, headers=headers or {})


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None) -> Response:
    """Nomad's error form: the bare message as ``text/plain; charset=utf-8``."""
    return Response(message.encode(), status=status, content_type=TEXT, headers=headers or {})


def maybe_gzip(response: Response, body: bytes, accept_encoding: str) -> bytes | None:
    """Compress a body when the client accepts gzip; returns the new body or None."""
    response.headers.add("Vary", "Accept-Encoding")
    if "gzip" not in accept_encoding.lower() or not body or "Content-Encoding" in response.headers:
        return None
    response.headers["Content-Encoding"] = "gzip"
    return gzip_body(body)


def gzip_body(body: bytes) -> bytes:
    """The gzip step's compression (level 6, as gorilla's CompressHandler default)."""
    return gzip.compress(body, compresslevel=6)
