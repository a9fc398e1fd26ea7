"""``GET /v1/allocation/:id/events``: the full history, straight from the log, on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from allocsvc.config import AgentConfig
from allocsvc.domain.events import alloc_stream
from allocsvc.service import log_path
from allocsvc.store.sqlite import iter_file_records
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until

TEXT = "text/plain; charset=utf-8"


def flapping_job(job_id: str = "flap", *, restarts: int = 5) -> dict[str, Any]:
    """One alloc whose ``server`` task exits 1 every 20 ms and restarts until the policy gives up,
    next to a long-running ``sidecar`` that is then killed as its sibling failed."""
    body = example_job(job_id, count=1, Config={"run_for": "20ms", "exit_code": 1})
    group = body["Job"]["TaskGroups"][0]
    group["RestartPolicy"] = {"Attempts": restarts, "Interval": 3_600_000_000_000, "Delay": 10_000_000, "Mode": "fail"}
    group["Tasks"].append(
        {"Name": "sidecar", "Driver": "mock", "Config": {"run_for": "1h"}, "KillTimeout": 1_000_000_000}
    )
    return body


async def only_alloc(s: Served, job_id: str) -> str:
    await wait_until(s.service, lambda: any(a.alloc.JobID == job_id for a in s.service.model.state.allocs.values()))
    return next(a for a, agg in s.service.model.state.allocs.items() if agg.alloc.JobID == job_id)


async def failed_alloc(s: Served) -> str:
    r = await s.client.put("/v1/jobs", json=flapping_job())
    assert r.status_code == 200, r.text
    alloc_id = await only_alloc(s, "flap")
    await wait_until(
        s.service,
        lambda: (agg := s.service.model.alloc(alloc_id)) is not None
        and agg.alloc.ClientStatus == "failed"
        and all(t.State == "dead" for t in (agg.alloc.TaskStates or {}).values()),
    )
    return alloc_id


def logged_indexes(s: Served, alloc_id: str) -> list[int]:
    """The allocation's record indexes, read independently from the SQLite file."""
    path = log_path(s.service.config.data_dir)
    return [r.index for r in iter_file_records(path) if r.stream == alloc_stream(alloc_id)]


async def test_history_is_every_logged_event_in_order_and_reads_keep_ten(served: Served) -> None:
    alloc_id = await failed_alloc(served)
    r = await served.client.get(f"/v1/allocation/{alloc_id}/events")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    items = r.json()
    assert [i["Index"] for i in items] == logged_indexes(served, alloc_id)
    assert int(r.headers["X-Nomad-Index"]) == items[-1]["Index"]
    assert r.headers["X-Nomad-KnownLeader"] == "true"
    assert "X-Nomad-NextToken" not in r.headers
    assert all(list(i) == ["Index", "Time", "Task", "Type", "Event", "Details"] for i in items)

    placed = items[0]
    assert placed["Type"] == "AllocPlaced"
    assert placed["Task"] == ""
    assert placed["Event"] is None
    assert placed["Details"]["alloc_id"] == alloc_id
    assert placed["Details"]["job_id"] == "flap"
    assert "Type" not in placed["Details"]

    server = [i for i in items if i["Task"] == "server"]
    nomad_events = [i["Event"] for i in server if i["Event"] is not None]
    assert len(nomad_events) > 10, "the flapping task must outgrow Nomad's ten-event window"
    assert sum(1 for e in nomad_events if e["Type"] == "Restarting") == 5
    assert nomad_events[-1]["Type"] == "Not Restarting"
    assert all(len(e) == 24 and e["DisplayMessage"] for e in nomad_events)
    assert all(i["Event"]["Time"] == i["Time"] for i in server if i["Event"] is not None)
    terminated = next(i for i in server if i["Type"] == "TaskTerminated")
    assert terminated["Details"] == {"task": "server", "exit_code": 1, "signal": 0, "message": "", "oom_killed": False}
    assert terminated["Event"]["DisplayMessage"] == "Exit Code: 1"

    read = (await served.client.get(f"/v1/allocation/{alloc_id}")).json()
    assert read["TaskStates"]["server"]["Events"] == nomad_events[-10:]
    sidecar_events = [i["Event"] for i in items if i["Task"] == "sidecar" and i["Event"] is not None]
    assert read["TaskStates"]["sidecar"]["Events"] == sidecar_events[-10:]
    assert any(e["Type"] == "Sibling Task Failed" for e in sidecar_events)


async def test_task_and_since_index_filters(served: Served) -> None:
    alloc_id = await failed_alloc(served)
    url = f"/v1/allocation/{alloc_id}/events"
    everything = (await served.client.get(url)).json()

    sidecar = (await served.client.get(url, params={"task": "sidecar"})).json()
    assert sidecar == [i for i in everything if i["Task"] == "sidecar"]
    assert len(sidecar) >= 4

    middle = everything[len(everything) // 2]["Index"]
    later = (await served.client.get(url, params={"since_index": middle})).json()
    assert later == [i for i in everything if i["Index"] > middle]

    both = (await served.client.get(url, params={"since_index": middle, "task": "server"})).json()
    assert both == [i for i in everything if i["Index"] > middle and i["Task"] == "server"]

    nothing = await served.client.get(url, params={"task": "no-such-task"})
    assert nothing.status_code == 200
    assert nothing.content == b"[]"


async def test_pagination_walks_every_page_once(served: Served) -> None:
    alloc_id = await failed_alloc(served)
    url = f"/v1/allocation/{alloc_id}/events"
    everything = (await served.client.get(url)).json()
    pages: list[list[dict[str, Any]]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"per_page": 4}
        if token:
            params["next_token"] = token
        r = await served.client.get(url, params=params)
        assert r.status_code == 200
        page = r.json()
        pages.append(page)
        token = r.headers.get("X-Nomad-NextToken", "")
        if not token:
            break
        assert int(token) > page[-1]["Index"]
    assert all(len(p) == 4 for p in pages[:-1])
    assert 1 <= len(pages[-1]) <= 4
    assert [i for p in pages for i in p] == everything

    filtered = await served.client.get(url, params={"per_page": 2, "task": "sidecar"})
    assert [i["Task"] for i in filtered.json()] == ["sidecar", "sidecar"]
    second = await served.client.get(
        url, params={"per_page": 2, "task": "sidecar", "next_token": filtered.headers["X-Nomad-NextToken"]}
    )
    assert second.json() == [i for i in everything if i["Task"] == "sidecar"][2:4]


async def test_errors_use_nomad_texts(served: Served) -> None:
    alloc_id = await failed_alloc(served)
    missing = await served.client.get("/v1/allocation/00000000-0000-4000-8000-000000000000/events")
    assert (missing.status_code, missing.text, missing.headers["content-type"]) == (404, "alloc not found", TEXT)
    assert "X-Nomad-Index" in missing.headers
    bad_id = await served.client.get("/v1/allocation/abc/events")
    assert bad_id.status_code == 400
    assert bad_id.text == "alloc lookup failed: index error: UUID must be 36 characters"
    for params, text in (
        ({"since_index": "x"}, "Invalid since_index"),
        ({"since_index": "-1"}, "Invalid since_index"),
        ({"next_token": "abc"}, "Invalid next_token"),
        ({"per_page": "x"}, "Expect a number for `per_page` query string parameter"),
        ({"index": "x"}, "Invalid index"),
    ):
        r = await served.client.get(f"/v1/allocation/{alloc_id}/events", params=params)
        assert (r.status_code, r.text) == (400, text), params
    post = await served.client.post(f"/v1/allocation/{alloc_id}/events")
    assert (post.status_code, post.text) == (405, "Invalid method")
    deeper = await served.client.get(f"/v1/allocation/{alloc_id}/events/more")
    assert (deeper.status_code, deeper.text) == (404, "resource not found")


async def test_blocking_query_returns_when_the_alloc_gets_a_new_event(served: Served) -> None:
    r = await served.client.put("/v1/jobs", json=example_job("web", count=1))
    assert r.status_code == 200
    alloc_id = await only_alloc(served, "web")
    await wait_until(served.service, lambda: served.service.model.alloc(alloc_id).alloc.ClientStatus == "running")  # type: ignore[union-attr]
    first = await served.client.get(f"/v1/allocation/{alloc_id}/events")
    index = int(first.headers["X-Nomad-Index"])
    result: dict[str, Any] = {}

    async def block() -> None:
        result["r"] = await served.client.get(
            f"/v1/allocation/{alloc_id}/events", params={"index": index, "wait": "30s"}
        )

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = served.service.model.hub
            watched = hub.statistics().watched_keys
            nursery.start_soon(block)
            while hub.statistics().watched_keys == watched:  # noqa: ASYNC110 - polling a counter, bounded by fail_after
                await trio.sleep(0.01)
            assert "r" not in result, "the query must block while the allocation is unchanged"
            stop = await served.client.post(f"/v1/allocation/{alloc_id}/stop")
            assert stop.status_code == 200
    blocked = result["r"]
    assert int(blocked.headers["X-Nomad-Index"]) > index
    new = [i for i in blocked.json() if i["Index"] > index]
    assert new[0]["Type"] == "AllocStopRequested"
    assert new[0]["Details"]["eval_id"] == stop.json()["EvalID"]


async def test_history_survives_a_restart(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0)
    async for s in open_served(config, nursery):
        alloc_id = await failed_alloc(s)
        before = (await s.client.get(f"/v1/allocation/{alloc_id}/events")).json()
    async for s in open_served(config, nursery):
        after = (await s.client.get(f"/v1/allocation/{alloc_id}/events")).json()
    assert after == before


async def test_acl_hides_allocs_outside_the_tokens_namespaces(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0, acl_enabled=True)
    async for s in open_served(config, nursery):
        boot = await s.client.post("/v1/acl/bootstrap")
        assert boot.status_code == 200, boot.text
        root = {"X-Nomad-Token": boot.json()["SecretID"]}
        assert (await s.client.put("/v1/namespace/a", json={"Name": "a"}, headers=root)).status_code == 200
        policy = {"Name": "read-a", "Rules": 'namespace "a" { policy = "read" }'}
        assert (await s.client.put("/v1/acl/policy/read-a", json=policy, headers=root)).status_code == 200
        token = await s.client.post("/v1/acl/token", json={"Type": "client", "Policies": ["read-a"]}, headers=root)
        reader = {"X-Nomad-Token": token.json()["SecretID"]}
        for job_id, ns in (("in-a", "a"), ("in-default", "default")):
            r = await s.client.put("/v1/jobs", json=example_job(job_id, count=1, namespace=ns), headers=root)
            assert r.status_code == 200, r.text
        visible = await only_alloc(s, "in-a")
        hidden = await only_alloc(s, "in-default")

        ok = await s.client.get(f"/v1/allocation/{visible}/events", headers=reader)
        assert ok.status_code == 200
        assert ok.json()[0]["Type"] == "AllocPlaced"
        denied = await s.client.get(f"/v1/allocation/{hidden}/events", headers=reader)
        assert (denied.status_code, denied.text) == (404, "alloc not found")
        anonymous = await s.client.get(f"/v1/allocation/{visible}/events")
        assert (anonymous.status_code, anonymous.text) == (404, "alloc not found")
        bogus = await s.client.get(
            f"/v1/allocation/{visible}/events", headers={"X-Nomad-Token": "00000000-0000-4000-8000-000000000000"}
        )
        assert (bogus.status_code, bogus.text) == (403, "Permission denied")
