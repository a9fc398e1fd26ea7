"""Black-box checks of the read API against a real hypercorn server (FACTS §1.1, §1.2, §9, §10)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel

from allocsvc.config import AgentConfig
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until

TEXT = "text/plain; charset=utf-8"


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """This module needs no raw_exec: a plain (non-dev) agent."""
    async for s in open_served(AgentConfig(data_dir=str(tmp_path / "data"), port=0), nursery):
        yield s


async def register(s: Served, job_id: str = "web", *, count: int = 2, namespace: str = "default", **task: Any) -> dict[str, Any]:
    r = await s.client.put("/v1/jobs", json=example_job(job_id, count=count, namespace=namespace, **task))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def allocs(s: Served, **params: Any) -> httpx.Response:
    return await s.client.get("/v1/allocations", params=params)


async def test_fresh_agent_lists_empty_with_index_zero(served: Served) -> None:
    r = await allocs(served)
    assert r.status_code == 200
    assert r.content == b"[]"
    assert r.headers["content-type"] == "application/json"
    assert r.headers["X-Nomad-Index"] == "0"
    assert r.headers["X-Nomad-KnownLeader"] == "true"
    assert r.headers["X-Nomad-LastContact"] == "0"


async def test_register_shows_two_allocs_with_nomad_stub_shape(served: Served) -> None:
    reg = await register(served)
    assert set(reg) >= {"EvalID", "EvalCreateIndex", "JobModifyIndex", "Index"}
    await wait_until(served.service, lambda: all(a.alloc.ClientStatus == "running" for a in served.service.model.state.allocs.values()))
    r = await allocs(served)
    items = r.json()
    assert len(items) == 2
    assert int(r.headers["X-Nomad-Index"]) >= reg["Index"]
    stub = items[0]
    assert list(stub) == [
        "ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobType", "JobVersion", "TaskGroup",
        "DesiredStatus", "DesiredDescription", "ClientStatus", "ClientDescription", "DesiredTransition",
        "TaskStates", "DeploymentStatus", "FollowupEvalID", "NextAllocation", "RescheduleTracker",
        "PreemptedAllocations", "PreemptedByAllocation", "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime",
    ]  # fmt: skip
    assert stub["EvalID"] == reg["EvalID"]
    assert {i["Name"] for i in items} == {"web.app[0]", "web.app[1]"}
    assert stub["DesiredTransition"] == {
        "Migrate": None, "Reschedule": None, "ForceReschedule": None, "NoShutdownDelay": None,
        "MigrateDisablePlacement": None,
    }  # fmt: skip
    assert "AllocatedResources" not in stub
    event = stub["TaskStates"]["server"]["Events"][0]
    assert len(event) == 24
    assert event["Type"] == "Received"
    assert event["DisplayMessage"] == "Task received by client"


async def test_ordering_reverse_and_pagination_tokens(served: Served) -> None:
    for i in range(4):
        await register(served, f"job{i}", count=2)
    everything = (await allocs(served)).json()
    keys = [(a["CreateIndex"], a["ID"]) for a in everything]
    assert keys == sorted(keys)
    assert len(keys) == 8
    rev = (await allocs(served, reverse="true")).json()
    assert [a["ID"] for a in rev] == [a["ID"] for a in reversed(everything)]
    seen: list[str] = []
    token = ""
    while True:
        params: dict[str, Any] = {"per_page": 3}
        if token:
            params["next_token"] = token
        r = await allocs(served, **params)
        page = r.json()
        seen += [a["ID"] for a in page]
        token = r.headers.get("X-Nomad-NextToken", "")
        if not token:
            break
        nxt = everything[len(seen)]
        assert token == f"{nxt['CreateIndex']}.{nxt['ID']}"
    assert seen == [a["ID"] for a in everything]
    # the token's index is compared numerically: "10.0" sorts after "9.zzz"
    high = [a for a in everything if a["CreateIndex"] >= 10]
    low = [a for a in everything if a["CreateIndex"] < 10]
    if high and low:
        r = await allocs(served, next_token=f"{low[-1]['CreateIndex']}.zzzz")
        assert [a["ID"] for a in r.json()] == [a["ID"] for a in high]
    # a token whose index matches no item resumes at the next existing item
    first_gap = everything[2]["CreateIndex"] - 1
    r = await allocs(served, next_token=f"{first_gap}.ffffffff")
    assert r.json()[0]["CreateIndex"] >= first_gap
    # a job's allocations share one CreateIndex? no: each placement has its own index, ID breaks ties
    assert len({a["CreateIndex"] for a in everything}) == len(everything)
    # a reversed page's token points backwards
    r = await allocs(served, reverse="true", per_page=2)
    assert r.headers["X-Nomad-NextToken"] == f"{rev[2]['CreateIndex']}.{rev[2]['ID']}"


async def test_prefix_rules(served: Served) -> None:
    await register(served, count=3)
    everything = (await allocs(served)).json()
    target = everything[1]["ID"]
    r = await allocs(served, prefix=target[:4])
    assert target in [a["ID"] for a in r.json()]
    assert all(a["ID"].startswith(target[:4]) for a in r.json())
    r = await allocs(served, prefix=target[:4].upper())
    assert target in [a["ID"] for a in r.json()]
    r = await allocs(served, prefix=target[:13])  # includes a hyphen
    assert [a["ID"] for a in r.json()] == [target]
    r = await allocs(served, prefix=str(uuid.uuid4()))
    assert r.json() == []
    assert len((await allocs(served, prefix="")).json()) == 3
    for bad, text in [
        ("zzz", "alloc lookup failed: index error: Input (without hyphens) must be even length"),
        ("zz", "alloc lookup failed: index error: Invalid UUID: encoding/hex: invalid byte: U+007A 'z'"),
        ("a" * 38, "alloc lookup failed: index error: Invalid UUID length. UUID have 36 characters; got 38"),
        ("a-a-a-a-a-a", 'alloc lookup failed: index error: UUID should have maximum of 4 "-"; got 5'),
    ]:
        r = await allocs(served, prefix=bad)
        assert r.status_code == 400
        assert r.text == text
        assert r.headers["content-type"] == TEXT


async def test_prefix_pagination_uses_id_tokens(served: Served) -> None:
    await register(served, count=6)
    ids = sorted(a["ID"] for a in (await allocs(served)).json())
    common = ""
    for n in (2, 0):
        pre = ids[0][:n]
        if all(i.startswith(pre) for i in ids[:3]) or n == 0:
            common = pre
            break
    if not common:
        return
    r = await allocs(served, prefix=common, per_page=2)
    page = [a["ID"] for a in r.json()]
    assert page == [i for i in ids if i.startswith(common)][:2]
    assert r.headers["X-Nomad-NextToken"] == [i for i in ids if i.startswith(common)][2]


async def test_filters(served: Served) -> None:
    await register(served, count=2)
    await wait_until(served.service, lambda: all(a.alloc.ClientStatus == "running" for a in served.service.model.state.allocs.values()))
    assert len((await allocs(served, filter="TaskGroup == app")).json()) == 2
    assert len((await allocs(served, filter='TaskGroup == "goo"')).json()) == 0
    assert len((await allocs(served, filter='TaskStates.server.State == "running"')).json()) == 2
    assert len((await allocs(served, filter='Job.Name == "web" and ClientStatus != "failed"')).json()) == 2
    r = await allocs(served, filter="NotValid")
    assert r.status_code == 400
    assert r.text.startswith("failed to create result paginator: failed to read filter expression")
    r = await allocs(served, filter='InvalidField == "value"')
    assert r.status_code == 400
    assert r.text.startswith("failed to read result page: error finding value in datum")
    r = await allocs(served, filter="TaskGroup == app", per_page=1)
    assert len(r.json()) == 1
    assert "X-Nomad-NextToken" in r.headers


async def test_namespaces_and_star(served: Served) -> None:
    r = await served.client.put("/v1/namespace/ns1", json={"Name": "ns1", "Description": "one"})
    assert r.status_code == 200
    await register(served, "a", count=1)
    await register(served, "b", count=1, namespace="ns1")
    default = (await allocs(served)).json()
    assert [a["Namespace"] for a in default] == ["default"]
    star = (await allocs(served, namespace="*")).json()
    assert sorted(a["Namespace"] for a in star) == ["default", "ns1"]
    assert (await allocs(served, namespace="ns1", filter='ID contains "-"')).json()[0]["Namespace"] == "ns1"
    assert (await allocs(served, filter='Namespace == "ns1"')).json() == []
    r = await allocs(served, namespace="nope")
    assert r.status_code == 200
    assert r.content == b"[]"
    assert len((await allocs(served, namespace="*", prefix=star[0]["ID"][:2])).json()) >= 1


async def test_task_states_and_resources_params(served: Served) -> None:
    await register(served, count=1)
    lite = (await allocs(served, task_states="false")).json()[0]
    assert "TaskStates" in lite
    assert lite["TaskStates"] is None
    both = (await allocs(served, resources="true")).json()[0]
    assert both["AllocatedResources"]["Tasks"]["server"]["Cpu"]["CpuShares"] == 100
    assert both["TaskStates"] is not None
    only = (await allocs(served, resources="1", task_states="f")).json()[0]
    assert only["AllocatedResources"] is not None
    assert only["TaskStates"] is None
    r = await allocs(served, resources="foo")
    assert r.status_code == 400
    assert r.text == 'Failed to parse value of "resources" (foo) as a bool: strconv.ParseBool: parsing "foo": invalid syntax'


async def test_read_allocation(served: Served) -> None:
    await register(served, count=1)
    stub = (await allocs(served)).json()[0]
    r = await served.client.get(f"/v1/allocation/{stub['ID']}")
    assert r.status_code == 200
    alloc = r.json()
    assert alloc["ID"] == stub["ID"]
    assert alloc["Job"]["ID"] == "web"
    assert alloc["Job"]["TaskGroups"][0]["Name"] == "app"
    assert alloc["Job"]["VaultToken"] == ""
    assert alloc["Job"]["ConsulToken"] == ""
    assert int(r.headers["X-Nomad-Index"]) == alloc["ModifyIndex"]
    for omitted in ("NextAllocation", "PreviousAllocation", "DeploymentID", "DesiredTransition", "PreemptedAllocations"):
        assert omitted not in alloc
    assert isinstance(alloc["CreateTime"], int)
    assert alloc["TaskStates"]["server"]["FinishedAt"] is None
    upper = await served.client.get(f"/v1/allocation/{stub['ID'].upper()}")
    assert upper.json()["ID"] == stub["ID"]
    missing = await served.client.get(f"/v1/allocation/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.text == "alloc not found"
    assert "X-Nomad-Index" in missing.headers
    short = await served.client.get("/v1/allocation/abc")
    assert short.status_code == 400
    assert short.text == "alloc lookup failed: index error: UUID must be 36 characters"
    assert (await served.client.get("/v1/allocation/")).status_code == 400


async def test_cross_cutting_http_behaviour(served: Served) -> None:
    await register(served, count=1)
    r = await served.client.post("/v1/allocations")
    assert (r.status_code, r.text, r.headers["content-type"]) == (405, "Invalid method", TEXT)
    r = await served.client.get("/v1/allocations/x")
    assert r.status_code == 404
    assert r.content == b""
    alloc_id = (await allocs(served)).json()[0]["ID"]
    r = await served.client.get(f"/v1/allocation/{alloc_id}/bogus")
    assert (r.status_code, r.text) == (404, "resource not found")
    r = await served.client.get(f"/v1/allocation/{alloc_id}/a/b")
    assert (r.status_code, r.text) == (404, "resource not found")
    r = await served.client.delete(f"/v1/allocation/{alloc_id}")
    assert (r.status_code, r.text) == (405, "Invalid method")
    pretty = await served.client.get(f"/v1/allocation/{alloc_id}?pretty")
    assert pretty.text.endswith("\n")
    assert pretty.text.startswith('{\n    "ID"')
    assert json.loads(pretty.text)["ID"] == alloc_id
    assert (await served.client.get(f"/v1/allocation/{alloc_id}?pretty=false")).text.endswith("\n")
    compact = await served.client.get(f"/v1/allocation/{alloc_id}?pretty=0")
    assert not compact.text.endswith("\n")
    assert "\n" not in compact.text
    raw = await served.client.get("/v1/allocations", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in raw.headers["vary"]
    assert json.loads(raw.content)[0]["ID"] == alloc_id  # httpx decodes gzip
    plain = await served.client.get("/v1/allocations", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(gzip.compress(plain.content)) == plain.content
    for params, text in [
        ({"wait": "60foo", "index": "1"}, "Invalid wait time"),
        ({"index": "foo"}, "Invalid index"),
        ({"stale": "random"}, "Expect `true` or `false` for `stale` query string parameter"),
        ({"per_page": "x"}, "Expect a number for `per_page` query string parameter"),
    ]:
        r = await allocs(served, **params)
        assert (r.status_code, r.text, r.headers["content-type"]) == (400, text, TEXT)
    assert (await allocs(served, stale="")).status_code == 200
    for value in ("true", "True", "1", "t", "TRUE"):
        assert (await allocs(served, task_states=value)).json()[0]["TaskStates"] is not None


async def test_go_api_style_requests(served: Served) -> None:
    body = json.dumps(example_job("goapi", count=1)).encode()
    r = await served.client.put(
        "/v1/jobs", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200, r.text
    r = await served.client.get(
        "/v1/allocations?stale=&namespace=default", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200
    assert len(r.json()) == 1


async def test_blocking_list_and_read_your_writes(served: Served) -> None:
    await register(served, count=1)
    await wait_until(served.service, lambda: all(a.alloc.ClientStatus == "running" for a in served.service.model.state.allocs.values()))
    first = await allocs(served)
    index = int(first.headers["X-Nomad-Index"])
    alloc_id = first.json()[0]["ID"]
    results: list[httpx.Response] = []

    async def blocked() -> None:
        results.append(await allocs(served, index=index, wait="30s"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked)
        with trio.fail_after(10):
            while served.service.model.hub.statistics().watched_keys == 0:
                await trio.lowlevel.checkpoint()
        stop = await served.client.post(f"/v1/allocation/{alloc_id}/stop")
    assert stop.status_code == 200
    stopped = stop.json()
    assert stop.headers["X-Nomad-Index"] == str(stopped["Index"])
    assert int(results[0].headers["X-Nomad-Index"]) > index
    read = await served.client.get(f"/v1/allocation/{alloc_id}", params={"index": stopped["Index"] - 1})
    assert read.json()["DesiredTransition"]["Migrate"] is True
    assert read.json()["DesiredTransition"]["NoShutdownDelay"] is False
    timeout = await served.client.get(f"/v1/allocation/{alloc_id}")
    mi = int(timeout.headers["X-Nomad-Index"])
    with trio.fail_after(10):
        again = await served.client.get(f"/v1/allocation/{alloc_id}", params={"index": 10**9, "wait": "50ms"})
    assert again.status_code == 200
    assert int(again.headers["X-Nomad-Index"]) >= mi


async def test_malformed_36_character_ids(served: Served) -> None:
    cases = [
        ("a-a-a-a-a-" + "a" * 26, 'alloc lookup failed: index error: UUID should have maximum of 4 "-"; got 5'),
        ("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "alloc lookup failed: index error: Invalid UUID: encoding/hex: invalid byte: U+007A 'z'"),
        ("aaaaaaaa-aaaa-aaaa-aaaaaaaaaaaaaaaaa", "alloc lookup failed: index error: Input (without hyphens) must be even length"),
    ]
    for alloc_id, text in cases:
        assert len(alloc_id) == 36
        for method, path in (("GET", f"/v1/allocation/{alloc_id}"), ("POST", f"/v1/allocation/{alloc_id}/stop")):
            r = await served.client.request(method, path)
            assert (r.status_code, r.text) == (400, text)
    # hyphen positions are not checked: the same 32 hex digits find the allocation
    await register(served, count=1)
    alloc_id = (await allocs(served)).json()[0]["ID"]
    bare = alloc_id.replace("-", "")
    moved = f"{bare[:4]}-{bare[4:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:]}"
    assert (await served.client.get(f"/v1/allocation/{moved}")).json()["ID"] == alloc_id
    r = await served.client.post(f"/v1/allocation/{uuid.uuid4()}/stop")
    assert (r.status_code, r.text) == (404, "allocation not found")
