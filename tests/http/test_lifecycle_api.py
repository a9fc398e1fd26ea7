"""Signal, restart and stop against a real server with real raw_exec processes (FACTS §1.3-1.5, §6, §10).

Every task here is ``/bin/sh`` writing its pid (and its children's) to files in its task dir,
so each test can check what really happened to the processes; an autouse fixture checks that
none of them outlives the test's agent.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from allocsvc.config import AgentConfig
from allocsvc.domain import commands as cmd, events as ev
from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.lifecycle import TASK_RULES
from allocsvc.drivers.mock import MockHandle
from allocsvc.errors import AllocsvcError
from allocsvc.service import Service, open_service
from allocsvc.store.memory import MemoryEventLog
from tests.acl_fixtures import ACLAgent, as_token, open_acl_agent
from tests.conftest import Served
from tests.helpers import example_job, job_from, wait_until
from tests.processes import SH, alive, exec_done, gone, read_when, recorded_pids

TEXT = "text/plain; charset=utf-8"
MS = 1_000_000
TRAPS = "trap 'echo usr1 >> marker' USR1; trap 'echo usr2 >> marker' USR2; trap 'echo hup >> marker' HUP"
SIGNAL_SCRIPT = TRAPS + "; echo $$ >> pids; while :; do sleep 0.05; done"
SLEEP_SCRIPT = "echo $$ >> pids; exec sleep 300"


@pytest.fixture(autouse=True)
async def no_orphans(tmp_path: Path) -> AsyncIterator[None]:
    """After the agent has shut down, every process a task recorded must be gone."""
    yield
    await gone(*recorded_pids(tmp_path))


# --- helpers ----------------------------------------------------------------------------------------


def raw_job(
    job_id: str, script: str, *, count: int = 1, delay_ns: int = 15_000 * MS, **task: Any
) -> dict[str, Any]:
    task.setdefault("KillTimeout", 2_000 * MS)
    body = example_job(
        job_id, count=count, Driver="raw_exec", Config={"command": SH, "args": ["-c", script]}, **task
    )
    body["Job"]["TaskGroups"][0]["RestartPolicy"]["Delay"] = delay_ns
    return body


def job_allocs(service: Service, job_id: str) -> list[str]:
    return [a.alloc.ID for a in service.model.allocs_of_job("default", job_id)]


def task_state(service: Service, alloc_id: str, task: str = "server") -> Any:
    return (service.model.state.allocs[alloc_id].alloc.TaskStates or {})[task]


async def start(s: Served, job_id: str, script: str, *, count: int = 1, **task: Any) -> list[str]:
    """Register a raw_exec job; wait until every alloc runs and its task wrote its pid."""
    r = await s.client.put("/v1/jobs", json=raw_job(job_id, script, count=count, **task))
    assert r.status_code == 200, r.text
    await wait_until(
        s.service,
        lambda: (
            len(job_allocs(s.service, job_id)) == count
            and all(
                s.service.model.state.allocs[a].alloc.ClientStatus == "running"
                for a in job_allocs(s.service, job_id)
            )
        ),
    )
    ids = job_allocs(s.service, job_id)
    for alloc_id in ids:
        await read_when(tdir(s, alloc_id) / "pids")
    return ids


def tdir(s: Served, alloc_id: str, task: str = "server") -> Path:
    assert s.service.runtime.data_dir is not None
    return s.service.runtime.data_dir / "alloc" / alloc_id / task


async def pids(s: Served, alloc_id: str, count: int = 1) -> list[int]:
    return [int(p) for p in await read_when(tdir(s, alloc_id) / "pids", lines=count)]


def records(service: Service, alloc_id: str) -> list[ev.Recorded]:
    return [r for r in service.log.iter_records() if r.stream == f"alloc/{alloc_id}"]


def task_types(service: Service, alloc_id: str) -> list[str]:
    return [
        type(r.event).__name__ for r in records(service, alloc_id) if isinstance(r.event, ev.TaskEventBase)
    ]


async def nomad_events(s: Served, alloc_id: str, task: str = "server") -> list[dict[str, Any]]:
    r = await s.client.get(f"/v1/allocation/{alloc_id}")
    assert r.status_code == 200
    events: list[dict[str, Any]] = r.json()["TaskStates"][task]["Events"]
    return events


def assert_ok(r: httpx.Response) -> None:
    """Nomad's GenericResponse: exactly ``{"Index":0}``, JSON, and no index headers."""
    assert (r.status_code, r.content) == (200, b'{"Index":0}'), r.text
    assert r.headers["content-type"] == "application/json"
    assert "X-Nomad-Index" not in r.headers


def assert_error(r: httpx.Response, status: int, body: str) -> None:
    assert (r.status_code, r.text) == (status, body)
    assert r.headers["content-type"] == TEXT


def assert_valid_path(service: Service, alloc_id: str) -> None:
    """Every task event of the alloc followed the lifecycle table from ``pending``."""
    status: dict[str, str] = {}
    for r in records(service, alloc_id):
        if isinstance(r.event, ev.TaskEventBase):
            rule = TASK_RULES[type(r.event)]
            current = status.get(r.event.task, "pending")
            assert current in rule.allowed_from, (type(r.event).__name__, current)
            if rule.to is not None:
                status[r.event.task] = rule.to


def assert_replay_matches(service: Service) -> None:
    """Replaying the log up to the read model's index rebuilds exactly the live state."""
    replayed = ClusterState()
    upto = service.model.state.last_index
    replayed.apply_all(r for r in service.log.iter_records() if r.index <= upto)
    assert replayed.allocs == service.model.state.allocs
    assert replayed.evals == service.model.state.evals


# --- signal -----------------------------------------------------------------------------------------


async def test_signal_reaches_the_process_and_is_recorded(served: Served) -> None:
    (alloc_id,) = await start(served, "sig", SIGNAL_SCRIPT)
    (leader,) = await pids(served, alloc_id)
    url = f"/v1/client/allocation/{alloc_id}/signal"

    assert_ok(await served.client.post(url, json={"Signal": "SIGUSR1", "Task": "server"}))
    assert await read_when(tdir(served, alloc_id) / "marker") == ["usr1"]
    # Go's decoder: keys match case-insensitively, unknown keys are ignored; PUT works too
    assert_ok(await served.client.put(url, content=b'{"signal": "SIGUSR2", "TASK": "server", "Extra": [1]}'))
    assert await read_when(tdir(served, alloc_id) / "marker", lines=2) == ["usr1", "usr2"]
    # no Task: every task is signalled
    assert_ok(await served.client.post(url, json={"Signal": "SIGHUP"}))
    assert await read_when(tdir(served, alloc_id) / "marker", lines=3) == ["usr1", "usr2", "hup"]

    assert alive(leader)
    assert await pids(served, alloc_id) == [leader]
    events = (await nomad_events(served, alloc_id))[-3:]
    assert [(e["Type"], e["Details"], e["DisplayMessage"]) for e in events] == [
        ("Signaling", {"signal": name}, "Task being sent a signal")
        for name in ("SIGUSR1", "SIGUSR2", "SIGHUP")
    ]
    assert all(e["TaskSignal"] == "" for e in events)
    assert task_types(served.service, alloc_id)[-3:] == ["TaskSignaled"] * 3
    assert task_state(served.service, alloc_id).State == "running"


async def test_unknown_signal_is_sigint_and_the_restart_policy_applies(served: Served) -> None:
    (alloc_id,) = await start(served, "sigint", SIGNAL_SCRIPT, delay_ns=100 * MS)
    (first,) = await pids(served, alloc_id)
    assert_ok(
        await served.client.post(f"/v1/client/allocation/{alloc_id}/signal", json={"Signal": "SIGBOGUS"})
    )
    await gone(first)
    await wait_until(served.service, lambda: task_state(served.service, alloc_id).Restarts == 1
                     and task_state(served.service, alloc_id).State == "running")  # fmt: skip
    second = (await pids(served, alloc_id, 2))[1]
    assert second != first
    assert alive(second)
    assert task_types(served.service, alloc_id)[-4:] == [
        "TaskSignaled",
        "TaskTerminated",
        "TaskRestarting",
        "TaskStarted",
    ]
    signaling, terminated, restarting, started = (await nomad_events(served, alloc_id))[-4:]
    assert signaling["Details"] == {"signal": "SIGBOGUS"}
    assert (terminated["ExitCode"], terminated["Signal"]) == (130, 2)
    assert terminated["DisplayMessage"] == "Exit Code: 130, Signal: 2"
    assert restarting["RestartReason"] == "Restart within policy"
    assert 100 * MS <= restarting["StartDelay"] <= 125 * MS
    assert started["Type"] == "Started"


# --- restart ----------------------------------------------------------------------------------------


async def test_restart_gives_a_new_pid_with_nomads_event_sequence(served: Served) -> None:
    (alloc_id,) = await start(served, "rs", SLEEP_SCRIPT)
    service = served.service
    url = f"/v1/client/allocation/{alloc_id}/restart"
    started_at = [task_state(service, alloc_id).StartedAt]
    requests: list[tuple[str, dict[str, Any] | None, str]] = [
        ("POST", {"TaskName": "server"}, "User requested task to restart"),
        ("GET", None, "User requested running tasks to restart"),  # no method check, empty body
        ("PUT", {"AllTasks": True}, "User requested all tasks to restart"),
    ]
    for n, (method, body, _) in enumerate(requests, start=1):
        before = (await pids(served, alloc_id, n))[-1]
        assert_ok(await served.client.request(method, url, json=body))
        await gone(before)
        await wait_until(service, lambda n=n: task_state(service, alloc_id).Restarts == n  # type: ignore[misc]
                         and task_state(service, alloc_id).State == "running")  # fmt: skip
        started_at.append(task_state(service, alloc_id).StartedAt)

    all_pids = await pids(served, alloc_id, 4)
    assert len(set(all_pids)) == 4
    assert [alive(p) for p in all_pids] == [False, False, False, True]
    once = ["TaskRestartSignaled", "TaskTerminated", "TaskRestarting", "TaskStarted"]
    assert task_types(service, alloc_id) == ["TaskReceived", "TaskSetupRan", "TaskStarted", *once * 3]
    task_records = [r for r in records(service, alloc_id) if isinstance(r.event, ev.TaskEventBase)][3:]
    reasons = [r.event.reason for r in task_records if isinstance(r.event, ev.TaskRestartSignaled)]
    assert reasons == [reason for _, _, reason in requests]
    events = (await nomad_events(served, alloc_id))[-4:]
    assert [e["Type"] for e in events] == ["Restart Signaled", "Terminated", "Restarting", "Started"]
    assert events[0]["DisplayMessage"] == "User requested all tasks to restart"
    assert (events[1]["ExitCode"], events[1]["Signal"]) == (130, 2)  # KillSignal SIGINT to a plain sleep
    assert (events[2]["StartDelay"], events[2]["DisplayMessage"]) == (0, "Task restarting in 0s")
    state = task_state(service, alloc_id)
    assert state.Restarts == 3
    assert state.LastRestart is not None
    assert not state.Failed
    assert len(set(started_at)) == 4
    assert "Killing" not in [e["Type"] for e in await nomad_events(served, alloc_id)]
    assert_valid_path(service, alloc_id)
    assert_replay_matches(service)


async def test_restart_uses_the_kill_signal(served: Served) -> None:
    script = "trap 'echo term >> marker; exit 3' TERM; echo $$ >> pids; while :; do sleep 0.05; done"
    (alloc_id,) = await start(served, "ks", script, KillSignal="SIGTERM")
    (first,) = await pids(served, alloc_id)
    assert_ok(
        await served.client.post(f"/v1/client/allocation/{alloc_id}/restart", json={"TaskName": "server"})
    )
    await gone(first)
    assert await read_when(tdir(served, alloc_id) / "marker") == ["term"]
    await wait_until(served.service, lambda: task_state(served.service, alloc_id).Restarts == 1)
    terminated = next(e for e in reversed(await nomad_events(served, alloc_id)) if e["Type"] == "Terminated")
    assert (terminated["ExitCode"], terminated["Signal"], terminated["DisplayMessage"]) == (
        3,
        0,
        "Exit Code: 3",
    )


# --- stop -------------------------------------------------------------------------------------------


async def test_stop_ends_the_process_group_and_places_a_replacement(served: Served) -> None:
    # the background sleep ignores SIGINT (non-interactive sh): only the group SIGKILL ends it
    script = "sleep 300 & echo $! > child; echo $$ >> pids; wait"
    (old_id,) = await start(served, "stop", script, ShutdownDelay=200 * MS)
    service = served.service
    (leader,) = await pids(served, old_id)
    child = await exec_done(int((await read_when(tdir(served, old_id) / "child"))[0]))

    r = await served.client.post(f"/v1/allocation/{old_id}/stop", params={"no_shutdown_delay": "true"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"EvalID", "Index"}
    assert r.headers["X-Nomad-Index"] == str(body["Index"])
    await gone(leader, child)
    await wait_until(service, lambda: len(job_allocs(service, "stop")) == 2
                     and service.model.state.allocs[old_id].alloc.ClientStatus == "complete")  # fmt: skip
    old = service.model.state.allocs[old_id].alloc
    new_id = old.NextAllocation
    await wait_until(service, lambda: service.model.state.allocs[new_id].alloc.ClientStatus == "running")
    (replacement,) = await pids(served, new_id)
    assert alive(replacement)
    assert replacement not in (leader, child)

    detail = (await served.client.get(f"/v1/allocation/{old_id}")).json()
    assert (detail["DesiredStatus"], detail["DesiredDescription"]) == ("stop", "alloc is being migrated")
    assert detail["DesiredTransition"] == {
        "Migrate": True, "Reschedule": False, "ForceReschedule": None, "NoShutdownDelay": True, "MigrateDisablePlacement": None,
    }  # fmt: skip
    assert (detail["ClientStatus"], detail["ClientDescription"]) == ("complete", "All tasks have completed")
    assert detail["NextAllocation"] == new_id
    assert service.model.state.allocs[new_id].alloc.PreviousAllocation == old_id
    task = detail["TaskStates"]["server"]
    assert (task["State"], task["Failed"]) == ("dead", False)
    assert task["FinishedAt"] is not None
    killing, skipping, terminated, killed = task["Events"][-4:]
    assert killing["Type"] == "Killing"
    assert killing["DisplayMessage"] == "Sent interrupt. Waiting 2s before force killing"
    assert skipping["Type"] == "Skipping shutdown delay"
    assert (terminated["Type"], terminated["DisplayMessage"]) == ("Terminated", "Exit Code: 130, Signal: 2")
    assert (killed["Type"], killed["DisplayMessage"]) == ("Killed", "Task successfully killed")
    evaluation = service.model.state.evals[body["EvalID"]]
    assert (evaluation.TriggeredBy, evaluation.Status) == ("alloc-stop", "complete")

    # stopping a finished allocation succeeds (a new eval) and places nothing
    again = await served.client.put(f"/v1/allocation/{old_id}/stop")
    assert again.status_code == 200
    assert again.json()["EvalID"] != body["EvalID"]
    assert len(job_allocs(service, "stop")) == 2
    assert_valid_path(service, old_id)
    assert_replay_matches(service)


async def test_kill_waits_shutdown_delay_then_escalates_to_sigkill(served: Served) -> None:
    script = "trap '' INT; echo $$ >> pids; while :; do sleep 0.05; done"
    (alloc_id,) = await start(served, "stubborn", script, KillTimeout=300 * MS, ShutdownDelay=200 * MS)
    (leader,) = await pids(served, alloc_id)
    began = trio.current_time()
    assert (await served.client.post(f"/v1/allocation/{alloc_id}/stop")).status_code == 200
    await gone(leader)
    assert trio.current_time() - began >= 0.5
    await wait_until(
        served.service, lambda: served.service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete"
    )
    events = (await nomad_events(served, alloc_id))[-4:]
    assert [e["DisplayMessage"] for e in events] == [
        "Sent interrupt. Waiting 300ms before force killing",
        "Waiting for shutdown_delay of 200ms before killing the task.",
        "Exit Code: 137, Signal: 9",
        "Task successfully killed",
    ]


# --- errors -----------------------------------------------------------------------------------------


async def test_signal_errors_have_nomads_text_and_record_nothing(served: Served) -> None:
    (alloc_id,) = await start(served, "sigerr", SIGNAL_SCRIPT)
    c, service = served.client, served.service
    url = f"/v1/client/allocation/{alloc_id}/signal"
    unknown = str(uuid.uuid4())
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", url, {}, 405, "Invalid method"),
        ("DELETE", url, {"content": b"{nope"}, 405, "Invalid method"),
        ("POST", url, {}, 400, "Failed to decode body: Request body is empty"),
        ("POST", url, {"content": b"  \n"}, 400, "Failed to decode body: EOF"),
        ("POST", url, {"content": b'{"Signal": "SIGUSR1"'}, 400, "Failed to decode body: unexpected EOF"),
        ("POST", url, {"content": b"nope"}, 400, "Failed to decode body: invalid character 'o' in literal null (expecting 'u')"),
        ("POST", url, {"content": b'{"Signal": 5}'}, 400,
         "Failed to decode body: json: cannot unmarshal number into Go struct field AllocSignalRequest.Signal of type string"),
        ("POST", url, {"content": b"[]"}, 400,
         "Failed to decode body: json: cannot unmarshal array into Go value of type structs.AllocSignalRequest"),
        ("POST", url + "?index=abc", {"json": {}}, 400, "Invalid index"),
        ("POST", url + "?wait=10", {"json": {}}, 400, "Invalid wait time"),
        ("POST", url + "?stale=maybe", {"json": {}}, 400, "Expect `true` or `false` for `stale` query string parameter"),
        ("POST", f"/v1/client/allocation/{unknown}/signal", {"json": {}}, 404, f'Unknown allocation "{unknown}"'),
        ("POST", "/v1/client/allocation/abc/signal", {"json": {}}, 400, "alloc lookup failed: index error: UUID must be 36 characters"),
        ("POST", url, {"json": {"Task": "nope", "Signal": "SIGUSR1"}}, 404, "Task not found"),
    ]  # fmt: skip
    before = (service.model.state.last_index, service.model.state.allocs[alloc_id].version)
    for method, path, kwargs, status, text in cases:
        assert_error(await c.request(method, path, **kwargs), status, text)
    assert (service.model.state.last_index, service.model.state.allocs[alloc_id].version) == before
    assert not (tdir(served, alloc_id) / "marker").exists()

    # a dead task: stop the alloc first
    assert (await c.post(f"/v1/allocation/{alloc_id}/stop")).status_code == 200
    await wait_until(service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    version = service.model.state.allocs[alloc_id].version
    assert_error(await c.post(url, json={"Task": "server"}), 400, "Task not running")
    assert_error(
        await c.post(url, json={}),
        400,
        "1 error occurred:\n\t* Failed to signal task: server, err: Task not running\n\n",
    )
    assert service.model.state.allocs[alloc_id].version == version


async def test_restart_errors_have_nomads_text_and_record_nothing(served: Served) -> None:
    (alloc_id,) = await start(served, "rserr", SLEEP_SCRIPT)
    c, service = served.client, served.service
    url = f"/v1/client/allocation/{alloc_id}/restart"
    unknown = str(uuid.uuid4())
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", url, {"json": {"TaskName": "server", "AllTasks": True}}, 400, "task name cannot be set when restarting all tasks"),
        ("POST", url, {"json": {"TaskName": "nope"}}, 404, "Could not find task runner for task: nope"),
        ("POST", url, {"content": b"x"}, 400, "invalid character 'x' looking for beginning of value"),
        ("PUT", url, {"content": b'{"AllTasks": "yes"}'}, 400, "json: cannot unmarshal string into Go struct field .AllTasks of type bool"),
        ("DELETE", url, {"content": b"[]"}, 400, "json: cannot unmarshal array into Go value of type struct { TaskName string; AllTasks bool }"),
        ("POST", url + "?index=-1", {}, 400, "Invalid index"),
        ("POST", f"/v1/client/allocation/{unknown}/restart", {}, 404, f'Unknown allocation "{unknown}"'),
        ("GET", "/v1/client/allocation/" + "z" * 36 + "/restart", {}, 400,
         "alloc lookup failed: index error: Invalid UUID: encoding/hex: invalid byte: U+007A 'z'"),
    ]  # fmt: skip
    before = (service.model.state.last_index, service.model.state.allocs[alloc_id].version)
    for method, path, kwargs, status, text in cases:
        assert_error(await c.request(method, path, **kwargs), status, text)
    assert (service.model.state.last_index, service.model.state.allocs[alloc_id].version) == before
    assert len(await pids(served, alloc_id)) == 1

    assert (await c.post(f"/v1/allocation/{alloc_id}/stop")).status_code == 200
    await wait_until(service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    version = service.model.state.allocs[alloc_id].version
    assert_error(await c.post(url), 400, "restart of an alloc that should not run")
    assert_error(await c.post(url, json={"AllTasks": True}), 400, "restart of an alloc that should not run")
    assert_error(await c.post(url, json={"TaskName": "server"}), 400, "Task not running")
    assert service.model.state.allocs[alloc_id].version == version


async def test_client_allocation_routing(served: Served) -> None:
    (alloc_id,) = await start(served, "route", SLEEP_SCRIPT)
    c = served.client
    for path in (
        f"/v1/client/allocation/{alloc_id}/bogus",
        f"/v1/client/allocation/{alloc_id}",
        f"/v1/client/allocation/{alloc_id}/signal/extra",
        "/v1/client/allocation/",
        f"/v1/client/allocation/{alloc_id}/restart/",
    ):
        for method in ("GET", "POST"):
            assert_error(await c.request(method, path), 404, "resource not found")
    # exec belongs to the WebSocket endpoint: the catch-all must not answer it as unknown
    r = await c.get(f"/v1/client/allocation/{alloc_id}/exec")
    assert r.text != "resource not found"
    # stop: a bad boolean is a 400 with Nomad's text, and nothing is recorded
    before = served.service.model.state.last_index
    r = await c.post(f"/v1/allocation/{alloc_id}/stop", params={"no_shutdown_delay": "maybe"})
    assert r.status_code == 400
    assert "maybe" in r.text
    assert served.service.model.state.last_index == before
    assert len(await pids(served, alloc_id)) == 1


# --- concurrency ------------------------------------------------------------------------------------


async def test_concurrent_stop_signal_restart_are_serialised(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "; ".join(
        f"trap 'echo {s.lower()} >> marker' {s}" for s in ("USR1", "USR2", "HUP", "WINCH", "URG")
    )
    (alloc_id,) = await start(
        served, "race", script + "; echo $$ >> pids; while :; do sleep 0.05; done", delay_ns=50 * MS
    )
    service = served.service
    acked: list[tuple[cmd.AnyCommand, list[ev.Recorded]]] = []
    real_ask = service.supervisor.ask

    async def recording_ask(target: str, command: cmd.AnyCommand) -> list[ev.Recorded]:
        result = await real_ask(target, command)
        if target == alloc_id:
            acked.append((command, result))
        return result

    monkeypatch.setattr(service.supervisor, "ask", recording_ask)
    url = f"/v1/client/allocation/{alloc_id}"
    signals = ["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH", "SIGURG"]
    outcomes: dict[str, int] = {}

    async def call(name: str, path: str, body: dict[str, str] | None) -> None:
        outcomes[name] = (await served.client.post(path, json=body)).status_code

    async with trio.open_nursery() as nursery:
        for n, signal_name in enumerate(signals):
            nursery.start_soon(call, signal_name, f"{url}/signal", {"Signal": signal_name, "Task": "server"})
            nursery.start_soon(call, f"restart{n}", f"{url}/restart", {"TaskName": "server"})
        nursery.start_soon(call, "stop", f"/v1/allocation/{alloc_id}/stop", None)

    await wait_until(service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    assert outcomes["stop"] == 200
    assert set(outcomes.values()) <= {200, 400}
    log = records(service, alloc_id)
    signaled = [r.event.signal for r in log if isinstance(r.event, ev.TaskSignaled)]
    assert sorted(signaled) == sorted(s for s in signals if outcomes[s] == 200)  # each once, none lost
    restarts = [r for r in log if isinstance(r.event, ev.TaskRestartSignaled)]
    assert len(restarts) == sum(1 for k, v in outcomes.items() if k.startswith("restart") and v == 200)
    assert sum(isinstance(r.event, ev.AllocStopRequested) for r in log) == 1
    # acknowledged in log order: each ack's first record comes after the previous ack's
    first_indexes = [result[0].index for _, result in acked if result]
    assert first_indexes == sorted(first_indexes)
    assert len(acked) == sum(1 for v in outcomes.values() if v == 200)
    indexes = [r.index for r in log]
    assert len(indexes) == len(set(indexes))
    types = task_types(service, alloc_id)
    assert types[-1] == "TaskKilled"
    assert types.count("TaskKilled") == 1
    assert_valid_path(service, alloc_id)
    assert_replay_matches(service)
    await gone(*await pids(served, alloc_id, 1))


async def test_stop_racing_restart_leaves_an_explainable_history(served: Served) -> None:
    ids = await start(served, "racers", SLEEP_SCRIPT, count=3)
    service = served.service

    statuses: list[int] = []

    async def call(method: str, path: str) -> None:
        statuses.append((await served.client.request(method, path)).status_code)

    async with trio.open_nursery() as nursery:
        for n, alloc_id in enumerate(ids):
            restart = ("POST", f"/v1/client/allocation/{alloc_id}/restart")
            stop = ("POST", f"/v1/allocation/{alloc_id}/stop")
            for method, path in (restart, stop) if n % 2 == 0 else (stop, restart):
                nursery.start_soon(call, method, path)
    assert statuses.count(200) >= len(ids)  # every stop succeeds; a restart may find the alloc stopping
    assert set(statuses) <= {200, 400}
    await wait_until(
        service, lambda: all(service.model.state.allocs[a].alloc.ClientStatus == "complete" for a in ids)
    )
    for alloc_id in ids:
        types = task_types(service, alloc_id)
        assert types[-3:] == ["TaskKilling", "TaskTerminated", "TaskKilled"] or types[-2:] == [
            "TaskKilling",
            "TaskKilled",
        ]
        after_kill = types[types.index("TaskKilling") :]
        assert "TaskStarted" not in after_kill
        assert "TaskRestarting" not in after_kill
        assert_valid_path(service, alloc_id)
        for pid in await pids(served, alloc_id):
            await gone(pid)
    assert_replay_matches(service)


# --- ACL and mock parity ----------------------------------------------------------------------------


@pytest.fixture
async def acl_agent(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    async for agent in open_acl_agent(tmp_path / "data", nursery):
        await agent.bootstrap()
        yield agent


async def test_acl_alloc_lifecycle_and_hidden_allocs(acl_agent: ACLAgent) -> None:
    c = acl_agent.client
    (alloc_id,) = await acl_agent.job("web", "default")
    await acl_agent.policy("lifecycle", 'namespace "default" { capabilities = ["alloc-lifecycle"] }')
    await acl_agent.policy("reader", 'namespace "default" { policy = "read" }')
    lifecycle = as_token((await acl_agent.token("lifecycle"))["SecretID"])
    reader = as_token((await acl_agent.token("reader"))["SecretID"])
    signal_url = f"/v1/client/allocation/{alloc_id}/signal"
    restart_url = f"/v1/client/allocation/{alloc_id}/restart"
    body = {"Signal": "SIGUSR1"}
    hidden = f'Unknown allocation "{alloc_id}"'

    assert_error(await c.post(signal_url, json=body), 404, hidden)  # anonymous: may not even know it exists
    assert_error(await c.post(restart_url), 404, hidden)
    assert_error(await c.post(signal_url, json=body, headers=reader), 403, "Permission denied")
    assert_error(
        await c.post(restart_url, json={"TaskName": "server", "AllTasks": True}, headers=reader),
        403,
        "Permission denied",
    )
    assert_error(
        await c.post(signal_url, json=body, headers=as_token(str(uuid.uuid4()))), 403, "Permission denied"
    )
    unknown = str(uuid.uuid4())
    assert_error(
        await c.post(f"/v1/client/allocation/{unknown}/signal", json=body, headers=lifecycle),
        404,
        f'Unknown allocation "{unknown}"',
    )
    assert_ok(await c.post(signal_url, json=body, headers=lifecycle))
    # Go decodes the body into the whole request, so its AuthToken counts when no header is sent
    assert_ok(await c.post(signal_url, json={**body, "AuthToken": lifecycle["X-Nomad-Token"]}))
    handle = acl_agent.served.service.supervisor.actors[alloc_id].runners["server"].handle
    assert isinstance(handle, MockHandle)
    assert handle.signals == ["SIGUSR1", "SIGUSR1"]
    assert_ok(await c.post(restart_url, json={"TaskName": "server"}, headers=lifecycle))


async def test_mock_tasks_follow_the_same_sequences(served: Served) -> None:
    r = await served.client.put("/v1/jobs", json=example_job("mocked", count=1, Config={}))
    assert r.status_code == 200
    service = served.service
    await wait_until(
        service,
        lambda: (
            [service.model.state.allocs[a].alloc.ClientStatus for a in job_allocs(service, "mocked")]
            == ["running"]
        ),
    )
    (alloc_id,) = job_allocs(service, "mocked")
    assert_ok(await served.client.post(f"/v1/client/allocation/{alloc_id}/signal", json={"Signal": "SIGHUP"}))
    assert_ok(await served.client.post(f"/v1/client/allocation/{alloc_id}/restart"))
    await wait_until(
        service,
        lambda: (
            task_state(service, alloc_id).Restarts == 1 and task_state(service, alloc_id).State == "running"
        ),
    )
    assert (await served.client.post(f"/v1/allocation/{alloc_id}/stop")).status_code == 200
    await wait_until(service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete")
    assert task_types(service, alloc_id) == [
        "TaskReceived", "TaskSetupRan", "TaskStarted", "TaskSignaled",
        "TaskRestartSignaled", "TaskTerminated", "TaskRestarting", "TaskStarted",
        "TaskKilling", "TaskTerminated", "TaskKilled",
    ]  # fmt: skip


async def test_all_tasks_restart_reruns_a_finished_prestart_task(served: Served) -> None:
    body = example_job("hooks", count=1, Config={})
    group = body["Job"]["TaskGroups"][0]
    init = {
        **group["Tasks"][0],
        "Name": "init",
        "Config": {"run_for": "50ms"},
        "Lifecycle": {"Hook": "prestart", "Sidecar": False},
    }
    group["Tasks"].insert(0, init)
    assert (await served.client.put("/v1/jobs", json=body)).status_code == 200
    service = served.service
    await wait_until(service, lambda: len(job_allocs(service, "hooks")) == 1)
    (alloc_id,) = job_allocs(service, "hooks")
    await wait_until(service, lambda: task_state(service, alloc_id, "init").State == "dead"
                     and task_state(service, alloc_id).State == "running")  # fmt: skip
    url = f"/v1/client/allocation/{alloc_id}/restart"

    def init_types() -> list[str]:
        return [
            type(r.event).__name__
            for r in records(service, alloc_id)
            if isinstance(r.event, ev.TaskEventBase) and r.event.task == "init"
        ]

    finished = ["TaskReceived", "TaskSetupRan", "TaskStarted", "TaskTerminated", "TaskCompleted"]
    assert init_types() == finished
    assert_ok(await served.client.post(url))  # running tasks only: the finished init stays dead
    await wait_until(
        service,
        lambda: (
            task_state(service, alloc_id).Restarts == 1 and task_state(service, alloc_id).State == "running"
        ),
    )
    assert init_types() == finished
    assert_ok(await served.client.post(url, json={"AllTasks": True}))
    await wait_until(service, lambda: task_state(service, alloc_id).Restarts == 2 and len(init_types()) == 10)
    assert init_types() == [
        *finished,
        "TaskRestartSignaled",
        "TaskRestarting",
        "TaskStarted",
        "TaskTerminated",
        "TaskCompleted",
    ]
    init_state = task_state(service, alloc_id, "init")
    assert (init_state.State, init_state.Failed, init_state.Restarts) == ("dead", False, 1)
    assert [e.Type for e in init_state.Events][-4:] == [
        "Restart Signaled",
        "Restarting",
        "Started",
        "Terminated",
    ]
    assert_valid_path(service, alloc_id)


async def test_raw_exec_task_runs_in_nomads_layout_with_its_env(served: Served) -> None:
    script = "env > env.txt; pwd > pwd.txt; echo out; echo err >&2; echo $$ >> pids; exec sleep 300"
    (alloc_id,) = await start(served, "layout", script, Env={"GREETING": "hello"})
    task_dir = tdir(served, alloc_id)
    alloc_dir = task_dir.parent / "alloc"
    env = dict(line.split("=", 1) for line in (await read_when(task_dir / "env.txt", lines=5)) if "=" in line)
    assert {k: env[k] for k in ("NOMAD_ALLOC_ID", "NOMAD_ALLOC_NAME", "NOMAD_TASK_NAME", "NOMAD_JOB_ID", "NOMAD_NAMESPACE")} == {
        "NOMAD_ALLOC_ID": alloc_id, "NOMAD_ALLOC_NAME": "layout.app[0]", "NOMAD_TASK_NAME": "server",
        "NOMAD_JOB_ID": "layout", "NOMAD_NAMESPACE": "default",
    }  # fmt: skip
    assert env["NOMAD_ALLOC_DIR"] == str(alloc_dir)
    assert env["NOMAD_TASK_DIR"] == str(task_dir / "local")
    assert env["NOMAD_SECRETS_DIR"] == str(task_dir / "secrets")
    assert env["GREETING"] == "hello"
    assert await read_when(task_dir / "pwd.txt") == [str(task_dir)]
    assert all((alloc_dir / d).is_dir() for d in ("data", "logs", "tmp"))
    assert all((task_dir / d).is_dir() for d in ("local", "secrets", "tmp"))
    assert await read_when(alloc_dir / "logs" / "server.stdout.0") == ["out"]
    assert await read_when(alloc_dir / "logs" / "server.stderr.0") == ["err"]


async def test_raw_exec_only_in_dev_mode_or_when_enabled(tmp_path: Path) -> None:
    for config, enabled in (
        (AgentConfig(), False),
        (AgentConfig(dev=True), True),
        (AgentConfig(raw_exec_enabled=True), True),
    ):
        async with open_service(config, log=MemoryEventLog()) as service:
            assert ("raw_exec" in service.runtime.drivers) is enabled
            if enabled:
                assert service.runtime.drivers["raw_exec"].fs_isolation == "none"
            else:
                with pytest.raises(AllocsvcError, match='Driver "raw_exec" is not available on this node'):
                    await service.scheduler.register(job_from(raw_job("nope", SLEEP_SCRIPT)))
