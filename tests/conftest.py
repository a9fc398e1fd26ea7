"""Shared fixtures: services on the memory or SQLite log, and a real hypercorn server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypothesis import HealthCheck, settings

from allocsvc.config import AgentConfig
from allocsvc.http.app import create_app
from allocsvc.service import Service, open_service
from allocsvc.store.memory import MemoryEventLog

settings.register_profile("dev", deadline=None, max_examples=50)
settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

FIXED_WALL = 1_700_000_000_000_000_000


@pytest.fixture
async def memory_service() -> AsyncIterator[Service]:
    """A full service on the in-memory log with raw_exec off."""
    async with open_service(AgentConfig(), log=MemoryEventLog(), wall_base_ns=FIXED_WALL) as svc:
        yield svc


@dataclass
class Served:
    """A real server on 127.0.0.1 and a client pointed at it."""

    service: Service
    client: httpx.AsyncClient
    base_url: str
    port: int


async def _serve_service(service: Service, nursery: trio.Nursery) -> tuple[trio.Event, str]:
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    shutdown = trio.Event()
    app = create_app(service)
    binds = await nursery.start(
        lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]
    )
    return shutdown, binds[0]


async def open_served(config: AgentConfig, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """Run a SQLite-backed service behind hypercorn; yields once listening."""
    async with open_service(config) as service:
        shutdown, base = await _serve_service(service, nursery)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield Served(service, client, base, int(base.rsplit(":", 1)[1]))
        shutdown.set()


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """A real hypercorn server on a SQLite data dir in tmp_path."""
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0, dev=True)
    async for s in open_served(config, nursery):
        yield s
