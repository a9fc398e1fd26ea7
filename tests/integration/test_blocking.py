"""Blocking queries under trio's autojump clock, through the Quart test client (no sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from quart.typing import TestClientProtocol as QuartClient

from allocsvc.domain import commands as cmd
from allocsvc.http.app import create_app
from allocsvc.service import Service
from tests.helpers import example_job, job_from, wait_until


@pytest.fixture
async def client(memory_service: Service) -> AsyncIterator[QuartClient]:
    return create_app(memory_service).test_client()


async def running(svc: Service, count: int) -> list[str]:
    await svc.scheduler.register(job_from(example_job(count=count, Config={})))
    await wait_until(svc, lambda: sum(a.alloc.ClientStatus == "running" for a in svc.model.state.allocs.values()) == count)
    return sorted(svc.model.state.allocs)


async def test_list_wakes_on_insert_then_on_client_update(
    memory_service: Service, client: QuartClient, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    empty = await client.get("/v1/allocations?index=0")
    assert empty.headers["X-Nomad-Index"] == "0"
    start = trio.current_time()
    results = []

    async def blocked(index: int) -> None:
        results.append(await client.get(f"/v1/allocations?index={index}&wait=60s"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked, 0 + 1)
        await trio.sleep(5)  # simulated: the query is parked
        assert results == []
        await svc.scheduler.register(job_from(example_job(count=1, Config={})))
    assert trio.current_time() - start >= 5
    first_index = int(results[0].headers["X-Nomad-Index"])
    assert first_index > 1
    alloc_id = next(iter(svc.model.state.allocs))
    await wait_until(svc, lambda: svc.model.state.allocs[alloc_id].alloc.ClientStatus == "running")
    current = svc.model.index("allocs")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked, current)
        await trio.sleep(1)
        assert len(results) == 1
        await svc.supervisor.ask(alloc_id, cmd.SignalTask(task="server", signal="SIGHUP"))
    assert int(results[1].headers["X-Nomad-Index"]) > current


async def test_read_ignores_unrelated_allocs(
    memory_service: Service, client: QuartClient, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    a, b = await running(svc, 2)
    index_a = svc.model.state.allocs[a].alloc.ModifyIndex
    results = []

    async def blocked() -> None:
        results.append(await client.get(f"/v1/allocation/{a}?index={index_a}&wait=100s"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked)
        await trio.sleep(1)
        await svc.supervisor.ask(b, cmd.SignalTask(task="server", signal="SIGHUP"))
        await trio.sleep(10)
        assert results == [], "a change to B woke a reader of A"
        await svc.supervisor.ask(a, cmd.SignalTask(task="server", signal="SIGHUP"))
    assert int(results[0].headers["X-Nomad-Index"]) == svc.model.state.allocs[a].alloc.ModifyIndex > index_a


async def test_timeout_returns_same_index_and_cancel_leaks_nothing(
    memory_service: Service, client: QuartClient, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    (a,) = await running(svc, 1)
    index_a = svc.model.state.allocs[a].alloc.ModifyIndex
    start = trio.current_time()
    r = await client.get(f"/v1/allocation/{a}?index={index_a}&wait=5s")
    elapsed = trio.current_time() - start
    assert 5 <= elapsed < 5 + 5 / 16 + 0.01
    assert int(r.headers["X-Nomad-Index"]) == index_a
    default = trio.current_time()
    await client.get(f"/v1/allocation/{a}?index={index_a}")
    assert 300 <= trio.current_time() - default < 300 * (1 + 1 / 16) + 0.01
    with trio.move_on_after(3):
        await client.get(f"/v1/allocation/{a}?index={index_a}&wait=60s")
    assert svc.model.hub.statistics().watched_keys == 0


async def test_missing_alloc_blocks_on_table_then_404(
    memory_service: Service, client: QuartClient, autojump_clock: trio.testing.MockClock
) -> None:
    svc = memory_service
    await running(svc, 1)
    table = svc.model.index("allocs")
    missing = "8f3d8a7e-0000-4000-8000-000000000000"
    r = await client.get(f"/v1/allocation/{missing}?index={table}&wait=2s")
    assert r.status_code == 404
    assert await r.get_data(as_text=True) == "alloc not found"
    assert r.headers["X-Nomad-Index"] == str(table)
