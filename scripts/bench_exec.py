"""Benchmark the exec WebSocket: TTY echo round trip and stdout streaming throughput.

Starts a real agent (``python -m allocsvc agent --dev``) on a free port in a temporary data dir,
registers a one-task job (``mock`` by default, ``--driver raw_exec`` for a real process task),
then, over trio-websocket:

- latency: one TTY session running ``cat``; sends one byte, waits for its echo, N times
  (the pty echoes the byte and ``cat`` writes it back, so the first frame carrying it counts);
- throughput: ``head -c <bytes> /dev/zero`` streamed to the client, MB/s from the first frame
  to the exit frame (and the whole session, including connect and process start).

Usage: ``.venv/bin/python scripts/bench_exec.py [--bytes 50000000] [--echoes 2000] [--driver mock]``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any
from urllib.parse import urlencode

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

JOB_TASKS: dict[str, dict[str, Any]] = {
    "mock": {"Name": "server", "Driver": "mock", "Config": {}},
    "raw_exec": {"Name": "server", "Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["100000"]}},
}


def start_agent(data_dir: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocsvc", "agent", "--dev", "--port", "0", "--data-dir", data_dir, "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "HTTP API:" in line:
            return proc, line.split("HTTP API: ", 1)[1].split()[0].rstrip(",")
    raise SystemExit("agent did not start")


def http(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def start_job(base: str, driver: str) -> str:
    job = {
        "Job": {
            "ID": "bench",
            "Name": "bench",
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "app", "Count": 1, "Tasks": [JOB_TASKS[driver]]}],
        }
    }
    http(base, "PUT", "/v1/jobs", job)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        allocs = http(base, "GET", "/v1/allocations")
        running = [a for a in allocs if a["ClientStatus"] == "running"]
        if running:
            return str(running[0]["ID"])
        time.sleep(0.05)
    raise SystemExit("task did not start")


def ws_url(base: str, alloc_id: str, command: list[str], tty: bool) -> str:
    params = urlencode({"command": json.dumps(command), "task": "server", "tty": str(tty).lower()})
    return base.replace("http://", "ws://") + f"/v1/client/allocation/{alloc_id}/exec?{params}"


async def latency(base: str, alloc_id: str, echoes: int) -> list[float]:
    samples: list[float] = []
    async with open_websocket_url(ws_url(base, alloc_id, ["cat"], True)) as ws:
        await ws.send_message(json.dumps({"tty_size": {"height": 40, "width": 120}}))
        for i in range(echoes + 20):
            byte = bytes([ord("a") + i % 26])
            start = time.perf_counter()
            await ws.send_message(json.dumps({"stdin": {"data": base64.b64encode(byte).decode()}}))
            seen = b""
            while byte not in seen:
                frame = json.loads(await ws.get_message())
                seen += base64.b64decode((frame.get("stdout") or {}).get("data", ""))
            if i >= 20:  # warm-up
                samples.append(time.perf_counter() - start)
        await ws.send_message(json.dumps({"stdin": {"data": base64.b64encode(b"\x04").decode()}}))
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the agent), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


async def throughput(base: str, alloc_id: str, size: int) -> tuple[float, float, int]:
    opened = time.perf_counter()
    received = 0
    first = 0.0
    url = ws_url(base, alloc_id, ["head", "-c", str(size), "/dev/zero"], False)
    async with open_websocket_url(url, receive_buffer_size=65536, message_queue_size=16) as ws:
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                break
            frame = json.loads(message)
            data = (frame.get("stdout") or {}).get("data")
            if data:
                if not first:
                    first = time.perf_counter()
                received += len(base64.b64decode(data))
            if frame.get("exited"):
                break
        done = time.perf_counter()
    return done - first, done - opened, received


async def bench(base: str, alloc_id: str, agent_pid: int, args: argparse.Namespace) -> None:
    samples = await latency(base, alloc_id, args.echoes)
    samples.sort()
    ms = [s * 1000 for s in samples]
    print(f"TTY echo round trip over {len(ms)} keystrokes: p50 {statistics.median(ms):.3f} ms, "
          f"p90 {ms[int(len(ms) * 0.9)]:.3f} ms, p99 {ms[int(len(ms) * 0.99)]:.3f} ms, max {ms[-1]:.3f} ms")  # fmt: skip
    for run in range(args.runs):
        cpu_before = cpu_seconds(agent_pid)
        streaming, total, received = await throughput(base, alloc_id, args.bytes)
        agent_cpu = cpu_seconds(agent_pid) - cpu_before
        assert received == args.bytes, (received, args.bytes)
        mb = received / 1e6
        print(f"stdout streaming run {run + 1}: {mb:.0f} MB in {streaming:.2f} s = {mb / streaming:.1f} MB/s "
              f"(whole session {total:.2f} s = {mb / total:.1f} MB/s); agent CPU {agent_cpu:.2f} s "
              f"= {mb / agent_cpu:.0f} MB per agent CPU-second; load average {load_average()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=50_000_000)
    parser.add_argument("--echoes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--driver", choices=sorted(JOB_TASKS), default="mock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        agent, base = start_agent(data_dir)
        try:
            alloc_id = start_job(base, args.driver)
            print(f"agent {base}, {args.driver} task, alloc {alloc_id}, {os.cpu_count()} CPUs")
            trio.run(bench, base, alloc_id, agent.pid, args)
        finally:
            agent.terminate()
            agent.wait(timeout=30)


if __name__ == "__main__":
    main()
