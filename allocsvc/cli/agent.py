"""``allocsvc agent``: run the service and its HTTP API, like ``nomad agent``.

Owns the flags (each also settable in the config file), startup/shutdown and the clear error
when the log cannot be read.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from allocsvc.config import AgentConfig, ConfigError, load_config
from allocsvc.errors import LogCorruptError
from allocsvc.http.app import create_app
from allocsvc.service import open_service


def register(subparsers: Any) -> None:
    """Add the ``agent`` subcommand."""
    p = subparsers.add_parser("agent", help="run the agent (HTTP API on 127.0.0.1:4646 by default)")
    p.add_argument("--dev", action="store_true", default=None, help="dev mode: enables raw_exec")
    p.add_argument("--bind", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 4646; 0 picks a free one)")
    p.add_argument("--data-dir", dest="data_dir", default=None, help="where the SQLite event log lives (default ./data)")
    p.add_argument("--config", type=Path, default=None, help="a TOML or HCL config file")
    p.add_argument("--acl-enabled", dest="acl_enabled", action="store_true", default=None, help="enforce ACLs")
    p.add_argument("--raw-exec", dest="raw_exec_enabled", action="store_true", default=None, help="enable raw_exec")
    p.add_argument("--node-name", dest="node_name", default=None)
    p.add_argument("--allowed-origin", dest="allowed_origins", action="append", default=None,
                   help="extra Origin allowed for WebSocket upgrades (repeatable)")  # fmt: skip
    p.add_argument("--log-level", dest="log_level", default=None)
    p.set_defaults(handler=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    """Load config and serve until SIGINT/SIGTERM."""
    overrides = {
        key: getattr(args, key)
        for key in ("dev", "bind", "port", "data_dir", "acl_enabled", "raw_exec_enabled", "node_name",
                    "allowed_origins", "log_level")
    }  # fmt: skip
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"Error loading configuration: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    try:
        trio.run(serve_agent, config)
    except LogCorruptError as exc:
        print(f"Error starting agent: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def serve_agent(config: AgentConfig, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Open the service and serve HTTP on it until a shutdown signal."""
    hconfig = HypercornConfig()
    hconfig.bind = [f"{config.bind}:{config.port}"]
    hconfig.accesslog = None
    hconfig.keep_alive_timeout = 75
    shutdown = trio.Event()
    async with open_service(config) as service, trio.open_nursery() as nursery:
        app = create_app(service)
        nursery.start_soon(_watch_signals, shutdown)
        binds = await nursery.start(
            lambda task_status: serve(app, hconfig, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        print(f"==> allocsvc agent started! HTTP API: {', '.join(binds)}  data dir: {config.data_dir}", flush=True)
        task_status.started(binds)


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return
