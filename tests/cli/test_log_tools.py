"""``allocsvc log …`` on real data dirs written by a real service run, intact and corrupted."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest
import trio

from allocsvc.cli import main
from allocsvc.config import AgentConfig
from allocsvc.domain.events import Event, Recorded
from allocsvc.service import open_service
from allocsvc.store.codec import all_event_types, checksum, encode_event
from allocsvc.store.snapshot import (
    anchor_of,
    copy_state,
    list_snapshots,
    snapshot_dir,
    write_snapshot,
)
from allocsvc.store.sqlite import iter_file_records
from allocsvc.tools.logfile import LogFile
from allocsvc.tools.progress import Progress
from allocsvc.tools.replay import state_at
from tests.helpers import example_job, job_from
from tests.log_fixtures import Built, build_data_dir

ALLOCSVC = str(Path(sys.executable).with_name("allocsvc"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One populated data dir (with periodic snapshots) shared by the read-only tests."""
    return build_data_dir(tmp_path_factory.mktemp("logtools") / "data", snapshot_every=10)


@pytest.fixture
def damaged(built: Built, tmp_path: Path) -> Path:
    """A private copy of the data dir that a test may corrupt."""
    return built.copy_to(tmp_path / "data")


def run(capsys: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    """Run the CLI in-process; returns (exit code, stdout bytes, stderr text)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.decode()


def records(path: Path) -> list[Recorded]:
    return list(iter_file_records(path))


def sql(db: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


# --- info -----------------------------------------------------------------------------------------


def test_info_counts_types_streams_and_sizes(
    built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = run(capsysbinary, "log", "info", "--data-dir", str(built.data_dir), "--json")
    assert code == 0
    info = json.loads(out)
    logged = records(built.log)
    assert info["events"] == len(logged) == built.last_index
    assert (info["first_index"], info["last_index"]) == (1, built.last_index)
    assert info["events_by_type"] == dict(Counter(type(r.event).__name__ for r in logged))
    assert info["streams_by_kind"]["alloc"] == 4  # two web allocs, the replacement, flaky
    assert info["streams_by_kind"]["acl"] == 3
    assert info["streams"] == len({r.stream for r in logged})
    assert info["bytes_on_disk"]["allocsvc.db"] == built.log.stat().st_size
    assert info["total_bytes"] >= built.log.stat().st_size + info["bytes_on_disk"]["snapshots"]
    assert [s["index"] for s in info["snapshots"]] == sorted(
        i for i, _ in list_snapshots(snapshot_dir(built.data_dir))
    )

    code, text, _ = run(capsysbinary, "log", "info", "--data-dir", str(built.data_dir))
    assert code == 0
    assert f"Index range    = 1 - {built.last_index}" in text.decode()
    assert "TaskNotRestarting" in text.decode()


def test_missing_log_is_a_clear_error(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    for command in ("info", "verify", "replay", "export"):
        code, out, err = run(capsysbinary, "log", command, "--data-dir", str(tmp_path / "nope"))
        assert (code, out) == (1, b"")
        assert err == f"Error: no event log at {tmp_path / 'nope' / 'allocsvc.db'}\n"


# --- verify ---------------------------------------------------------------------------------------


def test_verify_passes_on_a_real_log_as_a_subprocess(built: Built) -> None:
    async def go() -> subprocess.CompletedProcess[bytes]:
        return await trio.run_process(
            [ALLOCSVC, "log", "verify", "--data-dir", str(built.data_dir)], capture_stdout=True, check=False
        )

    result = trio.run(go)
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith(f"OK: {built.last_index} events in ")
    assert "2 snapshot(s) equal the replayed state" in text


def test_verify_json_report_names_the_checked_snapshots(
    built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = run(capsysbinary, "log", "verify", "--data-dir", str(built.data_dir), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["problem"] is None
    assert report["checked"] == report["last_index"] == built.last_index
    assert report["snapshots_checked"] == [
        p.name for _, p in sorted(list_snapshots(snapshot_dir(built.data_dir)))
    ]


def verify_fails(capsys: pytest.CaptureFixture[bytes], data_dir: Path) -> dict[str, object]:
    """Run verify twice (text and JSON); both must exit 2 and agree on the first bad position."""
    code, text, _ = run(capsys, "log", "verify", "--data-dir", str(data_dir))
    assert code == 2
    code, out, _ = run(capsys, "log", "verify", "--data-dir", str(data_dir), "--json")
    assert code == 2
    problem: dict[str, object] = json.loads(out)["problem"]
    assert text.decode().startswith(f"FAIL at index {problem['position']}")
    return problem


def test_verify_finds_flipped_bytes(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    target = built.last_index // 2
    db = damaged / "allocsvc.db"
    (data,) = sqlite3.connect(db).execute("SELECT data FROM events WHERE idx = ?", (target,)).fetchone()
    flipped = bytes([data[0], data[1] ^ 0xFF, *data[2:]])
    sql(db, "UPDATE events SET data = ? WHERE idx = ?", (flipped, target))
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"]) == (target, "checksum")


def test_verify_finds_a_deleted_row(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    target = built.last_index - 7
    sql(damaged / "allocsvc.db", "DELETE FROM events WHERE idx = ?", (target,))
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"]) == (target, "index")
    assert problem["message"] == f"index gap: expected {target}, found {target + 1}"


def test_verify_finds_an_event_the_schema_cannot_decode(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    target = 3
    bogus = msgspec.msgpack.encode({"Type": "TaskTeleported", "task": "server"})
    sql(
        damaged / "allocsvc.db",
        "UPDATE events SET data = ?, crc = ? WHERE idx = ?",
        (bogus, checksum(bogus), target),
    )
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"]) == (target, "schema")
    assert "TaskTeleported" in str(problem["message"])


def test_verify_finds_a_stream_version_gap(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    flaky_rows = [r for r in records(built.log) if r.stream == f"alloc/{built.flaky}"]
    target = flaky_rows[4]
    sql(damaged / "allocsvc.db", "UPDATE events SET version = version + 100 WHERE idx = ?", (target.index,))
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"], problem["stream"]) == (
        target.index,
        "version",
        target.stream,
    )
    assert (
        problem["message"]
        == f"stream version {target.version + 100} follows {target.version - 1} (expected {target.version})"
    )


def test_verify_finds_an_event_that_does_not_fold(
    damaged: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # move an allocation's first event (its placement) to a new stream: the next event has no allocation
    db = damaged / "allocsvc.db"
    (idx, stream) = (
        sqlite3.connect(db)
        .execute(
            "SELECT idx, stream FROM events WHERE stream LIKE 'alloc/%' AND version = 1 ORDER BY idx LIMIT 1"
        )
        .fetchone()
    )
    sql(db, "UPDATE events SET stream = ? WHERE idx = ?", (stream.replace("alloc/", "alloc/0"), idx))
    (following,) = (
        sqlite3.connect(db).execute("SELECT MIN(idx) FROM events WHERE stream = ?", (stream,)).fetchone()
    )
    problem = verify_fails(capsysbinary, damaged)
    assert problem["position"] == following  # version 2 after nothing: the version check names it first
    assert problem["check"] == "version"


def test_verify_compares_snapshots_with_the_replayed_state(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log = LogFile(damaged)
    index = built.last_index - 3
    state, _ = state_at(log, index, use_snapshots=False)
    wrong = copy_state(state)
    wrong.namespaces = {
        **wrong.namespaces,
        "ghost": msgspec.structs.replace(wrong.namespaces["default"], Name="ghost"),
    }
    record = next(r for r in iter_file_records(log.path) if r.index == index)
    write_snapshot(log.snapshots, wrong, anchor_of(record), keep=5)
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"]) == (index, "snapshot")
    assert "differs from the replayed state at namespaces['ghost']" in str(problem["message"])


def test_verify_reports_a_corrupt_snapshot_file(
    damaged: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    index, path = list_snapshots(snapshot_dir(damaged))[0]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x55
    path.write_bytes(bytes(data))
    problem = verify_fails(capsysbinary, damaged)
    assert (problem["position"], problem["check"]) == (index, "snapshot")
    assert str(problem["message"]) == f"snapshot {path.name} is unusable: payload checksum mismatch"


# --- replay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("snapshots", [True, False])
def test_replay_prints_exactly_what_the_live_read_served(
    built: Built, snapshots: bool, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert len(built.reads) >= 8
    for read in built.reads:
        argv = [
            "log",
            "replay",
            "--data-dir",
            str(built.data_dir),
            "--until-index",
            str(read.index),
            "--alloc",
            read.alloc_id,
        ]
        code, out, _ = run(capsysbinary, *argv, *([] if snapshots else ["--no-snapshots"]))
        assert code == 0
        assert out == read.body + b"\n", (read.index, read.alloc_id)


def test_replay_prefix_and_all_allocations(built: Built, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    read = built.reads[0]
    code, out, _ = run(capsysbinary, "log", "replay", "--data-dir", str(built.data_dir), "--until-index", str(read.index),
                       "--alloc", read.alloc_id[:8])  # fmt: skip
    assert (code, out) == (0, read.body + b"\n")
    code, out, _ = run(
        capsysbinary, "log", "replay", "--data-dir", str(built.data_dir), "--until-index", str(read.index)
    )
    allocs = json.loads(out)
    assert code == 0
    assert sorted(a["ID"] for a in allocs) == built.web  # the flaky job came later
    assert all(a["Job"]["ID"] == "web" for a in allocs)
    code, out, _ = run(capsysbinary, "log", "replay", "--data-dir", str(built.data_dir))
    assert {a["ID"] for a in json.loads(out)} == {*built.web, built.flaky, built.replacement}


def test_replay_errors(built: Built, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    past = built.last_index + 1
    code, _, err = run(
        capsysbinary, "log", "replay", "--data-dir", str(built.data_dir), "--until-index", str(past)
    )
    assert (code, err) == (
        1,
        f"Error: index {past} is past the end of the log (last index {built.last_index})\n",
    )
    code, _, err = run(capsysbinary, "log", "replay", "--data-dir", str(built.data_dir), "--until-index", "2",
                       "--alloc", built.flaky)  # fmt: skip
    assert code == 1
    assert err == f'Error: No allocation(s) with prefix or id "{built.flaky}" found at index 2\n'


# --- export ---------------------------------------------------------------------------------------


def test_export_jsonl_is_complete_stable_and_round_trips(
    built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = run(capsysbinary, "log", "export", "--format", "jsonl", "--data-dir", str(built.data_dir))
    assert code == 0
    lines = out.splitlines()
    logged = records(built.log)
    assert len(lines) == len(logged)
    union: object = all_event_types()[0]
    for event_type in all_event_types()[1:]:
        union = union | event_type
    for line, record in zip(lines, logged, strict=True):
        obj = json.loads(line)
        assert list(obj) == ["index", "stream", "version", "time", "type", "event"]
        assert (obj["index"], obj["stream"], obj["version"], obj["time"]) == (
            record.index, record.stream, record.version, record.time,
        )  # fmt: skip
        assert obj["type"] == obj["event"]["Type"] == type(record.event).__name__
        event: Event = msgspec.json.decode(json.dumps(obj["event"]), type=union)
        assert encode_event(event) == encode_event(record.event)


def test_export_filters(built: Built, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(
        capsysbinary,
        "log",
        "export",
        "--data-dir",
        str(built.data_dir),
        "--after",
        "5",
        "--until-index",
        "12",
    )
    assert code == 0
    assert [json.loads(line)["index"] for line in out.splitlines()] == list(range(6, 13))
    code, out, _ = run(
        capsysbinary, "log", "export", "--data-dir", str(built.data_dir), "--stream", f"alloc/{built.flaky}"
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["version"] for line in lines] == list(range(1, len(lines) + 1))
    assert {line["stream"] for line in lines} == {f"alloc/{built.flaky}"}


# --- history --------------------------------------------------------------------------------------


def test_history_is_a_readable_timeline(built: Built, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(capsysbinary, "log", "history", "--data-dir", str(built.data_dir), built.flaky[:6])
    text = out.decode()
    assert code == 0
    stream = [r for r in records(built.log) if r.stream == f"alloc/{built.flaky}"]
    lines = text.splitlines()
    assert lines[0] == f"Allocation {built.flaky}: {len(stream)} events"
    body = lines[3:]
    assert len(body) == len(stream)
    assert [int(line.split()[1]) for line in body] == [r.index for r in stream]
    assert body[0].split()[2:4] == ["-", "Placed"]
    assert "Task received by client" in body[1]
    assert "Exit Code: 1" in text
    assert "Task restarting in" in text
    assert body[-1].split()[3:5] == ["Not", "Restarting"]
    assert body[-1].endswith('Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"')

    code, out, _ = run(
        capsysbinary, "log", "history", "--data-dir", str(built.data_dir), built.web[1], "--json"
    )
    timeline = json.loads(out)
    assert timeline["ID"] == built.web[1]
    assert [e["type"] for e in timeline["Events"]][-1] == "Signaling"


def test_history_prefix_errors(
    damaged: Path, built: Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, _, err = run(capsysbinary, "log", "history", "--data-dir", str(damaged), "zzzz")
    assert (code, err) == (1, 'Error: No allocation(s) with prefix or id "zzzz" found\n')
    db = damaged / "allocsvc.db"
    for alloc_id, twin in zip(
        built.web,
        ("abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"),
        strict=True,
    ):
        sql(db, "UPDATE events SET stream = ? WHERE stream = ?", (f"alloc/{twin}", f"alloc/{alloc_id}"))
    code, _, err = run(capsysbinary, "log", "history", "--data-dir", str(damaged), "abcd")
    assert code == 1
    assert err == (
        "Error: Prefix matched multiple allocations\n\n"
        "abcd0000-0000-4000-8000-000000000001\nabcd0000-0000-4000-8000-000000000002\n"
    )
    code, out, _ = run(
        capsysbinary, "log", "history", "--data-dir", str(damaged), "abcd0000-0000-4000-8000-000000000002"
    )
    assert code == 0
    assert out.startswith(b"Allocation abcd0000-0000-4000-8000-000000000002: ")


# --- a live log -----------------------------------------------------------------------------------


async def test_tools_read_a_live_log_while_the_agent_writes(tmp_path: Path) -> None:
    """Every command runs as a real subprocess against a log a running service keeps appending to."""
    data = tmp_path / "data"
    async with open_service(AgentConfig(data_dir=str(data))) as service:
        await service.scheduler.register(job_from(example_job("web", count=3, Config={})))
        writes_done = trio.Event()

        async def keep_writing() -> None:
            for i in range(30):
                await service.scheduler.register(job_from(example_job(f"job{i}", count=1, Config={})))
            writes_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            alloc = next(iter(service.model.state.allocs))
            for argv in (["verify"], ["info", "--json"], ["export"], ["replay"], ["history", alloc]):
                result = await trio.run_process(
                    [ALLOCSVC, "log", *argv, "--data-dir", str(data)],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
                assert result.returncode == 0, (argv, result.stderr)
                assert result.stdout
            await writes_done.wait()
    code = main(["log", "verify", "--data-dir", str(data)])
    assert code == 0


# --- progress -------------------------------------------------------------------------------------


def test_progress_draws_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(i) for i in range(1000))
    monkeypatch.setattr("allocsvc.tools.progress.time.monotonic", lambda: next(clock))
    shown = io.StringIO()
    with Progress("verify", 100_000, stream=shown, enabled=True) as progress:
        for _ in range(100_000):
            progress.advance()
    text = shown.getvalue()
    assert "\r\x1b[Kverify  4,096/100,000    4%  4,096/s" in text
    assert text.endswith("\r\x1b[K")  # the line is erased before the result is printed
    quiet = io.StringIO()  # a StringIO is not a TTY: nothing is drawn
    with Progress("verify", 100_000, stream=quiet) as progress:
        for _ in range(100_000):
            progress.advance()
    assert quiet.getvalue() == ""
