"""The simulation's invariant checker: what must hold after every commit, check and recovery.

Owns ``Checker`` and ``Violation``. The checker observes every committed batch (after the read
model applied it) and folds it into its own ``shadow`` state, checking on the way that indexes,
times and stream versions only move forward, that each task event is allowed by
``TASK_RULES`` from the task's state before it, that the ten-event window, restart counts and
ClientStatus agree with the history, that terminal statuses never change, and that the live
projection of every touched allocation equals the shadow. Periodically, after each agent
recovery and at the end, it replays the stored log into a separate state and compares that with
the live read model, and checks that every acknowledged append and HTTP command is in the log.
Blocking-query clients report each answer to ``check_blocking``. The first violation is recorded,
reported through ``on_violation`` and stops all further checking; nothing is raised into the
service's own tasks.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import msgspec
import trio

from allocsvc.domain import events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.display import to_task_event
from allocsvc.domain.lifecycle import MAX_TASK_EVENTS, TASK_RULES, AllocAggregate, derive_client_status
from allocsvc.domain.model import DesiredStatus, TaskStatus, is_terminal_client_status
from allocsvc.sim.faults import AckedRecord
from allocsvc.store.codec import encode_event, event_tag
from allocsvc.store.log import EventLog
from allocsvc.views.read_model import ReadModel

ALLOC_TABLE_KEY = "table:allocs"


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """The first invariant that failed, and where the run was when it did."""

    invariant: str
    detail: str
    seed: int
    step: int
    index: int
    sim_time: float


class Expectation(msgspec.Struct, kw_only=True):
    """An acknowledged HTTP command: a matching event must be in ``stream`` with lo < index <= hi."""

    stream: str
    event_type: str
    attrs: dict[str, Any]
    lo: int
    hi: int
    what: str


class _StopError(Exception):
    """Unwinds the current check after a violation was recorded."""


def describe_difference(a: object, b: object, path: str = "") -> str:
    """A short description of the first place two values differ."""
    if type(a) is type(b) and isinstance(a, msgspec.Struct):
        for name in a.__struct_fields__:
            left, right = getattr(a, name), getattr(b, name)
            if left != right:
                return describe_difference(left, right, f"{path}.{name}")
    if isinstance(a, dict) and isinstance(b, dict):
        only_a = [k for k in a if k not in b]
        only_b = [k for k in b if k not in a]
        if only_a or only_b:
            return f"{path}: keys {only_a[:3]!r} only on one side, {only_b[:3]!r} only on the other"
        for key in a:
            if a[key] != b[key]:
                return describe_difference(a[key], b[key], f"{path}[{key!r}]")
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        for i, (left, right) in enumerate(zip(a, b, strict=True)):
            if left != right:
                return describe_difference(left, right, f"{path}[{i}]")
    return f"{path}: {a!r:.160} != {b!r:.160}"


SCALAR_FIELDS = ("last_index", "namespaces", "jobs", "evals", "table_index", "stream_versions")
"""``ClusterState`` parts compared whole on every check; allocations are compared by sweep."""
SWEEP_FRACTION = 8
"""A periodic check compares the allocations changed since the last one plus 1/8 of the others."""


def first_state_difference(live: ClusterState, replayed: ClusterState, alloc_ids: Iterable[str] | None = None) -> str | None:
    """Where two cluster states first differ: everything, or the allocations in ``alloc_ids`` only."""
    for name in SCALAR_FIELDS:
        left, right = getattr(live, name), getattr(replayed, name)
        if left != right:
            return describe_difference(left, right, name)
    if alloc_ids is None:
        if live.allocs != replayed.allocs:
            return describe_difference(live.allocs, replayed.allocs, "allocs")
        return None
    if live.allocs.keys() != replayed.allocs.keys():
        return describe_difference(live.allocs, replayed.allocs, "allocs")
    for alloc_id in alloc_ids:
        if live.allocs[alloc_id] != replayed.allocs[alloc_id]:
            return describe_difference(live.allocs[alloc_id], replayed.allocs[alloc_id], f"allocs[{alloc_id!r}]")
    return None


class IndexedSet:
    """A set of ids with O(1) add, remove and access by position (for picking random targets)."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._pos: dict[str, int] = {}

    def add(self, item: str) -> None:
        if item not in self._pos:
            self._pos[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: str) -> None:
        pos = self._pos.pop(item, None)
        if pos is None:
            return
        last = self._items.pop()
        if pos < len(self._items):
            self._items[pos] = last
            self._pos[last] = pos

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> str:
        return self._items[i]


class Checker:
    """Checks invariants continuously; see the module docstring for the list."""

    def __init__(
        self,
        *,
        seed: int,
        where: Callable[[], int],
        on_violation: Callable[[Violation], None],
    ) -> None:
        self.seed = seed
        self._where = where
        self._on_violation = on_violation
        self.violation: Violation | None = None
        self.checks: Counter[str] = Counter()
        self.shadow = ClusterState()
        self.replayed = ClusterState()
        self.model: ReadModel | None = None
        self.events_by_type: Counter[str] = Counter()
        self.status_counts: Counter[str] = Counter()
        self.live_allocs = IndexedSet()
        self.commit_times: list[float] = [0.0]
        self.record_times: list[int] = [0]
        self.alloc_changes: dict[str, list[int]] = {}
        self.table_changes: list[int] = []
        self._last_time = 0
        self._windows: dict[tuple[str, str], deque[tuple[str, int]]] = {}
        self._restarts: Counter[tuple[str, str]] = Counter()
        self._acked_checked = 0
        self._sweep_at = 0
        self._expectations: dict[str, list[Expectation]] = {}
        self.latencies_ms: list[float] = []
        self.waits_ms: list[float] = []

    # --- failing ----------------------------------------------------------------------------------

    def fail(self, invariant: str, detail: str) -> NoReturn:
        """Record the first violation, report it, and unwind the current check."""
        if self.violation is None:
            self.violation = Violation(
                invariant=invariant,
                detail=detail,
                seed=self.seed,
                step=self._where(),
                index=self.shadow.last_index,
                sim_time=round(trio.current_time(), 6),
            )
            self._on_violation(self.violation)
        raise _StopError

    def _guard(self, check: Callable[[], None]) -> None:
        if self.violation is not None:
            return
        try:
            check()
        except _StopError:
            pass

    # --- every commit -----------------------------------------------------------------------------

    def on_commit(self, records: Sequence[ev.Recorded]) -> None:
        """The commit observer: check and fold each record, then compare touched allocations."""

        def check() -> None:
            now = trio.current_time()
            touched: dict[str, None] = {}
            for recorded in records:
                alloc_id = self._check_record(recorded, now)
                if alloc_id is not None:
                    touched[alloc_id] = None
            if self.model is not None:
                for alloc_id in touched:
                    self._compare_live(alloc_id)

        self._guard(check)

    def _check_record(self, recorded: ev.Recorded, now: float) -> str | None:
        shadow = self.shadow
        self.checks["index_monotonic"] += 1
        if recorded.index != shadow.last_index + 1:
            self.fail("index_monotonic", f"record index {recorded.index} follows {shadow.last_index}")
        self.checks["time_monotonic"] += 1
        if recorded.time < self._last_time:
            self.fail("time_monotonic", f"record {recorded.index} time {recorded.time} before {self._last_time}")
        self._last_time = recorded.time
        self.checks["stream_versions"] += 1
        previous = shadow.stream_versions.get(recorded.stream, 0)
        if recorded.version != previous + 1:
            self.fail("stream_versions", f"{recorded.stream} version {recorded.version} after {previous}")
        event = recorded.event
        alloc_id = recorded.stream[6:] if recorded.stream.startswith("alloc/") else None
        before = shadow.allocs.get(alloc_id) if alloc_id is not None else None
        if isinstance(event, ev.TaskEventBase):
            self._check_rule(recorded, event, before)
        try:
            shadow.apply(recorded)
        except Exception as exc:
            self.fail("replay_equals_live", f"record {recorded.index} does not fold: {exc!r}")
        self.commit_times.append(now)
        self.record_times.append(recorded.time)
        self.events_by_type[event_tag(event)] += 1
        if alloc_id is None:
            return None
        self.alloc_changes.setdefault(alloc_id, []).append(recorded.index)
        self.table_changes.append(recorded.index)
        self._check_alloc(alloc_id, before, shadow.allocs[alloc_id], recorded)
        return alloc_id

    def _check_rule(self, recorded: ev.Recorded, event: ev.TaskEventBase, before: AllocAggregate | None) -> None:
        self.checks["task_rules"] += 1
        name = type(event).__name__
        if before is None:
            self.fail("task_rules", f"{name} at {recorded.index} for an allocation never placed")
        states = before.alloc.TaskStates or {}
        if event.task not in states:
            self.fail("task_rules", f"{name} at {recorded.index} for unknown task {event.task!r}")
        rule = TASK_RULES.get(type(event))
        if rule is None:
            self.fail("task_rules", f"{name} at {recorded.index} is not in TASK_RULES")
        current = states[event.task].State
        if current not in rule.allowed_from:
            self.fail(
                "task_rules",
                f"{name} at {recorded.index} on {recorded.stream} task {event.task!r} in state {current}",
            )

    def _check_alloc(
        self, alloc_id: str, before: AllocAggregate | None, after: AllocAggregate, recorded: ev.Recorded
    ) -> None:
        alloc = after.alloc
        states = alloc.TaskStates or {}
        event = recorded.event
        if isinstance(event, ev.TaskEventBase):
            key = (alloc_id, event.task)
            nomad_event = to_task_event(event, recorded.time)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = deque(maxlen=MAX_TASK_EVENTS)
            if nomad_event is not None:
                window.append((nomad_event.Type, nomad_event.Time))
                if nomad_event.Type == "Restarting":
                    self._restarts[key] += 1
            task_state = states[event.task]
            self.checks["ten_event_limit"] += 1
            shown = [(e.Type, e.Time) for e in task_state.Events]
            if len(shown) > MAX_TASK_EVENTS or shown != list(window):
                self.fail("ten_event_limit", f"{alloc_id} task {event.task!r} shows {shown!r}, history ends {list(window)!r}")
            self.checks["restart_count"] += 1
            if task_state.Restarts != self._restarts[key]:
                self.fail("restart_count", f"{alloc_id} task {event.task!r} Restarts={task_state.Restarts}, saw {self._restarts[key]}")
            self.checks["task_times"] += 1
            if task_state.State == TaskStatus.RUNNING and task_state.StartedAt is None:
                self.fail("task_times", f"{alloc_id} task {event.task!r} running without StartedAt")
            if task_state.State == TaskStatus.DEAD and task_state.FinishedAt is None:
                self.fail("task_times", f"{alloc_id} task {event.task!r} dead without FinishedAt")
        self.checks["client_status"] += 1
        derived, _ = derive_client_status(states.values())
        if derived != alloc.ClientStatus:
            self.fail("client_status", f"{alloc_id} ClientStatus {alloc.ClientStatus} but tasks say {derived}")
        if before is not None:
            old = before.alloc
            self.checks["terminal_absorbing"] += 1
            if is_terminal_client_status(old.ClientStatus) and alloc.ClientStatus != old.ClientStatus:
                self.fail("terminal_absorbing", f"{alloc_id} ClientStatus {old.ClientStatus} -> {alloc.ClientStatus}")
            if old.DesiredStatus != DesiredStatus.RUN and alloc.DesiredStatus == DesiredStatus.RUN:
                self.fail("terminal_absorbing", f"{alloc_id} DesiredStatus {old.DesiredStatus} -> run")
            if old.ClientStatus != alloc.ClientStatus:
                self.status_counts[old.ClientStatus] -= 1
                self.status_counts[alloc.ClientStatus] += 1
        else:
            self.status_counts[alloc.ClientStatus] += 1
        if alloc.DesiredStatus == DesiredStatus.RUN and not is_terminal_client_status(alloc.ClientStatus):
            self.live_allocs.add(alloc_id)
        else:
            self.live_allocs.discard(alloc_id)

    def _compare_live(self, alloc_id: str) -> None:
        assert self.model is not None
        self.checks["live_equals_shadow"] += 1
        live = self.model.state.allocs.get(alloc_id)
        expected = self.shadow.allocs[alloc_id]
        if live != expected:
            self.fail("live_equals_shadow", f"allocation {alloc_id}: " + describe_difference(live, expected, "live"))

    # --- replay -----------------------------------------------------------------------------------

    def expect(self, expectation: Expectation) -> None:
        """Register an acknowledged HTTP command whose event must reach the log."""
        self._expectations.setdefault(expectation.stream, []).append(expectation)

    def _replay_into(self, state: ClusterState, records: Iterable[ev.Recorded], acked: Sequence[AckedRecord]) -> set[str]:
        """Fold stored records into ``state``, matching acknowledged records and expectations.

        Returns the allocations the records touched.
        """
        pending = sorted(acked)
        at = 0
        touched: set[str] = set()
        for recorded in records:
            if recorded.stream.startswith("alloc/"):
                touched.add(recorded.stream[6:])
            try:
                state.apply(recorded)
            except Exception as exc:
                self.fail("replay_equals_live", f"stored record {recorded.index} does not replay: {exc!r}")
            while at < len(pending) and pending[at].index <= recorded.index:
                ack = pending[at]
                at += 1
                self.checks["acked_in_log"] += 1
                stored = AckedRecord(recorded.index, recorded.stream, recorded.version, recorded.time, encode_event(recorded.event))
                if ack != stored:
                    self.fail("acked_in_log", f"acknowledged record {ack.index} ({ack.stream} v{ack.version}) differs in the log")
            waiting = self._expectations.get(recorded.stream)
            if waiting:
                self._match_expectations(waiting, recorded)
        if at < len(pending):
            ack = pending[at]
            self.fail("acked_in_log", f"acknowledged record {ack.index} ({ack.stream} v{ack.version}) missing from the log")
        for stream, waiting in self._expectations.items():
            for expectation in waiting:
                if expectation.hi <= state.last_index:
                    self.fail("acked_commands_in_log", f"{expectation.what}: no {expectation.event_type} in {stream} by {expectation.hi}")
        return touched

    def _match_expectations(self, waiting: list[Expectation], recorded: ev.Recorded) -> None:
        event = recorded.event
        name = type(event).__name__
        for expectation in list(waiting):
            if (
                expectation.event_type == name
                and expectation.lo < recorded.index <= expectation.hi
                and all(getattr(event, k, None) == v for k, v in expectation.attrs.items())
            ):
                self.checks["acked_commands_in_log"] += 1
                waiting.remove(expectation)
        if not waiting:
            del self._expectations[recorded.stream]

    def _compare_with_live(self, replayed: ClusterState, label: str, alloc_ids: Iterable[str] | None = None) -> None:
        assert self.model is not None
        self.checks["replay_equals_live"] += 1
        difference = first_state_difference(self.model.state, replayed, alloc_ids)
        if difference is not None:
            self.fail("replay_equals_live", f"{label}: {difference}")

    def _sweep(self, touched: set[str]) -> list[str]:
        """The allocations a periodic check compares: those just touched and the next slice of all."""
        order = list(self.replayed.allocs)
        size = -(-len(order) // SWEEP_FRACTION)
        start = self._sweep_at % len(order) if order else 0
        self._sweep_at = start + size
        chosen = dict.fromkeys(sorted(touched))
        chosen.update(dict.fromkeys(order[start : start + size]))
        return list(chosen)

    def verify_replay(self, log: EventLog, acked: Sequence[AckedRecord], *, everything: bool = False) -> None:
        """Advance the replay of the stored log and compare it with the live model.

        The replayed state is a fresh ``ClusterState`` fed only ``log.iter_records()``, advanced
        from where the last check stopped. Every check compares the non-allocation tables whole,
        the allocations changed since the last check, and a sweeping 1/8 of the rest;
        ``everything`` compares every allocation (the end of the run). Acknowledged records and
        HTTP commands up to the replayed index must be in the log.
        """

        def check() -> None:
            fresh_acks = acked[self._acked_checked :]
            self._acked_checked = len(acked)
            touched = self._replay_into(self.replayed, log.iter_records(after=self.replayed.last_index), fresh_acks)
            chosen = None if everything else self._sweep(touched)
            self._compare_with_live(self.replayed, "replay of the stored log differs from the live state", chosen)
            if everything:
                self._compare_shadow(self.replayed, "end of run")

        self._guard(check)

    def _compare_shadow(self, replayed: ClusterState, label: str) -> None:
        self.checks["recovery_lost_nothing"] += 1
        difference = first_state_difference(self.shadow, replayed)
        if difference is not None:
            self.fail("recovery_lost_nothing", f"{label}: committed state missing from the log: {difference}")

    def verify_from_scratch(self, log: EventLog, acked: Sequence[AckedRecord], label: str) -> None:
        """Replay the whole stored log into a fresh state: it must equal the live model and the shadow.

        Run after every agent recovery: nothing committed before the crash may be lost, and
        every record acknowledged before it must be in the log, byte for byte.
        """

        def check() -> None:
            fresh = ClusterState()
            self._replay_into(fresh, log.iter_records(), acked)
            self._acked_checked = len(acked)
            self._compare_with_live(fresh, f"{label}: full replay differs from the live state")
            self._compare_shadow(fresh, label)
            self.replayed = fresh

        self._guard(check)

    def check_now(self, invariant: str, ok: bool, detail: str) -> None:
        """A one-off check from the harness (unexpected 500s, leaked watches)."""

        def check() -> None:
            self.checks[invariant] += 1
            if not ok:
                self.fail(invariant, detail)

        self._guard(check)

    # --- blocking queries -------------------------------------------------------------------------

    def check_blocking(
        self, key: str, min_index: int, returned: int, sent_at: float, answered_at: float, answered_wall_ns: int
    ) -> None:
        """One blocking answer: it must come as soon as a change passes ``min_index`` and miss none.

        ``key`` is ``alloc:<id>`` or ``table:allocs``. A change committed strictly before the answer
        must be covered by the returned index; the first change after ``min_index`` must wake the
        reader at the moment it commits (or at once, if it was already committed when asked).
        """

        def check() -> None:
            changes = self.table_changes if key == ALLOC_TABLE_KEY else self.alloc_changes.get(key[6:], [])
            self.waits_ms.append(round((answered_at - sent_at) * 1000, 3))
            first = bisect.bisect_right(changes, min_index)
            if first == len(changes):
                return
            commit_times = self.commit_times
            first_change = changes[first]
            self.checks["blocking_prompt_wakeup"] += 1
            if answered_at > max(sent_at, commit_times[first_change]) + 1e-9:
                self.fail(
                    "blocking_prompt_wakeup",
                    f"{key} blocked at index {min_index} answered {answered_at - commit_times[first_change]:.3f}s after change {first_change}",
                )
            seen = bisect.bisect_left(changes, answered_at, key=lambda i: commit_times[i]) - 1
            self.checks["blocking_no_missed_change"] += 1
            if seen >= first and returned < changes[seen]:
                self.fail(
                    "blocking_no_missed_change",
                    f"{key} blocked at index {min_index} returned {returned}, missing change {changes[seen]}",
                )
            if returned > min_index and commit_times[first_change] >= sent_at:
                self.latencies_ms.append(round((answered_wall_ns - self.record_times[first_change]) / 1e6, 3))

        self._guard(check)
