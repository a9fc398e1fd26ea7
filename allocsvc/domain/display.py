"""Nomad TaskEvents: building them from our task events, and Nomad's DisplayMessage rules.

Owns ``to_task_event`` (our past-tense event → the Nomad ``TaskEvent`` a client sees) and
``display_message`` (Nomad ``PopulateEventDisplayMessage``, FACTS §3.3). Pure.
"""

from __future__ import annotations

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


def display_message(event: TaskEvent) -> str:
    """Nomad's DisplayMessage for a TaskEvent whose DisplayMessage is empty."""
    if event.DisplayMessage:
        return event.DisplayMessage
    t = event.Type
    if t == "Task Setup":
        return event.Message
    if t == "Started":
        return "Task started by client"
    if t == "Received":
        return "Task received by client"
    if t == "Failed Validation":
        return event.ValidationError or "Validation of task failed"
    if t == "Setup Failure":
        return event.SetupError or "Task setup failed"
    if t == "Driver Failure":
        return event.DriverError or "Failed to start task"
    if t == "Downloading Artifacts":
        return "Client is downloading artifacts"
    if t == "Failed Artifact Download":
        return event.DownloadError or "Failed to download artifacts"
    if t == "Killing":
        if event.KillReason:
            return event.KillReason
        if event.KillTimeout:
            return f"Sent interrupt. Waiting {format_duration(event.KillTimeout)} before force killing"
        return "Sent interrupt"
    if t == "Killed":
        return event.KillError or "Task successfully killed"
    if t == "Terminated":
        parts = [f"Exit Code: {event.ExitCode}"]
        if event.Signal:
            parts.append(f"Signal: {event.Signal}")
        if event.Message:
            parts.append(f"Exit Message: {go_quote(event.Message)}")
        return ", ".join(parts)
    if t == "Restarting":
        base = f"Task restarting in {format_duration(event.StartDelay)}"
        if event.RestartReason and event.RestartReason != "Restart within policy":
            return f"{event.RestartReason} - {base}"
        return base
    if t == "Not Restarting":
        return event.RestartReason or "Task exceeded restart policy"
    if t == "Sibling Task Failed":
        return f'Task\'s sibling "{event.FailedSibling}" failed' if event.FailedSibling else "Task's sibling failed"
    if t == "Signaling":
        sig, reason = event.TaskSignal, event.TaskSignalReason
        if not sig and not reason:
            return "Task being sent a signal"
        if not sig:
            return reason
        if not reason:
            return f"Task being sent signal {sig}"
        return f"Task being sent signal {sig}: {reason}"
    if t == "Restart Signaled":
        return event.RestartReason or "Task signaled to restart"
    if t == "Driver":
        return event.DriverMessage
    if t == "Leader Task Dead":
        return "Leader Task in Group dead"
    if t == "Main Tasks Dead":
        return "Main tasks in the group died"
    if t == "Reconnected":
        return "Client reconnected"
    return event.Message


def with_display_message(event: TaskEvent) -> TaskEvent:
    """Return the event with DisplayMessage filled in, as Nomad does when appending or serving."""
    if event.DisplayMessage:
        return event
    return msgspec.structs.replace(event, DisplayMessage=display_message(event))


def to_task_event(event: ev.TaskEventBase, time: int) -> TaskEvent | None:
    """The Nomad TaskEvent our event appends to ``TaskState.Events``; None if it appends none."""
    match event:
        case ev.TaskReceived():
            out = TaskEvent(Type="Received", Time=time)
        case ev.TaskSetupRan(message=message):
            out = TaskEvent(Type="Task Setup", Time=time, Message=message, Details={"message": message})
        case ev.TaskDriverMessaged(message=message):
            out = TaskEvent(Type="Driver", Time=time, DriverMessage=message, Details={"driver_message": message})
        case ev.TaskStarted():
            out = TaskEvent(Type="Started", Time=time)
        case ev.TaskDriverFailed(error=error):
            out = TaskEvent(Type="Driver Failure", Time=time, DriverError=error, Details={"driver_error": error})
        case ev.TaskSignaled(signal=signal):
            out = TaskEvent(Type="Signaling", Time=time, Details={"signal": signal})
        case ev.TaskRestartSignaled(reason=reason):
            out = TaskEvent(Type="Restart Signaled", Time=time, RestartReason=reason, Details={"restart_reason": reason})
        case ev.TaskKilling(kill_timeout=timeout, reason=reason):
            details = {"kill_timeout": format_duration(timeout)}
            if reason:
                details["kill_reason"] = reason
            out = TaskEvent(Type="Killing", Time=time, KillTimeout=timeout, KillReason=reason, Details=details)
        case ev.TaskShutdownDelayWaited(delay=delay):
            out = TaskEvent(
                Type="Waiting for shutdown delay",
                Time=time,
                DisplayMessage=f"Waiting for shutdown_delay of {format_duration(delay)} before killing the task.",
            )
        case ev.TaskShutdownDelaySkipped(delay=delay):
            out = TaskEvent(
                Type="Skipping shutdown delay",
                Time=time,
                DisplayMessage=f"Skipping shutdown_delay of {format_duration(delay)} before killing the task.",
            )
        case ev.TaskTerminated(exit_code=code, signal=signal, message=message, oom_killed=oom):
            details = {"exit_code": str(code), "signal": str(signal), "oom_killed": "true" if oom else "false"}
            if message:
                details["exit_message"] = message
            out = TaskEvent(Type="Terminated", Time=time, ExitCode=code, Signal=signal, Message=message, Details=details)
        case ev.TaskKilled(error=error):
            out = TaskEvent(Type="Killed", Time=time, KillError=error, Details={"kill_error": error} if error else {})
        case ev.TaskRestarting(delay=delay, reason=reason):
            details = {"start_delay": str(delay)}
            if reason:
                details["restart_reason"] = reason
            out = TaskEvent(Type="Restarting", Time=time, StartDelay=delay, RestartReason=reason, Details=details)
        case ev.TaskNotRestarting(reason=reason):
            out = TaskEvent(
                Type="Not Restarting",
                Time=time,
                RestartReason=reason,
                FailsTask=True,
                Details={"restart_reason": reason, "fails_task": "true"},
            )
        case ev.TaskSiblingFailed(sibling=sibling):
            out = TaskEvent(Type="Sibling Task Failed", Time=time, FailedSibling=sibling, Details={"failed_sibling": sibling})
        case ev.TaskRestoreFailed(message=message):
            out = TaskEvent(Type="Failed Restoring Task", Time=time, Message=message, Details={"message": message})
        case _:
            return None
    return with_display_message(out)
