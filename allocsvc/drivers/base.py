"""The task-driver port.

Owns ``TaskDriver``/``TaskHandle`` Protocols, the launch description a driver receives, and
``ExitResult``. The task runner calls ``start`` and then only talks to the handle; while the task
runs it waits through ``on_exit`` (a callback), not a trio task of its own. ``mock`` and
``raw_exec`` implement it; a driver declares its filesystem isolation because exec ACLs depend
on it (``none`` needs ``alloc-node-exec``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec

from allocsvc.errors import DriverError


class ExitResult(msgspec.Struct, frozen=True, kw_only=True):
    """How a task's process ended."""

    exit_code: int = 0
    signal: int = 0
    message: str = ""
    oom_killed: bool = False


class TaskLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a driver needs to start one task instance."""

    alloc_id: str
    alloc_name: str
    namespace: str
    job_id: str
    group: str
    task: str
    config: dict[str, Any]
    env: dict[str, str]
    task_dir: Path | None = None
    alloc_dir: Path | None = None
    stdout_path: Path | None = None
    stderr_path: Path | None = None


class ExecStreams(Protocol):
    """The exec session side a driver talks to (the websocket adapter implements it)."""

    async def read_stdin(self) -> bytes | None:
        """Next stdin chunk; None at end of input."""
        ...

    async def write_stdout(self, data: bytes) -> None:
        """Send output bytes (flow-controlled: awaits when the client is slow)."""
        ...

    async def write_stderr(self, data: bytes) -> None:
        """Send error-output bytes."""
        ...


class TaskHandle(Protocol):
    """A started task."""

    @property
    def pid(self) -> int | None:
        """The OS process id, when there is one."""
        ...

    @property
    def exited(self) -> bool:
        """True once the task has exited and ``wait`` would return at once."""
        ...

    async def wait(self) -> ExitResult:
        """Wait for the task to exit (may be called by several waiters)."""
        ...

    def on_exit(self, listener: Callable[[ExitResult], None]) -> None:
        """Call ``listener`` once with the result when the task exits (at once if it has).

        Called on the trio thread, synchronously, from whatever ends the task; it must not block.
        """
        ...

    async def signal(self, signal: str) -> None:
        """Deliver a signal; raises DriverError."""
        ...

    async def kill(self, signal: str, timeout: float) -> None:
        """Send ``signal``, wait up to ``timeout`` seconds, then force-kill; returns once dead."""
        ...


class TaskDriver(Protocol):
    """A driver plugin."""

    name: str
    fs_isolation: str

    async def start(self, launch: TaskLaunch) -> TaskHandle:
        """Start the task; raises DriverError (``recoverable`` tells the restart policy)."""
        ...

    async def recover(self, launch: TaskLaunch) -> None:
        """After an agent restart: clean up whatever an earlier agent left running for this task."""
        ...


__all__ = ["DriverError", "ExecStreams", "ExitResult", "TaskDriver", "TaskHandle", "TaskLaunch"]
