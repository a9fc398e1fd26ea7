"""Nomad TaskEvents: building them from our task events, and Nomad's DisplayMessage rules.

Owns ``to_task_event`` (our past-tense event → the Nomad ``TaskEvent`` a client sees, through one
builder per event class in ``TASK_EVENT_BUILDERS``) and ``display_message`` (Nomad
``PopulateEventDisplayMessage``, FACTS §3.3). The builders fill DisplayMessage themselves with the
same message functions ``display_message`` uses, since replay builds one TaskEvent per record. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgspec

from allocsvc.domain import events as ev
from allocsvc.domain.model import TaskEvent
from allocsvc.gocompat import format_duration, go_quote

SIGNAL_NUMBERS = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7,
    "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
    "SIGALRM": 14, "SIGTERM": 15, "SIGCHLD": 17, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20,
    "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26,
    "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29, "SIGPWR": 30, "SIGSYS": 31,
}  # fmt: skip


STARTED_MESSAGE = "Task started by client"
RECEIVED_MESSAGE = "Task received by client"
DRIVER_FAILURE_MESSAGE = "Failed to start task"
KILLED_MESSAGE = "Task successfully killed"
NOT_RESTARTING_MESSAGE = "Task exceeded restart policy"
SIGNALING_MESSAGE = "Task being sent a signal"
RESTART_SIGNALED_MESSAGE = "Task signaled to restart"


def display_message(event: TaskEvent) -> str:
    """Nomad's DisplayMessage for a TaskEvent whose DisplayMessage is empty."""
    if event.DisplayMessage:
        return event.DisplayMessage
    t = event.Type
    if t == "Task Setup":
        return event.Message
    if t == "Started":
        return STARTED_MESSAGE
    if t == "Received":
        return RECEIVED_MESSAGE
    if t == "Failed Validation":
        return event.ValidationError or "Validation of task failed"
    if t == "Setup Failure":
        return event.SetupError or "Task setup failed"
    if t == "Driver Failure":
        return event.DriverError or DRIVER_FAILURE_MESSAGE
    if t == "Downloading Artifacts":
        return "Client is downloading artifacts"
    if t == "Failed Artifact Download":
        return event.DownloadError or "Failed to download artifacts"
    if t == "Killing":
        return killing_message(event.KillReason, event.KillTimeout)
    if t == "Killed":
        return event.KillError or KILLED_MESSAGE
    if t == "Terminated":
        return terminated_message(event.ExitCode, event.Signal, event.Message)
    if t == "Restarting":
        return restarting_message(event.RestartReason, event.StartDelay)
    if t == "Not Restarting":
        return event.RestartReason or NOT_RESTARTING_MESSAGE
    if t == "Sibling Task Failed":
        return sibling_failed_message(event.FailedSibling)
    if t == "Signaling":
        sig, reason = event.TaskSignal, event.TaskSignalReason
        if not sig and not reason:
            return SIGNALING_MESSAGE
        if not sig:
            return reason
        if not reason:
            return f"Task being sent signal {sig}"
        return f"Task being sent signal {sig}: {reason}"
    if t == "Restart Signaled":
        return event.RestartReason or RESTART_SIGNALED_MESSAGE
    if t == "Driver":
        return event.DriverMessage
    if t == "Leader Task Dead":
        return "Leader Task in Group dead"
    if t == "Main Tasks Dead":
        return "Main tasks in the group died"
    if t == "Reconnected":
        return "Client reconnected"
    return event.Message


# The parameterised messages are shared by ``display_message`` and the builders below, and
# memoised: replay formats the same few (reason, timeout, exit code) combinations millions of times.


@lru_cache(maxsize=1024)
def killing_message(reason: str, timeout: int) -> str:
    """DisplayMessage of a ``Killing`` event."""
    if reason:
        return reason
    if timeout:
        return f"Sent interrupt. Waiting {format_duration(timeout)} before force killing"
    return "Sent interrupt"


@lru_cache(maxsize=1024)
def terminated_message(exit_code: int, signal: int, message: str) -> str:
    """DisplayMessage of a ``Terminated`` event."""
    parts = [f"Exit Code: {exit_code}"]
    if signal:
        parts.append(f"Signal: {signal}")
    if message:
        parts.append(f"Exit Message: {go_quote(message)}")
    return ", ".join(parts)


@lru_cache(maxsize=1024)
def restarting_message(reason: str, delay: int) -> str:
    """DisplayMessage of a ``Restarting`` event."""
    base = f"Task restarting in {format_duration(delay)}"
    if reason and reason != "Restart within policy":
        return f"{reason} - {base}"
    return base


def sibling_failed_message(sibling: str) -> str:
    """DisplayMessage of a ``Sibling Task Failed`` event."""
    return f'Task\'s sibling "{sibling}" failed' if sibling else "Task's sibling failed"


def with_display_message(event: TaskEvent) -> TaskEvent:
    """Return the event with DisplayMessage filled in, as Nomad does when appending or serving."""
    if event.DisplayMessage:
        return event
    return msgspec.structs.replace(event, DisplayMessage=display_message(event))


TaskEventBuilder = Callable[[Any, int], TaskEvent]
"""Builds the Nomad TaskEvent for one task event class: ``(event, record time)``."""


def to_task_event(event: ev.TaskEventBase, time: int) -> TaskEvent | None:
    """The Nomad TaskEvent our event appends to ``TaskState.Events``; None if it appends none.

    Built in one constructor call with DisplayMessage already filled (as ``with_display_message``
    would): replay calls this for nearly every record.
    """
    build = TASK_EVENT_BUILDERS.get(type(event))
    return None if build is None else build(event, time)


# The builders share one Details dict between the TaskEvents with the same fields (dicts inside
# frozen structs are never changed, as everywhere in the state; snapshot copies rely on it): a
# replay builds hundreds of thousands of TaskEvents from a few distinct (exit code, delay, ...).

_NO_DETAILS: dict[str, str] = {}


def _received(event: ev.TaskReceived, time: int) -> TaskEvent:
    return TaskEvent(Type="Received", Time=time, DisplayMessage=RECEIVED_MESSAGE, Details=_NO_DETAILS)


@lru_cache(maxsize=1024)
def _message_details(message: str) -> dict[str, str]:
    return {"message": message}


def _setup_ran(event: ev.TaskSetupRan, time: int) -> TaskEvent:
    m = event.message
    return TaskEvent(Type="Task Setup", Time=time, Message=m, DisplayMessage=m, Details=_message_details(m))


def _driver_messaged(event: ev.TaskDriverMessaged, time: int) -> TaskEvent:
    m = event.message
    return TaskEvent(
        Type="Driver", Time=time, DriverMessage=m, DisplayMessage=m, Details={"driver_message": m}
    )


def _started(event: ev.TaskStarted, time: int) -> TaskEvent:
    return TaskEvent(Type="Started", Time=time, DisplayMessage=STARTED_MESSAGE, Details=_NO_DETAILS)


def _driver_failed(event: ev.TaskDriverFailed, time: int) -> TaskEvent:
    error = event.error
    return TaskEvent(
        Type="Driver Failure",
        Time=time,
        DriverError=error,
        DisplayMessage=error or DRIVER_FAILURE_MESSAGE,
        Details={"driver_error": error},
    )


@lru_cache(maxsize=256)
def _signal_details(signal: str) -> dict[str, str]:
    return {"signal": signal}


def _signaled(event: ev.TaskSignaled, time: int) -> TaskEvent:
    # TaskSignal and TaskSignalReason stay empty, so DisplayMessage is the generic one
    return TaskEvent(
        Type="Signaling", Time=time, DisplayMessage=SIGNALING_MESSAGE, Details=_signal_details(event.signal)
    )


def _restart_signaled(event: ev.TaskRestartSignaled, time: int) -> TaskEvent:
    reason = event.reason
    return TaskEvent(
        Type="Restart Signaled",
        Time=time,
        RestartReason=reason,
        DisplayMessage=reason or RESTART_SIGNALED_MESSAGE,
        Details={"restart_reason": reason},
    )


@lru_cache(maxsize=1024)
def _killing_details(timeout: int, reason: str) -> dict[str, str]:
    details = {"kill_timeout": format_duration(timeout)}
    if reason:
        details["kill_reason"] = reason
    return details


def _killing(event: ev.TaskKilling, time: int) -> TaskEvent:
    timeout, reason = event.kill_timeout, event.reason
    return TaskEvent(
        Type="Killing",
        Time=time,
        KillTimeout=timeout,
        KillReason=reason,
        DisplayMessage=killing_message(reason, timeout),
        Details=_killing_details(timeout, reason),
    )


def _shutdown_delay_waited(event: ev.TaskShutdownDelayWaited, time: int) -> TaskEvent:
    return TaskEvent(
        Type="Waiting for shutdown delay",
        Time=time,
        DisplayMessage=f"Waiting for shutdown_delay of {format_duration(event.delay)} before killing the task.",
    )


def _shutdown_delay_skipped(event: ev.TaskShutdownDelaySkipped, time: int) -> TaskEvent:
    return TaskEvent(
        Type="Skipping shutdown delay",
        Time=time,
        DisplayMessage=f"Skipping shutdown_delay of {format_duration(event.delay)} before killing the task.",
    )


@lru_cache(maxsize=1024)
def _terminated_parts(code: int, signal: int, oom_killed: bool, message: str) -> tuple[dict[str, str], str]:
    details = {"exit_code": str(code), "signal": str(signal), "oom_killed": "true" if oom_killed else "false"}
    if message:
        details["exit_message"] = message
    return details, terminated_message(code, signal, message)


def _terminated(event: ev.TaskTerminated, time: int) -> TaskEvent:
    code, signal, message = event.exit_code, event.signal, event.message
    details, display = _terminated_parts(code, signal, event.oom_killed, message)
    return TaskEvent(
        Type="Terminated",
        Time=time,
        ExitCode=code,
        Signal=signal,
        Message=message,
        DisplayMessage=display,
        Details=details,
    )


@lru_cache(maxsize=256)
def _kill_error_details(error: str) -> dict[str, str]:
    return {"kill_error": error} if error else _NO_DETAILS


def _killed(event: ev.TaskKilled, time: int) -> TaskEvent:
    error = event.error
    return TaskEvent(
        Type="Killed",
        Time=time,
        KillError=error,
        DisplayMessage=error or KILLED_MESSAGE,
        Details=_kill_error_details(error),
    )


@lru_cache(maxsize=1024)
def _restarting_parts(delay: int, reason: str) -> tuple[dict[str, str], str]:
    details = {"start_delay": str(delay)}
    if reason:
        details["restart_reason"] = reason
    return details, restarting_message(reason, delay)


def _restarting(event: ev.TaskRestarting, time: int) -> TaskEvent:
    delay, reason = event.delay, event.reason
    details, display = _restarting_parts(delay, reason)
    return TaskEvent(
        Type="Restarting",
        Time=time,
        StartDelay=delay,
        RestartReason=reason,
        DisplayMessage=display,
        Details=details,
    )


def _not_restarting(event: ev.TaskNotRestarting, time: int) -> TaskEvent:
    reason = event.reason
    return TaskEvent(
        Type="Not Restarting",
        Time=time,
        RestartReason=reason,
        FailsTask=True,
        DisplayMessage=reason or NOT_RESTARTING_MESSAGE,
        Details={"restart_reason": reason, "fails_task": "true"},
    )


def _sibling_failed(event: ev.TaskSiblingFailed, time: int) -> TaskEvent:
    sibling = event.sibling
    return TaskEvent(
        Type="Sibling Task Failed",
        Time=time,
        FailedSibling=sibling,
        DisplayMessage=sibling_failed_message(sibling),
        Details={"failed_sibling": sibling},
    )


def _restore_failed(event: ev.TaskRestoreFailed, time: int) -> TaskEvent:
    m = event.message
    return TaskEvent(
        Type="Failed Restoring Task", Time=time, Message=m, DisplayMessage=m, Details={"message": m}
    )


TASK_EVENT_BUILDERS: dict[type[ev.TaskEventBase], TaskEventBuilder] = {
    ev.TaskReceived: _received,
    ev.TaskSetupRan: _setup_ran,
    ev.TaskDriverMessaged: _driver_messaged,
    ev.TaskStarted: _started,
    ev.TaskDriverFailed: _driver_failed,
    ev.TaskSignaled: _signaled,
    ev.TaskRestartSignaled: _restart_signaled,
    ev.TaskKilling: _killing,
    ev.TaskShutdownDelayWaited: _shutdown_delay_waited,
    ev.TaskShutdownDelaySkipped: _shutdown_delay_skipped,
    ev.TaskTerminated: _terminated,
    ev.TaskKilled: _killed,
    ev.TaskRestarting: _restarting,
    ev.TaskNotRestarting: _not_restarting,
    ev.TaskSiblingFailed: _sibling_failed,
    ev.TaskRestoreFailed: _restore_failed,
}
"""Task event class → its Nomad TaskEvent builder ``(event, time)``; TaskCompleted appends none.

The fold (``lifecycle.evolve``) looks builders up here directly; everyone else calls ``to_task_event``.
"""
