"""The batch fold (``ClusterState.apply_all``) equals ``apply`` record by record.

``apply_all`` folds allocation records into mutable working copies and builds the Nomad structs
once per batch; ``apply`` (through ``lifecycle.evolve``) is the reference. Records here need not
follow the lifecycle table (the fold does not check it), so every task event class is folded from
every state, on one- and multi-task allocations, across batch boundaries, re-placements, cluster
records in between, and failing records.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from allocsvc.domain import events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.display import TASK_EVENT_BUILDERS
from allocsvc.domain.lifecycle import (
    _BULK_TASK_FOLD,
    _COUNTS_RESTART,
    _FAILS_TASK,
    BULK_FOLDS,
    TASK_RULES,
    AllocWork,
)
from allocsvc.domain.model import Evaluation, Namespace
from allocsvc.gocompat import SECOND
from allocsvc.store.sqlite import iter_file_records

ALLOCS = ("a1", "a2", "a3")
TASKS = ("web", "side", "log")
T0 = 1_700_000_000 * SECOND
ROOT = Path(__file__).resolve().parents[2]

texts = st.sampled_from(["", "exit status 1", "Restart within policy", 'say "hi"\n', "Building Task Directory"])
ints = st.sampled_from([0, 1, 2, 137, 5 * SECOND, 15 * SECOND + 1])


def task_event(task: str) -> st.SearchStrategy[ev.Event]:
    return st.one_of(
        st.builds(ev.TaskReceived, task=st.just(task)),
        st.builds(ev.TaskSetupRan, task=st.just(task), message=texts),
        st.builds(ev.TaskDriverMessaged, task=st.just(task), message=texts),
        st.builds(ev.TaskStarted, task=st.just(task)),
        st.builds(ev.TaskDriverFailed, task=st.just(task), error=texts),
        st.builds(ev.TaskSignaled, task=st.just(task), signal=st.sampled_from(["SIGHUP", ""])),
        st.builds(ev.TaskRestartSignaled, task=st.just(task), reason=texts),
        st.builds(ev.TaskKilling, task=st.just(task), kill_timeout=ints, reason=texts),
        st.builds(ev.TaskShutdownDelayWaited, task=st.just(task), delay=ints),
        st.builds(ev.TaskShutdownDelaySkipped, task=st.just(task), delay=ints),
        st.builds(
            ev.TaskTerminated, task=st.just(task), exit_code=ints, signal=ints, message=texts, oom_killed=st.booleans()
        ),
        st.builds(ev.TaskKilled, task=st.just(task), error=texts),
        st.builds(ev.TaskRestarting, task=st.just(task), delay=ints, reason=texts, attempts=ints, window_start=ints),
        st.builds(ev.TaskNotRestarting, task=st.just(task), reason=texts, attempts=ints, window_start=ints),
        st.builds(ev.TaskCompleted, task=st.just(task), attempts=ints, window_start=ints),
        st.builds(ev.TaskSiblingFailed, task=st.just(task), sibling=texts),
        st.builds(ev.TaskRestoreFailed, task=st.just(task), message=texts),
    )


alloc_events: st.SearchStrategy[ev.Event] = st.one_of(
    st.builds(ev.AllocStopRequested, eval_id=st.just("e"), migrate=st.booleans(), reschedule=st.booleans()),
    st.builds(
        ev.AllocDesiredStatusChanged,
        desired_status=st.sampled_from(["stop", "evict"]),
        description=texts,
        next_allocation=st.sampled_from(["", "a9"]),
    ),
    st.builds(
        ev.ExecSessionRecorded, task=st.sampled_from(TASKS), command=st.just(("sh",)), tty=st.booleans(),
        accessor_id=st.just("acc"), exit_code=ints, started_at=ints,
    ),
)  # fmt: skip

# (stream, event): task events dominate, as in real logs
steps = st.one_of(
    *[
        st.tuples(st.just(f"alloc/{a}"), st.sampled_from(TASKS).flatmap(task_event))
        for a in ALLOCS
        for _ in range(4)
    ],
    st.tuples(st.sampled_from([f"alloc/{a}" for a in ALLOCS]), alloc_events),
    st.tuples(st.just("place"), st.sampled_from(ALLOCS)),
    st.tuples(
        st.just("namespace/prod"),
        st.builds(ev.NamespaceUpserted, namespace=st.just(Namespace(Name="prod", Description="p"))),
    ),
    st.tuples(
        st.just("eval/e"),
        st.builds(ev.EvalCreated, eval=st.just(Evaluation(ID="e", Namespace="default", Status="pending"))),
    ),
)


def placement(alloc_id: str, tasks: tuple[str, ...]) -> ev.AllocPlaced:
    return ev.AllocPlaced(
        alloc_id=alloc_id, namespace="default", eval_id="e", name=f"j.g[{alloc_id}]", node_id="n",
        node_name="n", job_id="j", job_version=0, task_group="g", tasks=tasks,
    )  # fmt: skip


def make_log(raw: list[tuple[str, object]], task_counts: list[int], gaps: list[int]) -> list[ev.Recorded]:
    """Records: every allocation placed first (with 1 to 3 tasks), then the generated steps."""
    records: list[ev.Recorded] = []
    versions: dict[str, int] = {}
    time = T0

    def add(stream: str, event: ev.Event) -> None:
        nonlocal time
        time += gaps[len(records) % len(gaps)]
        versions[stream] = versions.get(stream, 0) + 1
        records.append(
            ev.Recorded(index=len(records) + 1, stream=stream, version=versions[stream], time=time, event=event)
        )

    for alloc_id, n in zip(ALLOCS, task_counts, strict=True):
        add(f"alloc/{alloc_id}", placement(alloc_id, TASKS[:n]))
    for stream, item in raw:
        if stream == "place":
            assert isinstance(item, str)
            add(f"alloc/{item}", placement(item, TASKS[: task_counts[ALLOCS.index(item)]]))
            continue
        assert isinstance(item, ev.Event)
        if isinstance(item, ev.TaskEventBase):
            n = task_counts[ALLOCS.index(stream[len("alloc/") :])]
            if item.task not in TASKS[:n]:  # keep to the allocation's tasks (unknown tasks: see below)
                item = msgspec.structs.replace(item, task=TASKS[0])
        add(stream, item)
    return records


def one_by_one(records: list[ev.Recorded], state: ClusterState | None = None) -> ClusterState:
    state = state or ClusterState()
    for recorded in records:
        state.apply(recorded)
    return state


def assert_same(bulk: ClusterState, reference: ClusterState) -> None:
    assert bulk == reference
    assert list(bulk.allocs) == list(reference.allocs)
    # what clients see, byte for byte (dict order included)
    assert msgspec.json.encode(bulk.allocs) == msgspec.json.encode(reference.allocs)


@contextmanager
def generic_task_folds() -> Iterator[None]:
    """Fold every task event with the table-driven ``fold_task`` (not its specialised copies)."""
    saved = dict(BULK_FOLDS)
    BULK_FOLDS.update(dict.fromkeys(_BULK_TASK_FOLD, AllocWork.fold_task))
    try:
        yield
    finally:
        BULK_FOLDS.update(saved)


log_args = (
    st.lists(steps, max_size=120),
    st.lists(st.integers(1, 3), min_size=3, max_size=3),
    st.lists(st.sampled_from([0, 1, 999, SECOND, 1_234_567_891]), min_size=1, max_size=8),
)


@settings(max_examples=150)
@given(*log_args, st.data())
def test_apply_all_equals_apply_per_record(
    raw: list[tuple[str, object]], task_counts: list[int], gaps: list[int], data: st.DataObject
) -> None:
    records = make_log(raw, task_counts, gaps)
    reference = one_by_one(records)

    whole = ClusterState()
    assert whole.apply_all(records) == len(records)
    assert_same(whole, reference)
    generic = ClusterState()
    with generic_task_folds():
        generic.apply_all(records)
    assert_same(generic, reference)

    # batches of any size, each starting from the state the previous ones left
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=6)))
    batched = ClusterState()
    for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
        batched.apply_all(records[start:end])
    assert_same(batched, reference)

    # a batch after a record-by-record prefix (startup: snapshot, then the tail)
    split = data.draw(st.integers(0, len(records)))
    tail = one_by_one(records[:split])
    tail.apply_all(iter(records[split:]))
    assert_same(tail, reference)


@given(*log_args, st.integers(0, 200), st.sampled_from(["unknown task", "unknown alloc", "stale index"]))
def test_a_failing_record_leaves_the_same_state(
    raw: list[tuple[str, object]], task_counts: list[int], gaps: list[int], at: int, failure: str
) -> None:
    records = make_log(raw, task_counts, gaps)
    at = min(at, len(records))
    last = records[at - 1] if at else None
    index = last.index + 1 if last else 1
    bad = {
        "unknown task": ev.Recorded(
            index=index, stream="alloc/a1", version=99, time=T0, event=ev.TaskStarted(task="nope")
        ),
        "unknown alloc": ev.Recorded(
            index=index, stream="alloc/zz", version=1, time=T0, event=ev.TaskStarted(task="web")
        ),
        "stale index": ev.Recorded(
            index=max(index - 1, 0), stream="alloc/a1", version=99, time=T0, event=ev.TaskStarted(task="web")
        ),
    }[failure]
    log = [*records[:at], bad, *records[at:]]
    reference = ClusterState()
    with pytest.raises((KeyError, ValueError)) as expected:
        one_by_one(log, reference)
    bulk = ClusterState()
    with pytest.raises(expected.type):
        bulk.apply_all(log)
    assert_same(bulk, reference)


def test_fails_task_and_restart_tables_match_the_builders() -> None:
    samples: dict[type[ev.TaskEventBase], ev.TaskEventBase] = {
        ev.TaskReceived: ev.TaskReceived(task="t"),
        ev.TaskSetupRan: ev.TaskSetupRan(task="t", message="m"),
        ev.TaskDriverMessaged: ev.TaskDriverMessaged(task="t", message="m"),
        ev.TaskStarted: ev.TaskStarted(task="t"),
        ev.TaskDriverFailed: ev.TaskDriverFailed(task="t", error="e"),
        ev.TaskSignaled: ev.TaskSignaled(task="t", signal="SIGHUP"),
        ev.TaskRestartSignaled: ev.TaskRestartSignaled(task="t", reason="r"),
        ev.TaskKilling: ev.TaskKilling(task="t", kill_timeout=SECOND),
        ev.TaskShutdownDelayWaited: ev.TaskShutdownDelayWaited(task="t", delay=SECOND),
        ev.TaskShutdownDelaySkipped: ev.TaskShutdownDelaySkipped(task="t", delay=SECOND),
        ev.TaskTerminated: ev.TaskTerminated(task="t", exit_code=1),
        ev.TaskKilled: ev.TaskKilled(task="t"),
        ev.TaskRestarting: ev.TaskRestarting(task="t", delay=SECOND),
        ev.TaskNotRestarting: ev.TaskNotRestarting(task="t", reason="r"),
        ev.TaskSiblingFailed: ev.TaskSiblingFailed(task="t", sibling="s"),
        ev.TaskRestoreFailed: ev.TaskRestoreFailed(task="t", message="m"),
    }
    assert set(samples) == set(TASK_EVENT_BUILDERS)
    assert set(TASK_EVENT_BUILDERS) | {ev.TaskCompleted} == set(TASK_RULES)
    for kind, build in TASK_EVENT_BUILDERS.items():
        built = build(samples[kind], T0)
        assert built.FailsTask == (kind in _FAILS_TASK), kind
        assert (built.Type == "Restarting") == (kind in _COUNTS_RESTART), kind


def test_bench_log_replays_to_the_record_by_record_state(tmp_path: Path) -> None:
    """The benchmark's generated log (restart cycles, signals, stops), read back from SQLite."""
    spec = importlib.util.spec_from_file_location("bench_replay", ROOT / "scripts" / "bench_replay.py")
    assert spec is not None
    assert spec.loader is not None
    bench_replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_replay)

    path = tmp_path / "log.db"
    bench_replay.generate(path, 6000, allocs_per_job=3, restarts_mean=8.0, seed=random.Random(7).randrange(99))
    records = list(iter_file_records(path))
    assert_same(bench_replay.full_replay(path), one_by_one(records))
