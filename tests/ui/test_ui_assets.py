"""How the agent serves the UI: content types, CSP, the vendor folder and Nomad's ``/`` redirect.

Plain HTTP against a real hypercorn server (no browser needed).
"""

from __future__ import annotations

import pytest

from allocsvc.http.ui import CONTENT_SECURITY_POLICY, NODE_MODULES, UI_DIR, resolve_inside, vendor_file
from tests.conftest import Served

HTML = "text/html; charset=utf-8"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/ui/", HTML, b'<script type="module" src="/ui/app.js">'),
        ("/ui/app.js", JS, b"import "),
        ("/ui/style.css", CSS, b":root"),
        ("/ui/vendor/xterm/lib/xterm.mjs", JS, b"Terminal"),
        ("/ui/vendor/xterm/css/xterm.css", CSS, b".xterm"),
        ("/ui/vendor/addon-fit/lib/addon-fit.mjs", JS, b"FitAddon"),
    ],
)
async def test_assets_have_exact_types_and_the_csp(
    served: Served, path: str, content_type: str, marker: bytes
) -> None:
    assert (NODE_MODULES / "@xterm" / "xterm" / "lib").is_dir(), (
        "run npm install --prefix ui (scripts/test does)"
    )
    r = await served.client.get(path)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == content_type
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert marker in r.content


def test_the_policy_allows_only_this_origin() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


async def test_root_redirects_to_the_ui_like_nomad(served: Served) -> None:
    r = await served.client.get("/?region=global&x=%3C")
    assert r.status_code == 307
    assert r.headers["Location"] == "/ui/?region=global&x=%3C"
    assert r.headers["Content-Type"] == HTML
    assert r.text == '<a href="/ui/?region=global&amp;x=%3C">Temporary Redirect</a>.\n\n'
    r = await served.client.post("/")
    assert (r.status_code, r.headers["Location"], r.content) == (307, "/ui/", b"")
    assert "Content-Type" not in r.headers


@pytest.mark.parametrize(
    "path",
    [
        "/ui/missing.js",
        "/ui/vendor/xterm/package.json",
        "/ui/vendor/xterm/src/browser/Terminal.ts",
        "/ui/vendor/other/lib/x.js",
        "/ui/vendor/xterm/lib/%2e%2e/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/ui/%2e%2e/http/ui.py",
        "/ui/.hidden.js",
    ],
)
async def test_only_ui_files_are_served(served: Served, path: str) -> None:
    r = await served.client.get(path)
    assert r.status_code == 404, path
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_paths_never_leave_their_folders() -> None:
    assert resolve_inside(UI_DIR, "app.js") == UI_DIR / "app.js"
    for bad in ("../http/ui.py", "a/../../x", "/etc/passwd", "", ".hidden", "x//y"):
        assert resolve_inside(UI_DIR, bad) is None, bad
    assert vendor_file("xterm/lib/xterm.mjs") is not None
    for bad in (
        "xterm/package.json",
        "xterm/lib/../package.json",
        "xterm/src/x.ts",
        "nope/lib/x.js",
        "xterm",
    ):
        assert vendor_file(bad) is None, bad


async def test_unknown_pages_get_the_index_and_api_404s_stay(served: Served) -> None:
    r = await served.client.get("/ui/allocations/anything")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == HTML
    assert b"/ui/app.js" in r.content
    r = await served.client.get("/v1/allocations/anything")
    assert (r.status_code, r.content) == (404, b"")
