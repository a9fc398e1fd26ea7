"""Fault injection: the log the simulated agent writes through, and a misbehaving mock driver.

Owns ``SimLog`` (an ``EventLog`` wrapper that adds slow-disk group commits, crashes the agent in
the middle of a write, and remembers every acknowledged record) and ``FaultyDriver`` (the mock
driver with injected start failures and task crashes). The harness builds both once per run and
keeps them across agent crashes; only the service around them is rebuilt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum

import msgspec
import trio

from allocsvc.domain.events import Recorded
from allocsvc.drivers.base import TaskDriver, TaskHandle, TaskLaunch
from allocsvc.gocompat import SECOND, GoSyntaxError, parse_duration
from allocsvc.sim.options import FaultOptions
from allocsvc.store.codec import encode_event
from allocsvc.store.log import CommitListener, EventLog, StreamWrite

INJECTED_START_FAILURE = "sim: injected driver start failure"
INJECTED_CRASH = "sim: injected task crash"


class CrashMode(StrEnum):
    """Where in a write the agent dies."""

    BEFORE_COMMIT = "before-commit"
    """The append (and any group commit waiting on the slow disk) never commits; nobody is acked."""
    AFTER_COMMIT = "after-commit"
    """The records are committed and projected, but the appender dies before it is acknowledged."""
    IDLE = "idle"
    """No write came along soon after the crash was armed; the agent died between writes."""


class AgentCrashedError(Exception):
    """Raised into an appender whose agent crashed (only if cancellation did not reach it first)."""


class AckedRecord(msgspec.Struct, frozen=True, order=True):
    """A record whose append returned to its caller, with its encoded event."""

    index: int
    stream: str
    version: int
    time: int
    data: bytes


class _Pending:
    __slots__ = ("done", "error", "records", "time", "writes")

    def __init__(self, writes: Sequence[StreamWrite], time: int) -> None:
        self.writes = writes
        self.time = time
        self.done = trio.Event()
        self.records: list[Recorded] = []
        self.error: Exception | None = None


class SimLog:
    """The ``EventLog`` the simulated service is given; the real log sits behind it.

    ``attach`` points it at this incarnation's real log (the same ``MemoryEventLog`` every time, or
    the SQLite log reopened after a crash); ``detach`` forgets the dead incarnation's subscribers.
    Observers (the invariant checker) stay subscribed across incarnations and see each committed
    batch after the read model has applied it. ``slow_disk`` (used for the memory log; the SQLite
    adapter has its own ``commit_delay``) turns appends into group commits that each take that
    long; ``run_writer`` must then run for as long as the service does.
    """

    def __init__(self, *, slow_disk: float = 0.0) -> None:
        self.slow_disk = slow_disk
        self.inner: EventLog | None = None
        self._wired: list[EventLog] = []
        self._listeners: list[CommitListener] = []
        self._observers: list[CommitListener] = []
        self._queue: trio.MemorySendChannel[_Pending] | None = None
        self._receive: trio.MemoryReceiveChannel[_Pending] | None = None
        self._armed: CrashMode | None = None
        self._dead = False
        self.listener_filter: Callable[[Sequence[Recorded]], Sequence[Recorded]] | None = None
        """Test seam for planted bugs: what the read model is shown of each batch (observers see all)."""
        self.on_crash: Callable[[CrashMode], None] = lambda mode: None
        self.acked: list[AckedRecord] = []
        self.appends = 0
        self.group_commits = 0

    # --- wiring ---------------------------------------------------------------------------------

    def attach(self, inner: EventLog) -> None:
        """Write through ``inner`` from now on (called before the service opens)."""
        self.inner = inner
        if not any(inner is wired for wired in self._wired):
            inner.subscribe(self._dispatch)
            self._wired.append(inner)
        self._dead = False
        if self.slow_disk:
            self._queue, self._receive = trio.open_memory_channel[_Pending](math.inf)

    def detach(self) -> None:
        """Forget the crashed or closed incarnation's subscribers and queued writes."""
        self._listeners.clear()
        self._queue = self._receive = None
        self._armed = None

    def observe(self, listener: CommitListener) -> None:
        """Register a listener that outlives agent crashes."""
        self._observers.append(listener)

    def _dispatch(self, records: Sequence[Recorded]) -> None:
        shown = records if self.listener_filter is None else self.listener_filter(records)
        for listener in self._listeners:
            listener(shown)
        for observer in self._observers:
            observer(records)

    # --- EventLog -------------------------------------------------------------------------------

    def _log(self) -> EventLog:
        assert self.inner is not None, "SimLog used before attach()"
        return self.inner

    @property
    def last_index(self) -> int:
        return self._log().last_index

    def subscribe(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def stream_version(self, stream: str) -> int:
        return self._log().stream_version(stream)

    def iter_records(self, after: int = 0) -> Iterator[Recorded]:
        return self._log().iter_records(after)

    async def append(self, writes: Sequence[StreamWrite], *, time: int) -> list[Recorded]:
        if self._dead:
            await self._die(None)
        self.appends += 1
        crash, self._armed = self._armed, None
        if crash is CrashMode.BEFORE_COMMIT:
            await self._die(crash)
        if self._queue is not None:
            records = await self._group_commit(writes, time)
        else:
            records = await self._log().append(writes, time=time)
        if crash is CrashMode.AFTER_COMMIT:
            await self._die(crash)
        self.acked.extend(
            AckedRecord(r.index, r.stream, r.version, r.time, encode_event(r.event)) for r in records
        )
        return records

    # --- slow disk ------------------------------------------------------------------------------

    async def _group_commit(self, writes: Sequence[StreamWrite], time: int) -> list[Recorded]:
        assert self._queue is not None
        pending = _Pending(writes, time)
        self._queue.send_nowait(pending)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.records

    async def run_writer(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The slow disk: drain what is queued, wait ``slow_disk``, commit it all."""
        receive = self._receive
        task_status.started()
        if receive is None:
            return
        async for first in receive:
            batch = [first]
            while True:
                try:
                    batch.append(receive.receive_nowait())
                except trio.WouldBlock:
                    break
            await trio.sleep(self.slow_disk)
            if self._dead:
                return
            self.group_commits += 1
            for pending in batch:
                try:
                    pending.records = await self._log().append(pending.writes, time=pending.time)
                except Exception as exc:
                    pending.error = exc
            for pending in batch:
                pending.done.set()

    # --- agent crashes --------------------------------------------------------------------------

    def arm_crash(self, mode: CrashMode | None) -> None:
        """Crash the agent during the next append, at the given point of the write (None: disarm)."""
        self._armed = mode

    @property
    def crash_armed(self) -> bool:
        """Whether a crash waits for the next append."""
        return self._armed is not None

    def crash_now(self, mode: CrashMode | None = None) -> None:
        """The agent dies now: no append commits until the next ``attach``."""
        self._dead = True
        self._armed = None
        if mode is not None:
            self.on_crash(mode)

    async def _die(self, mode: CrashMode | None) -> None:
        """Crash (if not already dead) and let the appender's cancellation unwind it."""
        self.crash_now(mode)
        await trio.lowlevel.checkpoint()
        raise AgentCrashedError("the agent crashed during this write")


class FaultStats:
    """How many faults were injected."""

    def __init__(self) -> None:
        self.start_failures = 0
        self.crashes_scheduled = 0


def _run_for_seconds(config: dict[str, object]) -> float:
    value = config.get("run_for")
    if value in (None, "", 0):
        return math.inf
    if isinstance(value, int | float):
        return float(value) / SECOND
    try:
        return parse_duration(str(value)) / SECOND
    except GoSyntaxError:
        return math.inf


class FaultyDriver:
    """The ``mock`` driver with faults: it rewrites a launch's Config, then delegates.

    A start failure sets ``start_error`` (recoverable, so the restart policy applies); a crash
    shortens ``run_for`` and makes the task exit with code 137 and SIGKILL.
    """

    name = "mock"
    fs_isolation = "none"

    def __init__(self, inner: TaskDriver, rng: random.Random, faults: FaultOptions, stats: FaultStats) -> None:
        self._inner = inner
        self._rng = rng
        self._faults = faults
        self.stats = stats

    async def start(self, launch: TaskLaunch) -> TaskHandle:
        config = dict(launch.config)
        faults = self._faults
        if faults.start_failures and self._rng.random() < faults.start_failures:
            self.stats.start_failures += 1
            config.update(start_error=INJECTED_START_FAILURE, start_error_recoverable=True)
        elif faults.crashes_per_hour:
            crash_in = self._rng.expovariate(faults.crashes_per_hour / 3600.0)
            if crash_in < _run_for_seconds(config):
                self.stats.crashes_scheduled += 1
                config.update(
                    run_for=max(1, int(crash_in * SECOND)),
                    exit_code=137,
                    exit_signal="SIGKILL",
                    exit_err_msg=INJECTED_CRASH,
                )
        return await self._inner.start(msgspec.structs.replace(launch, config=config))

    async def recover(self, launch: TaskLaunch) -> None:
        await self._inner.recover(launch)
