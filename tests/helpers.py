"""Test helpers: waiting on the read model without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import trio

from allocsvc.domain.model import Job
from allocsvc.service import Service


async def wait_until(service: Service, predicate: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Wait for a read-model condition, woken by every committed batch (no polling sleeps)."""
    with trio.fail_after(timeout):
        while not predicate():
            await service.model.hub.event_for("table:log").wait()


def job_from(body: dict[str, object]) -> Job:
    """Decode an example ``{"Job": ...}`` body into a Job."""
    return msgspec.convert(body["Job"], Job)


def example_job(job_id: str = "web", *, count: int = 2, namespace: str = "default", **task: Any) -> dict[str, Any]:
    """The issue's example job, with overridable task fields."""
    task_spec = {
        "Name": "server",
        "Driver": "mock",
        "Config": {"run_for": "30s"},
        "KillTimeout": 5_000_000_000,
        "Resources": {"CPU": 100, "MemoryMB": 64},
    }
    task_spec.update(task)
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Namespace": namespace,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "app",
                    "Count": count,
                    "RestartPolicy": {"Attempts": 2, "Interval": 1_800_000_000_000, "Delay": 15_000_000_000, "Mode": "fail"},
                    "Tasks": [task_spec],
                }
            ],
        }
    }
