"""The list's fast paths (cached stub list, tight loop) answer exactly as the general scan.

A ``filter`` that matches everything forces the general per-item path, so each plain request is
compared with its filtered twin on a real server; and the cached list must follow changes.
"""

from __future__ import annotations

from allocsvc.domain import commands as cmd
from tests.conftest import Served
from tests.helpers import example_job, wait_until

EVERYTHING = "filter=ID%20is%20not%20empty"


async def test_plain_lists_match_the_general_scan(served: Served) -> None:
    service = served.service
    assert (await served.client.put("/v1/jobs", json=example_job("a", count=4))).status_code == 200
    assert (await served.client.put("/v1/jobs", json=example_job("b", count=3))).status_code == 200
    await wait_until(service, lambda: len(service.model.state.allocs) == 7)
    order = service.model.allocs_in_create_order()
    token = f"{service.model.state.allocs[order[3]].alloc.CreateIndex}.{order[3]}"
    for query in ("", "task_states=false", "reverse=true", f"next_token={token}", f"next_token={token}&reverse=true",
                  "prefix=" + order[0][:2], "namespace=*"):  # fmt: skip
        plain = await served.client.get(f"/v1/allocations?{query}")
        general = await served.client.get(f"/v1/allocations?{query}&{EVERYTHING}")
        assert plain.status_code == general.status_code == 200, query
        if plain.headers["x-nomad-index"] == general.headers["x-nomad-index"]:
            assert plain.content == general.content, query
    tail = (await served.client.get(f"/v1/allocations?next_token={token}")).json()
    assert [s["ID"] for s in tail] == order[3:]


async def test_cached_list_follows_changes(served: Served) -> None:
    service = served.service
    assert (await served.client.put("/v1/jobs", json=example_job("c", count=2))).status_code == 200
    await wait_until(
        service,
        lambda: [a.alloc.ClientStatus for a in service.model.state.allocs.values()] == ["running", "running"],
    )
    first = (await served.client.get("/v1/allocations")).json()
    target = first[0]["ID"]
    records = await service.supervisor.ask(target, cmd.SignalTask(task="server", signal="SIGHUP"))
    after = (await served.client.get("/v1/allocations")).json()
    changed = next(s for s in after if s["ID"] == target)
    assert changed["ModifyIndex"] >= records[-1].index > first[0]["ModifyIndex"]
