"""Real data dirs for the log-tool and snapshot tests, written by a real service run.

``build_data_dir`` runs ``open_service`` on a SQLite data dir:
namespaces, jobs (one crash-looping into failure), a stop with its replacement, a signal, ACL
bootstrap/policy/token, and records the live ``GET /v1/allocation/:id`` bytes at several indexes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import trio

from allocsvc.actors.acl import TokenRequest
from allocsvc.config import AgentConfig
from allocsvc.domain import commands as cmd
from allocsvc.domain.model import Namespace
from allocsvc.service import Service, log_path, open_service
from allocsvc.store.sqlite import iter_file_records
from tests.helpers import example_job, job_from, wait_until

WALL = 1_700_000_000_000_000_000
MS = 1_000_000
STOP_EVAL = "11111111-1111-4111-8111-111111111111"


@dataclass
class LiveRead:
    """What the live read model served for one allocation right after ``index`` committed."""

    index: int
    alloc_id: str
    body: bytes


@dataclass
class Built:
    """A populated data dir and what the live service saw while writing it."""

    data_dir: Path
    last_index: int
    web: list[str]
    flaky: str
    replacement: str
    reads: list[LiveRead] = field(default_factory=list)

    @property
    def log(self) -> Path:
        """The SQLite file."""
        return log_path(self.data_dir)

    def copy_to(self, target: Path) -> Path:
        """A private copy of the data dir (for tests that corrupt it)."""
        shutil.copytree(self.data_dir, target)
        return target


def statuses(service: Service, ids: list[str]) -> list[str]:
    """ClientStatus of each allocation, in order."""
    return [service.model.state.allocs[a].alloc.ClientStatus for a in ids]


def record_reads(service: Service, built: Built, ids: list[str]) -> None:
    """Capture the live detail bytes of ``ids`` at the current index (no await in between)."""
    model = service.model
    for alloc_id in ids:
        agg = model.alloc(alloc_id)
        assert agg is not None
        built.reads.append(LiveRead(model.state.last_index, alloc_id, model.encoded_detail(agg)))


async def populate(service: Service, data_dir: Path) -> Built:
    """Drive a service through a varied, realistic history."""
    await service.scheduler.upsert_namespace(Namespace(Name="prod", Description="production"))
    await service.scheduler.register(job_from(example_job("web", count=2, Config={})))
    web = sorted(a for a, agg in service.model.state.allocs.items() if agg.alloc.JobID == "web")
    await wait_until(service, lambda: statuses(service, web) == ["running", "running"])
    built = Built(data_dir=data_dir, last_index=0, web=web, flaky="", replacement="")
    record_reads(service, built, web)

    flaky = example_job("flaky", count=1, namespace="prod", Config={"run_for": "20ms", "exit_code": 1})
    flaky["Job"]["TaskGroups"][0]["RestartPolicy"].update(Delay=10 * MS, Mode="fail")
    await service.scheduler.register(job_from(flaky))
    built.flaky = next(a for a, agg in service.model.state.allocs.items() if agg.alloc.JobID == "flaky")
    await wait_until(service, lambda: statuses(service, [built.flaky]) == ["running"])
    record_reads(service, built, [built.flaky])
    await wait_until(service, lambda: statuses(service, [built.flaky]) == ["failed"])
    record_reads(service, built, [built.flaky, *web])

    await service.supervisor.ask(web[0], cmd.StopAlloc(eval_id=STOP_EVAL))
    await wait_until(service, lambda: bool(service.model.state.allocs[web[0]].alloc.NextAllocation))
    built.replacement = service.model.state.allocs[web[0]].alloc.NextAllocation
    await wait_until(
        service, lambda: statuses(service, [web[0], built.replacement]) == ["complete", "running"]
    )
    await service.supervisor.ask(web[1], cmd.SignalTask(task="server", signal="SIGHUP"))
    record_reads(service, built, [web[0], web[1], built.replacement])

    await service.acl.bootstrap()
    await service.acl.upsert_policy("readonly", "read default", 'namespace "default" { policy = "read" }')
    await service.acl.upsert_token(TokenRequest(name="reader", type="client", policies=("readonly",)))
    built.last_index = service.model.state.last_index
    return built


def build_data_dir(data_dir: Path, *, snapshot_every: int = -1) -> Built:
    """Run a real service on ``data_dir`` (real time: the SQLite writer's threads and trio's
    autojump clock do not mix) and shut it down cleanly."""

    async def main() -> Built:
        config = AgentConfig(data_dir=str(data_dir), snapshot_every=snapshot_every)
        async with open_service(config, wall_base_ns=WALL) as service:
            return await populate(service, data_dir)

    built = trio.run(main)
    built.last_index = max((r.index for r in iter_file_records(built.log)), default=0)
    return built
