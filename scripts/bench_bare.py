"""The ceiling server: a bare ASGI app on ``hypercorn.trio.serve`` returning one file's bytes.

Usage: ``python scripts/bench_bare.py BODY_FILE`` prints ``listening http://127.0.0.1:PORT`` and
serves the file for every GET, with the JSON content type and the three ``X-Nomad-*`` headers a
real read carries, until SIGINT. No framework, no routing, no encoding: what hypercorn and trio
alone cost for the same bytes. Started by ``bench_lib.BareProcess``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


def make_app(body: bytes) -> Any:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-nomad-index", b"1000"),
        (b"x-nomad-knownleader", b"true"),
        (b"x-nomad-lastcontact", b"0"),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def main(body: bytes) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:

        async def on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    shutdown.set()
                    return

        nursery.start_soon(on_signal)
        app = make_app(body)
        binds = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        print(f"listening {binds[0]}", flush=True)
        await shutdown.wait()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]).read_bytes())
