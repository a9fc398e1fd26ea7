"""Snapshots: round trip equals full replay, bad snapshots fall back to a full replay, startup
replays only the tail, the service writes them periodically, and the format never drops state."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
import trio

from allocsvc.config import AgentConfig
from allocsvc.domain import events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.model import Namespace
from allocsvc.service import log_path, open_service
from allocsvc.store.snapshot import (
    HEADER_SIZE,
    STATE_FORMAT,
    SnapshotError,
    _container_header,
    anchor_of,
    copy_state,
    decode_snapshot,
    encode_snapshot,
    list_snapshots,
    read_snapshot,
    restore_state,
    snapshot_dir,
    write_snapshot,
)
from allocsvc.store.sqlite import iter_file_records
from allocsvc.tools.logfile import LogFile
from tests.helpers import example_job, job_from, wait_until
from tests.log_fixtures import Built, build_data_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A data dir written by a real service, without snapshots."""
    return build_data_dir(tmp_path_factory.mktemp("snapshots") / "data")


@pytest.fixture
def data(built: Built, tmp_path: Path) -> Path:
    return built.copy_to(tmp_path / "data")


def full_replay(data_dir: Path, until: int | None = None) -> ClusterState:
    state = ClusterState()
    for recorded in iter_file_records(log_path(data_dir)):
        if until is not None and recorded.index > until:
            break
        state.apply(recorded)
    return state


def snapshot_at(data_dir: Path, index: int, state: ClusterState | None = None) -> Path:
    """Write a snapshot of the log at ``index`` (or of ``state``, anchored at ``index``)."""
    record = next(r for r in iter_file_records(log_path(data_dir)) if r.index == index)
    return write_snapshot(
        snapshot_dir(data_dir), state or full_replay(data_dir, index), anchor_of(record), keep=10
    )


def test_round_trip_equals_full_replay_including_acl_state(data: Path, built: Built) -> None:
    state = full_replay(data)
    assert state.acl.tokens  # the log has ACL history
    assert state.acl.policies
    assert state.acl.bootstrap_index
    assert len(state.jobs) == 2
    assert any(len(r.versions) for r in state.jobs.values())
    path = snapshot_at(data, built.last_index, state)
    loaded = read_snapshot(path)
    assert loaded == state
    assert loaded is not state
    assert loaded.acl.token_by_secret("nope") is None  # a working ACLState, private index included
    assert vars(loaded.acl) == vars(state.acl)
    assert list(loaded.allocs) == list(state.allocs)  # insertion order kept
    assert path.name == f"state-{built.last_index:012d}.msgpack"


def test_equality_is_exact(data: Path) -> None:
    state = full_replay(data)
    other = copy_state(state)
    assert other == state
    some_alloc = next(iter(other.allocs))
    other.allocs[some_alloc] = msgspec.structs.replace(other.allocs[some_alloc], version=999)
    assert other != state
    other = copy_state(state)
    other.acl.bootstrap_index += 1
    assert other != state


def test_streamed_payload_is_the_one_msgpack_encoding(data: Path) -> None:
    """The snapshot payload is written in parts; joined, they are exactly msgspec's encoding."""
    state = full_replay(data)
    assert len(state.allocs) > 0
    parts = list(STATE_FORMAT.encode_parts(state))
    assert len(parts) > len(STATE_FORMAT.fields)
    assert b"".join(parts) == msgspec.msgpack.encode(STATE_FORMAT.encode(state))
    for count in (0, 1, 15, 16, 65_535, 65_536):
        items = msgspec.msgpack.encode([None] * count)
        assert _container_header(0x90, 0xDC, count) == items[: len(items) - count]
        mapping = msgspec.msgpack.encode(dict.fromkeys(range(count)))
        assert mapping.startswith(_container_header(0x80, 0xDE, count))
    _, decoded = decode_snapshot(encode_snapshot(state, anchor=0))
    assert decoded == state


def test_copy_is_independent_of_later_folds(data: Path, built: Built) -> None:
    half = built.last_index // 2
    live = full_replay(data, half)
    frozen = copy_state(live)
    expected = read_snapshot(snapshot_at(data, half))
    for recorded in iter_file_records(log_path(data)):
        if recorded.index > half:
            live.apply(recorded)
    assert frozen == expected
    assert live != frozen


async def test_corrupt_snapshot_warns_and_falls_back_to_full_replay(
    data: Path, built: Built, caplog: pytest.LogCaptureFixture
) -> None:
    path = snapshot_at(data, built.last_index - 5)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="allocsvc.snapshot"):
        restored = restore_state(LogFile(data), snapshot_dir(data))
    assert restored.snapshot is None
    assert restored.replayed == built.last_index
    assert restored.rejected == [(path, "payload checksum mismatch")]
    assert restored.state == full_replay(data)
    messages = [r.getMessage() for r in caplog.records]
    assert f"ignoring snapshot {path}: payload checksum mismatch" in messages
    assert f"no usable snapshot; replayed the whole log ({built.last_index} events)" in messages

    async with open_service(AgentConfig(data_dir=str(data))) as service:  # the agent starts all the same
        assert service.model.state.allocs.keys() == restored.state.allocs.keys()


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage header", "bad payload", "wrong log", "past the end", "older format"],
)
def test_every_kind_of_bad_snapshot_is_ignored(data: Path, built: Built, damage: str) -> None:
    index = built.last_index - 3
    path = snapshot_at(data, index)
    blob = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage header":
        path.write_bytes(b"x" * HEADER_SIZE + blob[HEADER_SIZE:])
    elif damage == "bad payload":
        state = full_replay(data, index)
        bogus = encode_snapshot(
            state, anchor_of(next(r for r in iter_file_records(log_path(data)) if r.index == index))
        )
        path.write_bytes(bogus[:HEADER_SIZE] + bogus[HEADER_SIZE:].replace(b"x", b"y"))
    elif damage == "wrong log":
        path.unlink()
        write_snapshot(snapshot_dir(data), full_replay(data, index), anchor=12345)
    elif damage == "past the end":
        path.rename(path.with_name(f"state-{built.last_index + 50:012d}.msgpack"))
    elif damage == "older format":
        path.write_bytes(blob[:8] + (7).to_bytes(4, "little") + blob[12:])
    restored = restore_state(LogFile(data), snapshot_dir(data))
    assert restored.snapshot is None
    assert len(restored.rejected) == 1
    assert restored.state == full_replay(data)


async def test_startup_loads_the_snapshot_and_replays_only_the_tail(
    data: Path, built: Built, caplog: pytest.LogCaptureFixture
) -> None:
    index = built.last_index - 6
    # a snapshot with a marker the log never wrote: if startup shows it, startup used the snapshot
    marked = full_replay(data, index)
    marked.namespaces["from-snapshot"] = Namespace(Name="from-snapshot", CreateIndex=index, ModifyIndex=index)
    path = snapshot_at(data, index, marked)
    with caplog.at_level(logging.INFO, logger="allocsvc.snapshot"):
        async with open_service(AgentConfig(data_dir=str(data))) as service:
            state = service.model.state
            assert "from-snapshot" in state.namespaces
            assert state.last_index >= built.last_index
            del state.namespaces["from-snapshot"]
            assert state == full_replay(data, state.last_index)
    assert f"restored state from snapshot {path.name} and replayed 6 events after it" in [
        r.getMessage() for r in caplog.records
    ]


async def test_older_valid_snapshot_is_used_when_the_newest_is_bad(data: Path, built: Built) -> None:
    older = snapshot_at(data, built.last_index - 10)
    newer = snapshot_at(data, built.last_index - 2)
    newer.write_bytes(newer.read_bytes()[:-1])
    restored = restore_state(LogFile(data), snapshot_dir(data))
    assert restored.snapshot == older
    assert restored.replayed == 10
    assert [p for p, _ in restored.rejected] == [newer]
    assert restored.state == full_replay(data)


async def test_service_writes_periodic_snapshots_that_equal_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = AgentConfig(data_dir=str(data), snapshot_every=8)
    async with open_service(config) as service:
        for i in range(6):
            await service.scheduler.register(job_from(example_job(f"job{i}", count=2, Config={})))
        await wait_until(service, lambda: len(service.model.state.allocs) == 12)
        assert service.snapshotter is not None
        with trio.fail_after(30):  # written in a worker thread once 8 events have committed
            await service.snapshotter.wait_written(service.model.state.last_index - 7)
    snapshots = list_snapshots(snapshot_dir(data))
    assert len(snapshots) == 2  # only the newest two are kept
    assert not list(snapshot_dir(data).glob(".*.tmp"))
    for index, path in snapshots:
        assert read_snapshot(path) == full_replay(data, index)
    newest = snapshots[0][0]
    async with open_service(config) as service:  # restart: loads the newest, replays the rest
        assert service.model.state == full_replay(data, service.model.state.last_index)
        assert service.model.state.last_index >= newest


async def test_first_start_on_a_long_log_writes_a_snapshot(data: Path, built: Built) -> None:
    assert not list_snapshots(snapshot_dir(data))
    async with open_service(AgentConfig(data_dir=str(data), snapshot_every=5)) as service:
        assert service.snapshotter is not None
        with trio.fail_after(30):
            await service.snapshotter.wait_written(built.last_index)
    (index, path), *_ = list_snapshots(snapshot_dir(data))
    assert index >= built.last_index
    assert read_snapshot(path) == full_replay(data, index)


async def test_negative_snapshot_every_disables_snapshots(data: Path) -> None:
    async with open_service(AgentConfig(data_dir=str(data), snapshot_every=-1)) as service:
        assert service.snapshotter is None
        await service.scheduler.register(job_from(example_job("more", count=3, Config={})))
    assert not snapshot_dir(data).exists()


def test_the_format_refuses_state_it_does_not_know(data: Path) -> None:
    state = full_replay(data)
    state.extra = {"new": 1}  # type: ignore[attr-defined]
    with pytest.raises(SnapshotError, match=r"ClusterState attributes \['extra'\] are not covered"):
        encode_snapshot(state, 0)
    del state.extra  # type: ignore[attr-defined]
    state.acl.roles = {}  # type: ignore[attr-defined]
    with pytest.raises(SnapshotError, match=r"ACLState attributes \['roles'\] are not covered"):
        encode_snapshot(state, 0)
    del state.acl.roles  # type: ignore[attr-defined]
    blob = encode_snapshot(state, 0)
    assert decode_snapshot(blob)[1] == state


def test_snapshot_of_every_event_type_round_trips(data: Path) -> None:
    """Every index of the log: snapshot, load, compare (the fold's whole vocabulary is covered)."""
    records = list(iter_file_records(log_path(data)))
    assert {type(r.event) for r in records} >= {ev.AllocPlaced, ev.TaskNotRestarting, ev.AllocStopRequested}
    state = ClusterState()
    for recorded in records:
        state.apply(recorded)
        assert decode_snapshot(encode_snapshot(state, anchor_of(recorded)))[1] == state


async def test_a_failing_snapshot_never_takes_the_agent_down(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot_dir(data).write_text("not a directory")  # every write fails
    with caplog.at_level(logging.ERROR, logger="allocsvc.snapshot"):
        async with open_service(AgentConfig(data_dir=str(data), snapshot_every=3)) as service:
            await service.scheduler.register(job_from(example_job("after", count=2, Config={})))
            await wait_until(
                service,
                lambda: sum(a.alloc.JobID == "after" for a in service.model.state.allocs.values()) == 2,
            )
            assert service.snapshotter is not None
            assert service.snapshotter.written_index == 0
    failures = [r for r in caplog.records if r.getMessage().startswith("snapshot at index")]
    assert failures
    exc_info = failures[0].exc_info
    assert exc_info is not None
    assert "cannot write" in str(exc_info[1])
