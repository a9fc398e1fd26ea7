"""The raw_exec driver against real processes: groups, signals, kill, exit codes, no orphans.

Also the agent-restart path: a clean shutdown leaves no process, a restored task gets
``Failed Restoring Task`` and its restart policy, and what a crashed agent left is killed.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import trio

from allocsvc.config import AgentConfig
from allocsvc.domain import events as ev
from allocsvc.drivers.base import TaskLaunch
from allocsvc.drivers.process import kill_stale_group, lookup_signal, proc_stat, write_pid_record
from allocsvc.drivers.raw_exec import RawExecDriver, RawExecHandle, exit_result, pid_record_path
from allocsvc.errors import DriverError
from allocsvc.service import Service, open_service
from tests.helpers import example_job, job_from, wait_until
from tests.processes import SH, alive, exec_done, gone, read_when


@pytest.fixture
def driver(nursery: trio.Nursery) -> RawExecDriver:
    return RawExecDriver(nursery)


def launch(tmp_path: Path, *args: str, command: str = SH, env: dict[str, str] | None = None) -> TaskLaunch:
    task_dir = tmp_path / "alloc" / "a1" / "web"
    (task_dir / "local").mkdir(parents=True, exist_ok=True)
    logs = tmp_path / "alloc" / "a1" / "alloc" / "logs"
    return TaskLaunch(
        alloc_id="a1", alloc_name="j.g[0]", namespace="default", job_id="j", group="g", task="web",
        config={"command": command, "args": list(args)}, env=env or {}, task_dir=task_dir,
        alloc_dir=task_dir.parent / "alloc", stdout_path=logs / "web.stdout.0", stderr_path=logs / "web.stderr.0",
    )  # fmt: skip


async def test_exit_code_output_env_and_cwd(driver: RawExecDriver, tmp_path: Path) -> None:
    spec = launch(tmp_path, "-c", 'echo "$NOMAD_TASK_NAME $GREETING"; pwd; echo oops >&2; exit 3',
                  env={"NOMAD_TASK_NAME": "web", "GREETING": "hi"})  # fmt: skip
    handle = await driver.start(spec)
    assert handle.pid is not None
    assert handle.pid > 0
    result = await handle.wait()
    assert (result.exit_code, result.signal) == (3, 0)
    assert spec.stdout_path is not None
    assert spec.stderr_path is not None
    assert spec.task_dir is not None
    assert spec.stdout_path.read_text() == f"web hi\n{spec.task_dir}\n"
    assert spec.stderr_path.read_text() == "oops\n"
    # a second run appends to the same files
    await (await driver.start(spec)).wait()
    assert spec.stdout_path.read_text().count("web hi") == 2


async def test_host_env_minus_nomad_denylist(
    driver: RawExecDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "secret")
    monkeypatch.setenv("ALLOCSVC_TEST_HOST_VAR", "host")
    spec = launch(tmp_path, "-c", 'echo "[$VAULT_TOKEN][$ALLOCSVC_TEST_HOST_VAR][$PATH]"')
    await (await driver.start(spec)).wait()
    assert spec.stdout_path is not None
    assert spec.stdout_path.read_text() == f"[][host][{os.environ['PATH']}]\n"


async def test_signal_goes_to_the_group_and_unknown_names_mean_sigint(
    driver: RawExecDriver, tmp_path: Path
) -> None:
    script = "trap 'echo usr1 >> marker' USR1; sleep 300 & echo $! > child; while :; do wait; done"
    spec = launch(tmp_path, "-c", script)
    assert spec.task_dir is not None
    handle = await driver.start(spec)
    assert isinstance(handle, RawExecHandle)
    child = await exec_done(int((await read_when(spec.task_dir / "child"))[0]))
    stat = proc_stat(child)
    assert stat is not None
    assert stat.pgrp == handle.pgid
    await handle.signal("SIGUSR1")
    assert await read_when(spec.task_dir / "marker") == ["usr1"]
    # the group got it too: the background sleep (default action for USR1: terminate) died
    await gone(child)
    assert alive(handle.pgid)
    await handle.signal("SIGNOPE")  # raw_exec: unknown name -> SIGINT
    result = await handle.wait()
    assert (result.exit_code, result.signal) == (130, signal.SIGINT)
    with pytest.raises(DriverError, match="os: process already finished"):
        await handle.signal("SIGUSR1")


async def test_kill_escalates_to_sigkill_of_the_whole_group(driver: RawExecDriver, tmp_path: Path) -> None:
    spec = launch(tmp_path, "-c", "trap '' INT; sleep 300 & echo $! > child; while :; do wait; done")
    assert spec.task_dir is not None
    handle = await driver.start(spec)
    child = await exec_done(int((await read_when(spec.task_dir / "child"))[0]))
    start = trio.current_time()
    await handle.kill("SIGINT", 0.3)
    assert trio.current_time() - start >= 0.3
    result = await handle.wait()
    assert (result.exit_code, result.signal) == (137, signal.SIGKILL)
    await gone(handle.pgid, child)


async def test_kill_signal_honoured_and_no_wait_once_dead(driver: RawExecDriver, tmp_path: Path) -> None:
    spec = launch(tmp_path, "-c", "trap 'exit 7' TERM; echo ready > ready; while :; do sleep 0.05; done")
    assert spec.task_dir is not None
    handle = await driver.start(spec)
    await read_when(spec.task_dir / "ready")
    start = trio.current_time()
    await handle.kill("SIGTERM", 30)
    assert trio.current_time() - start < 5
    result = await handle.wait()
    assert (result.exit_code, result.signal) == (7, 0)
    await handle.kill("SIGTERM", 30)  # already dead: returns at once


async def test_leader_exit_kills_leftover_group_members(driver: RawExecDriver, tmp_path: Path) -> None:
    spec = launch(tmp_path, "-c", "sleep 300 & echo $! > child; exit 0")
    assert spec.task_dir is not None
    handle = await driver.start(spec)
    result = await handle.wait()
    assert (result.exit_code, result.signal) == (0, 0)
    child = int((await read_when(spec.task_dir / "child"))[0])
    await gone(child)
    assert not (spec.task_dir.parent / ".web.raw_exec.pid").exists()


async def test_cancellation_kills_and_reaps_the_group(tmp_path: Path) -> None:
    spec = launch(tmp_path, "-c", "trap '' INT TERM; sleep 300 & echo $! > child; while :; do wait; done")
    assert spec.task_dir is not None
    async with trio.open_nursery() as nursery:
        handle = await RawExecDriver(nursery).start(spec)
        child = int((await read_when(spec.task_dir / "child"))[0])
        nursery.cancel_scope.cancel()
    result = await handle.wait()
    assert result.signal == signal.SIGKILL
    await gone(handle.pgid, child)


async def test_launch_errors_are_unrecoverable_with_nomad_text(driver: RawExecDriver, tmp_path: Path) -> None:
    with pytest.raises(DriverError) as info:
        await driver.start(launch(tmp_path, command="no-such-binary-xyz"))
    assert info.value.message == (
        'failed to launch command with executor: rpc error: code = Unknown desc = binary "no-such-binary-xyz" could not be found'
    )
    assert not info.value.recoverable
    spec = launch(tmp_path)
    assert spec.task_dir is not None
    script = spec.task_dir / "local" / "noexec.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    with pytest.raises(DriverError) as info:
        await driver.start(launch(tmp_path, "a b", command="noexec.sh"))
    assert info.value.message == (
        "failed to launch command with executor: rpc error: code = Unknown desc = failed to start command "
        f'path="{script}" --- args=["{script}" "a b"]: fork/exec {script}: permission denied'
    )
    with pytest.raises(DriverError, match='missing required attribute "command"'):
        await driver.start(
            TaskLaunch(
                alloc_id="a",
                alloc_name="a",
                namespace="d",
                job_id="j",
                group="g",
                task="t",
                config={},
                env={},
            )
        )


async def test_binary_lookup_prefers_task_local(driver: RawExecDriver, tmp_path: Path) -> None:
    spec = launch(tmp_path, command="tool")
    assert spec.task_dir is not None
    tool = spec.task_dir / "local" / "tool"
    tool.write_text("#!/bin/sh\necho local-tool\n")
    tool.chmod(0o755)
    await (await driver.start(spec)).wait()
    assert spec.stdout_path is not None
    assert spec.stdout_path.read_text() == "local-tool\n"


def test_exit_result_and_signal_names() -> None:
    assert exit_result(0) == exit_result(0)
    assert (exit_result(2).exit_code, exit_result(2).signal) == (2, 0)
    assert (exit_result(-15).exit_code, exit_result(-15).signal) == (143, 15)
    assert lookup_signal("SIGHUP") == signal.SIGHUP
    assert lookup_signal("") == signal.SIGINT
    assert lookup_signal("sigusr1") == signal.SIGINT  # names are case-sensitive, as in Nomad


async def test_stale_group_from_a_dead_agent_is_killed(tmp_path: Path) -> None:
    spec = launch(tmp_path)
    record = pid_record_path(spec)
    assert record is not None
    assert spec.task_dir is not None
    # what a crashed agent's task looks like: its own session, a child in its group
    leftover = await trio.lowlevel.open_process(
        [SH, "-c", "sleep 300 & echo $! > child; wait"], start_new_session=True, cwd=str(spec.task_dir)
    )
    try:
        child = await exec_done(int((await read_when(spec.task_dir / "child"))[0]))
        write_pid_record(record, leftover.pid)
        killed = await kill_stale_group(record)
        assert sorted(killed) == sorted([leftover.pid, child])
        assert await leftover.wait() == -signal.SIGKILL
        await gone(*killed)
        assert not record.exists()
        assert await kill_stale_group(record) == []  # nothing recorded any more
    finally:
        leftover.kill()
        await leftover.wait()


# --- agent restarts ---------------------------------------------------------------------------------


def raw_config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(data_dir=str(tmp_path / "data"), dev=True)


def task_events(service: Service, alloc_id: str) -> list[str]:
    return [
        type(r.event).__name__
        for r in service.log.iter_records()
        if r.stream == f"alloc/{alloc_id}" and isinstance(r.event, ev.TaskEventBase)
    ]


async def place_sleeper(service: Service) -> str:
    """One raw_exec task that records its pid and sleeps (restart delay 100 ms); its alloc ID once running."""
    body = example_job(
        "svc",
        count=1,
        Driver="raw_exec",
        Config={"command": SH, "args": ["-c", "echo $$ >> pids; exec sleep 300"]},
    )
    body["Job"]["TaskGroups"][0]["RestartPolicy"].update(Delay=100_000_000)
    await service.scheduler.register(job_from(body))
    alloc_id = next(iter(service.model.state.allocs))
    await wait_until(service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "running")
    return alloc_id


async def test_agent_restart_restores_with_policy_and_leaves_no_orphans(tmp_path: Path) -> None:
    async with open_service(raw_config(tmp_path)) as service:
        alloc_id = await place_sleeper(service)
        assert service.runtime.data_dir is not None
        pids_file = service.runtime.data_dir / "alloc" / alloc_id / "server" / "pids"
        first = int((await read_when(pids_file))[0])
        assert alive(first)
    await gone(first)  # clean shutdown: nothing left running

    async with open_service(raw_config(tmp_path)) as service:
        await wait_until(service, lambda: (service.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"].Restarts == 1
                         and service.model.state.allocs[alloc_id].alloc.ClientStatus == "running")  # fmt: skip
        second = int((await read_when(pids_file, lines=2))[1])
        assert second != first
        assert alive(second)
        assert task_events(service, alloc_id)[-4:] == [
            "TaskStarted",
            "TaskRestoreFailed",
            "TaskRestarting",
            "TaskStarted",
        ]
        task = (service.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"]
        restore = [e for e in task.Events if e.Type == "Failed Restoring Task"]
        restarting = task.Events[-2]
        assert len(restore) == 1
        assert restarting.Type == "Restarting"
        assert restarting.RestartReason == "Restart within policy"
        assert 100_000_000 <= restarting.StartDelay <= 125_000_000
    await gone(second)


async def test_restarted_agent_kills_what_a_crashed_agent_left(tmp_path: Path) -> None:
    async with open_service(raw_config(tmp_path)) as service:
        alloc_id = await place_sleeper(service)
        assert service.runtime.data_dir is not None
        task_dir = service.runtime.data_dir / "alloc" / alloc_id / "server"
        await read_when(task_dir / "pids")
    # simulate a crash: a process of the task's group survived and its pid record is still there
    record = task_dir.parent / ".server.raw_exec.pid"
    survivor = await trio.lowlevel.open_process([SH, "-c", "exec sleep 300"], start_new_session=True)
    try:
        write_pid_record(record, survivor.pid)
        async with open_service(raw_config(tmp_path)) as service:
            await wait_until(service, lambda: (service.model.state.allocs[alloc_id].alloc.TaskStates or {})["server"].Restarts == 1
                             and service.model.state.allocs[alloc_id].alloc.ClientStatus == "running")  # fmt: skip
            with trio.fail_after(10):
                assert await survivor.wait() == -signal.SIGKILL
            newest = int((await read_when(task_dir / "pids", lines=2))[-1])
            assert alive(newest)
        await gone(newest)
    finally:
        survivor.kill()
        await survivor.wait()


async def test_restart_of_a_stopping_alloc_finishes_the_kill(tmp_path: Path) -> None:
    """An agent stopped mid-kill: the restarted agent completes Killing -> Terminated -> Killed."""
    body = example_job("svc", count=1, Driver="raw_exec", KillTimeout=30_000_000_000,
                       Config={"command": SH, "args": ["-c", "trap '' INT; echo $$ >> pids; while :; do sleep 0.05; done"]})  # fmt: skip
    async with open_service(raw_config(tmp_path)) as service:
        await service.scheduler.register(job_from(body))
        alloc_id = next(iter(service.model.state.allocs))
        await wait_until(
            service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "running"
        )
        assert service.runtime.data_dir is not None
        pids = service.runtime.data_dir / "alloc" / alloc_id / "server" / "pids"
        first = int((await read_when(pids))[0])
        await service.scheduler.deregister("default", "svc", purge=False)
        await wait_until(service, lambda: "TaskKilling" in task_events(service, alloc_id))
    await gone(first)
    async with open_service(raw_config(tmp_path)) as service:
        await wait_until(
            service, lambda: service.model.state.allocs[alloc_id].alloc.ClientStatus == "complete"
        )
        assert task_events(service, alloc_id)[-3:] == ["TaskKilling", "TaskTerminated", "TaskKilled"]
