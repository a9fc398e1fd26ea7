"""The built-in web UI: ``GET /ui/`` and its assets, ``/ui/vendor/...`` and the ``/`` redirect.

Owns serving the static front end in ``allocsvc/ui`` (plain ES modules, no build step) and the
xterm.js files npm installed under ``ui/node_modules`` (``npm install --prefix ui``), each with
an exact content type and a strict Content-Security-Policy. Like Nomad, ``/`` redirects (307)
to ``/ui/`` keeping the query, and an unknown page under ``/ui/`` gets ``index.html`` (the UI
routes in the URL fragment, so this only matters for stale links). Vendor files are served only
from the packages' ``lib/`` and ``css/`` folders; a missing one is a 404 the terminal page
explains. The UI itself uses only the public HTTP API. Registered in ``http/app.py``'s ROUTES.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import trio
from quart import Blueprint, Response, request

if TYPE_CHECKING:
    from allocsvc.service import Service

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
"""The front end's own files (shipped inside the package)."""

NODE_MODULES = Path(__file__).resolve().parent.parent.parent / "ui" / "node_modules"
"""Where ``npm install --prefix ui`` puts the vendor packages (the source checkout)."""

VENDOR_PACKAGES = {"xterm": "@xterm/xterm", "addon-fit": "@xterm/addon-fit"}
"""``/ui/vendor/<name>/...`` → the npm package it is served from."""

VENDOR_FOLDERS = ("lib", "css")
"""The only folders of a vendor package that are served."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".map": "application/json",
}
"""Every served file type; anything else is a 404."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""Nomad's UI policy, tightened: connections only to this origin (Nomad allows ``*``).

Scripts run only from this origin (no inline script, no eval). Inline styles stay allowed, as in
Nomad, because xterm.js's DOM renderer sizes its grid through generated ``<style>`` elements; the UI
never parses HTML from anywhere, so no markup can carry them.
"""

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
"""Nomad's root fallthrough answers every method."""

GO_HTML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"}
"""Go's ``htmlEscape`` (net/http), used in a redirect's body."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
"""Sent with every UI response."""


def content_type(path: Path) -> str | None:
    """The content type for a served file, or None when the type is not served."""
    return CONTENT_TYPES.get(path.suffix.lower())


def resolve_inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a regular file inside ``root`` (no traversal, no dotfiles)."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate


def vendor_file(relative: str) -> Path | None:
    """``<name>/<lib|css>/<file>`` → the installed npm file, or None."""
    name, _, rest = relative.partition("/")
    package = VENDOR_PACKAGES.get(name)
    folder = rest.partition("/")[0]
    if package is None or folder not in VENDOR_FOLDERS:
        return None
    return resolve_inside(NODE_MODULES / package, rest)


async def file_response(path: Path) -> Response:
    """A UI file with its content type and the security headers (HEAD: headers only)."""
    kind = content_type(path)
    if kind is None:
        return not_found()
    body = await trio.Path(path).read_bytes()
    return Response(body, status=200, content_type=kind, headers=SECURITY_HEADERS)


def go_redirect(url: str, method: str) -> Response:
    """Go's ``http.Redirect(w, r, url, 307)``: Location, and for GET (HEAD) a tiny HTML link body."""
    headers = {"Location": url}
    if method not in ("GET", "HEAD"):
        response = Response(b"", status=307, headers=headers)
        del response.headers["Content-Type"]
        return response
    escaped = "".join(GO_HTML_ESCAPES.get(c, c) for c in url)
    body = f'<a href="{escaped}">Temporary Redirect</a>.\n\n'
    return Response(body.encode(), status=307, content_type="text/html; charset=utf-8", headers=headers)


def not_found() -> Response:
    """A plain 404 that still carries the UI's security headers."""
    return Response(b"", status=404, headers=SECURITY_HEADERS)


def ui_routes(service: Service) -> Blueprint:
    """The UI's routes (the service is unused: the UI reads everything through the API)."""
    del service
    bp = Blueprint("ui", __name__)

    @bp.route("/", methods=ALL_METHODS)
    async def root() -> Response:
        query = request.query_string.decode("latin-1")
        return go_redirect("/ui/" + ("?" + query if query else ""), request.method)

    @bp.route("/ui/", defaults={"rest": ""}, methods=["GET", "HEAD"])
    @bp.route("/ui/<path:rest>", methods=["GET", "HEAD"])
    async def ui(rest: str) -> Response:
        if rest.startswith("vendor/"):
            found = vendor_file(rest.removeprefix("vendor/"))
            return not_found() if found is None else await file_response(found)
        found = resolve_inside(UI_DIR, rest) if rest else None
        if found is not None:
            return await file_response(found)
        if any(part in (".", "..") for part in rest.split("/")) or Path(rest).suffix not in ("", ".html"):
            return not_found()
        return await file_response(UI_DIR / "index.html")

    return bp
