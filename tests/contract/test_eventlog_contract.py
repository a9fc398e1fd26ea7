"""One contract suite, run against every event-log adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from allocsvc.domain import events as ev
from allocsvc.errors import VersionConflictError
from allocsvc.store.log import EventLog, StreamWrite
from allocsvc.store.memory import MemoryEventLog
from allocsvc.store.sqlite import INLINE_COMMIT_BUDGET, open_sqlite_log


@asynccontextmanager
async def memory_log(_: Path) -> AsyncIterator[EventLog]:
    yield MemoryEventLog()


@asynccontextmanager
async def sqlite_log(tmp: Path) -> AsyncIterator[EventLog]:
    async with open_sqlite_log(tmp / "log.db") as log:
        yield log


ADAPTERS = [pytest.param(memory_log, id="memory"), pytest.param(sqlite_log, id="sqlite")]


def _task_events(n: int, task: str = "web") -> list[ev.Event]:
    return [ev.TaskSetupRan(task=task, message=f"step {i}") for i in range(n)]


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_append_assigns_gap_free_increasing_indexes(adapter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with adapter(tmp_path) as log:
        first = await log.append([StreamWrite("alloc/a", 0, _task_events(3))], time=10)
        second = await log.append([StreamWrite("alloc/b", 0, _task_events(2))], time=11)
        assert [r.index for r in first + second] == [1, 2, 3, 4, 5]
        assert [r.version for r in first] == [1, 2, 3]
        assert log.last_index == 5
        assert [r.index for r in log.iter_records()] == [1, 2, 3, 4, 5]
        assert [r.index for r in log.iter_records(after=3)] == [4, 5]


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_expected_version_conflict_commits_nothing(adapter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with adapter(tmp_path) as log:
        await log.append([StreamWrite("alloc/a", 0, _task_events(1))], time=1)
        with pytest.raises(VersionConflictError):
            await log.append(
                [StreamWrite("alloc/b", 0, _task_events(1)), StreamWrite("alloc/a", 0, _task_events(1))], time=2
            )
        assert log.last_index == 1
        assert log.stream_version("alloc/b") == 0
        records = await log.append([StreamWrite("alloc/b", 0, _task_events(1))], time=3)
        assert records[0].index == 2


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_listener_sees_batches_in_index_order(adapter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with adapter(tmp_path) as log:
        seen: list[int] = []

        def listener(records: Sequence[ev.Recorded]) -> None:
            seen.extend(r.index for r in records)

        log.subscribe(listener)

        async def writer(stream: str) -> None:
            for _ in range(10):
                version = log.stream_version(stream)
                await log.append([StreamWrite(stream, version, _task_events(2))], time=5)

        async with trio.open_nursery() as nursery:
            for i in range(16):
                nursery.start_soon(writer, f"alloc/{i}")
        assert seen == list(range(1, 321))
        per_stream: dict[str, list[int]] = {}
        for r in log.iter_records():
            per_stream.setdefault(r.stream, []).append(r.version)
        assert all(v == list(range(1, 21)) for v in per_stream.values())


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_events_round_trip_unchanged(adapter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    events: list[ev.Event] = [
        ev.TaskTerminated(task="web", exit_code=3, signal=9, message="boom \u2028 \u00e9"),
        ev.AllocStopRequested(eval_id="e", reschedule=True),
    ]
    async with adapter(tmp_path) as log:
        await log.append([StreamWrite("alloc/a", 0, events)], time=42)
        assert [r.event for r in log.iter_records()] == events
        assert all(r.time == 42 for r in log.iter_records())


async def test_sqlite_group_commit_shares_transactions(tmp_path: Path) -> None:
    async with open_sqlite_log(tmp_path / "log.db") as log:

        async def one(i: int) -> None:
            await log.append([StreamWrite(f"alloc/{i}", 0, _task_events(1))], time=1)

        async with trio.open_nursery() as nursery:
            for i in range(64):
                nursery.start_soon(one, i)
        assert log.last_index == 64
        assert log.commits < 64


async def test_sqlite_reopen_keeps_versions(tmp_path: Path) -> None:
    async with open_sqlite_log(tmp_path / "log.db") as log:
        await log.append([StreamWrite("alloc/a", 0, _task_events(2))], time=1)
    async with open_sqlite_log(tmp_path / "log.db") as log:
        assert log.last_index == 2
        assert log.stream_version("alloc/a") == 2
        with pytest.raises(VersionConflictError):
            await log.append([StreamWrite("alloc/a", 1, _task_events(1))], time=1)


async def test_sqlite_lone_append_on_a_fast_disk_commits_on_the_loop_thread(tmp_path: Path) -> None:
    async with open_sqlite_log(tmp_path / "log.db") as log:
        log.commit_seconds = 0.0
        await log.append([StreamWrite("alloc/a", 0, _task_events(1))], time=1)
        assert (log.commits, log.inline_commits) == (1, 1)
        assert log.commit_seconds > 0.0


async def test_sqlite_slow_disk_and_company_go_to_the_writer_thread(tmp_path: Path) -> None:
    async with open_sqlite_log(tmp_path / "log.db") as log:
        log.commit_seconds = INLINE_COMMIT_BUDGET * 10  # a disk measured as slow
        await log.append([StreamWrite("alloc/a", 0, _task_events(1))], time=1)
        assert (log.commits, log.inline_commits) == (1, 0)
        assert log.commit_seconds < INLINE_COMMIT_BUDGET * 10  # the threaded commit was measured too

        log.commit_seconds = 0.0

        async def one(i: int) -> None:
            await log.append([StreamWrite(f"alloc/{i}", 0, _task_events(1))], time=1)

        async with trio.open_nursery() as nursery:  # appenders sharing a batch keep the loop free
            for i in range(64):
                nursery.start_soon(one, i)
        assert log.last_index == 65
        assert log.inline_commits < log.commits - 1
        assert [r.index for r in log.iter_records()] == list(range(1, 66))
