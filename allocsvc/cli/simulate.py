"""``allocsvc simulate``: a seeded, deterministic simulation of a busy agent under MockClock.

Owns the flags and the output contract: the JSON report on stdout (byte-identical for the same
seed and options), wall-clock figures and progress on stderr, exit status 1 with the seed and
step on the first invariant violation. The harness itself is ``allocsvc.sim``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import msgspec

from allocsvc.gocompat import SECOND, GoSyntaxError, parse_duration
from allocsvc.sim import CHAOS, FaultOptions, SimHooks, SimOptions, SimResult, Violation, run_simulation
from allocsvc.sim.plot import PlotUnavailableError, require_matplotlib, write_plot
from allocsvc.sim.report import encode_report

FAULT_FLAGS = {
    "start_failures": "--fault-start-failures",
    "crashes_per_hour": "--fault-crashes",
    "slow_disk": "--fault-slow-disk",
    "agent_crashes": "--fault-agent-crashes",
    "disconnects": "--fault-disconnects",
}


def _duration(text: str) -> float:
    """A Go duration (``90s``, ``1h``) or plain seconds, as float seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text) / SECOND
    except GoSyntaxError as exc:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}") from exc


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="run a seeded, deterministic simulation of a busy agent (report on stdout)",
        description="Run the real agent under a mock clock with a seeded workload and faults, checking invariants "
        "continuously. The same seed and options give the same event log and the same report.",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--allocs", type=int, default=200, help="allocations placed by the initial jobs (default 200)")
    p.add_argument("--duration", type=_duration, default=600.0, help="simulated time, e.g. 90s or 1h (default 10m)")
    p.add_argument("--data-dir", dest="data_dir", type=Path, default=None,
                   help="keep the event log in SQLite in this (empty) directory; default: in memory")  # fmt: skip
    p.add_argument("--watchers", type=int, default=8, help="blocking-query clients (default 8)")
    p.add_argument("--ops-per-minute", dest="ops_per_minute", type=float, default=30.0,
                   help="user stop/signal/restart calls per simulated minute (default 30)")  # fmt: skip
    p.add_argument("--scale-per-minute", dest="scale_per_minute", type=float, default=1.0,
                   help="job scale changes per simulated minute (default 1)")  # fmt: skip
    p.add_argument("--check-every", dest="check_every", type=_duration, default=60.0,
                   help="simulated time between replay-versus-live checks (default 1m)")  # fmt: skip
    faults = p.add_argument_group("faults (all off unless --chaos or a flag turns them on)")
    faults.add_argument("--chaos", action="store_true", help="turn every fault on at a moderate level")
    faults.add_argument(FAULT_FLAGS["start_failures"], dest="start_failures", type=_probability, default=None,
                        metavar="P", help="probability that a driver start fails")  # fmt: skip
    faults.add_argument(FAULT_FLAGS["crashes_per_hour"], dest="crashes_per_hour", type=float, default=None,
                        metavar="RATE", help="task crashes per running task per simulated hour")  # fmt: skip
    faults.add_argument(FAULT_FLAGS["slow_disk"], dest="slow_disk", type=_duration, default=None,
                        metavar="DURATION", help="time every log commit takes, e.g. 5ms")  # fmt: skip
    faults.add_argument(FAULT_FLAGS["agent_crashes"], dest="agent_crashes", type=int, default=None,
                        metavar="N", help="agent crashes in the middle of a write, each followed by recovery")  # fmt: skip
    faults.add_argument(FAULT_FLAGS["disconnects"], dest="disconnects", type=_probability, default=None,
                        metavar="P", help="probability that a blocking-query client hangs up early")  # fmt: skip
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the run here (needs allocsvc[sim])")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress lines on stderr (default: when stderr is a terminal)")  # fmt: skip
    p.set_defaults(handler=run_simulate)


def options_from(args: argparse.Namespace) -> SimOptions:
    """The run's options from parsed flags."""
    base = CHAOS if args.chaos else FaultOptions()
    chosen = {name: getattr(args, name) for name in FAULT_FLAGS if getattr(args, name) is not None}
    return SimOptions(
        seed=args.seed,
        allocs=args.allocs,
        duration=args.duration,
        storage="memory" if args.data_dir is None else "sqlite",
        watchers=args.watchers,
        ops_per_minute=args.ops_per_minute,
        scale_per_minute=args.scale_per_minute,
        check_every=args.check_every,
        faults=msgspec.structs.replace(base, **chosen),
    )


def reproduce_command(options: SimOptions, data_dir: Path | None) -> str:
    """The command line that repeats a run exactly."""
    parts = [
        "allocsvc simulate",
        f"--seed {options.seed}",
        f"--allocs {options.allocs}",
        f"--duration {options.duration:g}",
        f"--watchers {options.watchers}",
        f"--ops-per-minute {options.ops_per_minute:g}",
        f"--scale-per-minute {options.scale_per_minute:g}",
        f"--check-every {options.check_every:g}",
    ]
    for name, flag in FAULT_FLAGS.items():
        parts.append(f"{flag} {getattr(options.faults, name):g}")
    if data_dir is not None:
        parts.append("--data-dir <empty dir>")
    return " ".join(parts)


def describe_violation(violation: Violation, command: str) -> str:
    """The stderr text for a failed run: what broke, the seed and the step, and how to rerun it."""
    return (
        f"invariant violated: {violation.invariant}: {violation.detail}\n"
        f"  seed={violation.seed} step={violation.step} index={violation.index} "
        f"simulated_time={violation.sim_time:g}s\n"
        f"  reproduce: {command}\n"
    )


def wall_figures(result: SimResult) -> str:
    """Wall-clock throughput (stderr only: it differs between runs)."""
    wall = max(result.wall_seconds, 1e-9)
    return (
        f"simulated {result.sim_seconds:.0f} s in {wall:.1f} s wall: "
        f"{result.sim_seconds / wall:.1f} simulated seconds per wall second; "
        f"{result.records} events, {result.records / wall:.0f} events per wall second\n"
    )


def run_simulate(args: argparse.Namespace, *, hooks: SimHooks | None = None) -> int:
    """Run the simulation; print the report, the wall figures and any violation."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    options = options_from(args)
    if args.plot is not None:
        try:
            require_matplotlib()
        except PlotUnavailableError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = run_simulation(options, data_dir=args.data_dir, hooks=hooks, progress=progress if show_progress else None)
    except FileExistsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(encode_report(result.report))
    sys.stdout.flush()
    sys.stderr.write(wall_figures(result))
    if args.plot is not None:
        crashes = [float(c["sim_time"]) for c in result.report["faults"]["agent_crashes"]]
        write_plot(result.samples, args.plot, f"allocsvc simulate --seed {options.seed}", crashes)
        sys.stderr.write(f"plot written to {args.plot}\n")
    if result.violation is not None:
        sys.stderr.write(describe_violation(result.violation, reproduce_command(options, args.data_dir)))
        return 1
    return 0
