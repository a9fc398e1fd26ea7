"""Host-process plumbing for process drivers: signal names, process groups, binaries, leftovers.

Owns Nomad's signal-name lookup (an unknown or empty name means SIGINT for ``raw_exec``),
``lookup_bin`` (Nomad's executor search order), the host environment a task inherits, and
the pid record that lets a restarted agent kill a group an earlier agent left behind
(``PidRecord``). Used by ``raw_exec``; no trio here except where a function is async.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

import msgspec
import trio

from allocsvc.errors import DriverError
from allocsvc.gocompat import go_quote

logger = logging.getLogger("allocsvc.driver")

SIGNALS: dict[str, signal.Signals] = {
    name: sig for name, sig in signal.Signals.__members__.items() if not name.startswith("SIGRT")
}
"""Nomad's ``signals.SignalLookup``: the host's named signals (real-time ones excluded)."""

HOST_ENV_DENYLIST = frozenset(
    {
        "CONSUL_TOKEN",
        "CONSUL_HTTP_TOKEN",
        "VAULT_TOKEN",
        "NOMAD_LICENSE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }
)
"""Nomad's ``DefaultEnvDenyList``: host variables never passed to a task."""

LAUNCH_ERROR = "failed to launch command with executor: rpc error: code = Unknown desc = "
"""How Nomad's raw_exec wraps an executor launch error (the executor runs out of process)."""


def lookup_signal(name: str) -> signal.Signals:
    """The signal for a name; unknown or empty names become SIGINT, as in Nomad's raw_exec."""
    sig = SIGNALS.get(name)
    if sig is None:
        logger.warning("unknown signal %r to send to task, using SIGINT instead", name)
        return signal.SIGINT
    return sig


def host_env(env: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment minus Nomad's denylist, then the task's own variables on top."""
    merged = {k: v for k, v in os.environ.items() if k not in HOST_ENV_DENYLIST}
    merged.update(env)
    return merged


def lookup_bin(task_dir: Path | None, command: str) -> str:
    """Nomad's executor ``lookupBin``: task ``local/``, the task dir, an absolute path, ``$PATH``."""
    if task_dir is not None:
        for candidate in (task_dir / "local" / command, task_dir / command):
            if candidate.exists():
                return str(candidate)
    if os.path.isabs(command) and os.path.exists(command):
        return command
    found = shutil.which(command) if "/" not in command else None
    if found is not None:
        return os.path.abspath(found)
    raise DriverError(f"{LAUNCH_ERROR}binary {go_quote(command)} could not be found", recoverable=False)


def go_errno_text(exc: OSError) -> str:
    """Go's ``syscall.Errno`` text: strerror with a lower-case first letter."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def launch_error(path: str, argv: list[str], exc: OSError) -> DriverError:
    """Nomad's executor error for a process that could not be started."""
    quoted = "[" + " ".join(go_quote(a) for a in argv) + "]"
    message = f"failed to start command path={go_quote(path)} --- args={quoted}: fork/exec {path}: {go_errno_text(exc)}"
    return DriverError(LAUNCH_ERROR + message, recoverable=False)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        logger.warning("not permitted to signal process group %d", pgid)
        return False
    return True


# --- leftovers of an earlier agent --------------------------------------------------------------


class ProcStat(msgspec.Struct, frozen=True):
    """The fields of ``/proc/<pid>/stat`` this module needs."""

    pid: int
    state: str
    pgrp: int
    session: int
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """Read ``/proc/<pid>/stat``; None if the process is gone (or /proc is unavailable)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is parenthesised and may itself contain spaces or parentheses
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid, state=fields[0], pgrp=int(fields[2]), session=int(fields[3]), start_ticks=int(fields[19])
    )


class PidRecord(msgspec.Struct, frozen=True):
    """Which process group a task runs as, written next to the task while it runs."""

    pid: int
    start_ticks: int


_record_decoder = msgspec.json.Decoder(PidRecord)


def write_pid_record(path: Path, pid: int) -> None:
    """Remember a task's process group (best effort; a failure only weakens crash recovery)."""
    stat = proc_stat(pid)
    record = PidRecord(pid=pid, start_ticks=stat.start_ticks if stat else 0)
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(record))
        tmp.replace(path)
    except OSError as exc:
        logger.warning("could not write %s: %s", path, exc)


def remove_pid_record(path: Path) -> None:
    """Forget a task's process group once it is gone."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_pid_record(path: Path) -> PidRecord | None:
    """The recorded group, or None when there is none or it is unreadable."""
    try:
        return _record_decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None


def stale_members(record: PidRecord) -> list[int]:
    """Live processes of a recorded group: same group and session, started no earlier than it."""
    members: list[int] = []
    leader = proc_stat(record.pid)
    if leader is not None and leader.start_ticks == record.start_ticks and leader.pgrp == record.pid:
        members.append(record.pid)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit() or int(entry) == record.pid:
            continue
        stat = proc_stat(int(entry))
        if (
            stat is not None
            and stat.pgrp == record.pid
            and stat.session == record.pid
            and stat.start_ticks >= record.start_ticks
            and stat.state != "Z"
        ):
            members.append(stat.pid)
    return members


async def kill_stale_group(path: Path, *, timeout: float = 5.0) -> list[int]:
    """SIGKILL whatever an earlier agent's task left running, wait for it to go; returns the pids."""
    record = read_pid_record(path)
    if record is None:
        return []
    killed = stale_members(record)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if killed:
        logger.warning("killed %d leftover process(es) of group %d", len(killed), record.pid)
    with trio.move_on_after(timeout):
        for pid in killed:
            await wait_gone(pid)
    remove_pid_record(path)
    return killed


async def wait_gone(pid: int) -> None:
    """Wait for any process (not only a child) to exit, through a Linux pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)
