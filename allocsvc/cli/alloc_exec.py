"""``allocsvc alloc exec``: run a command inside a task, like ``nomad alloc exec``.

Owns the ``alloc`` subcommand group and its ``exec`` command: Go-style flags (``-i``, ``-t``,
``-task``, ``-job``, ``-e`` and the general ``-address``/``-token``/``-namespace``, each also
``--name`` and ``-name=value``; flags stop at the first argument so the remote command keeps its
own), resolving an allocation ID prefix with ``GET /v1/allocations?prefix=``, picking the task,
and the exec WebSocket client: stdin in 2 KiB frames then ``{"stdin":{"close":true}}``, a heartbeat
every 10 s, raw terminal mode with SIGWINCH resizes and the ``~.`` escape under ``-t``. The exit
code is the remote command's. Nomad's wording is kept for every message.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import random
import signal
import struct
import sys
import termios
import tty
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from allocsvc.gocompat import GoSyntaxError, go_quote, parse_bool

NAME = "alloc exec"
STDIN_CHUNK = 2048
HEARTBEAT_EVERY = 10.0
HTTP_TIMEOUT = 30.0
MAX_MESSAGE = 16 * 1024 * 1024
CLOSE_NAMES = {1000: "normal", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
               1006: "abnormal closure", 1008: "policy violation", 1011: "internal server error"}  # fmt: skip

HELP = """Usage: allocsvc alloc exec [options] <allocation> <command>

  Run command inside the environment of the given allocation and task.

General Options:

  -address=<addr>
    The address of the agent (default: $NOMAD_ADDR or http://127.0.0.1:4646).

  -token=<token>
    The ACL token to use (default: $NOMAD_TOKEN).

  -namespace=<namespace>
    The namespace to look the allocation up in (default: $NOMAD_NAMESPACE or default).

Exec Specific Options:

  -task <task-name>
    Sets the task to exec command in

  -job
    Use a random allocation from the specified job ID.

  -i
    Pass stdin to the container, defaults to true.  Pass -i=false to disable.

  -t
    Allocate a pseudo-tty, defaults to true if stdin is detected to be a tty session.
    Pass -t=false to disable explicitly.

  -e <escape_char>
    Sets the escape character for sessions with a pty (default: '~').  The escape
    character is only recognized at the beginning of a line.  The escape character
    followed by a dot ('.') closes the connection.  Setting the character to
    'none' disables any escapes and makes the session fully transparent."""


class ExecCLIError(Exception):
    """A failure the command reports on stderr before exiting 1; ``str()`` is the message."""


# --- flags -------------------------------------------------------------------------------------


class Options(msgspec.Struct, kw_only=True):
    """The parsed command line."""

    address: str
    token: str
    namespace: str
    stdin: bool = True
    tty: bool = False
    task: str = ""
    job: bool = False
    escape: str = "~"
    args: list[str] = msgspec.field(default_factory=list)


BOOL_FLAGS = ("i", "t", "job")
VALUE_FLAGS = ("task", "e", "address", "token", "namespace", "region")


def parse_flags(argv: Sequence[str]) -> Options:
    """Go's ``flag`` package rules; raises ExecCLIError with Go's text for a bad flag."""
    opts = Options(
        address=os.environ.get("NOMAD_ADDR", "") or "http://127.0.0.1:4646",
        token=os.environ.get("NOMAD_TOKEN", ""),
        namespace=os.environ.get("NOMAD_NAMESPACE", "") or "default",
        tty=_isatty(0) and _isatty(1),
    )
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or not arg.startswith("-"):
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in ("h", "help"):
            raise ExecCLIError("help")
        if name in BOOL_FLAGS:
            flag = True
            if has_value:
                try:
                    flag = parse_bool(value)
                except GoSyntaxError as exc:
                    raise ExecCLIError(f"invalid boolean value {go_quote(value)} for -{name}: parse error") from exc
            setattr(opts, {"i": "stdin", "t": "tty"}.get(name, name), flag)
        elif name in VALUE_FLAGS:
            if not has_value:
                if i + 1 >= len(argv):
                    raise ExecCLIError(f"flag needs an argument: -{name}")
                i += 1
                value = argv[i]
            if name != "region":
                setattr(opts, {"e": "escape"}.get(name, name), value)
        else:
            raise ExecCLIError(f"flag provided but not defined: -{name}")
        i += 1
    opts.args = list(argv[i:])
    return opts


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


# --- finding the allocation and task -----------------------------------------------------------


def _get(opts: Options, path: str, params: dict[str, str]) -> Any:
    """A GET against the agent as Nomad's api client does it; returns decoded JSON."""
    url = opts.address.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    headers = {"X-Nomad-Token": opts.token} if opts.token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=HTTP_TIMEOUT) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        raise ExecCLIError(f"Unexpected response code: {exc.code} ({body})") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExecCLIError(f'Get "{url}": {reason}') from exc


def sanitize_uuid_prefix(prefix: str) -> str:
    """Nomad's ``sanitizeUUIDPrefix``: drop a trailing odd hex digit."""
    return prefix[: len(prefix) - (len(prefix) - prefix.count("-")) % 2]


def _format_stubs(stubs: list[dict[str, Any]]) -> str:
    rows = [["ID", "Node ID", "Task Group", "Version", "Desired", "Status"]]
    rows += [
        [s["ID"][:8], s.get("NodeID", "")[:8], s.get("TaskGroup", ""), str(s.get("JobVersion", 0)),
         s.get("DesiredStatus", ""), s.get("ClientStatus", "")]
        for s in stubs
    ]  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def find_alloc(opts: Options) -> dict[str, Any]:
    """The allocation named by ``args[0]`` (an ID prefix, or a job with ``-job``), in full."""
    if opts.job:
        job_id = opts.args[0]
        try:
            stubs = _get(opts, f"/v1/job/{urllib.parse.quote(job_id)}/allocations", {"namespace": opts.namespace})
        except ExecCLIError as exc:
            raise ExecCLIError(f"Error fetching allocations: error querying job {go_quote(job_id)}: {exc}") from exc
        if not stubs:
            raise ExecCLIError(f"Error fetching allocations: job {go_quote(job_id)} doesn't exist or it has no allocations")
        running = [s for s in stubs if s.get("ClientStatus") == "running"] or stubs
        stub = random.choice(running)
    else:
        prefix = opts.args[0]
        try:
            stubs = _get(opts, "/v1/allocations", {"prefix": sanitize_uuid_prefix(prefix), "namespace": opts.namespace})
        except ExecCLIError as exc:
            raise ExecCLIError(f"Error querying allocation: {exc}") from exc
        if not stubs:
            raise ExecCLIError(f"No allocation(s) with prefix or id {go_quote(prefix)} found")
        if len(stubs) > 1:
            raise ExecCLIError(f"Prefix matched multiple allocations\n\n{_format_stubs(stubs)}")
        stub = stubs[0]
    try:
        alloc: dict[str, Any] = _get(opts, f"/v1/allocation/{stub['ID']}", {"namespace": stub.get("Namespace", "")})
    except ExecCLIError as exc:
        raise ExecCLIError(f"Error querying allocation: {exc}") from exc
    return alloc


def pick_task(alloc: dict[str, Any], task: str) -> str:
    """Nomad's ``validateTaskExistsInAllocation`` / ``lookupAllocTask``."""
    group_name = alloc.get("TaskGroup", "")
    groups = (alloc.get("Job") or {}).get("TaskGroups") or []
    group = next((g for g in groups if g.get("Name") == group_name), None)
    if group is None:
        raise ExecCLIError(f"Could not find allocation task group: {group_name}")
    names: list[str] = [str(t.get("Name", "")) for t in group.get("Tasks") or []]
    if task:
        if task not in names:
            raise ExecCLIError(f"Could not find task named: {task}, found:\n" + "\n".join(names))
        return task
    if len(names) == 1:
        return names[0]
    listing = "".join(f"  * {n}\n" for n in names)
    raise ExecCLIError(f"Allocation {go_quote(alloc['ID'][:8])} is running the following tasks:\n{listing}\nPlease specify the task.")


# --- the session -------------------------------------------------------------------------------


class _Escape:
    """Nomad's ``escapingio`` reader: after a newline, ``~.`` closes the session and ``~~`` sends one ``~``.

    Like OpenSSH. A ``~`` at the end of one read waits for the next; other ``~x`` pairs pass through.
    """

    _NEWLINE, _ESCAPE, _CHAR = 0, 1, 2  # looking for: a newline, the escape char, the char after it

    def __init__(self, char: str, on_close: Callable[[], None]) -> None:
        self._char = char.encode()[0] if char else None
        self._on_close = on_close
        self._state = self._ESCAPE

    def _handled(self, byte: int) -> bool:
        if byte == ord("."):
            self._on_close()
            return True
        return False

    def feed(self, data: bytes) -> bytes:
        """Filter one read; an empty ``data`` is EOF (a held-back escape char is released)."""
        esc = self._char
        if esc is None:
            return data
        if not data:
            held, self._state = self._state == self._CHAR, self._NEWLINE
            return bytes([esc]) if held else b""
        out = bytearray()
        i = 0
        if self._state == self._CHAR:
            self._state = self._NEWLINE
            if data[0] != esc:
                if self._handled(data[0]):
                    i = 1
                else:
                    out.append(esc)
        while i < len(data):
            c = data[i]
            if self._state == self._ESCAPE and c == esc:
                if i == len(data) - 1:
                    self._state = self._CHAR
                    break
                following = data[i + 1]
                if following == esc:
                    out.append(esc)
                    i += 2
                    continue
                if self._handled(following):
                    i += 2
                    continue
                out.append(c)
            elif c in (ord("\n"), ord("\r")):
                self._state = self._ESCAPE
                out.append(c)
            else:
                self._state = self._NEWLINE
                out.append(c)
            i += 1
        return bytes(out)


def _ws_url(opts: Options, alloc_id: str, task: str, command: Sequence[str]) -> str:
    parts = urllib.parse.urlsplit(opts.address)
    scheme = "wss" if parts.scheme == "https" else "ws"
    alloc_id = urllib.parse.quote(alloc_id)
    query = urllib.parse.urlencode(
        {"command": json.dumps(list(command), separators=(",", ":")), "task": task, "tty": str(opts.tty).lower()}
    )
    return f"{scheme}://{parts.netloc}/v1/client/allocation/{alloc_id}/exec?{query}"


def _terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ExecClient:
    """One exec session from this terminal; ``run`` returns the remote exit code."""

    def __init__(self, opts: Options, url: str) -> None:
        self._opts = opts
        self._url = url
        self._send_lock = trio.Lock()
        self._cancelled = False
        self._scope: trio.CancelScope | None = None
        self._exit_code: int | None = None
        self._error = ""

    def _cancel(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> int:
        headers = [(b"X-Nomad-Token", self._opts.token.encode())] if self._opts.token else None
        try:
            async with (
                open_websocket_url(self._url, extra_headers=headers, max_message_size=MAX_MESSAGE) as ws,
                trio.open_nursery() as nursery,
            ):
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._signals)
                nursery.start_soon(self._stdin, ws)
                nursery.start_soon(self._heartbeats, ws)
                if self._opts.tty:
                    nursery.start_soon(self._resizes, ws)
                await self._receive(ws)
                nursery.cancel_scope.cancel()
        except ConnectionRejected as exc:
            body = exc.body.decode("utf-8", "replace") if exc.body else ""
            raise ExecCLIError(f"Unexpected response code: {exc.status_code} ({body})") from exc
        except HandshakeError as exc:
            raise ExecCLIError(str(exc.__cause__ or exc)) from exc
        if self._cancelled:
            raise ExecCLIError("context canceled")
        if self._exit_code is None:
            raise ExecCLIError(self._error or "websocket closed before receiving exit code")
        return self._exit_code

    async def _send(self, ws: WebSocketConnection, message: str) -> None:
        async with self._send_lock:
            try:
                await ws.send_message(message)
            except ConnectionClosed:
                pass

    async def _receive(self, ws: WebSocketConnection) -> None:
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed as exc:
                code, text = (exc.reason.code, exc.reason.reason or "") if exc.reason is not None else (1006, "")
                if text:
                    self._error = text
                else:
                    name = CLOSE_NAMES.get(code, str(code))
                    prefix = "websocket closed before receiving exit code: " if code == 1000 else ""
                    self._error = f"{prefix}websocket: close {code} ({name})"
                return
            frame = json.loads(message)
            for name, fd in (("stdout", 1), ("stderr", 2)):
                body = frame.get(name)
                if body and body.get("data"):
                    _write(fd, base64.b64decode(body["data"]))
            if frame.get("exited") and frame.get("result") is not None:
                self._exit_code = int(frame["result"].get("exit_code", 0))
                return

    async def _stdin(self, ws: WebSocketConnection) -> None:
        escape = _Escape(self._opts.escape if self._opts.tty else "", self._escape_close)
        if self._opts.stdin:
            while True:
                data = await trio.to_thread.run_sync(os.read, 0, STDIN_CHUNK, abandon_on_cancel=True)
                filtered = escape.feed(data)
                if filtered:
                    await self._send(ws, json.dumps({"stdin": {"data": base64.b64encode(filtered).decode()}}))
                if not data:
                    break
        await self._send(ws, '{"stdin":{"close":true}}')

    def _escape_close(self) -> None:
        os.write(2, b"\r\nConnection closed\r\n" if self._opts.tty else b"\nConnection closed\n")
        self._cancel()

    async def _heartbeats(self, ws: WebSocketConnection) -> None:
        while True:
            await trio.sleep(HEARTBEAT_EVERY)
            await self._send(ws, "{}")

    async def _resizes(self, ws: WebSocketConnection) -> None:
        with trio.open_signal_receiver(signal.SIGWINCH) as changes:
            await self._send_size(ws)
            async for _ in changes:
                await self._send_size(ws)

    async def _send_size(self, ws: WebSocketConnection) -> None:
        size = _terminal_size(1)
        if size is not None:
            message = {k: v for k, v in (("height", size[0]), ("width", size[1])) if v}
            await self._send(ws, json.dumps({"tty_size": message}, separators=(",", ":")))

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self._cancel()
                return


def exec_session(opts: Options, url: str) -> int:
    """Run the session, in raw terminal mode under ``-t``; returns the remote exit code."""
    saved = None
    if opts.tty:
        if not (_isatty(0) and _isatty(1)):
            raise ExecCLIError("not a terminal")
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        return trio.run(ExecClient(opts, url).run)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


# --- the command -------------------------------------------------------------------------------


def _usage_error(message: str) -> int:
    print(message, file=sys.stderr)
    print(f"For additional help try 'allocsvc {NAME} -help'", file=sys.stderr)
    return 1


def run_exec(args: argparse.Namespace) -> int:
    """``allocsvc alloc exec ...``: exit code of the remote command, 1 for local errors."""
    try:
        opts = parse_flags(args.argv)
    except ExecCLIError as exc:
        if str(exc) == "help":
            print(HELP)
            return 0
        print(f"{exc}\n{HELP}", file=sys.stderr)
        return 1
    if not opts.args:
        return _usage_error("A job ID is required" if opts.job else "An allocation ID is required")
    if not opts.job and len(opts.args[0]) == 1:
        print("Alloc ID must contain at least two characters", file=sys.stderr)
        return 1
    if len(opts.args) < 2:
        return _usage_error("A command is required")
    if opts.tty and not opts.stdin:
        print("-i must be enabled if running with tty", file=sys.stderr)
        return 1
    if opts.escape == "none":
        opts.escape = ""
    if len(opts.escape) > 1:
        print("-e requires 'none' or a single character", file=sys.stderr)
        return 1
    try:
        alloc = find_alloc(opts)
        task = pick_task(alloc, opts.task)
    except ExecCLIError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        return exec_session(opts, _ws_url(opts, alloc["ID"], task, opts.args[1:]))
    except ExecCLIError as exc:
        print(f"failed to exec into task: {exc}", file=sys.stderr)
        return 1


def register(subparsers: Any) -> None:
    """Add the ``alloc`` group with its ``exec`` command."""
    alloc = subparsers.add_parser("alloc", help="interact with allocations")
    commands = alloc.add_subparsers(dest="alloc_command", required=True)
    # Go-style flags are parsed by hand: '+' keeps argparse away from '-t' and the remote command's own flags.
    p = commands.add_parser("exec", help="execute commands in a task", prefix_chars="+", add_help=False)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(handler=run_exec)
