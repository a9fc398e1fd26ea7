"""Exec sessions: a command run as a real process beside a running task (``nomad alloc exec``).

Owns ``ExecSpec``, ``open_exec_session`` and ``ExecSession``. With ``tty`` the process runs on a
pseudo-terminal that becomes its controlling terminal (so Ctrl-C reaches it), ``resize`` sets the
window size with ``TIOCSWINSZ`` and EIO on the master is end of output; without it stdin, stdout
and stderr are pipes and closing stdin is honoured. Output is read in chunks of at most ``CHUNK``
bytes and handed to a sink that is awaited before the next read, so a slow consumer holds the
process back instead of growing a buffer. The process leads its own session and process group;
``kill`` and ``aclose`` kill the whole group. Start errors carry Go's ``os/exec`` wording, exit
codes follow Nomad's executor (128 + signal when killed). The exec endpoint (``http/exec.py``)
drives it; this module knows nothing about websockets.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import struct
import subprocess
import termios
from pathlib import Path
from typing import Protocol

import msgspec
import trio

from allocsvc.drivers.process import go_errno_text
from allocsvc.errors import DriverError
from allocsvc.gocompat import go_quote

CHUNK = 32768
"""Largest output chunk read at once. Nomad's executor reads 4 KiB; 32 KiB costs the agent a fifth
of the CPU per byte (scripts/bench_exec.py) and clients accept any frame size."""

DRAIN_GRACE = 1.0
"""After the command exits, how long output may stay open (a leftover child holding it)."""

REAP_TIMEOUT = 5.0
"""How long cleanup waits for a SIGKILLed process to be reaped."""

START_ERROR = "rpc error: code = Unknown desc = failed to start command: "
"""How a start failure reaches the client: Nomad's executor wraps it, then its gRPC status does."""

STDOUT, STDERR = "stdout", "stderr"


class ExecStartError(DriverError):
    """The command could not be started (Go's ``os/exec`` text); raised by ``open_exec_session``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, recoverable=False)


class NotATerminalError(DriverError):
    """A resize arrived for a session without a TTY (Nomad's executor refuses it the same way)."""

    def __init__(self) -> None:
        super().__init__("attempted to resize a non-tty session", recoverable=False)


class ExecSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to run: argv, the full environment (``process.host_env`` of the task's), cwd, and TTY or not."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path | None = None
    tty: bool = False


class OutputSink(Protocol):
    """Where a session's output goes (the websocket adapter implements it)."""

    async def output(self, stream: str, data: bytes) -> None:
        """One chunk of ``stdout`` or ``stderr``; awaited before the next read (backpressure)."""
        ...

    async def closed(self, stream: str) -> None:
        """The stream reached end of file."""
        ...


def _resolve(argv0: str) -> str:
    """Go's ``exec.Command``: a bare name is looked up on the agent's ``PATH``, a path is used as given."""
    if "/" in argv0:
        return argv0
    found = shutil.which(argv0) if argv0 else None
    if found is None:
        raise ExecStartError(f"{START_ERROR}exec: {go_quote(argv0)}: executable file not found in $PATH")
    return found


def _take_controlling_tty() -> None:  # pragma: no cover - runs in the forked child
    """Make the pty on fd 0 the controlling terminal of the new session (Go's ``Setctty``)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def open_exec_session(spec: ExecSpec) -> ExecSession:
    """Start the command; raises ExecStartError with Go's wording when it cannot run."""
    if not spec.argv:
        raise ExecStartError("command is required")
    path = _resolve(spec.argv[0])
    if spec.cwd is not None and not spec.cwd.is_dir():
        raise ExecStartError(f"{START_ERROR}chdir {spec.cwd}: no such file or directory")
    argv = [path, *spec.argv[1:]]
    master = slave = -1
    try:
        if spec.tty:
            master, slave = os.openpty()
            proc = await trio.lowlevel.open_process(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,
            )
        else:
            pipe = subprocess.PIPE
            proc = await trio.lowlevel.open_process(
                argv, stdin=pipe, stdout=pipe, stderr=pipe, cwd=spec.cwd, env=spec.env, start_new_session=True
            )
    except OSError as exc:
        if master >= 0:
            os.close(master)
        raise ExecStartError(f"{START_ERROR}fork/exec {path}: {go_errno_text(exc)}") from exc
    except (ValueError, subprocess.SubprocessError) as exc:
        if master >= 0:
            os.close(master)
        raise ExecStartError(f"{START_ERROR}fork/exec {path}: invalid argument") from exc
    finally:
        if slave >= 0:
            os.close(slave)
    return ExecSession(proc, master=trio.lowlevel.FdStream(master) if spec.tty else None)


class ExecSession:
    """One running exec'd process and its streams."""

    def __init__(self, proc: trio.Process, *, master: trio.lowlevel.FdStream | None) -> None:
        self._proc = proc
        self._master = master
        self._stdin_closed = False
        self._exited = False
        self._live_reads: set[trio.CancelScope] = set()
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        """The process id (also its process group and session id)."""
        return self._proc.pid

    @property
    def tty(self) -> bool:
        """Whether the session runs on a pseudo-terminal."""
        return self._master is not None

    # --- input ------------------------------------------------------------------------------------

    async def write_stdin(self, data: bytes) -> None:
        """Feed stdin; waits while the process does not read. Input after EOF or exit is dropped."""
        if self._stdin_closed or not data:
            return
        stream = self._master if self._master is not None else self._proc.stdin
        assert stream is not None
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._stdin_closed = True

    async def close_stdin(self) -> None:
        """End of input: close the stdin pipe, or type the terminal's EOF character (Ctrl-D)."""
        if self._stdin_closed:
            return
        if self._master is not None:
            await self.write_stdin(b"\x04")
            return
        self._stdin_closed = True
        assert self._proc.stdin is not None
        await self._proc.stdin.aclose()

    def resize(self, height: int, width: int) -> None:
        """Set the terminal's window size; raises NotATerminalError without a TTY."""
        if self._master is None:
            raise NotATerminalError()
        size = struct.pack("HHHH", height & 0xFFFF, width & 0xFFFF, 0, 0)
        fcntl.ioctl(self._master.fileno(), termios.TIOCSWINSZ, size)

    # --- output and exit --------------------------------------------------------------------------

    async def run(self, sink: OutputSink) -> int:
        """Stream all output to ``sink`` and wait for the exit; returns Nomad's exit code."""
        outputs: list[tuple[str, trio.abc.ReceiveStream]]
        if self._master is not None:
            outputs = [(STDOUT, self._master)]
        else:
            assert self._proc.stdout is not None
            assert self._proc.stderr is not None
            outputs = [(STDOUT, self._proc.stdout), (STDERR, self._proc.stderr)]
        async with trio.open_nursery() as nursery:
            for name, stream in outputs:
                nursery.start_soon(self._pump, name, stream, sink)
            returncode = await self._proc.wait()
            self._exited = True
            for scope in self._live_reads:
                scope.deadline = trio.current_time() + DRAIN_GRACE
        self.exit_code = 128 - returncode if returncode < 0 else returncode
        return self.exit_code

    async def _pump(self, name: str, stream: trio.abc.ReceiveStream, sink: OutputSink) -> None:
        """Copy one stream to the sink until EOF (or until a leftover child outlives the grace)."""
        strikes = 0
        while True:
            data: bytes | bytearray = b""
            with trio.CancelScope() as scope:
                if self._exited:
                    scope.deadline = trio.current_time() + DRAIN_GRACE
                self._live_reads.add(scope)
                try:
                    data = await stream.receive_some(CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                finally:
                    self._live_reads.discard(scope)
            if scope.cancelled_caught:
                strikes += 1
                if strikes == 1:
                    self.kill()
                    continue
            if not data:
                await sink.closed(name)
                return
            await sink.output(name, bytes(data))

    # --- teardown ---------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the session's whole process group (no-op once it is gone)."""
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def aclose(self) -> None:
        """Kill whatever is left, reap the process and close our ends of its streams."""
        with trio.CancelScope(shield=True):
            if self._proc.returncode is None or not self._exited:
                self.kill()
            with trio.move_on_after(REAP_TIMEOUT):
                await self._proc.wait()
            if self.exit_code is None and self._proc.returncode is not None:
                rc = self._proc.returncode
                self.exit_code = 128 - rc if rc < 0 else rc
            for stream in (self._master, self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    await stream.aclose()
