"""The deterministic ``mock`` driver, scripted by task Config like Nomad's mock driver.

Owns ``MockDriver``. Config keys: ``run_for``, ``exit_code``, ``exit_signal``, ``exit_err_msg``,
``start_error``, ``start_error_recoverable``, ``start_block_for``, ``kill_after``,
``signal_error``, ``stdout_string``. Durations are Go duration strings (or ns integers). All
time comes from trio's clock, so tests and the simulator run under ``autojump_clock``.
"""

from __future__ import annotations

from typing import Any

import trio

from allocsvc.drivers.base import ExitResult, TaskLaunch
from allocsvc.errors import DriverError
from allocsvc.gocompat import SECOND, GoSyntaxError, parse_duration

SIGNALS = {"SIGINT": 2, "SIGKILL": 9, "SIGTERM": 15, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12, "SIGQUIT": 3}


def _seconds(config: dict[str, Any], key: str) -> float:
    value = config.get(key)
    if value in (None, "", 0):
        return 0.0
    if isinstance(value, int | float):
        return float(value) / SECOND
    try:
        return parse_duration(str(value)) / SECOND
    except GoSyntaxError as exc:
        raise DriverError(f"invalid {key}: {exc}", recoverable=False) from exc


class MockHandle:
    """A scripted running task."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._done = trio.Event()
        self._result = ExitResult()
        self.signals: list[str] = []
        self.output = str(config.get("stdout_string", ""))

    @property
    def pid(self) -> int | None:
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Live for ``run_for`` (forever if unset), then exit as configured."""
        task_status.started()
        run_for = _seconds(self._config, "run_for")
        with trio.CancelScope() as scope:
            self._scope = scope
            if run_for:
                await trio.sleep(run_for)
            else:
                await trio.sleep_forever()
            signal_name = str(self._config.get("exit_signal", "") or "")
            self._finish(
                ExitResult(
                    exit_code=int(self._config.get("exit_code", 0) or 0),
                    signal=SIGNALS.get(signal_name, int(signal_name) if signal_name.isdigit() else 0),
                    message=str(self._config.get("exit_err_msg", "") or ""),
                )
            )

    def exit_now(self, exit_code: int = 0, signal: int = 0) -> None:
        """End the task at once as if its process exited (tests and the simulator inject exits)."""
        self._scope.cancel()
        self._finish(ExitResult(exit_code=exit_code, signal=signal))

    def _finish(self, result: ExitResult) -> None:
        if not self._done.is_set():
            self._result = result
            self._done.set()

    @property
    def exited(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> ExitResult:
        await self._done.wait()
        return self._result

    async def signal(self, signal: str) -> None:
        error = self._config.get("signal_error")
        if error:
            raise DriverError(str(error))
        self.signals.append(signal)

    async def kill(self, signal: str, timeout: float) -> None:
        kill_after = _seconds(self._config, "kill_after")
        if kill_after:
            await trio.sleep(min(kill_after, timeout) if timeout else kill_after)
        self._scope.cancel()
        number = SIGNALS.get(signal, 2)
        self._finish(ExitResult(exit_code=0, signal=number if kill_after < timeout or not kill_after else 9))


class MockDriver:
    """Nomad's ``mock_driver``: no processes, fully scripted, no filesystem isolation."""

    name = "mock"
    fs_isolation = "none"

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    async def recover(self, launch: TaskLaunch) -> None:
        """Mock tasks live in this process, so an earlier agent leaves nothing behind."""

    async def start(self, launch: TaskLaunch) -> MockHandle:
        config = launch.config
        block = _seconds(config, "start_block_for")
        if block:
            await trio.sleep(block)
        error = config.get("start_error")
        if error:
            raise DriverError(str(error), recoverable=bool(config.get("start_error_recoverable", False)))
        handle = MockHandle(config)
        await self._nursery.start(handle.run)
        return handle
