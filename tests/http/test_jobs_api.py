"""Jobs and namespaces API: registration creates allocations; bad input is a clean 4xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from allocsvc.config import AgentConfig
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    async for s in open_served(AgentConfig(data_dir=str(tmp_path / "data"), port=0), nursery):
        yield s


def live(s: Served) -> list[str]:
    return sorted(a.alloc.ID for a in s.service.model.state.allocs.values() if a.alloc.DesiredStatus == "run")


async def test_register_response_and_job_reads(served: Served) -> None:
    r = await served.client.put("/v1/jobs", json=example_job(count=2))
    body = r.json()
    assert list(body) == ["EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index", "LastContact",
                          "KnownLeader", "NextToken"]  # fmt: skip
    assert r.headers["X-Nomad-Index"] == str(body["Index"])
    job = (await served.client.get("/v1/job/web")).json()
    assert job["ID"] == "web"
    assert job["Version"] == 0
    assert job["JobModifyIndex"] == body["JobModifyIndex"]
    assert job["TaskGroups"][0]["Tasks"][0]["KillTimeout"] == 5_000_000_000
    assert job["Priority"] == 50
    assert job["Region"] == "global"
    job_allocs = (await served.client.get("/v1/job/web/allocations")).json()
    assert len(job_allocs) == 2
    assert all(a["JobID"] == "web" for a in job_allocs)
    listed = (await served.client.get("/v1/jobs")).json()
    assert [j["ID"] for j in listed] == ["web"]
    assert (await served.client.get("/v1/job/nope")).status_code == 404
    evaluation = served.service.model.state.evals[body["EvalID"]]
    assert evaluation.TriggeredBy == "job-register"


async def test_reregister_unchanged_is_noop_and_changed_replaces(served: Served) -> None:
    first = (await served.client.put("/v1/jobs", json=example_job(count=2))).json()
    before = live(served)
    again = (await served.client.put("/v1/jobs", json=example_job(count=2))).json()
    assert again["JobModifyIndex"] == first["JobModifyIndex"]
    assert again["EvalID"] == ""
    assert live(served) == before
    changed = (await served.client.put("/v1/jobs", json=example_job(count=3))).json()
    assert changed["JobModifyIndex"] > first["JobModifyIndex"]
    after = live(served)
    assert len(after) == 3
    assert not set(after) & set(before)
    old = served.service.model.state.allocs[before[0]].alloc
    assert old.DesiredStatus == "stop"
    assert old.DesiredDescription == "alloc is being updated due to job update"
    assert (await served.client.get("/v1/job/web")).json()["Version"] == 1
    await wait_until(served.service, lambda: served.service.model.state.allocs[before[0]].alloc.ClientStatus == "complete")


async def test_deregister_stops_allocations(served: Served) -> None:
    await served.client.put("/v1/jobs", json=example_job(count=2))
    r = await served.client.delete("/v1/job/web")
    assert r.status_code == 200
    assert r.json()["EvalID"]
    assert live(served) == []
    await wait_until(
        served.service,
        lambda: all(a.alloc.ClientStatus == "complete" for a in served.service.model.state.allocs.values()),
    )
    assert (await served.client.get("/v1/job/web")).json()["Status"] == "dead"


async def test_namespaces(served: Served) -> None:
    names = [n["Name"] for n in (await served.client.get("/v1/namespaces")).json()]
    assert names == ["default"]
    assert (await served.client.put("/v1/namespace/prod", json={"Description": "p"})).status_code == 200
    got = (await served.client.get("/v1/namespace/prod")).json()
    assert got["Name"] == "prod"
    assert got["Description"] == "p"
    assert got["CreateIndex"] > 0
    assert (await served.client.get("/v1/namespace/nope")).status_code == 404
    r = await served.client.put("/v1/jobs", json=example_job("p", count=1, namespace="prod"))
    assert r.status_code == 200
    r = await served.client.delete("/v1/namespace/default")
    assert r.status_code == 400
    await served.client.delete("/v1/job/p", params={"namespace": "prod", "purge": "true"})
    assert (await served.client.delete("/v1/namespace/prod")).status_code == 200
    assert [n["Name"] for n in (await served.client.get("/v1/namespaces")).json()] == ["default"]


def _mutate(body: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


_DELETE = object()
GROUP = ["Job", "TaskGroups", 0]
TASK = [*GROUP, "Tasks", 0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"Job": {', "Failed to decode body"),
        (b"", "Request body is empty"),
        (json.dumps(_mutate(example_job(), ["Job", "Bogus"], 1)).encode(), "unknown field `Bogus`"),
        (json.dumps(_mutate(example_job(), [*GROUP, "Count"], "two")).encode(), "Expected `int`, got `str`"),
        (json.dumps(_mutate(example_job(), [*GROUP, "Name"], "")).encode(), "missing name"),
        (json.dumps(_mutate(example_job(), [*TASK, "Name"], "")).encode(), "Task 1 missing name"),
        (json.dumps(_mutate(example_job(), [*GROUP, "Count"], -1)).encode(), "Task group count can't be negative"),
        (json.dumps(_mutate(example_job(), [*TASK, "Driver"], "docker")).encode(), 'Driver "docker" is not available'),
        (json.dumps(_mutate(example_job(), ["Job", "Namespace"], "ghost")).encode(), 'nonexistent namespace "ghost"'),
        (b'{"NotJob": {}}', "unknown field `NotJob`"),
        (b"{}", "Job must be specified"),
    ],
)
async def test_bad_job_input_is_400_and_commits_nothing(served: Served, body: bytes, fragment: str) -> None:
    before = served.service.log.last_index
    r = await served.client.put("/v1/jobs", content=body)
    assert r.status_code == 400, r.text
    assert fragment in r.text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.service.log.last_index == before
