"""The composition root: open the log, rebuild state by replay, start actors, expose the service.

Owns ``Service`` and ``open_service``. Everything long-lived runs in the service's own nursery,
never in quart-trio's ``app.nursery``. The HTTP app and the CLI only talk to ``Service``.
"""

from __future__ import annotations

import logging
import random
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from allocsvc.actors.acl import ACLManager
from allocsvc.actors.runtime import Clock, Runtime, uuid4_factory
from allocsvc.actors.scheduler import Scheduler
from allocsvc.actors.supervisor import Supervisor
from allocsvc.config import AgentConfig
from allocsvc.domain.model import is_terminal_client_status
from allocsvc.drivers.base import TaskDriver
from allocsvc.drivers.mock import MockDriver
from allocsvc.store.log import EventLog
from allocsvc.store.memory import MemoryEventLog
from allocsvc.store.snapshot import Snapshotter, restore_state, snapshot_dir
from allocsvc.store.sqlite import open_sqlite_log
from allocsvc.views.acl_resolver import ACLResolver
from allocsvc.views.read_model import ReadModel

logger = logging.getLogger("allocsvc")

LOG_FILE = "allocsvc.db"


@dataclass
class Service:
    """A running agent: what the HTTP layer and tools use."""

    config: AgentConfig
    log: EventLog
    model: ReadModel
    runtime: Runtime
    supervisor: Supervisor
    scheduler: Scheduler
    nursery: trio.Nursery
    acl: ACLManager
    snapshotter: Snapshotter | None = None


def resolve_data_dir(config: AgentConfig) -> Path:
    """The absolute data dir."""
    return Path(config.data_dir).resolve()


def log_path(data_dir: str | Path) -> Path:
    """Where the SQLite log of a data dir lives."""
    return Path(data_dir) / LOG_FILE


@asynccontextmanager
async def open_service(
    config: AgentConfig,
    *,
    log: EventLog | None = None,
    wall_base_ns: int | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Service]:
    """Open the log (SQLite under ``data_dir`` unless ``log`` is given), replay it, run actors."""
    async with AsyncExitStack() as stack:
        node_id = ""
        data_dir: Path | None = None
        if log is None:
            data_dir = resolve_data_dir(config)
            sqlite_log = await stack.enter_async_context(open_sqlite_log(log_path(data_dir)))
            node_id = sqlite_log.meta("node_id") or ""
            if not node_id:
                node_id = str(uuid.uuid4())
                sqlite_log.set_meta("node_id", node_id)
            log = sqlite_log
        elif isinstance(log, MemoryEventLog):
            node_id = str(uuid.UUID(int=(rng or random.Random(0)).getrandbits(128), version=4))
        snapshots = snapshot_dir(data_dir) if data_dir is not None else None
        recovery = restore_state(log, snapshots)
        model = ReadModel(recovery.state)
        log.subscribe(model.apply)
        restored = model.state.last_index > 0
        async with trio.open_nursery() as nursery:
            drivers: dict[str, TaskDriver] = {"mock": MockDriver(nursery)}
            if config.raw_exec:
                from allocsvc.drivers.raw_exec import RawExecDriver

                drivers["raw_exec"] = RawExecDriver(nursery)
            runtime = Runtime(
                log=log,
                model=model,
                drivers=drivers,
                clock=Clock(wall_base_ns),
                new_id=uuid4_factory(rng),
                rng=rng or random.Random(),
                data_dir=data_dir,
                node_id=node_id,
                node_name=config.node_name or socket.gethostname(),
                mailbox_size=config.mailbox_size,
            )
            supervisor = Supervisor(runtime, nursery)
            scheduler = Scheduler(runtime, supervisor)
            for alloc_id, agg in model.state.allocs.items():
                if not is_terminal_client_status(agg.alloc.ClientStatus):
                    supervisor.place(alloc_id, restoring=restored)
            nursery.start_soon(supervisor.run_passivation)
            snapshotter: Snapshotter | None = None
            if snapshots is not None and config.snapshot_every >= 0:
                snapshotter = Snapshotter(
                    log, model.state, snapshots, every=config.snapshot_every, last_index=recovery.snapshot_index
                )
                log.subscribe(snapshotter.on_commit)
                await nursery.start(snapshotter.run)
            acl = ACLManager(runtime, ACLResolver(model, lambda: runtime.clock.now_ns()))
            if config.acl_enabled:
                await nursery.start(acl.run_expiry_notifier)
            service = Service(config, log, model, runtime, supervisor, scheduler, nursery, acl, snapshotter)
            try:
                yield service
            finally:
                with trio.CancelScope(shield=True):
                    await supervisor.aclose()
                nursery.cancel_scope.cancel()
