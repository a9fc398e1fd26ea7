"""The deterministic ``mock`` driver, scripted by task Config like Nomad's mock driver.

Owns ``MockDriver`` and ``MockHandle``. Config keys: ``run_for``, ``exit_code``, ``exit_signal``,
``exit_err_msg``, ``start_error``, ``start_error_recoverable``, ``start_block_for``,
``kill_after``, ``signal_error``, ``stdout_string``. Durations are Go duration strings (or ns
integers). All time comes from trio's clock, so tests and the simulator run under
``autojump_clock``.

A running mock task is a passive object, not a trio task: it exits when killed, when a test or
the simulator injects an exit, or when its ``run_for`` timer fires. Every scripted timer of a
driver goes through one shared timer task (a heap of deadlines), so 100k idle tasks cost no
trio tasks at all.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import trio

from allocsvc.drivers.base import ExitResult, TaskLaunch
from allocsvc.errors import DriverError
from allocsvc.gocompat import SECOND, GoSyntaxError, parse_duration

_Listener = Callable[[ExitResult], None]

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
    """A scripted running task: plain state, no trio task of its own."""

    __slots__ = ("_config", "_event", "_listeners", "_result", "_signals")

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._result: ExitResult | None = None
        self._event: trio.Event | None = None  # only while somebody awaits ``wait``
        self._listeners: _Listener | list[_Listener] | None = None  # usually one: no list
        self._signals: list[str] | None = None

    @property
    def pid(self) -> int | None:
        return None

    @property
    def output(self) -> str:
        """What the task would print (``stdout_string``)."""
        return str(self._config.get("stdout_string", ""))

    @property
    def signals(self) -> list[str]:
        """Signals delivered so far, in order."""
        if self._signals is None:
            self._signals = []
        return self._signals

    def expire(self) -> None:
        """``run_for`` has elapsed: exit as configured (called by the driver's timer)."""
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
        self._finish(ExitResult(exit_code=exit_code, signal=signal))

    def _finish(self, result: ExitResult) -> None:
        if self._result is not None:
            return
        self._result = result
        if self._event is not None:
            self._event.set()
        listeners, self._listeners = self._listeners, None
        if isinstance(listeners, list):
            for listener in listeners:
                listener(result)
        elif listeners is not None:
            listeners(result)

    @property
    def exited(self) -> bool:
        return self._result is not None

    def on_exit(self, listener: Callable[[ExitResult], None]) -> None:
        if self._result is not None:
            listener(self._result)
        elif self._listeners is None:
            self._listeners = listener
        elif isinstance(self._listeners, list):
            self._listeners.append(listener)
        else:
            self._listeners = [self._listeners, listener]

    async def wait(self) -> ExitResult:
        if self._result is None:
            if self._event is None:
                self._event = trio.Event()
            await self._event.wait()
        else:
            await trio.lowlevel.checkpoint()
        assert self._result is not None
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
        number = SIGNALS.get(signal, 2)
        self._finish(ExitResult(exit_code=0, signal=number if kill_after < timeout or not kill_after else 9))


class MockDriver:
    """Nomad's ``mock_driver``: no processes, fully scripted, no filesystem isolation."""

    name = "mock"
    fs_isolation = "none"

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._timers: list[tuple[float, int, MockHandle]] = []
        self._seq = 0
        self._timer_scope: trio.CancelScope | None = None
        self._timer_running = False

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
        run_for = _seconds(config, "run_for")
        handle = MockHandle(config)
        if run_for:
            self._schedule(trio.current_time() + run_for, handle)
        await trio.lowlevel.checkpoint()
        return handle

    # --- the one timer task -----------------------------------------------------------------------

    def _schedule(self, deadline: float, handle: MockHandle) -> None:
        """Make ``handle`` expire at ``deadline`` (trio time); ties fire in scheduling order."""
        self._seq += 1
        heapq.heappush(self._timers, (deadline, self._seq, handle))
        if not self._timer_running:
            self._nursery.start_soon(self._run_timers)
            self._timer_running = True
        elif self._timer_scope is not None and deadline < self._timer_scope.deadline:
            self._timer_scope.deadline = deadline

    async def _run_timers(self) -> None:
        timers = self._timers
        try:
            while timers:
                with trio.CancelScope(deadline=timers[0][0]) as scope:
                    self._timer_scope = scope
                    await trio.sleep_forever()
                self._timer_scope = None
                now = trio.current_time()
                while timers and timers[0][0] <= now:
                    _, _, handle = heapq.heappop(timers)
                    if not handle.exited:
                        handle.expire()
        finally:
            self._timer_running = False
            self._timer_scope = None

    def pending_timers(self) -> int:
        """Scripted exits still to fire (for tests)."""
        return sum(1 for _, _, handle in self._timers if not handle.exited)


__all__ = ["SIGNALS", "MockDriver", "MockHandle"]
