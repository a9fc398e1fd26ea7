"""The framework-free lifecycle writes answer exactly as the Quart routes do (design/performance.md).

A plain stop, signal or restart is served by ``fast_write_path``; adding a query parameter the
routes accept (``?region=global``, ``?reschedule=false``) sends the same request through Quart.
Both must give the same status, body and compared headers, with and without gzip, for successes
and for the actor's errors, and every request the fast path declines must get the routes' answer
with its body intact.
"""

from __future__ import annotations

from typing import Any

import pytest

from allocsvc.http.fast_writes import fast_write_path
from tests.conftest import Served
from tests.helpers import example_job, wait_until

COMPARED = ("content-type", "content-length", "vary", "content-encoding")
SIGNAL = "/v1/client/allocation/{}/signal"
RESTART = "/v1/client/allocation/{}/restart"
STOP = "/v1/allocation/{}/stop"


def _shape(r: Any) -> tuple[int, bytes, dict[str, str]]:
    return r.status_code, r.content, {k: r.headers[k] for k in COMPARED if k in r.headers}


async def _running(served: Served, count: int) -> list[str]:
    r = await served.client.put("/v1/jobs", json=example_job("fastw", count=count, Config={}))
    assert r.status_code == 200
    state = served.service.model.state

    def all_running() -> bool:
        allocs = list(state.allocs.values())
        return len(allocs) == count and all(a.alloc.ClientStatus == "running" for a in allocs)

    await wait_until(served.service, all_running)
    return sorted(state.allocs)


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_successes_match_the_routes(served: Served, encoding: str) -> None:
    ids = await _running(served, 6)
    headers = {"Accept-Encoding": encoding}
    client = served.client
    for path, body in ((SIGNAL, b'{"Signal":"SIGHUP"}'), (RESTART, b"{}"), (RESTART, b"")):
        fast = await client.post(path.format(ids[0]), content=body, headers=headers)
        slow = await client.post(path.format(ids[1]) + "?region=global", content=body, headers=headers)
        assert fast.status_code == 200, fast.text
        assert _shape(fast) == _shape(slow)
        assert fast.json() == {"Index": 0}
        ids = ids[2:] if path == RESTART else ids
    fast = await client.put(STOP.format(ids[0]), headers=headers)
    slow = await client.put(STOP.format(ids[1]) + "?reschedule=false", headers=headers)
    for r in (fast, slow):
        assert r.status_code == 200
        assert set(r.json()) == {"EvalID", "Index"}
        assert r.headers["x-nomad-index"] == str(r.json()["Index"])
        assert {k: r.headers[k] for k in ("content-type", "vary")} == {k: fast.headers[k] for k in ("content-type", "vary")}
    assert fast.headers.get("content-encoding") == slow.headers.get("content-encoding")
    state = served.service.model.state
    assert state.allocs[ids[0]].alloc.DesiredTransition is not None
    assert fast.json()["EvalID"] in state.evals


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_actor_errors_match_the_routes(served: Served, encoding: str) -> None:
    ids = await _running(served, 1)
    headers = {"Accept-Encoding": encoding}
    cases = [
        (SIGNAL, b'{"Task":"nope","Signal":"SIGHUP"}'),
        (RESTART, b'{"TaskName":"server","AllTasks":true}'),
        (RESTART, b'{"TaskName":"nope"}'),
    ]
    for path, body in cases:
        fast = await served.client.post(path.format(ids[0]), content=body, headers=headers)
        slow = await served.client.post(path.format(ids[0]) + "?region=global", content=body, headers=headers)
        assert fast.status_code in (400, 404), (path, body, fast.text)
        assert _shape(fast) == _shape(slow)


async def test_declined_requests_get_the_routes_answers_with_their_bodies(served: Served) -> None:
    ids = await _running(served, 1)
    client = served.client
    for body in (b'{"Signal": 5}', b'{"Signal": "SIGHUP"', b"[]"):
        fast = await client.post(SIGNAL.format(ids[0]), content=body)
        slow = await client.post(SIGNAL.format(ids[0]) + "?region=global", content=body)
        assert fast.status_code == 400
        assert fast.text.startswith("Failed to decode body: ")
        assert _shape(fast) == _shape(slow)
    r = await client.post(SIGNAL.format(ids[0]))
    assert (r.status_code, r.text) == (400, "Failed to decode body: Request body is empty")
    r = await client.post(SIGNAL.format(ids[0].upper()), content=b'{"Signal":"SIGHUP"}')
    assert r.status_code == 200
    missing = "00000000-0000-0000-0000-000000000000"
    r = await client.post(SIGNAL.format(missing), content=b'{"Signal":"SIGHUP"}')
    assert (r.status_code, r.text) == (404, f'Unknown allocation "{missing}"')
    r = await client.put(STOP.format(missing))
    assert (r.status_code, r.text) == (404, "allocation not found")
    r = await client.post(RESTART.format(ids[0]), content=b'{"TaskName": 1}')
    slow = await client.post(RESTART.format(ids[0]) + "?region=global", content=b'{"TaskName": 1}')
    assert r.status_code == 400
    assert _shape(r) == _shape(slow)


class _Inner:
    """Stands in for the Quart app: records what reached it, and the body it could read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(app: Any, method: str, path: str, chunks: list[bytes], query: bytes = b"") -> int:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": []}
    await app(scope, receive, send)
    return int(sent[0]["status"])


async def test_only_plain_writes_take_the_fast_path(served: Served) -> None:
    ids = await _running(served, 2)
    inner = _Inner()
    app = fast_write_path(served.service, inner)
    assert await _call(app, "POST", SIGNAL.format(ids[0]), [b'{"Signal":', b'"SIGHUP"}']) == 200
    assert await _call(app, "PUT", RESTART.format(ids[0]), [b""]) == 200
    assert inner.bodies == []
    assert await _call(app, "POST", SIGNAL.format(ids[0]), [b'{"Signal":', b" 5}"]) == 299
    assert await _call(app, "POST", SIGNAL.format(ids[0]), [b"{}"], query=b"region=global") == 299
    assert await _call(app, "GET", SIGNAL.format(ids[0]), [b""]) == 299
    assert await _call(app, "POST", SIGNAL.format(ids[0]) + "/x", [b"{}"]) == 299
    big = b'{"Signal":"SIGHUP","Task":"' + b"x" * 90_000 + b'"}'
    assert await _call(app, "POST", SIGNAL.format(ids[0]), [big[:40_000], big[40_000:80_000], big[80_000:]]) == 299
    assert inner.bodies == [b'{"Signal": 5}', b"{}", b"", b"{}", big]
    assert await _call(app, "PUT", STOP.format(ids[1]), []) == 200
    assert len(inner.bodies) == 5
