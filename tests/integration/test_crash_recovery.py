"""kill -9 the agent process and restart it: every acknowledged event is still there."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import httpx
import trio

from allocsvc.store.sqlite import iter_file_records
from tests.helpers import example_job

AGENT = [sys.executable, "-m", "allocsvc", "agent", "--port", "0"]


async def start_agent(data_dir: Path) -> tuple[trio.Process, str]:
    proc = await trio.lowlevel.open_process(
        [*AGENT, "--data-dir", str(data_dir)], stdout=-1, stderr=-1, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stdout is not None
    buffer = b""
    with trio.fail_after(30):
        while b"HTTP API:" not in buffer:
            chunk = await proc.stdout.receive_some()
            assert chunk, "agent exited before listening"
            buffer += chunk
    match = re.search(rb"HTTP API: (http://[0-9.:]+)", buffer)
    assert match is not None
    return proc, match.group(1).decode()


async def test_kill_9_and_restart_keeps_acknowledged_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, base = await start_agent(data)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            acked = []
            for i in range(3):
                r = await client.put("/v1/jobs", json=example_job(f"job{i}", count=2))
                assert r.status_code == 200
                acked.append(r.json()["Index"])
            before = (await client.get("/v1/allocations?task_states=false")).json()
            reads = {a["ID"]: (await client.get(f"/v1/allocation/{a['ID']}")).json() for a in before}
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    records_before = list(iter_file_records(data / "allocsvc.db"))
    assert records_before[-1].index >= max(acked)
    proc, base = await start_agent(data)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            after = (await client.get("/v1/allocations?task_states=false")).json()
            assert [(a["ID"], a["CreateIndex"], a["Name"], a["EvalID"]) for a in after] == [
                (a["ID"], a["CreateIndex"], a["Name"], a["EvalID"]) for a in before
            ]
            for alloc_id, old in reads.items():
                new = (await client.get(f"/v1/allocation/{alloc_id}")).json()
                assert new["CreateIndex"] == old["CreateIndex"]
                assert new["Job"] == old["Job"]
                assert new["ModifyIndex"] >= old["ModifyIndex"]
            jobs = (await client.get("/v1/jobs")).json()
            assert sorted(j["ID"] for j in jobs) == ["job0", "job1", "job2"]
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await proc.wait()
    records_after = list(iter_file_records(data / "allocsvc.db"))
    assert records_after[: len(records_before)] == records_before
    restored = [r for r in records_after[len(records_before) :] if type(r.event).__name__ == "TaskRestoreFailed"]
    running_before = [r for r in records_before if type(r.event).__name__ == "TaskStarted"]
    assert restored or not running_before


async def test_corrupt_log_stops_startup_naming_the_position(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, base = await start_agent(data)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.put("/v1/jobs", json=example_job(count=1))).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await proc.wait()
    import sqlite3

    conn = sqlite3.connect(data / "allocsvc.db")
    conn.execute("UPDATE events SET data = X'00ff00' WHERE idx = 2")
    conn.commit()
    conn.close()
    result = await trio.run_process([*AGENT, "--data-dir", str(data)], capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 1
    assert b"event log corrupt at index 2: checksum mismatch" in result.stderr
