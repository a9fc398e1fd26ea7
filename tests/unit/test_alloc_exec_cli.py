"""The pure parts of ``allocsvc alloc exec``: Go-style flags, prefixes, task choice, the ``~.`` escape."""

from __future__ import annotations

from typing import Any

import pytest

from allocsvc.cli.alloc_exec import ExecCLIError, _Escape, parse_flags, pick_task, sanitize_uuid_prefix


def test_flags_stop_at_the_first_argument_so_the_command_keeps_its_own() -> None:
    opts = parse_flags(["-task", "web", "-t=false", "--i=false", "abcd", "ls", "-la", "-t"])
    assert (opts.task, opts.tty, opts.stdin, opts.args) == ("web", False, False, ["abcd", "ls", "-la", "-t"])
    opts = parse_flags(["-task=db", "-e", "none", "-address=http://h:1", "-token", "s3cret", "--", "-odd-id", "x"])
    assert (opts.task, opts.escape, opts.address, opts.token, opts.args) == ("db", "none", "http://h:1", "s3cret", ["-odd-id", "x"])


def test_flag_errors_use_gos_wording() -> None:
    for argv, message in (
        (["-x", "id", "ls"], "flag provided but not defined: -x"),
        (["-i=maybe", "id", "ls"], 'invalid boolean value "maybe" for -i: parse error'),
        (["-task"], "flag needs an argument: -task"),
    ):
        with pytest.raises(ExecCLIError) as err:
            parse_flags(argv)
        assert str(err.value) == message


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", "http://10.0.0.1:4646")
    monkeypatch.setenv("NOMAD_TOKEN", "tok")
    monkeypatch.delenv("NOMAD_NAMESPACE", raising=False)
    opts = parse_flags(["id", "ls"])
    assert (opts.address, opts.token, opts.namespace, opts.stdin) == ("http://10.0.0.1:4646", "tok", "default", True)


def test_sanitize_uuid_prefix_drops_an_odd_trailing_digit() -> None:
    assert sanitize_uuid_prefix("abcde") == "abcd"
    assert sanitize_uuid_prefix("abcd-e") == "abcd-"
    assert sanitize_uuid_prefix("abcd-ef") == "abcd-ef"


def _alloc(*tasks: str) -> dict[str, Any]:
    return {"ID": "0123456789abcdef", "TaskGroup": "g", "Job": {"TaskGroups": [{"Name": "g", "Tasks": [{"Name": t} for t in tasks]}]}}


def test_task_choice_like_nomad() -> None:
    assert pick_task(_alloc("only"), "") == "only"
    assert pick_task(_alloc("a", "b"), "b") == "b"
    with pytest.raises(ExecCLIError) as err:
        pick_task(_alloc("a", "b"), "")
    assert str(err.value) == 'Allocation "01234567" is running the following tasks:\n  * a\n  * b\n\nPlease specify the task.'
    with pytest.raises(ExecCLIError) as err:
        pick_task(_alloc("a", "b"), "c")
    assert str(err.value) == "Could not find task named: c, found:\na\nb"


@pytest.mark.parametrize(
    ("chunks", "sent", "closed"),
    [
        ([b"ab~.c"], [b"ab~.c"], False),  # not after a newline
        ([b"~.rest"], [b"rest"], True),  # the start of input counts as a new line
        ([b"x\n~~y"], [b"x\n~y"], False),  # ~~ sends one ~
        ([b"x\n~", b".y"], [b"x\n", b"y"], True),  # split across reads
        ([b"x\n~", b"~y"], [b"x\n", b"~y"], False),
        ([b"x\r~z"], [b"x\r~z"], False),  # any other char passes with its ~
        ([b"x\n~", b""], [b"x\n", b"~"], False),  # EOF releases a held-back ~
    ],
)
def test_escape_sequences(chunks: list[bytes], sent: list[bytes], closed: bool) -> None:
    calls: list[int] = []
    escape = _Escape("~", lambda: calls.append(1))
    assert [escape.feed(c) for c in chunks] == sent
    assert bool(calls) == closed


def test_escape_none_is_transparent() -> None:
    escape = _Escape("", lambda: None)
    assert escape.feed(b"\n~.") == b"\n~."
