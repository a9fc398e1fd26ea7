"""The real python-nomad client against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nomad
import pytest
import trio

from allocsvc.config import AgentConfig
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    async for s in open_served(AgentConfig(data_dir=str(tmp_path / "data"), port=0), nursery):
        yield s


async def test_python_nomad_end_to_end(served: Served) -> None:
    client = nomad.Nomad(host="127.0.0.1", port=served.port, timeout=10)

    def register() -> Any:
        return client.job.register_job("web", example_job(count=2))

    reg = await trio.to_thread.run_sync(register)
    assert reg["EvalID"]
    await wait_until(served.service, lambda: sum(a.alloc.ClientStatus == "running" for a in served.service.model.state.allocs.values()) == 2)
    listed = await trio.to_thread.run_sync(lambda: client.allocations.get_allocations())
    assert len(listed) == 2
    assert {a["JobID"] for a in listed} == {"web"}
    lite = await trio.to_thread.run_sync(lambda: client.allocations.get_allocations(task_states=False))
    assert all(a["TaskStates"] is None for a in lite)
    prefixed = await trio.to_thread.run_sync(lambda: client.allocations.get_allocations(prefix=listed[0]["ID"][:4]))
    assert listed[0]["ID"] in [a["ID"] for a in prefixed]
    paged = await trio.to_thread.run_sync(lambda: client.allocations.get_allocations(per_page=1))
    assert len(paged) == 1
    alloc = await trio.to_thread.run_sync(lambda: client.allocation.get_allocation(listed[0]["ID"]))
    assert alloc["ID"] == listed[0]["ID"]
    assert alloc["Job"]["ID"] == "web"
    stopped = await trio.to_thread.run_sync(lambda: client.allocation.stop_allocation(listed[0]["ID"]))
    assert stopped["EvalID"]
    assert stopped["Index"] > 0
    after = await trio.to_thread.run_sync(lambda: client.allocation.get_allocation(listed[0]["ID"]))
    assert after["DesiredTransition"]["Migrate"] is True
    with pytest.raises(nomad.api.exceptions.URLNotFoundNomadException):
        await trio.to_thread.run_sync(lambda: client.allocation.get_allocation("8f3d8a7e-0000-4000-8000-000000000000"))
    job = await trio.to_thread.run_sync(lambda: client.job.get_job("web"))
    assert job["ID"] == "web"
