"""A real agent with ACLs enabled, plus helpers to bootstrap and mint policies and tokens over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from allocsvc.actors.runtime import Clock
from allocsvc.config import AgentConfig
from allocsvc.gocompat import SECOND
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until


class SteppableClock(Clock):
    """The service clock plus an offset a test can move forward (token expiry without waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset_ns = 0

    def now_ns(self) -> int:
        return super().now_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        self.offset_ns += int(seconds * SECOND)


@dataclass
class ACLAgent:
    """A served agent with ACLs on, its management secret, and a steppable clock."""

    served: Served
    clock: SteppableClock
    management: str = ""
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.served.client

    def mgmt(self) -> dict[str, str]:
        return {"X-Nomad-Token": self.management}

    async def bootstrap(self) -> dict[str, Any]:
        r = await self.client.post("/v1/acl/bootstrap")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        self.management = body["SecretID"]
        return body

    async def policy(self, name: str, rules: str, description: str = "") -> int:
        body = {"Name": name, "Description": description, "Rules": rules}
        r = await self.client.put(f"/v1/acl/policy/{name}", json=body, headers=self.mgmt())
        assert r.status_code == 200, r.text
        return int(r.headers["X-Nomad-Index"])

    async def token(self, *policies: str, name: str = "", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"Name": name or "-".join(policies), "Type": "client", "Policies": list(policies)}
        body.update(extra)
        r = await self.client.post("/v1/acl/token", json=body, headers=self.mgmt())
        assert r.status_code == 200, r.text
        token: dict[str, Any] = r.json()
        self.tokens[token["Name"]] = token
        return token

    async def namespace(self, name: str) -> None:
        r = await self.client.put(f"/v1/namespace/{name}", json={"Name": name}, headers=self.mgmt())
        assert r.status_code == 200, r.text

    async def job(self, job_id: str, namespace: str, count: int = 1) -> list[str]:
        """Register a mock job and wait until its allocations run; returns their IDs."""
        body = example_job(job_id, count=count, namespace=namespace, Config={})  # runs until stopped
        r = await self.client.put("/v1/jobs", json=body, headers=self.mgmt())
        assert r.status_code == 200, r.text
        service = self.served.service

        def ids() -> list[str]:
            return sorted(
                a.alloc.ID
                for a in service.model.state.allocs.values()
                if a.alloc.JobID == job_id and a.alloc.Namespace == namespace
            )

        await wait_until(
            service,
            lambda: len(ids()) == count
            and all(service.model.state.allocs[i].alloc.ClientStatus == "running" for i in ids()),
        )
        return ids()


def as_token(secret: str) -> dict[str, str]:
    """Headers carrying a secret."""
    return {"X-Nomad-Token": secret}


async def open_acl_agent(data_dir: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    """A real hypercorn server over a SQLite data dir with ``acl_enabled=True``."""
    config = AgentConfig(data_dir=str(data_dir), port=0, acl_enabled=True)
    async for served in open_served(config, nursery):
        clock = SteppableClock()
        served.service.runtime.clock = clock
        yield ACLAgent(served, clock)


@asynccontextmanager
async def open_ws(url: str, headers: dict[str, str]) -> AsyncIterator[WebSocketConnection]:
    """A client WebSocket that also closes its TCP stream when the server closed first.

    trio-websocket 0.12.2's ``aclose()`` returns early in that case and leaves the socket to the
    garbage collector (a ResourceWarning, an error under ``filterwarnings=error``).
    """
    extra = [(k.encode(), v.encode()) for k, v in headers.items()]
    async with open_websocket_url(url, extra_headers=extra) as ws:
        try:
            yield ws
        finally:
            await ws._stream.aclose()
