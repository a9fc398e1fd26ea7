"""``GET /v1/event/stream``: framing, topics, namespaces, ACLs, heartbeats, backpressure, and
resuming from the durable log with no gap and no duplicate, across an agent restart."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio
from quart_trio.testing.connections import TestHTTPConnection as TrioTestConnection

from allocsvc.config import AgentConfig
from allocsvc.domain import events as ev
from allocsvc.http.app import create_app
from allocsvc.http.events_stream import EXTENSION, EventStreamer
from allocsvc.service import log_path, open_service
from allocsvc.store.memory import MemoryEventLog
from allocsvc.store.sqlite import iter_file_records
from tests.conftest import FIXED_WALL, Served
from tests.helpers import example_job, job_from, wait_until

TEXT = "text/plain; charset=utf-8"
EVENT_KEYS = ["Topic", "Type", "Key", "Namespace", "FilterKeys", "Index", "Payload"]
Line = dict[str, Any]


# --- helpers ---------------------------------------------------------------------------------------


class RawStream:
    """A minimal HTTP/1.1 client side of one stream (status, headers, chunked NDJSON lines).

    httpx's line iterators leave nested async generators unfinalized when a test stops reading
    early, which trio reports as ResourceWarnings; this reads the socket directly.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._body = bytearray()
        self._done = False
        self.status = 0
        self.headers: dict[str, str] = {}

    async def _fill(self) -> bool:
        data = await self._stream.receive_some(1 << 16)
        self._buf += data
        return bool(data)

    async def read_head(self) -> None:
        while b"\r\n\r\n" not in self._buf:
            assert await self._fill(), "connection closed before the response head"
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        self._buf = bytearray(rest)
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        for header in header_lines:
            name, _, value = header.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    async def _next_chunk(self) -> bool:
        while b"\r\n" not in self._buf:
            if not await self._fill():
                return False
        size_line, _, rest = bytes(self._buf).partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        self._buf = bytearray(rest)
        if size == 0:
            self._done = True
            return False
        while len(self._buf) < size + 2:
            assert await self._fill(), "connection closed inside a chunk"
        self._body += self._buf[:size]
        del self._buf[: size + 2]
        return True

    async def line(self) -> Line | None:
        """The next NDJSON line, or None when the body has ended."""
        while b"\n" not in self._body:
            if self._done or not await self._next_chunk():
                return None
        raw, _, rest = bytes(self._body).partition(b"\n")
        self._body = bytearray(rest)
        parsed: Line = json.loads(raw)
        return parsed


@asynccontextmanager
async def open_stream(port: int, params: Any = None, headers: dict[str, str] | None = None) -> AsyncIterator[RawStream]:
    """Send ``GET /v1/event/stream`` and read the response head; closing disconnects."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        query = urlencode(params or {}, doseq=True)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        await stream.send_all(f"GET /v1/event/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        raw = RawStream(stream)
        await raw.read_head()
        yield raw


async def collect(
    port: int,
    params: Any,
    until: Callable[[list[Line]], bool],
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> list[Line]:
    """Event lines (heartbeats dropped) of a new stream, until ``until`` holds."""
    got: list[Line] = []
    with trio.fail_after(timeout):
        async with open_stream(port, params, headers) as stream:
            assert stream.status == 200
            while not until(got):
                line = await stream.line()
                assert line is not None, "the stream ended early"
                if line:
                    got.append(line)
    return got


def published(data_dir: str, after: int = 0) -> list[int]:
    """Indexes of the records Nomad would publish, read straight from the log file: every
    allocation, job and eval record except exec audits and purging deregisters."""
    out = []
    for r in iter_file_records(log_path(data_dir), after):
        if isinstance(r.event, ev.ExecSessionRecorded):
            continue
        if isinstance(r.event, ev.JobDeregistered) and r.event.purge:
            continue
        if r.stream.startswith(("alloc/", "job/", "eval/")):
            out.append(r.index)
    return out


def indexes(lines: list[Line]) -> list[int]:
    return [line["Index"] for line in lines]


def reaches(index: int) -> Callable[[list[Line]], bool]:
    return lambda got: bool(got) and got[-1]["Index"] >= index


async def register(s: Served, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await s.client.put("/v1/jobs", json=body, headers=headers)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def all_running(s: Served) -> None:
    await wait_until(s.service, lambda: all(a.alloc.ClientStatus == "running" for a in s.service.model.state.allocs.values()))


async def serve_app(app: QuartTrio, nursery: trio.Nursery) -> tuple[trio.Event, int]:
    """Serve an app we keep a handle on (for its streamer); returns (shutdown, port)."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    shutdown = trio.Event()
    binds = await nursery.start(
        lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
    )
    return shutdown, int(binds[0].rsplit(":", 1)[1])


@asynccontextmanager
async def served_on(config: AgentConfig, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """A SQLite-backed service behind hypercorn, as a context manager (phases nest cleanly)."""
    async with open_service(config) as service:
        shutdown, port = await serve_app(create_app(service), nursery)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield Served(service, client, f"http://127.0.0.1:{port}", port)
        finally:
            shutdown.set()


def streamer_of(app: QuartTrio) -> EventStreamer:
    streamer: EventStreamer = app.extensions[EXTENSION]
    return streamer


# --- framing and shapes --------------------------------------------------------------------------------


async def test_framing_types_and_payloads_as_of_each_index(served: Served) -> None:
    got: list[Line] = []
    with trio.fail_after(20):
        async with open_stream(served.port) as stream:
            assert stream.status == 200
            assert stream.headers["content-type"] == "application/json"
            assert stream.headers["cache-control"] == "no-cache"
            assert stream.headers["transfer-encoding"] == "chunked"
            assert await stream.line() == {}
            reg = await register(served, example_job("web", count=1))
            while (line := await stream.line()) is not None:
                if line:
                    got.append(line)
                    if line["Events"][0]["Payload"].get("Allocation", {}).get("ClientStatus") == "running":
                        break
    assert indexes(got) == published(served.service.config.data_dir)[: len(got)]
    for line in got:
        assert list(line) == ["Index", "Events"]
        [event] = line["Events"]
        assert list(event) == EVENT_KEYS
        assert event["Index"] == line["Index"]

    job, evaluation, placed, *updates = (line["Events"][0] for line in got)
    assert (job["Topic"], job["Type"], job["Key"], job["Namespace"], job["FilterKeys"]) == (
        "Job", "JobRegistered", "web", "default", None
    )  # fmt: skip
    assert list(job["Payload"]) == ["Job"]
    assert job["Payload"]["Job"]["ID"] == "web"
    assert job["Payload"]["Job"]["ModifyIndex"] == job["Index"] == reg["JobModifyIndex"]
    assert (evaluation["Topic"], evaluation["Type"], evaluation["Key"]) == ("Evaluation", "JobRegistered", reg["EvalID"])
    assert evaluation["FilterKeys"] == ["web", ""]
    assert evaluation["Payload"]["Evaluation"]["TriggeredBy"] == "job-register"
    assert (placed["Topic"], placed["Type"], placed["FilterKeys"]) == ("Allocation", "PlanResult", ["web", ""])
    assert placed["Payload"]["Allocation"]["ClientStatus"] == "pending"
    assert all(u["Type"] == "AllocationUpdated" for u in updates)
    for event in (placed, *updates):
        alloc = event["Payload"]["Allocation"]
        assert "Job" not in alloc
        assert alloc["ID"] == event["Key"]
        assert alloc["ModifyIndex"] == event["Index"], "the payload is the allocation as of the event's index"
    assert len(updates[-1]["Payload"]["Allocation"]["TaskStates"]["server"]["Events"]) > len(
        placed["Payload"]["Allocation"]["TaskStates"]["server"]["Events"]
    )


async def test_stop_publishes_desired_status_plan_result_and_eval_updates(served: Served) -> None:
    await register(served, example_job("web", count=1))
    await all_running(served)
    [alloc_id] = served.service.model.state.allocs
    start = served.service.log.last_index + 1
    stop = await served.client.post(f"/v1/allocation/{alloc_id}/stop")
    assert stop.status_code == 200
    await wait_until(served.service, lambda: len(served.service.model.state.allocs) == 2)
    expected = published(served.service.config.data_dir, start - 1)
    got = await collect(served.port, {"index": start}, reaches(expected[-1]))
    assert indexes(got) == expected
    seen = [(line["Events"][0]["Topic"], line["Events"][0]["Type"]) for line in got]
    assert seen[:2] == [("Allocation", "AllocationUpdateDesiredStatus"), ("Evaluation", "AllocationUpdateDesiredStatus")]
    assert ("Allocation", "PlanResult") in seen
    assert ("Evaluation", "EvaluationUpdated") in seen
    desired = got[0]["Events"][0]["Payload"]["Allocation"]
    assert desired["DesiredTransition"]["Migrate"] is True
    assert desired["DesiredStatus"] == "run"
    plan = [line["Events"][0] for line in got if line["Events"][0]["Type"] == "PlanResult"]
    assert {p["Payload"]["Allocation"]["DesiredStatus"] for p in plan if p["Key"] == alloc_id} == {"stop"}
    assert any(p["Payload"]["Allocation"].get("PreviousAllocation") == alloc_id for p in plan)


async def test_payloads_equal_time_travel_reads_even_with_a_one_stream_fold_cache(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Replayed payloads are each object as of its index: every Allocation payload equals the
    ``at_index`` read at that index (minus the Job), with a fold cache so small that interleaved
    allocations keep evicting each other."""
    async with served_on(AgentConfig(data_dir=str(tmp_path / "data"), port=0), nursery) as s:
        body = flapping_job()
        body["Job"]["TaskGroups"][0]["Count"] = 3
        await register(s, body)
        await wait_until(s.service, lambda: s.service.log.last_index > 80)
        stopped = await s.client.delete("/v1/job/flap")
        assert stopped.status_code == 200
        allocs = s.service.model.state.allocs
        await wait_until(s.service, lambda: all(a.alloc.ClientStatus in ("complete", "failed") for a in allocs.values()))
        expected = published(s.service.config.data_dir)

        tiny = create_app(s.service)
        streamer_of(tiny).fold_capacity = 1
        shutdown, port = await serve_app(tiny, nursery)
        got = await collect(port, {"index": 1}, reaches(expected[-1]))
        shutdown.set()
        assert indexes(got) == expected
        checked = 0
        for line in got:
            event = line["Events"][0]
            if event["Topic"] != "Allocation":
                continue
            then = await s.client.get(f"/v1/allocation/{event['Key']}", params={"at_index": event["Index"]})
            read = then.json()
            del read["Job"]
            assert event["Payload"]["Allocation"] == read, event["Index"]
            checked += 1
        assert checked > 60


async def test_topics_keys_and_namespaces_filter(served: Served) -> None:
    root_ns = await served.client.put("/v1/namespace/other", json={"Name": "other"})
    assert root_ns.status_code == 200
    await register(served, example_job("web", count=1))
    await register(served, example_job("api", count=2, namespace="other"))
    await all_running(served)
    state = served.service.model.state
    records = list(iter_file_records(log_path(served.service.config.data_dir)))
    api_allocs = [a for a, agg in state.allocs.items() if agg.alloc.JobID == "api"]

    def where(pred: Callable[[ev.Recorded], bool]) -> list[int]:
        wanted = set(published(served.service.config.data_dir))
        return [r.index for r in records if r.index in wanted and pred(r)]

    def ns_of(r: ev.Recorded) -> str:
        kind, _, rest = r.stream.partition("/")
        if kind == "alloc":
            return state.allocs[rest].alloc.Namespace
        if kind == "eval":
            return state.evals[rest].Namespace
        return rest.split("/", 1)[0]

    cases: list[tuple[dict[str, Any], Callable[[ev.Recorded], bool]]] = [
        ({"topic": "Job"}, lambda r: r.stream == "job/default/web"),
        ({"topic": "Job", "namespace": "*"}, lambda r: r.stream.startswith("job/")),
        ({"topic": "Allocation:api", "namespace": "other"}, lambda r: r.stream[6:] in api_allocs),
        ({"topic": f"Allocation:{api_allocs[0]}", "namespace": "*"}, lambda r: r.stream == f"alloc/{api_allocs[0]}"),
        ({"topic": ["Evaluation", "Job"], "namespace": "*"}, lambda r: r.stream.startswith(("job/", "eval/"))),
        ({"topic": "Evaluation:api", "namespace": "other"}, lambda r: r.stream.startswith("eval/") and ns_of(r) == "other"),
        ({"namespace": "other"}, lambda r: ns_of(r) == "other"),
        ({"topic": "*:web"}, lambda r: ns_of(r) == "default"),
        ({}, lambda r: ns_of(r) == "default"),
    ]
    for params, pred in cases:
        expected = where(pred)
        assert expected, params
        got = await collect(served.port, {**params, "index": 1}, reaches(expected[-1]))
        assert indexes(got) == expected, params


async def test_parameter_errors_use_nomad_texts(served: Served) -> None:
    cases = [
        ({"index": "abc"}, 'Unable to parse index: strconv.Atoi: parsing "abc": invalid syntax'),
        ({"index": "1.5"}, 'Unable to parse index: strconv.Atoi: parsing "1.5": invalid syntax'),
        ({"index": "99999999999999999999"}, 'Unable to parse index: strconv.Atoi: parsing "99999999999999999999": value out of range'),
        ({"topic": "Allocation:a:b"}, "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Allocation:a:b"),
        ({"index": "-1"}, "Invalid index"),
        ({"wait": "1x"}, "Invalid wait time"),
    ]  # fmt: skip
    for params, text in cases:
        r = await served.client.get("/v1/event/stream", params=params)
        assert (r.status_code, r.text, r.headers["content-type"]) == (400, text, TEXT), params


# --- durability and resumption ----------------------------------------------------------------------


def flapping_job(job_id: str = "flap") -> dict[str, Any]:
    """A task that exits every 10 ms and restarts 10 ms later: a steady stream of commits."""
    body = example_job(job_id, count=1, Config={"run_for": "10ms", "exit_code": 1})
    body["Job"]["TaskGroups"][0]["RestartPolicy"] = {
        "Attempts": 10_000, "Interval": 3_600_000_000_000, "Delay": 10_000_000, "Mode": "delay",
    }  # fmt: skip
    return body


async def test_replay_hands_over_to_live_with_no_gap_while_writes_continue(served: Served) -> None:
    await register(served, flapping_job())
    data_dir = served.service.config.data_dir
    await wait_until(served.service, lambda: served.service.log.last_index > 60)
    target = served.service.log.last_index + 60
    got = await collect(served.port, {"index": 1}, reaches(target))
    assert got[0]["Index"] == 1
    assert indexes(got) == [i for i in published(data_dir) if i <= got[-1]["Index"]]

    # Resume in pieces: each resume starts at the last index seen + 1 (Nomad's index is inclusive).
    pieces: list[Line] = []
    position = 1
    for _ in range(3):
        goal = served.service.log.last_index + 20
        piece = await collect(served.port, {"index": position}, reaches(goal))
        pieces.extend(piece)
        position = piece[-1]["Index"] + 1
    assert indexes(pieces) == [i for i in published(data_dir) if i <= pieces[-1]["Index"]]


async def test_resume_across_an_agent_restart(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0)
    async with served_on(config, nursery) as s:
        await register(s, example_job("web", count=2))
        await all_running(s)
        await register(s, example_job("web", count=2, Config={"run_for": "45s"}))
        allocs = s.service.model.state.allocs
        await wait_until(s.service, lambda: len(allocs) == 4)
        half = len(published(config.data_dir)) // 2
        before = await collect(s.port, {"index": 1}, lambda got: len(got) == half)
    last_seen = before[-1]["Index"]

    async with served_on(config, nursery) as s:
        await all_running_or_done(s)
        stopped = await s.client.delete("/v1/job/web")
        assert stopped.status_code == 200
        allocs = s.service.model.state.allocs
        await wait_until(s.service, lambda: all(a.alloc.ClientStatus == "complete" for a in allocs.values()))
        expected = published(config.data_dir)
        after = await collect(s.port, {"index": last_seen + 1}, reaches(expected[-1]))
    combined = indexes(before) + indexes(after)
    assert combined == expected, "one stream across the restart: no gap, no duplicate"
    assert len(set(combined)) == len(combined)
    kinds = {(line["Events"][0]["Topic"], line["Events"][0]["Type"]) for line in after}
    assert ("Job", "JobDeregistered") in kinds


async def all_running_or_done(s: Served) -> None:
    await wait_until(
        s.service,
        lambda: all(a.alloc.ClientStatus in ("running", "complete", "failed") for a in s.service.model.state.allocs.values()),
    )


# --- heartbeats, timeouts and backpressure --------------------------------------------------------------


async def test_heartbeats_keep_flowing_past_the_response_timeout(tmp_path: Path, nursery: trio.Nursery) -> None:
    async with open_service(AgentConfig(data_dir=str(tmp_path / "data"), port=0)) as service:
        app = create_app(service)
        app.config["RESPONSE_TIMEOUT"] = 0.3
        streamer_of(app).heartbeat = 0.15
        shutdown, port = await serve_app(app, nursery)
        beats = 0
        started = trio.current_time()
        with trio.fail_after(10):
            async with open_stream(port) as stream:
                while beats < 6:
                    assert await stream.line() == {}
                    beats += 1
        assert trio.current_time() - started > 0.6, "the stream outlived Quart's (shortened) response timeout"
        shutdown.set()


async def test_heartbeat_every_30_seconds_under_a_mock_clock(autojump_clock: Any) -> None:
    async with open_service(AgentConfig(), log=MemoryEventLog(), wall_base_ns=FIXED_WALL) as service:
        client = create_app(service).test_client()
        times = []
        with trio.CancelScope() as scope:
            async with client.request("/v1/event/stream") as conn:
                await conn.send_complete()
                start = trio.current_time()
                assert await conn.receive() == b"{}\n"
                for _ in range(3):
                    assert await conn.receive() == b"{}\n"
                    times.append(trio.current_time() - start)
                scope.cancel()  # the test client waits for a body end that a stream never sends
        assert times == pytest.approx([30.0, 60.0, 90.0], abs=0.01)


async def test_a_slow_reader_holds_the_server_back(tmp_path: Path, nursery: trio.Nursery) -> None:
    async with open_service(AgentConfig(data_dir=str(tmp_path / "data"), port=0)) as service:
        app = create_app(service)
        streamer = streamer_of(app)
        shutdown, port = await serve_app(app, nursery)
        for rev in range(40):
            body = example_job("big", count=0)
            body["Job"]["Meta"] = {"rev": str(rev), "blob": "x" * 256_000}
            await service.scheduler.register(job_from(body))
        last = service.log.last_index

        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with sock, trio.fail_after(30):
            await sock.connect(("127.0.0.1", port))
            await sock.send(b"GET /v1/event/stream?topic=Job&index=1 HTTP/1.1\r\nHost: test\r\n\r\n")
            head = await sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 200")
            previous, stable = None, 0
            while stable < 10:
                await trio.sleep(0.05)
                stats = streamer.statistics()
                stable = stable + 1 if stats.positions == previous else 0
                previous = stats.positions
            assert stats.subscribers == 1
            assert stats.positions[0] < last, "the server stopped reading the log while the client was not reading"
            assert stats.lines_sent < 25, "at most a few MB (the kernel's buffers) are in flight, not 10 MB"

            received = len(head)
            while streamer.statistics().positions[0] < last:
                received += len(await sock.recv(1 << 16))
            assert received > 5_000_000
        with trio.fail_after(10):
            while streamer.statistics().subscribers:  # noqa: ASYNC110 - polling a counter, bounded by fail_after
                await trio.sleep(0.02)
        assert streamer.lines_sent == 40
        shutdown.set()


# --- ACLs ----------------------------------------------------------------------------------------------


async def acl_setup(s: Served) -> tuple[dict[str, str], dict[str, str], str]:
    """Bootstrap; namespaces a and b; a token that may read only a. Returns (root, reader, accessor)."""
    boot = await s.client.post("/v1/acl/bootstrap")
    assert boot.status_code == 200, boot.text
    root = {"X-Nomad-Token": boot.json()["SecretID"]}
    for ns in ("a", "b"):
        assert (await s.client.put(f"/v1/namespace/{ns}", json={"Name": ns}, headers=root)).status_code == 200
    policy = {"Name": "read-a", "Rules": 'namespace "a" { policy = "read" }'}
    assert (await s.client.put("/v1/acl/policy/read-a", json=policy, headers=root)).status_code == 200
    token = await s.client.post("/v1/acl/token", json={"Type": "client", "Policies": ["read-a"]}, headers=root)
    assert token.status_code == 200, token.text
    return root, {"X-Nomad-Token": token.json()["SecretID"]}, token.json()["AccessorID"]


async def test_acl_filters_by_namespace_and_ends_the_stream_when_the_token_is_deleted(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0, acl_enabled=True)
    async with served_on(config, nursery) as s:
        root, reader, accessor = await acl_setup(s)
        for params, headers in (
            ({"topic": "Job"}, None),
            ({}, reader),
            ({"topic": "Job", "namespace": "b"}, reader),
            ({"topic": "Job", "namespace": "*"}, {"X-Nomad-Token": "00000000-0000-4000-8000-000000000000"}),
            ({"topic": "ACLToken", "namespace": "a"}, reader),
        ):
            r = await s.client.get("/v1/event/stream", params=params, headers=headers)
            assert (r.status_code, r.text) == (403, "Permission denied"), params

        await register(s, example_job("in-b", count=1, namespace="b"), root)
        await register(s, example_job("in-a", count=1, namespace="a"), root)
        await all_running(s)
        state = s.service.model.state
        wanted = set(published(config.data_dir))
        expected = [
            r.index
            for r in iter_file_records(log_path(config.data_dir))
            if r.index in wanted
            and (
                r.stream == "job/a/in-a"
                or (r.stream.startswith("alloc/") and state.allocs[r.stream[6:]].alloc.Namespace == "a")
            )
        ]
        both: dict[str, Any] = {"topic": ["Job", "Allocation"], "namespace": "*", "index": 1}
        got = await collect(s.port, both, reaches(expected[-1]), headers=reader)
        assert indexes(got) == expected
        assert {line["Events"][0]["Namespace"] for line in got} == {"a"}

        with trio.fail_after(10):
            async with open_stream(s.port, {"topic": "Job", "namespace": "a"}, reader) as stream:
                assert stream.status == 200
                assert await stream.line() == {}
                deleted = await s.client.delete(f"/v1/acl/token/{accessor}", headers=root)
                assert deleted.status_code == 200
                assert await stream.line() is None, "the server ended the body once the token was deleted"
        after = await s.client.get("/v1/event/stream", params={"topic": "Job", "namespace": "a"}, headers=reader)
        assert (after.status_code, after.text) == (403, "Permission denied")

        # A policy edit that takes the namespace away ends a stream whose token is still alive.
        second = await s.client.post("/v1/acl/token", json={"Type": "client", "Policies": ["read-a"]}, headers=root)
        still = {"X-Nomad-Token": second.json()["SecretID"]}
        with trio.fail_after(10):
            async with open_stream(s.port, {"topic": "Job", "namespace": "a"}, still) as stream:
                assert stream.status == 200
                assert await stream.line() == {}
                narrowed = {"Name": "read-a", "Rules": 'namespace "b" { policy = "read" }'}
                assert (await s.client.put("/v1/acl/policy/read-a", json=narrowed, headers=root)).status_code == 200
                assert await stream.line() is None, "the server ended the body once the policy no longer allowed it"


async def test_the_stream_ends_when_its_token_expires(autojump_clock: Any) -> None:
    config = AgentConfig(acl_enabled=True)
    async with open_service(config, log=MemoryEventLog(), wall_base_ns=FIXED_WALL) as service:
        client = create_app(service).test_client()
        boot = await client.post("/v1/acl/bootstrap")
        root = {"X-Nomad-Token": (await boot.get_json())["SecretID"]}
        policy = {"Name": "read", "Rules": 'namespace "default" { policy = "read" }'}
        assert (await client.put("/v1/acl/policy/read", json=policy, headers=root)).status_code == 200
        made = await client.post(
            "/v1/acl/token", json={"Type": "client", "Policies": ["read"], "ExpirationTTL": "1m"}, headers=root
        )
        assert made.status_code == 200, await made.get_data()
        secret = (await made.get_json())["SecretID"]
        async with client.request(
            "/v1/event/stream", query_string={"topic": "Job"}, headers={"X-Nomad-Token": secret}
        ) as conn:
            await conn.send_complete()
            start = trio.current_time()
            chunks = [await conn.receive()]

            async def until_the_end() -> None:
                while True:
                    chunks.append(await conn.receive())

            with pytest.raises(trio.EndOfChannel):
                await until_the_end()
            ended = trio.current_time() - start
        assert isinstance(conn, TrioTestConnection)
        assert conn.status_code == 200
        assert chunks[:2] == [b"{}\n", b"{}\n"], "the first line, then the heartbeat at 30 s"
        assert set(chunks[:-1]) == {b"{}\n"}
        assert chunks[-1] == b"", "the body ended"
        assert 59.0 <= ended <= 61.0, ended
        denied = await client.get("/v1/event/stream", query_string={"topic": "Job"}, headers={"X-Nomad-Token": secret})
        assert denied.status_code == 403
