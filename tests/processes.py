"""Test helpers for real processes: waiting for files a task writes, for exec, and for exit."""

from __future__ import annotations

from pathlib import Path

import trio

from allocsvc.drivers.process import proc_stat, wait_gone

SH = "/bin/sh"


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z"


async def gone(*pids: int, timeout: float = 10) -> None:
    """Wait (pidfd, no polling) until every pid has exited."""
    with trio.fail_after(timeout):
        for pid in pids:
            await wait_gone(pid)
    assert not any(alive(p) for p in pids)


async def exec_done(pid: int, comm: str = "sleep", timeout: float = 10) -> int:
    """Wait until a forked child has exec'd ``comm`` (before that it still runs the shell's traps)."""
    comm_file = trio.Path(f"/proc/{pid}/comm")
    with trio.fail_after(timeout):
        while (await comm_file.read_text()).strip() != comm:  # noqa: ASYNC110 - /proc has no change events
            await trio.sleep(0.005)
    return pid


async def read_when(path: Path, lines: int = 1, timeout: float = 10) -> list[str]:
    """Poll a file a task writes until it has at least ``lines`` lines."""
    file = trio.Path(path)
    with trio.fail_after(timeout):
        while True:
            if await file.exists():
                text = (await file.read_text()).splitlines()
                if len(text) >= lines:
                    return text
            await trio.sleep(0.01)


def recorded_pids(root: Path) -> set[int]:
    """Every pid a test task wrote to a ``pids`` or ``child`` file under ``root``."""
    pids: set[int] = set()
    for name in ("pids", "child"):
        for path in root.rglob(name):
            pids.update(int(line) for line in path.read_text().split() if line.isdigit())
    return pids
