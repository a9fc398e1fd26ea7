"""The framework-free read path answers exactly as the Quart route does (design/performance.md).

``GET /v1/allocation/<id>`` with no query string is served by ``fast_read_path``; adding
``?stale=`` sends the same read through Quart. Both must give the same status, body and headers,
with and without gzip, and every case the fast path declines (ACL, bad IDs, 404) must still get
the Quart route's answer.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from allocsvc.http.allocs import _fast_read
from tests.acl_fixtures import ACLAgent, open_acl_agent
from tests.conftest import Served
from tests.helpers import example_job, wait_until

COMPARED = ("content-type", "content-length", "vary", "content-encoding", "x-nomad-index",
            "x-nomad-knownleader", "x-nomad-lastcontact")  # fmt: skip


def _shape(r: object) -> tuple[int, bytes, dict[str, str]]:
    headers = r.headers  # type: ignore[attr-defined]
    return r.status_code, r.content, {k: headers[k] for k in COMPARED if k in headers}  # type: ignore[attr-defined]


async def _placed(served: Served, count: int = 2) -> list[str]:
    r = await served.client.put("/v1/jobs", json=example_job("fast", count=count))
    assert r.status_code == 200
    await wait_until(served.service, lambda: len(served.service.model.state.allocs) == count)
    return sorted(served.service.model.state.allocs)


async def test_fast_and_quart_paths_answer_identically(served: Served) -> None:
    ids = await _placed(served)
    for alloc_id in ids:
        for encoding in ("identity", "gzip"):
            headers = {"Accept-Encoding": encoding}
            fast = await served.client.get(f"/v1/allocation/{alloc_id}", headers=headers)
            slow = await served.client.get(f"/v1/allocation/{alloc_id}?stale=", headers=headers)
            if fast.headers.get("x-nomad-index") != slow.headers.get("x-nomad-index"):
                continue  # a task event landed between the two reads
            assert fast.status_code == 200
            assert _shape(fast) == _shape(slow)
    answer = _fast_read(served.service, ids[0], [(b"accept-encoding", b"gzip, deflate")])
    assert answer is not None, "a plain read must take the fast path"
    fast_headers, body = answer
    assert (b"content-encoding", b"gzip") in fast_headers
    model = served.service.model
    assert gzip.decompress(body) == model.encoded_detail(model.state.allocs[ids[0]])
    assert _fast_read(served.service, "00000000-0000-0000-0000-000000000000", []) is None


async def test_declined_cases_keep_the_routes_answers(served: Served) -> None:
    ids = await _placed(served, 1)
    upper = ids[0].upper()
    r = await served.client.get(f"/v1/allocation/{upper}")
    assert r.status_code == 200
    assert r.json()["ID"] == ids[0]
    missing = "00000000-0000-0000-0000-000000000000"
    r = await served.client.get(f"/v1/allocation/{missing}")
    assert (r.status_code, r.text) == (404, "alloc not found")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = await served.client.get("/v1/allocation/" + "z" * 36)
    assert r.status_code == 400
    r = await served.client.post(f"/v1/allocation/{ids[0]}")
    assert (r.status_code, r.text) == (405, "Invalid method")


@pytest.fixture
async def acl_agent(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    async for a in open_acl_agent(tmp_path / "data", nursery):
        yield a


async def test_acl_callers_get_the_routes_answers(acl_agent: ACLAgent) -> None:
    await acl_agent.bootstrap()
    r = await acl_agent.client.put("/v1/jobs", json=example_job("fast", count=1), headers=acl_agent.mgmt())
    assert r.status_code == 200
    service = acl_agent.served.service
    await wait_until(service, lambda: len(service.model.state.allocs) == 1)
    (alloc_id,) = service.model.state.allocs
    url = f"/v1/allocation/{alloc_id}"
    anonymous_fast = await acl_agent.client.get(url)
    anonymous_slow = await acl_agent.client.get(url + "?stale=")
    assert anonymous_fast.status_code in (403, 404)
    assert (anonymous_fast.status_code, anonymous_fast.text) == (anonymous_slow.status_code, anonymous_slow.text)
    bogus = await acl_agent.client.get(url, headers={"X-Nomad-Token": "not-a-token"})
    assert bogus.status_code == 403
    allowed = await acl_agent.client.get(url, headers=acl_agent.mgmt())
    assert allowed.status_code == 200
    assert allowed.json()["ID"] == alloc_id
