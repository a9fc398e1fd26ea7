"""Exec into a running task over a real WebSocket (issue 5; FACTS §1.6, §5.1, §7).

Every test runs a real hypercorn server on a SQLite data dir and talks to it with trio-websocket;
commands run as real processes. Frames are compared as the exact text Nomad's agent sends.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, open_websocket_url

from allocsvc.config import AgentConfig
from allocsvc.domain.events import ExecSessionRecorded
from allocsvc.drivers.exec_session import CHUNK
from tests.acl_fixtures import ACLAgent, open_acl_agent
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until
from tests.processes import alive, gone

TEXT = "text/plain; charset=utf-8"
MOCK_TASK: dict[str, Any] = {"Driver": "mock", "Config": {}}
RAW_EXEC_TASK: dict[str, Any] = {"Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["1000"]}}
DRIVERS = {"mock": MOCK_TASK, "raw_exec": RAW_EXEC_TASK}


@dataclass
class Closed:
    """What a session delivered: its text frames, then the close code and reason."""

    frames: list[str]
    code: int
    reason: str

    @property
    def stdout(self) -> bytes:
        return _stream(self.frames, "stdout")

    @property
    def stderr(self) -> bytes:
        return _stream(self.frames, "stderr")

    @property
    def exit(self) -> dict[str, Any] | None:
        exits = [json.loads(f) for f in self.frames if f.startswith('{"exited"')]
        return exits[-1] if exits else None


def _stream(frames: list[str], name: str) -> bytes:
    out = b""
    for frame in frames:
        body = json.loads(frame).get(name) or {}
        if "data" in body:
            out += base64.b64decode(body["data"])
    return out


def stdin(data: bytes) -> str:
    return json.dumps({"stdin": {"data": base64.b64encode(data).decode()}})


STDIN_CLOSE = '{"stdin":{"close":true}}'


def tty_size(height: int, width: int) -> str:
    return json.dumps({"tty_size": {"height": height, "width": width}})


async def start_job(s: Served, task: dict[str, Any] = MOCK_TASK, *, job_id: str = "web", namespace: str = "default") -> str:
    """Register a one-alloc job and wait until its task runs; returns the allocation ID."""
    r = await s.client.put("/v1/jobs", json=example_job(job_id, count=1, namespace=namespace, **task))
    assert r.status_code == 200, r.text

    def running() -> bool:
        return any(
            a.alloc.JobID == job_id and a.alloc.ClientStatus == "running" for a in s.service.model.state.allocs.values()
        )

    await wait_until(s.service, running)
    return next(a for a, agg in s.service.model.state.allocs.items() if agg.alloc.JobID == job_id)


def exec_url(s: Served, alloc_id: str, command: Any, *, task: str | None = "server", tty: bool | str = False, **extra: str) -> str:
    params: dict[str, str] = {"command": command if isinstance(command, str) else json.dumps(command)}
    if task is not None:
        params["task"] = task
    params["tty"] = tty if isinstance(tty, str) else str(tty).lower()
    params.update(extra)
    return f"ws://127.0.0.1:{s.port}/v1/client/allocation/{alloc_id}/exec?{urlencode(params)}"


@asynccontextmanager
async def connect(url: str, **kwargs: Any) -> AsyncIterator[WebSocketConnection]:
    """``open_websocket_url`` that also closes the TCP stream.

    trio-websocket 0.12.2's ``aclose()`` returns early when the server closed first (as Nomad's
    agent does), leaving the socket open until garbage collection (a ResourceWarning).
    """
    async with open_websocket_url(url, **kwargs) as ws:
        try:
            yield ws
        finally:
            await ws._stream.aclose()


async def drain(ws: WebSocketConnection) -> Closed:
    frames: list[str] = []
    while True:
        try:
            message = await ws.get_message()
        except ConnectionClosed as exc:
            reason = exc.reason or CloseReason(1006, None)
            return Closed(frames, reason.code, reason.reason or "")
        assert isinstance(message, str), "every server frame is a text frame"
        frames.append(message)


async def run_exec(url: str, *sends: str, headers: list[tuple[bytes, bytes]] | None = None) -> Closed:
    with trio.fail_after(20):
        async with connect(url, extra_headers=headers) as ws:
            for message in sends:
                await ws.send_message(message)
            return await drain(ws)


async def read_until(ws: WebSocketConnection, predicate: Any, frames: list[str]) -> None:
    """Collect frames until ``predicate(stdout_so_far)`` holds."""
    while not predicate(_stream(frames, "stdout")):
        message = await ws.get_message()
        assert isinstance(message, str)
        frames.append(message)


def audit_events(s: Served, alloc_id: str) -> list[ExecSessionRecorded]:
    return [
        r.event
        for r in s.service.log.iter_records()
        if r.stream == f"alloc/{alloc_id}" and isinstance(r.event, ExecSessionRecorded)
    ]


# --- frames and exit codes --------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["mock", "raw_exec"])
async def test_echo_hi_gives_nomads_exact_frames(served: Served, driver: str) -> None:
    alloc_id = await start_job(served, DRIVERS[driver])
    done = await run_exec(exec_url(served, alloc_id, ["echo", "hi"]))
    # stdout and stderr are read concurrently: only each stream's own order is fixed.
    assert sorted(done.frames[:3]) == ['{"stderr":{"close":true}}', '{"stdout":{"close":true}}', '{"stdout":{"data":"aGkK"}}']
    assert done.frames.index('{"stdout":{"data":"aGkK"}}') < done.frames.index('{"stdout":{"close":true}}')
    assert done.frames[3:] == ['{"exited":true,"result":{}}']
    assert (done.code, done.reason) == (1000, "")


async def test_exit_code_three_is_reported(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["sh", "-c", "echo oops >&2; exit 3"]))
    assert done.frames[-1] == '{"exited":true,"result":{"exit_code":3}}'
    assert done.stderr == b"oops\n"
    assert done.stdout == b""


async def test_stdin_is_piped_to_cat_and_close_ends_it(served: Served) -> None:
    alloc_id = await start_job(served)
    payload = os.urandom(150_000)
    sends = [stdin(payload[i : i + 2048]) for i in range(0, len(payload), 2048)]
    done = await run_exec(exec_url(served, alloc_id, ["cat"]), *sends, STDIN_CLOSE)
    assert done.stdout == payload
    assert done.exit == {"exited": True, "result": {}}
    sizes = [len(base64.b64decode(json.loads(f)["stdout"]["data"])) for f in done.frames if '"data"' in f]
    assert max(sizes) <= CHUNK


async def test_heartbeats_and_unknown_frames_are_ignored(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["cat"]), "{}", '{"setup":{"command":["x"]}}', stdin(b"ok"), STDIN_CLOSE)
    assert done.stdout == b"ok"
    assert done.exit == {"exited": True, "result": {}}


async def test_command_runs_in_the_task_dir_with_the_task_environment(served: Served) -> None:
    alloc_id = await start_job(served, {**MOCK_TASK, "Env": {"GREETING": "hello"}})
    script = 'pwd; echo "$NOMAD_ALLOC_ID $NOMAD_TASK_NAME $GREETING"; test -d local && echo has-local'
    done = await run_exec(exec_url(served, alloc_id, ["sh", "-c", script]))
    lines = done.stdout.decode().splitlines()
    data_dir = Path(served.service.runtime.data_dir or "")
    assert lines[0] == str(data_dir / "alloc" / alloc_id / "server")
    assert lines[1] == f"{alloc_id} server hello"
    assert lines[2] == "has-local"


async def test_output_streams_before_exit(served: Served) -> None:
    alloc_id = await start_job(served)
    url = exec_url(served, alloc_id, ["sh", "-c", "echo first; read line; echo second"])
    with trio.fail_after(20):
        async with connect(url) as ws:
            assert await ws.get_message() == '{"stdout":{"data":"Zmlyc3QK"}}'
            await ws.send_message(stdin(b"go\n"))
            done = await drain(ws)
    assert done.stdout == b"second\n"
    assert done.exit == {"exited": True, "result": {}}


# --- TTY ---------------------------------------------------------------------------------------


async def test_tty_size_is_what_stty_reports(served: Served) -> None:
    alloc_id = await start_job(served)
    url = exec_url(served, alloc_id, ["sh", "-c", "read go; stty size"], tty=True)
    done = await run_exec(url, tty_size(33, 101), stdin(b"x\r"))
    assert b"33 101\r\n" in done.stdout
    assert done.stderr == b""
    assert '{"stdout":{"close":true}}' in done.frames
    assert '{"stderr":{"close":true}}' not in done.frames
    assert done.exit == {"exited": True, "result": {}}


async def test_ctrl_c_interrupts_sleep_on_a_tty(served: Served) -> None:
    alloc_id = await start_job(served)
    url = exec_url(served, alloc_id, ["sh", "-c", "echo ready; exec sleep 100"], tty=True)
    with trio.fail_after(10):
        async with connect(url) as ws:
            frames: list[str] = []
            await read_until(ws, lambda out: b"ready" in out, frames)
            await ws.send_message(stdin(b"\x03"))
            done = await drain(ws)
    assert done.exit == {"exited": True, "result": {"exit_code": 130}}


async def test_tty_output_keeps_raw_terminal_bytes(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["printf", "\\033[1mbold\\033[0m\\n"], tty=True))
    assert done.stdout == b"\x1b[1mbold\x1b[0m\r\n"


async def test_resize_without_tty_closes_1011_after_the_exit_frame(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["sh", "-c", "sleep 1; echo done"]), tty_size(10, 10))
    # Nomad stops reading input after the refused resize; the command still runs to its end.
    assert done.stdout == b"done\n"
    assert done.frames[-1] == '{"exited":true,"result":{}}'
    assert (done.code, done.reason) == (1011, "attempted to resize a non-tty session")


# --- errors as close frames ----------------------------------------------------------------------


async def test_unknown_allocation(served: Served) -> None:
    missing = "5ab1c0de-0000-4000-8000-000000000000"
    done = await run_exec(exec_url(served, missing, ["ls"]))
    assert (done.code, done.reason, done.frames) == (1008, f'Unknown allocation "{missing}"', [])
    done = await run_exec(exec_url(served, "not-a-uuid", ["ls"]))
    assert (done.code, done.reason) == (1008, 'Unknown allocation "not-a-uuid"')


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("", "failed to marshal command into json: unexpected end of JSON input"),
        ("ls", "failed to marshal command into json: invalid character 'l' looking for beginning of value"),
        ('"ls"', "failed to marshal command into json: json: cannot unmarshal string into Go value of type []string"),
        ("[1]", "failed to marshal command into json: json: cannot unmarshal number into Go value of type string"),
        ('["ls"', "failed to marshal command into json: unexpected end of JSON input"),
    ],
)
async def test_malformed_command_closes_1011(served: Served, command: str, reason: str) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, command))
    assert (done.code, done.reason, done.frames) == (1011, reason, [])


async def test_bad_tty_value_closes_1011(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["ls"], tty="yes"))
    assert (done.code, done.reason) == (1011, 'tty value is not a boolean: strconv.ParseBool: parsing "yes": invalid syntax')


async def test_missing_task_empty_command_unknown_task(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["ls"], task=None))
    assert (done.code, done.reason) == (1008, "must provide task name")
    done = await run_exec(exec_url(served, alloc_id, []))
    assert (done.code, done.reason) == (1008, "command is not present")
    done = await run_exec(exec_url(served, alloc_id, "null"))
    assert (done.code, done.reason) == (1008, "command is not present")
    done = await run_exec(exec_url(served, alloc_id, ["ls"], task="nope"))
    assert (done.code, done.reason) == (1011, "task not found")


async def test_task_not_started_and_not_running(served: Served) -> None:
    blocked = await _pending_alloc(served)
    done = await run_exec(exec_url(served, blocked, ["ls"]))
    assert (done.code, done.reason) == (1008, 'task "server" not started yet.')

    alloc_id = await start_job(served, job_id="two-tasks")
    # A finished sibling: the second task exits at once while the first keeps running.
    done = await run_exec(exec_url(served, alloc_id, ["ls"], task="server"))
    assert done.code == 1000
    finished = await _alloc_with_finished_task(served)
    done = await run_exec(exec_url(served, finished, ["ls"], task="once"))
    assert (done.code, done.reason) == (1008, 'task "once" is not running.')


async def _pending_alloc(s: Served) -> str:
    """An allocation whose only task is still starting (the mock driver blocks in start)."""
    task: dict[str, Any] = {"Driver": "mock", "Config": {"start_block_for": "1h"}}
    r = await s.client.put("/v1/jobs", json=example_job("pending", count=1, **task))
    assert r.status_code == 200, r.text

    def received() -> bool:
        return any(
            a.alloc.JobID == "pending" and any(ev.Type == "Task Setup" for ev in (a.alloc.TaskStates or {})["server"].Events)
            for a in s.service.model.state.allocs.values()
        )

    await wait_until(s.service, received)
    return next(a for a, agg in s.service.model.state.allocs.items() if agg.alloc.JobID == "pending")


async def _alloc_with_finished_task(s: Served) -> str:
    """An allocation with a running task and a post-start task that already completed."""
    body = example_job("sidecar", count=1, **MOCK_TASK)
    tasks = body["Job"]["TaskGroups"][0]["Tasks"]
    tasks.append({"Name": "once", "Driver": "mock", "Config": {"run_for": "1ms"}, "Lifecycle": {"Hook": "poststart"}})
    r = await s.client.put("/v1/jobs", json=body)
    assert r.status_code == 200, r.text

    def done() -> bool:
        return any(
            a.alloc.JobID == "sidecar" and (a.alloc.TaskStates or {})["once"].State == "dead"
            for a in s.service.model.state.allocs.values()
        )

    await wait_until(s.service, done)
    return next(a for a, agg in s.service.model.state.allocs.items() if agg.alloc.JobID == "sidecar")


async def test_terminal_allocation(served: Served) -> None:
    alloc_id = await start_job(served)
    r = await served.client.post(f"/v1/allocation/{alloc_id}/stop")
    assert r.status_code == 200, r.text
    await wait_until(served.service, lambda: served.service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    done = await run_exec(exec_url(served, alloc_id, ["ls"]))
    assert (done.code, done.reason) == (1008, f"exec not possible, client status of allocation {alloc_id} is complete")


async def test_missing_executable_is_a_clear_1011(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["no-such-binary-xyz"]))
    prefix = "rpc error: code = Unknown desc = failed to start command: "
    assert (done.code, done.reason) == (1011, prefix + 'exec: "no-such-binary-xyz": executable file not found in $PATH')
    done = await run_exec(exec_url(served, alloc_id, ["/no/such/bin"]))
    assert (done.code, done.reason) == (1011, prefix + "fork/exec /no/such/bin: no such file or directory")
    done = await run_exec(exec_url(served, alloc_id, ["sh", "-c", "no-such-binary-xyz"]))
    assert done.exit == {"exited": True, "result": {"exit_code": 127}}


async def test_malformed_client_frame_closes_1011_with_gos_error(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_exec(exec_url(served, alloc_id, ["cat"]), "not json")
    assert (done.code, done.reason) == (1011, "invalid character 'o' in literal null (expecting 'u')")
    done = await run_exec(exec_url(served, alloc_id, ["cat"]), '{"stdin":{"data":"!!"}}')
    assert (done.code, done.reason) == (1011, "illegal base64 data at input byte 0")


# --- handshake and origin ------------------------------------------------------------------------


async def test_ws_handshake(served: Served) -> None:
    alloc_id = await start_job(served)
    hello = json.dumps({"version": 1, "auth_token": ""})
    done = await run_exec(exec_url(served, alloc_id, ["echo", "hi"], ws_handshake="true"), hello)
    assert done.stdout == b"hi\n"
    done = await run_exec(exec_url(served, alloc_id, ["echo"], ws_handshake="1"), json.dumps({"version": 2, "auth_token": ""}))
    assert (done.code, done.reason) == (1008, "unexpected handshake value: 2")
    header = [(b"X-Nomad-Token", b"header-secret")]
    done = await run_exec(exec_url(served, alloc_id, ["echo"], ws_handshake="t"), json.dumps({"version": 1, "auth_token": "other"}), headers=header)
    assert (done.code, done.reason) == (1008, "handshake auth token mismatched auth header token")
    done = await run_exec(exec_url(served, alloc_id, ["echo"], ws_handshake="maybe"))
    assert (done.code, done.reason) == (1008, 'ws_handshake value is not a boolean: strconv.ParseBool: parsing "maybe": invalid syntax')
    done = await run_exec(exec_url(served, alloc_id, ["echo"], ws_handshake="true"), '{"version":"1"}')
    assert (done.code, done.reason) == (1008, "json: cannot unmarshal string into Go struct field wsHandshakeMessage.version of type int")
    done = await run_exec(exec_url(served, alloc_id, ["echo", "ok"], ws_handshake="false"))
    assert done.stdout == b"ok\n"


async def upgrade(s: Served, alloc_id: str, origin: str) -> tuple[int, bytes]:
    """A WebSocket upgrade request sent with httpx: the HTTP answer when it is refused."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Origin": origin,
    }
    params = {"command": '["echo","hi"]', "task": "server"}
    r = await s.client.get(f"/v1/client/allocation/{alloc_id}/exec", params=params, headers=headers)
    return r.status_code, r.content


async def test_foreign_origin_is_refused_before_the_upgrade(served: Served) -> None:
    alloc_id = await start_job(served)
    assert await upgrade(served, alloc_id, "http://evil.example") == (403, b"Forbidden\n")
    assert await upgrade(served, alloc_id, f"http://localhost:{served.port}") == (403, b"Forbidden\n")
    same = f"http://127.0.0.1:{served.port}".encode()
    done = await run_exec(exec_url(served, alloc_id, ["echo", "hi"]), headers=[(b"Origin", same)])
    assert done.stdout == b"hi\n"


async def test_allowed_origins_from_config(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0, allowed_origins=["https://ui.example"])
    async for s in open_served(config, nursery):
        alloc_id = await start_job(s)
        done = await run_exec(exec_url(s, alloc_id, ["echo", "hi"]), headers=[(b"Origin", b"https://ui.example")])
        assert done.stdout == b"hi\n"
        assert await upgrade(s, alloc_id, "https://other.example") == (403, b"Forbidden\n")


async def test_plain_http_request_gets_nomads_error_text(served: Served) -> None:
    alloc_id = await start_job(served)
    base = f"/v1/client/allocation/{alloc_id}/exec"
    r = await served.client.get(base, params={"command": '["ls"]', "task": "server"})
    assert (r.status_code, r.headers["content-type"], r.text) == (400, TEXT, "websocket connection not found in context")
    r = await served.client.get(base)
    assert r.text == "failed to marshal command into json: unexpected end of JSON input"


# --- lifecycle ------------------------------------------------------------------------------------


async def test_disconnect_kills_the_whole_process_group(served: Served) -> None:
    alloc_id = await start_job(served)
    url = exec_url(served, alloc_id, ["sh", "-c", "sleep 300 & echo $$ $!; wait"])
    with trio.fail_after(20):
        async with connect(url) as ws:
            frames: list[str] = []
            await read_until(ws, lambda out: out.endswith(b"\n"), frames)
            pids = [int(p) for p in _stream(frames, "stdout").split()]
            assert all(alive(p) for p in pids)
    for pid in pids:
        await gone(pid)
    await wait_until(served.service, lambda: len(audit_events(served, alloc_id)) == 1)
    event = audit_events(served, alloc_id)[0]
    assert event.error == "client disconnected"
    assert event.exit_code == 137


async def test_stopping_the_task_ends_its_sessions(served: Served) -> None:
    alloc_id = await start_job(served)
    url = exec_url(served, alloc_id, ["sh", "-c", "echo $$; exec sleep 300"])
    with trio.fail_after(20):
        async with connect(url) as ws:
            frames: list[str] = []
            await read_until(ws, lambda out: out.endswith(b"\n"), frames)
            pid = int(_stream(frames, "stdout"))
            r = await served.client.post(f"/v1/allocation/{alloc_id}/stop")
            assert r.status_code == 200
            done = await drain(ws)
    assert done.exit == {"exited": True, "result": {"exit_code": 137}}
    assert done.code == 1000
    await gone(pid)
    assert audit_events(served, alloc_id)[0].error == "task stopped"


async def test_restarting_the_task_ends_its_sessions(served: Served) -> None:
    alloc_id = await start_job(served)
    started = (served.service.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"].StartedAt
    url = exec_url(served, alloc_id, ["sh", "-c", "echo $$; exec sleep 300"])
    with trio.fail_after(20):
        async with connect(url) as ws:
            frames: list[str] = []
            await read_until(ws, lambda out: out.endswith(b"\n"), frames)
            pid = int(_stream(frames, "stdout"))
            r = await served.client.post(f"/v1/client/allocation/{alloc_id}/restart", json={"TaskName": "server"})
            assert r.status_code == 200, r.text
            done = await drain(ws)
    assert done.exit == {"exited": True, "result": {"exit_code": 137}}
    await gone(pid)
    assert audit_events(served, alloc_id)[0].error in ("task stopped", "task restarted")

    def restarted() -> bool:
        state = (served.service.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"]
        return state.State == "running" and state.StartedAt != started

    await wait_until(served.service, restarted)
    again = await run_exec(exec_url(served, alloc_id, ["echo", "back"]))
    assert again.stdout == b"back\n"


async def test_concurrent_sessions_are_independent(served: Served) -> None:
    alloc_id = await start_job(served)
    results: dict[int, Closed] = {}

    async def one(i: int) -> None:
        data = f"session-{i}\n".encode() * 200
        results[i] = await run_exec(exec_url(served, alloc_id, ["cat"]), stdin(data), STDIN_CLOSE)

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(one, i)
    for i, done in results.items():
        assert done.stdout == f"session-{i}\n".encode() * 200
        assert done.exit == {"exited": True, "result": {}}


async def test_slow_client_holds_the_process_back(served: Served) -> None:
    alloc_id = await start_job(served)
    total = 200_000_000
    url = exec_url(served, alloc_id, ["sh", "-c", f"echo $$ >&2; exec head -c {total} /dev/zero"])
    with trio.fail_after(30):
        async with connect(url, message_queue_size=1) as ws:
            frame: dict[str, Any] = {}
            while "stderr" not in frame:
                frame = json.loads(await ws.get_message())
            pid = int(base64.b64decode(frame["stderr"]["data"]))
            # Read nothing: the writer must come to a stop (blocked on its pipe) instead of the server
            # buffering its output. Poll its written-bytes counter until it stays put.
            io = trio.Path(f"/proc/{pid}/io")
            written, stable = -1, 0
            while stable < 10:
                await trio.sleep(0.02)  # polling a counter, bounded by the fail_after above
                text = await io.read_text()
                now = int(next(line for line in text.splitlines() if line.startswith("wchar:")).split()[1])
                stable = stable + 1 if now == written else 0
                written = now
            assert alive(pid)
            assert written < 32_000_000, f"{written} bytes written while the client read nothing"
            for _ in range(10):
                assert "stdout" in json.loads(await ws.get_message())
    await gone(pid)


async def test_sessions_are_recorded_for_audit(served: Served) -> None:
    alloc_id = await start_job(served)
    await run_exec(exec_url(served, alloc_id, ["sh", "-c", "exit 4"], tty=True))
    await run_exec(exec_url(served, alloc_id, ["no-such-binary-xyz"]))
    events = audit_events(served, alloc_id)
    assert [(e.command, e.tty, e.exit_code, e.accessor_id) for e in events] == [
        (("sh", "-c", "exit 4"), True, 4, "anonymous"),
        (("no-such-binary-xyz",), False, -1, "anonymous"),
    ]
    assert events[0].error == ""
    assert "executable file not found" in events[1].error
    assert all(e.task == "server" and e.started_at > 0 for e in events)


# --- the CLI ----------------------------------------------------------------------------------


async def run_cli(s: Served, *args: str, stdin_data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NOMAD_ADDR": s.base_url}
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-m", "allocsvc", "alloc", "exec", *args],
            stdin=stdin_data,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def test_cli_runs_a_command_by_alloc_prefix(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_cli(served, alloc_id[:8], "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (done.returncode, done.stdout, done.stderr) == (5, b"out\n", b"err\n")
    done = await run_cli(served, "-task", "server", alloc_id[:5], "cat", stdin_data=b"piped input")
    assert (done.returncode, done.stdout) == (0, b"piped input")
    done = await run_cli(served, "-i=false", alloc_id, "cat")
    assert (done.returncode, done.stdout) == (0, b"")


async def test_cli_errors(served: Served) -> None:
    alloc_id = await start_job(served)
    done = await run_cli(served, "ffffffff", "ls")
    assert done.returncode == 1
    assert done.stderr.decode() == 'No allocation(s) with prefix or id "ffffffff" found\n'
    done = await run_cli(served, alloc_id, "no-such-binary-xyz")
    assert done.returncode == 1
    assert done.stderr.decode().startswith("failed to exec into task: rpc error: code = Unknown desc = failed to start command")
    done = await run_cli(served, "-task", "nope", alloc_id, "ls")
    assert (done.returncode, done.stderr.decode()) == (1, "Could not find task named: nope, found:\nserver\n")
    done = await run_cli(served, alloc_id)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("A command is required\n")


async def test_cli_tty_mode_forwards_the_terminal_size(served: Served) -> None:
    import fcntl
    import struct
    import termios

    alloc_id = await start_job(served)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 133, 0, 0))
    env = {**os.environ, "NOMAD_ADDR": served.base_url}
    try:
        with trio.fail_after(30):
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "allocsvc", "alloc", "exec", "-t", alloc_id, "sh", "-c", "echo ready; read x; stty size; exit 7"],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
            )
            os.close(slave)
            slave = -1
            output = bytearray()
            stream = trio.lowlevel.FdStream(master)
            master = -1
            async with stream:
                typed = False
                while True:
                    try:
                        chunk = await stream.receive_some(4096)
                    except trio.BrokenResourceError:
                        break
                    if not chunk:
                        break
                    output += chunk
                    if not typed and b"ready" in output:
                        # The CLI sent the terminal size when it connected, before this input.
                        await stream.send_all(b"x\r")
                        typed = True
            code = await proc.wait()
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
    assert code == 7
    assert b"41 133" in bytes(output)


# --- ACLs -------------------------------------------------------------------------------------


@pytest.fixture
async def acl_agent(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    async for agent in open_acl_agent(tmp_path / "data", nursery):
        agent.tokens["bootstrap"] = await agent.bootstrap()
        yield agent


async def test_acl_exec_needs_alloc_exec_and_alloc_node_exec(acl_agent: ACLAgent) -> None:
    served = acl_agent.served
    (alloc_id,) = await acl_agent.job("web", "default")
    await acl_agent.policy("reader", 'namespace "default" { policy = "read" }')
    await acl_agent.policy("exec-only", 'namespace "default" { capabilities = ["alloc-exec"] }')
    await acl_agent.policy("exec", 'namespace "default" { capabilities = ["alloc-exec", "alloc-node-exec"] }')
    await acl_agent.policy("other-ns", 'namespace "elsewhere" { policy = "write" }')
    url = exec_url(served, alloc_id, ["echo", "hi"])

    def header(secret: str) -> list[tuple[bytes, bytes]]:
        return [(b"X-Nomad-Token", secret.encode())]

    bogus = await run_exec(url, headers=header("5ab1c0de-0000-4000-8000-000000000000"))
    assert (bogus.code, bogus.reason) == (1008, "Permission denied")
    anonymous = await run_exec(url)
    assert (anonymous.code, anonymous.reason) == (1008, f'Unknown allocation "{alloc_id}"')
    outsider = await run_exec(url, headers=header((await acl_agent.token("other-ns"))["SecretID"]))
    assert (outsider.code, outsider.reason) == (1008, f'Unknown allocation "{alloc_id}"')
    reader = await run_exec(url, headers=header((await acl_agent.token("reader"))["SecretID"]))
    assert (reader.code, reader.reason) == (1011, "Permission denied")
    exec_only = await run_exec(url, headers=header((await acl_agent.token("exec-only"))["SecretID"]))
    assert (exec_only.code, exec_only.reason) == (1011, "Permission denied")
    token = await acl_agent.token("exec")
    allowed = await run_exec(url, headers=header(token["SecretID"]))
    assert (allowed.stdout, allowed.code) == (b"hi\n", 1000)
    hello = json.dumps({"version": 1, "auth_token": token["SecretID"]})
    by_frame = await run_exec(exec_url(served, alloc_id, ["echo", "hi"], ws_handshake="true"), hello)
    assert by_frame.stdout == b"hi\n"
    management = await run_exec(url, headers=header(acl_agent.management))
    assert management.stdout == b"hi\n"
    accessors = [e.accessor_id for e in audit_events(served, alloc_id)]
    assert accessors == [token["AccessorID"], token["AccessorID"], acl_agent.tokens["bootstrap"]["AccessorID"]]


async def test_acl_revoked_token_ends_its_session(acl_agent: ACLAgent) -> None:
    served = acl_agent.served
    (alloc_id,) = await acl_agent.job("web", "default")
    await acl_agent.policy("exec", 'namespace "default" { capabilities = ["alloc-exec", "alloc-node-exec"] }')
    token = await acl_agent.token("exec")
    url = exec_url(served, alloc_id, ["sh", "-c", "echo $$; exec sleep 300"])
    with trio.fail_after(20):
        async with connect(url, extra_headers=[(b"X-Nomad-Token", token["SecretID"].encode())]) as ws:
            frames: list[str] = []
            await read_until(ws, lambda out: out.endswith(b"\n"), frames)
            pid = int(_stream(frames, "stdout"))
            r = await acl_agent.client.delete(f"/v1/acl/token/{token['AccessorID']}", headers=acl_agent.mgmt())
            assert r.status_code == 200
            done = await drain(ws)
    assert (done.code, done.reason) == (1008, "Permission denied")
    assert done.exit is None
    await gone(pid)
    assert audit_events(served, alloc_id)[-1].error == "token no longer valid"
