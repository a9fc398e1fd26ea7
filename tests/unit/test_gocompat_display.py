"""Go text formats and Nomad's DisplayMessage table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from allocsvc.domain.display import display_message
from allocsvc.domain.model import TaskEvent
from allocsvc.gocompat import (
    GoSyntaxError,
    format_duration,
    go_json_fixup,
    go_quote,
    parse_bool,
    parse_duration,
    rfc3339nano,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [("10s", 10**10), ("5m", 300 * 10**9), ("1h30m", 5400 * 10**9), ("300ms", 3 * 10**8), ("1.5h", 5400 * 10**9),
     ("0", 0), ("2us", 2000), ("2\u00b5s", 2000), ("-1s", -(10**9))],
)  # fmt: skip
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["10", "60foo", "", "s", "1x"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(GoSyntaxError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (15 * 10**9, "15s"), (16_234_567_891, "16.234567891s"), (1_790_100_000_000, "29m50.1s"),
     (3600 * 10**9, "1h0m0s"), (1500, "1.5\u00b5s"), (2_500_000, "2.5ms")],
)  # fmt: skip
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_parse_bool_matches_strconv() -> None:
    for t in ("1", "t", "T", "TRUE", "true", "True"):
        assert parse_bool(t) is True
    for f in ("0", "f", "F", "FALSE", "false", "False"):
        assert parse_bool(f) is False
    with pytest.raises(GoSyntaxError, match=r'strconv\.ParseBool: parsing "yes": invalid syntax'):
        parse_bool("yes")


def test_quote_time_and_json_fixups() -> None:
    assert go_quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert rfc3339nano(1_636_017_249_798_459_000) == "2021-11-04T09:14:09.798459Z"
    assert rfc3339nano(1_636_017_249_000_000_000) == "2021-11-04T09:14:09Z"
    assert go_json_fixup('"\u2028\u2029"'.encode()) == b'"\\u2028\\u2029"'


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (TaskEvent(Type="Sibling Task Failed", Time=0), "Task's sibling failed"),
        (TaskEvent(Type="Sibling Task Failed", Time=0, FailedSibling="web"), 'Task\'s sibling "web" failed'),
        (TaskEvent(Type="Killing", Time=0), "Sent interrupt"),
        (TaskEvent(Type="Killing", Time=0, KillReason="why"), "why"),
        (TaskEvent(Type="Terminated", Time=0, ExitCode=1, Signal=9, Message='oops "x"'),
         'Exit Code: 1, Signal: 9, Exit Message: "oops \\"x\\""'),
        (TaskEvent(Type="Restarting", Time=0, StartDelay=16_234_567_891, RestartReason="Restart within policy"),
         "Task restarting in 16.234567891s"),
        (TaskEvent(Type="Restarting", Time=0, StartDelay=10**9, RestartReason="Exceeded allowed attempts, applying a delay"),
         "Exceeded allowed attempts, applying a delay - Task restarting in 1s"),
        (TaskEvent(Type="Not Restarting", Time=0), "Task exceeded restart policy"),
        (TaskEvent(Type="Signaling", Time=0, TaskSignal="SIGUSR1"), "Task being sent signal SIGUSR1"),
        (TaskEvent(Type="Signaling", Time=0, TaskSignal="SIGUSR1", TaskSignalReason="r"), "Task being sent signal SIGUSR1: r"),
        (TaskEvent(Type="Signaling", Time=0, TaskSignalReason="r"), "r"),
        (TaskEvent(Type="Restart Signaled", Time=0), "Task signaled to restart"),
        (TaskEvent(Type="Driver Failure", Time=0), "Failed to start task"),
        (TaskEvent(Type="Setup Failure", Time=0, SetupError="e"), "e"),
        (TaskEvent(Type="Failed Validation", Time=0), "Validation of task failed"),
        (TaskEvent(Type="Downloading Artifacts", Time=0), "Client is downloading artifacts"),
        (TaskEvent(Type="Failed Artifact Download", Time=0), "Failed to download artifacts"),
        (TaskEvent(Type="Killed", Time=0), "Task successfully killed"),
        (TaskEvent(Type="Leader Task Dead", Time=0), "Leader Task in Group dead"),
        (TaskEvent(Type="Main Tasks Dead", Time=0), "Main tasks in the group died"),
        (TaskEvent(Type="Reconnected", Time=0), "Client reconnected"),
        (TaskEvent(Type="Driver", Time=0, DriverMessage="pulling"), "pulling"),
        (TaskEvent(Type="Failed Restoring Task", Time=0, Message="m"), "m"),
    ],
)  # fmt: skip
def test_display_messages(event: TaskEvent, text: str) -> None:
    assert display_message(event) == text


@given(st.integers(-(10**18), 4 * 10**18))
def test_rfc3339nano_matches_datetime(ns: int) -> None:
    seconds, nanos = divmod(ns, 10**9)
    whole = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    assert rfc3339nano(ns) == f"{whole}{fraction}Z"
