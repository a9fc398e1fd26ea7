"""Load generator for the blocking-query benchmark: thousands of blocked reads on loopback.

Usage: ``python scripts/bench_blocking_client.py PORT TARGETS_FILE EXPECTED SETTLE_S``. Opens one
connection per line of TARGETS_FILE (``alloc_id modify_index``), sends
``GET /v1/allocation/<id>?index=<modify_index>&wait=120s`` on each, prints ``sent`` when every
request is written, then records ``time.monotonic()`` when each response is complete. After
EXPECTED responses it waits SETTLE_S more seconds for stray wake-ups, prints one JSON object
and exits (closing every connection). Started by ``bench_blocking.py``.
"""

from __future__ import annotations

import json
import sys
import time

import trio

CONNECT_PARALLEL = 200


async def main(port: int, targets: list[list[str]], expected: int, settle: float) -> None:
    received: dict[str, float] = {}
    statuses: dict[str, int] = {}
    all_done = trio.Event()
    sent = 0
    limiter = trio.Semaphore(CONNECT_PARALLEL)
    everyone_sent = trio.Event()

    async def one(alloc_id: str, index: str) -> None:
        nonlocal sent
        async with limiter:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            request = f"GET /v1/allocation/{alloc_id}?index={index}&wait=120s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            await stream.send_all(request.encode())
        sent += 1
        if sent == len(targets):
            everyone_sent.set()
        buf = b""
        length = -1
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
            if length < 0 and b"\r\n\r\n" in buf:
                head, _, _ = buf.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = len(head) + 4 + int(value)
                statuses[alloc_id] = int(head.split(b" ", 2)[1])
            if 0 <= length <= len(buf):
                received[alloc_id] = time.monotonic()
                if len(received) >= expected:
                    all_done.set()
                await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        for alloc_id, index in targets:
            nursery.start_soon(one, alloc_id, index)
        await everyone_sent.wait()
        print("sent", flush=True)
        with trio.move_on_after(60):
            await all_done.wait()
        await trio.sleep(settle)
        print(json.dumps({"received": received, "statuses": statuses}), flush=True)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(sys.argv[2]) as f:
        lines = [line.split() for line in f if line.strip()]
    trio.run(main, int(sys.argv[1]), lines, int(sys.argv[3]), float(sys.argv[4]))
