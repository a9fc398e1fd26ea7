"""``allocsvc log {info,verify,replay,export,history}``: the event-log tools.

Owns the flags, output and exit codes (0 ok, 1 the tool could not run, 2 ``verify`` found a
problem); the work is in ``allocsvc.tools``. Every command takes ``--data-dir`` (default
``./data``), reads the log read-only and is safe to run beside a live agent. Long runs draw a
progress line on stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from allocsvc.errors import LogCorruptError
from allocsvc.tools.export import export_jsonl
from allocsvc.tools.history import alloc_history, render_history
from allocsvc.tools.info import log_info, render_info
from allocsvc.tools.logfile import LogFile, ToolError
from allocsvc.tools.progress import Progress
from allocsvc.tools.replay import all_allocs_json, alloc_json, state_at
from allocsvc.tools.verify import verify_log

EXIT_OK, EXIT_ERROR, EXIT_VERIFY_FAILED = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``log`` command group."""
    log = subparsers.add_parser("log", help="inspect, verify, replay and export the event log")
    commands = log.add_subparsers(dest="log_command", required=True)

    def command(
        name: str, help_: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--data-dir", dest="data_dir", default="./data", help="the agent's data dir (default ./data)"
        )
        p.set_defaults(handler=_guarded(handler))
        return p

    p = command("info", "counts, index range, per-type totals and size on disk", run_info)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = command("verify", "replay everything and check the log's invariants and snapshots", run_verify)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-snapshots", dest="snapshots", action="store_false", help="do not check snapshots")

    p = command("replay", "print the state as of a log index as Nomad JSON", run_replay)
    p.add_argument(
        "--until-index", dest="until", type=int, default=None, help="replay up to this index (default: all)"
    )
    p.add_argument("--alloc", default=None, help="print only this allocation (ID or unique prefix)")
    p.add_argument(
        "--no-snapshots", dest="snapshots", action="store_false", help="replay from the start of the log"
    )

    p = command("export", "stream events as JSON lines (format: design/event-log.md)", run_export)
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--after", type=int, default=0, help="only events with an index above this")
    p.add_argument("--until-index", dest="until", type=int, default=None, help="only events up to this index")
    p.add_argument(
        "--stream", default="", help="only streams starting with this (e.g. alloc/ or job/default/web)"
    )

    p = command("history", "a readable timeline of one allocation", run_history)
    p.add_argument("alloc", help="allocation ID or unique prefix")
    p.add_argument("--task", default="", help="only this task's events")
    p.add_argument("--json", action="store_true", help="print the timeline as JSON")


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn tool errors into ``Error: …`` on stderr and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ToolError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
        except LogCorruptError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
        except BrokenPipeError:  # e.g. `allocsvc log export | head`
            sys.stderr.close()
            return EXIT_OK
        return EXIT_ERROR

    return run


def _print_json(value: object) -> None:
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n")
    sys.stdout.flush()


def run_info(args: argparse.Namespace) -> int:
    """``allocsvc log info``."""
    info = log_info(LogFile(args.data_dir))
    if args.json:
        _print_json(info)
    else:
        print(render_info(info))
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """``allocsvc log verify``: exit 2 and name the first bad position on failure."""
    log = LogFile(args.data_dir)
    with Progress("verify", log.last_index) as progress:
        report = verify_log(log, progress=progress, snapshots=args.snapshots)
    if args.json:
        _print_json(report)
    elif report.problem is None:
        snaps = (
            f", {len(report.snapshots_checked)} snapshot(s) equal the replayed state"
            if report.snapshots_checked
            else ""
        )
        print(
            f"OK: {report.checked:,} events in {report.streams:,} streams; indexes 1-{report.last_index:,} gap-free, "
            f"stream versions contiguous, every event decodes and folds{snaps}"
        )
    else:
        p = report.problem
        where = f" (stream {p.stream})" if p.stream else ""
        print(f"FAIL at index {p.position}{where}: {p.check}: {p.message}")
        print(f"checked {report.checked:,} events before it", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_VERIFY_FAILED


def run_replay(args: argparse.Namespace) -> int:
    """``allocsvc log replay``."""
    log = LogFile(args.data_dir)
    with Progress("replay", 0) as progress:
        state, _ = state_at(log, args.until, use_snapshots=args.snapshots, progress=progress)
    body = alloc_json(state, args.alloc) if args.alloc else all_allocs_json(state)
    sys.stdout.buffer.write(body + b"\n")
    sys.stdout.flush()
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """``allocsvc log export --format jsonl``."""
    log = LogFile(args.data_dir)
    end = args.until if args.until is not None else log.last_index
    with Progress("export", max(end - args.after, 0)) as progress:
        export_jsonl(
            log, sys.stdout.buffer, after=args.after, until=end, stream_prefix=args.stream, progress=progress
        )
    return EXIT_OK


def run_history(args: argparse.Namespace) -> int:
    """``allocsvc log history <alloc-id-prefix>``."""
    alloc_id, entries = alloc_history(LogFile(args.data_dir), args.alloc, task=args.task)
    if args.json:
        _print_json({"ID": alloc_id, "Events": entries})
    else:
        print(render_history(alloc_id, entries))
    return EXIT_OK
