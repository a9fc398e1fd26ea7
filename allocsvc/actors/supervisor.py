"""The supervisor: maps allocation IDs to actors, activates them on demand, restarts crashed ones.

Owns ``Supervisor``. It runs in the service's own nursery (never ``app.nursery``). An actor that
raises is restarted from the log-derived state and never takes the service down. An actor runs
as a trio task only while it has work; idle, it passivates by itself (``AllocActor``). A passive
actor whose allocation still runs stays in ``actors`` (its parked runners hold the driver
handles) and is activated again by the next ask or by a task exit; a passive actor of a finished
allocation is dropped and re-created on the next ask, so 100k allocations fit in one process.

New placements (and allocations restored at startup) are admitted through ``MAX_STARTING`` start
slots: an actor holds one from its first activation until it first passivates (its tasks are
running and its runners parked), or for at most ``START_SLOT_HOLD`` seconds, so a job of 10,000
allocations does not make 10,000 actors and runners live at once. An ask never waits for a slot.
"""

from __future__ import annotations

import logging
from collections import deque

import trio

from allocsvc.actors.alloc import AllocActor
from allocsvc.actors.runtime import Runtime
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.errors import ActorStoppedError, NotFoundError

logger = logging.getLogger("allocsvc.supervisor")

MAX_RESTARTS = 5
PASSIVATE_EVERY = 30.0
MAX_STARTING = 256
"""Most placed allocations starting at once (holding a start slot)."""
START_SLOT_HOLD = 2.0
"""Seconds after which a start slot is given back even if the actor is still busy (a task that
blocks in its start or waits out restart delays must not hold back the others)."""


class Supervisor:
    """Owns every allocation actor."""

    def __init__(self, rt: Runtime, nursery: trio.Nursery) -> None:
        self.rt = rt
        self._nursery = nursery
        self.actors: dict[str, AllocActor] = {}
        """Active actors, and passive ones of allocations that still run."""
        self.crashes: dict[str, int] = {}
        self._closing = False
        self._slots: dict[AllocActor, float] = {}  # start-slot holders -> when the slot expires
        self._queued: deque[AllocActor] = deque()  # placed, waiting for a start slot
        self._expiring: trio.CancelScope | None = None

    def spawn(self, alloc_id: str, *, restoring: bool = False) -> AllocActor:
        """Activate (creating if needed) the actor of an allocation, and return it."""
        actor = self.actors.get(alloc_id)
        if actor is not None and actor.active:
            return actor
        if self._closing:
            raise ActorStoppedError("agent is shutting down")
        if actor is None:
            actor = AllocActor(alloc_id, self.rt, self, restoring=restoring)
            self.actors[alloc_id] = actor
        self._activate(actor)
        return actor

    def place(self, alloc_id: str, *, restoring: bool = False) -> None:
        """Start a newly placed (or restored) allocation's actor once a start slot is free."""
        if alloc_id in self.actors or self._closing:
            return
        actor = AllocActor(alloc_id, self.rt, self, restoring=restoring)
        self.actors[alloc_id] = actor
        self._queued.append(actor)
        self._admit()

    def _admit(self) -> None:
        while self._queued and len(self._slots) < MAX_STARTING and not self._closing:
            actor = self._queued.popleft()
            if actor.started or actor.active or self.actors.get(actor.alloc_id) is not actor:
                continue  # an ask got there first
            self._slots[actor] = trio.current_time() + START_SLOT_HOLD
            if self._expiring is None:
                self._expiring = trio.CancelScope()
                self._nursery.start_soon(self._expire_slots, self._expiring)
            self._activate(actor)

    def _release(self, actor: AllocActor) -> None:
        if self._slots.pop(actor, None) is not None:
            self._admit()
            if not self._slots and self._expiring is not None:
                self._expiring.cancel()
                self._expiring = None

    async def _expire_slots(self, scope: trio.CancelScope) -> None:
        """Take back slots held past ``START_SLOT_HOLD`` (deadlines are in insertion order)."""
        with scope:
            while self._slots:
                await trio.sleep_until(next(iter(self._slots.values())))
                now = trio.current_time()
                expired = []
                for actor, deadline in self._slots.items():
                    if deadline > now:
                        break
                    expired.append(actor)
                for actor in expired:
                    del self._slots[actor]
                self._admit()
        if self._expiring is scope:
            self._expiring = None

    def queued(self) -> int:
        """Placed allocations waiting for a start slot."""
        return sum(1 for a in self._queued if not a.started)

    def wake(self, actor: AllocActor) -> None:
        """Activate a passive actor whose parked runner saw its task exit (not while closing)."""
        if not self._closing and not actor.active and self.actors.get(actor.alloc_id) is actor:
            self._activate(actor)

    def _activate(self, actor: AllocActor) -> None:
        actor.activate()
        self._nursery.start_soon(self._supervise, actor, name=f"alloc {actor.alloc_id}")

    async def _supervise(self, actor: AllocActor) -> None:
        try:
            await actor.run()
        except Exception:
            self._release(actor)
            count = self.crashes[actor.alloc_id] = self.crashes.get(actor.alloc_id, 0) + 1
            logger.exception("allocation actor %s crashed (%d)", actor.alloc_id, count)
            actor.discarded = True
            if self.actors.get(actor.alloc_id) is actor:
                del self.actors[actor.alloc_id]
            if count <= MAX_RESTARTS and not self._closing:
                self.spawn(actor.alloc_id, restoring=True)
        else:
            self._release(actor)
            if self.actors.get(actor.alloc_id) is actor and actor.disposable():
                del self.actors[actor.alloc_id]

    async def ask(self, alloc_id: str, command: cmd.AnyCommand) -> list[ev.Recorded]:
        """Send a command to an allocation's actor, activating a passive one."""
        for _ in range(3):
            if self.rt.model.alloc(alloc_id) is None:
                raise NotFoundError(f'Unknown allocation "{alloc_id}"')
            actor = self.spawn(alloc_id)
            stopped = actor.stopped
            try:
                return await actor.ask(command)
            except ActorStoppedError:
                if self._closing:
                    raise
                await stopped.wait()
        raise ActorStoppedError("allocation actor keeps stopping")

    def passivate_idle(self) -> int:
        """Passivate actors that wait for work with nothing in flight; returns how many.

        Actors passivate by themselves when they fall idle; this is only a safety net.
        """
        return sum(1 for actor in list(self.actors.values()) if actor.passivate_if_idle())

    async def run_passivation(self, interval: float = PASSIVATE_EVERY) -> None:
        """Periodically passivate idle actors (the safety net above)."""
        while True:
            await trio.sleep(interval)
            self.passivate_idle()

    def statistics(self) -> dict[str, int]:
        """How many actors are known, and how many of them are active (have a trio task)."""
        return {"actors": len(self.actors), "active": sum(1 for a in self.actors.values() if a.active)}

    async def aclose(self) -> None:
        """Refuse new work and stop every active actor, failing queued asks cleanly."""
        self._closing = True
        for actor in list(self.actors.values()):
            if actor.active:
                actor.mailbox.close()
        for actor in list(self.actors.values()):
            await actor.stopped.wait()
