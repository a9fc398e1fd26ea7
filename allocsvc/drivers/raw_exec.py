"""The ``raw_exec`` driver: real host processes with no isolation, one process group per task.

Owns ``RawExecDriver`` (built by ``service.py`` when raw_exec is enabled) and ``RawExecHandle``.
Task Config is ``command`` + ``args``; the process runs in the task dir with the host
environment (minus Nomad's denylist) plus the task's ``NOMAD_*``/``Env`` variables, appends
stdout/stderr to ``alloc/logs/<task>.{stdout,stderr}.0`` and leads its own session, so every
signal goes to the whole group. Kill sends the kill signal (SIGINT by default), waits the kill
timeout, then SIGKILLs the group. When the leader exits, the rest of its group is SIGKILLed;
when the agent shuts down (cancellation), the group is SIGKILLed and reaped, so nothing is left
behind. A pid record beside the task lets a restarted agent kill what a crashed one left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from allocsvc.drivers.base import ExitResult, TaskLaunch
from allocsvc.drivers.process import (
    host_env,
    kill_stale_group,
    launch_error,
    lookup_bin,
    lookup_signal,
    remove_pid_record,
    signal_group,
    write_pid_record,
)
from allocsvc.errors import DriverError

logger = logging.getLogger("allocsvc.driver")

EXIT_SIGNAL_BASE = 128
"""Nomad's executor reports a signal death as exit code 128 + signal, like a shell."""


def exit_result(returncode: int) -> ExitResult:
    """The ExitResult Nomad's executor reports for a reaped process."""
    if returncode < 0:
        return ExitResult(exit_code=EXIT_SIGNAL_BASE - returncode, signal=-returncode)
    return ExitResult(exit_code=returncode)


def pid_record_path(launch: TaskLaunch) -> Path | None:
    """Where a task's pid record lives: ``<alloc root>/.<task>.raw_exec.pid`` (outside the task dir)."""
    if launch.task_dir is None:
        return None
    return launch.task_dir.parent / f".{launch.task}.raw_exec.pid"


def _config_argv(config: dict[str, Any]) -> tuple[str, list[str]]:
    command = config.get("command")
    if not isinstance(command, str) or not command:
        raise DriverError(
            'failed to decode driver config: missing required attribute "command"', recoverable=False
        )
    args = config.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise DriverError(
            'failed to decode driver config: "args" must be a list of strings', recoverable=False
        )
    return command, list(args)


class RawExecHandle:
    """One running process group; ``run`` (in the driver's nursery) waits for it and reaps it."""

    def __init__(self, process: trio.Process, record: Path | None) -> None:
        self._process = process
        self._record = record
        self._done = trio.Event()
        self._result = ExitResult()
        self._listeners: list[Callable[[ExitResult], None]] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def pgid(self) -> int:
        """The task's process group id (the leader's pid)."""
        return self._process.pid

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wait for the leader to exit, kill what is left of its group, reap it.

        Cancelled (agent shutdown): SIGKILL the whole group and reap it before returning.
        """
        try:
            task_status.started()
            await self._wait_exited()
        finally:
            with trio.CancelScope(shield=True):
                # The unreaped leader still holds the group id, so this cannot hit a reused group.
                signal_group(self.pgid, signal.SIGKILL)
                returncode = await self._process.wait()
                if self._record is not None:
                    remove_pid_record(self._record)
                self._result = exit_result(returncode)
                self._done.set()
                listeners, self._listeners = self._listeners, []
                for listener in listeners:
                    listener(self._result)

    async def _wait_exited(self) -> None:
        """Wait until the leader has exited, without reaping it (Linux pidfd), else reap it."""
        try:
            fd = os.pidfd_open(self._process.pid)
        except (AttributeError, OSError):
            await self._process.wait()
            return
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            os.close(fd)

    @property
    def exited(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> ExitResult:
        await self._done.wait()
        return self._result

    def on_exit(self, listener: Callable[[ExitResult], None]) -> None:
        if self._done.is_set():
            listener(self._result)
        else:
            self._listeners.append(listener)

    async def signal(self, signal: str) -> None:
        """Deliver a signal to the group; unknown names become SIGINT (Nomad's raw_exec)."""
        if self._done.is_set() or not signal_group(self.pgid, lookup_signal(signal)):
            raise DriverError("os: process already finished")

    async def kill(self, signal: str, timeout: float) -> None:
        """Send ``signal`` to the group, wait up to ``timeout`` s, then SIGKILL it; return once reaped."""
        if self._done.is_set():
            return
        if timeout > 0:
            signal_group(self.pgid, lookup_signal(signal or "SIGINT"))
            with trio.move_on_after(timeout):
                await self._done.wait()
        if not self._done.is_set():
            signal_group(self.pgid, lookup_signal("SIGKILL"))
        await self._done.wait()


class RawExecDriver:
    """Nomad's ``raw_exec``: processes on the host, no filesystem isolation."""

    name = "raw_exec"
    fs_isolation = "none"

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    async def recover(self, launch: TaskLaunch) -> None:
        """Kill whatever an earlier agent left running for this task (we cannot reattach)."""
        record = pid_record_path(launch)
        if record is not None:
            await kill_stale_group(record)

    async def start(self, launch: TaskLaunch) -> RawExecHandle:
        """Spawn the task as the leader of a new session; raises DriverError (unrecoverable)."""
        command, args = _config_argv(launch.config)
        await self.recover(launch)
        path = lookup_bin(launch.task_dir, command)
        argv = [path, *args]
        record = pid_record_path(launch)
        with contextlib.ExitStack() as files:
            stdout = self._open_log(files, launch.stdout_path)
            stderr = self._open_log(files, launch.stderr_path)
            try:
                process = await trio.lowlevel.open_process(
                    argv,
                    cwd=str(launch.task_dir) if launch.task_dir is not None else None,
                    env=host_env(launch.env),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                raise launch_error(path, argv, exc) from exc
        if record is not None:
            write_pid_record(record, process.pid)
        handle = RawExecHandle(process, record)
        with trio.CancelScope(shield=True):
            await self._nursery.start(handle.run)
        logger.info("started %s/%s pid %d: %s", launch.alloc_id, launch.task, process.pid, argv)
        return handle

    @staticmethod
    def _open_log(files: contextlib.ExitStack, path: Path | None) -> int:
        if path is None:
            return subprocess.DEVNULL
        path.parent.mkdir(parents=True, exist_ok=True)
        return files.enter_context(open(path, "ab", buffering=0)).fileno()
