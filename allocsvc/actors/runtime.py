"""What every actor shares: the log, the read model, drivers, the clock and id source.

Owns ``Clock`` (Unix-ns time derived from trio's clock, so MockClock drives it) and
``Runtime``, the bundle the service builds once and hands to actors and the scheduler.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from allocsvc.drivers.base import TaskDriver
from allocsvc.store.log import EventLog
from allocsvc.views.read_model import ReadModel

log = logging.getLogger("allocsvc")


class Clock:
    """Unix-nanosecond time that advances with trio's clock."""

    def __init__(self, wall_base_ns: int | None = None) -> None:
        self._wall = time.time_ns() if wall_base_ns is None else wall_base_ns
        self._trio = trio.current_time()

    def now_ns(self) -> int:
        """Current time in Unix nanoseconds."""
        return self._wall + int((trio.current_time() - self._trio) * 1e9)


def uuid4_factory(rng: random.Random | None = None) -> Callable[[], str]:
    """UUIDv4 strings; seeded when ``rng`` is given (simulation), else from the OS."""
    if rng is None:
        return lambda: str(uuid.uuid4())
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class Runtime:
    """Shared dependencies of actors, task runners and the scheduler."""

    log: EventLog
    model: ReadModel
    drivers: dict[str, TaskDriver]
    clock: Clock
    new_id: Callable[[], str]
    rng: random.Random = field(default_factory=random.Random)
    data_dir: Path | None = None
    node_id: str = ""
    node_name: str = ""
    mailbox_size: int = 64
