"""The ``allocsvc`` command line: ``agent`` and the tool subcommands.

Owns argument parsing and dispatch; each subcommand lives in its own module here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from allocsvc.cli import agent, alloc_exec, log_tools, simulate

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

SUBCOMMANDS: tuple[Registrar, ...] = (agent.register, log_tools.register, alloc_exec.register, simulate.register)
"""Each module's ``register(subparsers)``; add new subcommand modules here."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser."""
    parser = argparse.ArgumentParser(prog="allocsvc", description="Nomad Allocations API, event-sourced on trio")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
