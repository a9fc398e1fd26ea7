"""The deterministic simulation harness: determinism, a multi-seed smoke run, planted bugs, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from allocsvc.cli import build_parser
from allocsvc.cli.simulate import run_simulate
from allocsvc.service import Service
from allocsvc.sim import CHAOS, SimHooks, SimOptions, SimResult, run_simulation
from allocsvc.sim.harness import CorruptProjection, DropEvent, Simulation
from allocsvc.sim.report import encode_report, record_bytes

SMALL = SimOptions(allocs=24, duration=180.0, watchers=4, ops_per_minute=40.0, scale_per_minute=2.0, check_every=30.0)
CORE_INVARIANTS = (
    "index_monotonic",
    "stream_versions",
    "task_rules",
    "ten_event_limit",
    "client_status",
    "live_equals_shadow",
    "replay_equals_live",
    "acked_in_log",
    "acked_commands_in_log",
    "blocking_no_missed_change",
    "blocking_prompt_wakeup",
)


class KeepSimulation(SimHooks):
    """Remembers the run, so a test can read its log back afterwards."""

    def __init__(self) -> None:
        self.sim: Simulation | None = None

    def on_open(self, sim: Simulation, service: Service) -> None:
        self.sim = sim


def run_and_keep(options: SimOptions, data_dir: Path | None = None) -> tuple[SimResult, list[bytes]]:
    keep = KeepSimulation()
    result = run_simulation(options, data_dir=data_dir, hooks=keep)
    assert keep.sim is not None
    return result, [record_bytes(r) for r in keep.sim.stored_records()]


def test_same_seed_gives_identical_log_and_report() -> None:
    options = SimOptions(seed=11, allocs=30, duration=240.0, watchers=4, faults=CHAOS)
    first, first_log = run_and_keep(options)
    second, second_log = run_and_keep(options)
    assert first.violation is None, first.violation
    assert first.report["faults"]["agent_crashes"], "chaos should have crashed the agent at least once"
    assert len(first_log) > 500
    assert first_log == second_log
    assert encode_report(first.report) == encode_report(second.report)
    other, other_log = run_and_keep(msgspec.structs.replace(options, seed=12))
    assert other_log != first_log
    assert other.report["log"]["sha256"] != first.report["log"]["sha256"]


def test_same_seed_gives_identical_sqlite_log(tmp_path: Path) -> None:
    options = SimOptions(seed=5, allocs=16, duration=150.0, watchers=3, faults=CHAOS)
    first, first_log = run_and_keep(options, tmp_path / "a")
    second, second_log = run_and_keep(options, tmp_path / "b")
    assert first.violation is None, first.violation
    assert first.report["log"]["storage"] == "sqlite"
    assert first_log == second_log
    assert encode_report(first.report) == encode_report(second.report)
    with pytest.raises(FileExistsError):
        run_simulation(options, data_dir=tmp_path / "a")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_multi_seed_smoke(seed: int) -> None:
    result = run_simulation(msgspec.structs.replace(SMALL, seed=seed, faults=CHAOS))
    report = result.report
    assert result.violation is None, result.violation
    assert report["result"] == "ok"
    assert report["simulated_seconds"] == SMALL.duration
    checks = report["invariant_checks"]
    for name in CORE_INVARIANTS:
        assert checks.get(name, 0) > 0, name
    assert report["allocations"]["placed"] >= SMALL.allocs
    assert report["operations"]["stop"]["200"] > 0
    assert sum(report["operations"]["signal"].values()) > 0
    assert report["blocking_queries"]["answered"] > 0
    assert report["actor_crashes"] == 0


def test_planted_dropped_event_is_caught_at_its_index() -> None:
    result = run_simulation(SimOptions(seed=7, allocs=20, duration=120.0), hooks=DropEvent(index=150))
    violation = result.violation
    assert violation is not None
    assert violation.invariant == "live_equals_shadow"
    assert violation.seed == 7
    assert violation.step > 0
    assert 150 <= violation.index < 160
    assert result.report["result"] == "violation"
    assert result.report["violation"]["index"] == violation.index


def test_planted_corrupt_projection_stops_the_run_with_seed_and_step(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["simulate", "--seed", "9", "--allocs", "20", "--duration", "10m", "--check-every", "30s"])
    status = run_simulate(args, hooks=CorruptProjection(step=30))
    out, err = capsys.readouterr()
    assert status == 1
    report = json.loads(out)
    violation = report["violation"]
    assert report["result"] == "violation"
    assert violation["invariant"] in ("live_equals_shadow", "replay_equals_live")
    assert "ClientStatus" in violation["detail"]
    assert violation["step"] >= 30
    assert report["simulated_seconds"] < 600, "the run stops at the first violation"
    assert f"seed=9 step={violation['step']}" in err
    assert "reproduce: allocsvc simulate --seed 9" in err


def test_cli_subprocess_matches_in_process_run_and_plots(tmp_path: Path) -> None:
    import matplotlib  # the test extra installs it: a missing plotter fails, never skips

    assert matplotlib.__version__
    plot = tmp_path / "run.png"
    argv = ["simulate", "--seed", "4", "--allocs", "20", "--duration", "2m", "--chaos", "--watchers", "3"]
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    done = subprocess.run(
        [sys.executable, "-m", "allocsvc", *argv, "--plot", str(plot)],
        capture_output=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["result"] == "ok"
    assert report["seed"] == 4
    stderr = done.stderr.decode()
    assert "simulated seconds per wall second" in stderr
    assert "wall" not in done.stdout.decode()
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    in_process = run_simulation(SimOptions(seed=4, allocs=20, duration=120.0, watchers=3, faults=CHAOS))
    assert encode_report(in_process.report) == done.stdout
