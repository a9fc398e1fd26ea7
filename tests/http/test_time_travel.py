"""``GET /v1/allocation/:id?at_index=N``: the read as it was after index N, checked against live reads."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import trio

from allocsvc.config import AgentConfig
from allocsvc.domain.cluster import ClusterState
from allocsvc.http.history import detail_at
from allocsvc.service import Service
from allocsvc.views.read_model import ReadModel
from tests.conftest import Served, open_served
from tests.helpers import example_job, job_from, wait_until

TEXT = "text/plain; charset=utf-8"


def restarting_job(job_id: str = "tt", *, meta: str = "v0") -> dict[str, Any]:
    """One alloc whose task exits 1 after 150 ms and is restarted after 30 ms, forever."""
    body = example_job(job_id, count=1, Config={"run_for": "150ms", "exit_code": 1})
    body["Job"]["Meta"] = {"rev": meta}
    group = body["Job"]["TaskGroups"][0]
    group["RestartPolicy"] = {"Attempts": 1000, "Interval": 3_600_000_000_000, "Delay": 30_000_000, "Mode": "delay"}
    return body


async def first_alloc_of(s: Served, job_id: str) -> str:
    state = s.service.model.state
    await wait_until(s.service, lambda: any(a.alloc.JobID == job_id for a in state.allocs.values()))
    return min((agg.alloc.CreateIndex, a) for a, agg in state.allocs.items() if agg.alloc.JobID == job_id)[1]


async def record_live_reads(s: Served, alloc_id: str) -> list[tuple[int, bytes]]:
    """Follow the allocation with blocking reads through restarts, a job update that stops it,
    and its end, recording each read's ``X-Nomad-Index`` and body bytes."""
    reads: list[tuple[int, bytes]] = []
    index = 0
    updated = False
    with trio.fail_after(30):
        while True:
            r = await s.client.get(f"/v1/allocation/{alloc_id}", params={"index": index, "wait": "5s"})
            assert r.status_code == 200, r.text
            got = int(r.headers["X-Nomad-Index"])
            if got > index:
                reads.append((got, r.content))
                index = got
            body = r.json()
            restarts = body["TaskStates"]["server"]["Restarts"]
            if not updated and restarts >= 2:
                update = await s.client.put("/v1/jobs", json=restarting_job(meta="v1"))
                assert update.status_code == 200, update.text
                updated = True
            if body["DesiredStatus"] == "stop" and body["ClientStatus"] in ("complete", "failed"):
                return reads


async def test_at_index_is_byte_identical_to_recorded_live_reads(served: Served) -> None:
    r = await served.client.put("/v1/jobs", json=restarting_job())
    assert r.status_code == 200, r.text
    alloc_id = await first_alloc_of(served, "tt")
    reads = await record_live_reads(served, alloc_id)
    assert len(reads) >= 5
    for index, body in reads:
        then = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": index})
        assert then.status_code == 200, then.text
        assert then.headers["X-Nomad-Index"] == str(index)
        assert then.content == body, f"at_index={index} differs from the live read"
        assert then.headers["content-type"] == "application/json"

    # The job moved on to version 1, but the allocation was placed from version 0: so was its Job.
    last = (await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": reads[-1][0]})).json()
    assert last["Job"]["Meta"] == {"rev": "v0"}
    assert last["DesiredDescription"] == "alloc is being updated due to job update"

    # Between two of the allocation's events nothing about it changes.
    events = (await served.client.get(f"/v1/allocation/{alloc_id}/events")).json()
    indexes = [e["Index"] for e in events]
    for here, there in itertools.pairwise(indexes):
        if there - here > 1:
            a = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": here})
            b = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": there - 1})
            assert a.content == b.content
            assert a.headers["X-Nomad-Index"] == b.headers["X-Nomad-Index"] == str(here)

    now = await served.client.get(f"/v1/allocation/{alloc_id}")
    latest = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": served.service.log.last_index})
    assert latest.content == now.content


async def test_at_index_errors(served: Served) -> None:
    r = await served.client.put("/v1/jobs", json=example_job("web", count=1))
    assert r.status_code == 200
    alloc_id = await first_alloc_of(served, "web")
    await wait_until(served.service, lambda: served.service.model.alloc(alloc_id).alloc.ClientStatus == "running")  # type: ignore[union-attr]
    placed = served.service.model.alloc(alloc_id)
    assert placed is not None
    create = placed.alloc.CreateIndex

    before = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": create - 1})
    assert (before.status_code, before.text, before.headers["content-type"]) == (404, "alloc not found", TEXT)
    at_zero = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": 0})
    assert at_zero.status_code == 404
    last = served.service.log.last_index
    future = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": last + 10})
    assert (future.status_code, future.text) == (400, f"at_index {last + 10} is beyond the last log index {last}")
    for bad in ("x", "-1", "1.5"):
        r = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": bad})
        assert (r.status_code, r.text) == (400, "Invalid at_index"), bad
    unknown = await served.client.get("/v1/allocation/00000000-0000-4000-8000-000000000000", params={"at_index": 1})
    assert (unknown.status_code, unknown.text) == (404, "alloc not found")
    bad_wait = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": create, "wait": "x"})
    assert (bad_wait.status_code, bad_wait.text) == (400, "Invalid wait time")

    compact = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": create})
    pretty = await served.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": create, "pretty": ""})
    assert compact.json() == pretty.json()
    assert pretty.content.endswith(b"}\n")
    assert b"\n    " in pretty.content
    assert compact.json()["ClientStatus"] == "pending"
    assert compact.json()["ModifyIndex"] == create


async def test_at_index_after_an_agent_restart(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0)
    async for s in open_served(config, nursery):
        r = await s.client.put("/v1/jobs", json=restarting_job())
        assert r.status_code == 200
        alloc_id = await first_alloc_of(s, "tt")
        reads = await record_live_reads(s, alloc_id)
    async for s in open_served(config, nursery):
        for index, body in reads:
            then = await s.client.get(f"/v1/allocation/{alloc_id}", params={"at_index": index})
            assert (then.status_code, then.headers["X-Nomad-Index"]) == (200, str(index))
            assert then.content == body


async def test_stream_replay_equals_full_replay_at_every_index(memory_service: Service, autojump_clock: Any) -> None:
    """The two-stream fold behind ``at_index`` agrees with a full replay for every allocation and index."""
    svc = memory_service
    body = restarting_job()
    job = body["Job"]
    job["TaskGroups"][0]["Count"] = 2
    await svc.scheduler.register(job_from(body))
    await wait_until(svc, lambda: all(a.alloc.TaskStates["server"].Restarts >= 4 for a in svc.model.state.allocs.values()))  # type: ignore[index]
    await svc.scheduler.register(job_from(restarting_job(meta="v1")))
    await wait_until(svc, lambda: sum(a.alloc.ClientStatus == "failed" or a.alloc.ClientStatus == "complete" for a in svc.model.state.allocs.values()) >= 2)

    records = list(svc.log.iter_records())
    full = ClusterState()
    checked = 0
    for recorded in records:
        full.apply(recorded)
        n = recorded.index
        model = ReadModel(full)
        for alloc_id, agg in svc.model.state.allocs.items():
            then = await detail_at(svc, agg, n)
            if alloc_id not in full.allocs:
                assert then is None
                continue
            expected = full.allocs[alloc_id]
            assert then == (expected.alloc.ModifyIndex, model.encoded_detail(expected)), (alloc_id, n)
            checked += 1
    assert checked > len(records) > 40
