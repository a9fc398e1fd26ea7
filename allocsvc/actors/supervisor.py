"""The supervisor: maps allocation IDs to live actors, restarts crashed ones, passivates idle ones.

Owns ``Supervisor``. It runs in the service's own nursery (never ``app.nursery``). An actor that
raises is restarted from the log-derived state and never takes the service down. Terminal,
idle actors are passivated and re-spawned on the next ask, so 100k allocations fit in one process.
"""

from __future__ import annotations

import logging

import trio

from allocsvc.actors.alloc import AllocActor
from allocsvc.actors.runtime import Runtime
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.errors import ActorStoppedError, NotFoundError

logger = logging.getLogger("allocsvc.supervisor")

MAX_RESTARTS = 5
PASSIVATE_EVERY = 30.0


class Supervisor:
    """Owns every allocation actor."""

    def __init__(self, rt: Runtime, nursery: trio.Nursery) -> None:
        self.rt = rt
        self._nursery = nursery
        self.actors: dict[str, AllocActor] = {}
        self.crashes: dict[str, int] = {}
        self._closing = False

    def spawn(self, alloc_id: str, *, restoring: bool = False) -> AllocActor:
        """Start (or return) the actor of an allocation."""
        actor = self.actors.get(alloc_id)
        if actor is not None and not actor.stopped.is_set():
            return actor
        if self._closing:
            raise ActorStoppedError("agent is shutting down")
        actor = AllocActor(alloc_id, self.rt, self._spawn_placed, restoring=restoring)
        self.actors[alloc_id] = actor
        self._nursery.start_soon(self._supervise, actor)
        return actor

    def _spawn_placed(self, alloc_id: str) -> None:
        self.spawn(alloc_id)

    async def _supervise(self, actor: AllocActor) -> None:
        try:
            await actor.run()
        except Exception:
            count = self.crashes[actor.alloc_id] = self.crashes.get(actor.alloc_id, 0) + 1
            logger.exception("allocation actor %s crashed (%d)", actor.alloc_id, count)
            if self.actors.get(actor.alloc_id) is actor:
                del self.actors[actor.alloc_id]
            if count <= MAX_RESTARTS and not self._closing:
                self.spawn(actor.alloc_id, restoring=True)
        else:
            if self.actors.get(actor.alloc_id) is actor:
                del self.actors[actor.alloc_id]

    async def ask(self, alloc_id: str, command: cmd.AnyCommand) -> list[ev.Recorded]:
        """Send a command to an allocation's actor, re-spawning a passivated one."""
        for _ in range(3):
            if self.rt.model.alloc(alloc_id) is None:
                raise NotFoundError(f'Unknown allocation "{alloc_id}"')
            actor = self.spawn(alloc_id)
            try:
                return await actor.ask(command)
            except ActorStoppedError:
                if self._closing:
                    raise
                await actor.stopped.wait()
        raise ActorStoppedError("allocation actor keeps stopping")

    def passivate_idle(self) -> int:
        """Stop actors of finished allocations; returns how many were stopped."""
        count = 0
        for actor in list(self.actors.values()):
            if actor.can_passivate():
                actor.mailbox.send.close()
                count += 1
        return count

    async def run_passivation(self, interval: float = PASSIVATE_EVERY) -> None:
        """Periodically passivate idle terminal actors."""
        while True:
            await trio.sleep(interval)
            self.passivate_idle()

    async def aclose(self) -> None:
        """Refuse new work and stop every actor, failing queued asks cleanly."""
        self._closing = True
        for actor in list(self.actors.values()):
            actor.mailbox.close()
        for actor in list(self.actors.values()):
            await actor.stopped.wait()
