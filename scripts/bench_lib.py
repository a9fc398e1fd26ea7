"""Shared pieces of the benchmark suite: statistics, RSS, processes on loopback, load generators.

Owns ``summary`` (median/p99 over repeated runs), ``Row`` (one report line with its ceiling and
ratio), ``AgentProcess`` (a real ``python -m allocsvc agent`` on 127.0.0.1), ``BareProcess`` (the
ceiling: a bare hypercorn trio ASGI app serving fixed bytes), ``run_wrk`` (wrk from Debian, or
the bounded Python fallback in ``bench_client.py``) and ``populate`` (allocations through the real
``PUT /v1/jobs``). Used by ``bench_suite.py`` and the other ``bench_*`` modules.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median and nearest-rank p99 of repeated measurements (p99 is the worst run when n < 100)."""
    if not samples:
        return {"median": math.nan, "p99": math.nan, "n": 0}
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.99 * len(ordered)))
    return {"median": statistics.median(ordered), "p99": ordered[rank - 1], "n": len(ordered)}


def low_p99(samples: Sequence[float]) -> float:
    """The p99 of a higher-is-better figure: the value 99 % of runs beat (worst run when n < 100)."""
    ordered = sorted(samples)
    rank = max(1, math.floor(0.01 * len(ordered)) + 1)
    return ordered[rank - 1]


@dataclass
class Row:
    """One line of the report: a measured figure next to the ceiling measured in the same run."""

    key: str
    what: str
    unit: str
    median: float
    p99: float
    ceiling_what: str
    ceiling_median: float | None
    ceiling_p99: float | None
    ratio: float | None
    ratio_meaning: str
    target: str
    met: bool | None
    samples: int
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_kb(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit() -> None:
    """Thousands of blocked connections need the soft open-files limit at its hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _Process:
    """A child process that prints its URL on one stdout line, stopped with SIGINT at exit."""

    url_pattern = re.compile(r"http://127\.0\.0\.1:(\d+)")

    def __init__(self, argv: list[str], *, startup: float = 120.0) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        deadline = time.monotonic() + startup
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{argv[2:4]} exited before listening (rc {self.proc.wait()})")
            match = self.url_pattern.search(line)
            if match:
                self.port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv} did not start in {startup}s")
        self.base = f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        return rss_kb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AgentProcess(_Process):
    """``python -m allocsvc agent`` on a data dir, on an ephemeral loopback port."""

    def __init__(self, data_dir: Path) -> None:
        argv = [PYTHON, "-m", "allocsvc", "agent", "--data-dir", str(data_dir), "--port", "0", "--log-level", "WARNING"]
        super().__init__(argv)


class BareProcess(_Process):
    """The ceiling server: hypercorn's trio worker and a bare ASGI app returning one file's bytes."""

    def __init__(self, body_file: Path) -> None:
        super().__init__([PYTHON, str(SCRIPTS / "bench_bare.py"), str(body_file)])


def wrk_path() -> str | None:
    """wrk from Debian when installed (``scripts/bench`` installs it)."""
    return shutil.which("wrk")


def run_wrk(url: str, *, connections: int, seconds: float) -> dict[str, float]:
    """One bounded load run on loopback: requests/s and latency p50/p99 (ms)."""
    assert url.startswith(f"http://{LOOPBACK}:"), "load generators target loopback only"
    wrk = wrk_path()
    if wrk is None:
        return _python_load(url, connections=connections, seconds=seconds)
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses from {url}")
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    return {"rps": rps, "p50_ms": lat.get("50", math.nan), "p99_ms": lat.get("99", math.nan), "tool": 0.0}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def _python_load(url: str, *, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [PYTHON, str(SCRIPTS / "bench_client.py"), "load", url, str(connections), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    result["tool"] = 1.0
    return result


def client(mode: str, *args: object, timeout: float = 600) -> Any:
    """Run ``bench_client.py`` (a separate load-generator process) and return its JSON."""
    proc = subprocess.run(
        [PYTHON, str(SCRIPTS / "bench_client.py"), mode, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_client {mode} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def bench_job(job_id: str, count: int) -> dict[str, Any]:
    """A service job of ``count`` mock tasks that run until stopped (``Config {}``)."""
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "app",
                    "Count": count,
                    "Tasks": [{"Name": "server", "Driver": "mock", "Config": {}, "Resources": {"CPU": 100, "MemoryMB": 64}}],
                }
            ],
        }
    }


def populate(base: str, total: int, *, start: int = 0, chunk: int = 10_000, timeout: float = 900) -> float:
    """Register jobs through ``PUT /v1/jobs`` until ``total`` allocations run; returns seconds taken."""
    began = time.perf_counter()
    jobs: list[tuple[str, int]] = []
    with httpx.Client(base_url=base, timeout=timeout) as http:
        made = start
        while made < total:
            count = min(chunk, total - made)
            job_id = f"bench-{made}"
            response = http.put("/v1/jobs", json=bench_job(job_id, count))
            response.raise_for_status()
            jobs.append((job_id, count))
            made += count
        deadline = time.monotonic() + timeout
        while jobs:
            job_id, count = jobs[0]
            stubs = http.get(f"/v1/job/{job_id}/allocations").json()
            if sum(1 for s in stubs if s["ClientStatus"] == "running") == count:
                jobs.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"{job_id} did not reach {count} running allocations")
            time.sleep(0.5)
    return time.perf_counter() - began


def fmt(value: float | None, unit: str = "") -> str:
    """A compact number for the markdown report."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def cpu_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}
