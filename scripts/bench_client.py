"""The Python load generator: a separate process on loopback with bounded work, over h11.

Modes (each prints one JSON object):

- ``seq URL N``: N sequential GETs on one keep-alive connection; latencies in ms.
- ``pages URL PASSES``: follow ``X-Nomad-NextToken`` to the last page, PASSES times; per-page ms.
- ``writes BASE METHOD PATHS_FILE BODY [GAP_S]``: one request per path, sequentially, GAP_S apart
  (untimed); ms each.
- ``load URL CONNECTIONS SECONDS``: wrk's job when wrk is missing (requests/s, p50, p99).

Started by ``bench_lib``; never targets anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

import h11


class _Socket:
    """A blocking TCP connection to a loopback port, with Nagle off; reconnects on demand."""

    def __init__(self, host: str, port: int) -> None:
        assert host == "127.0.0.1", "loopback only"
        self.host = host
        self.port = port
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        self.sock.close()


class Connection(_Socket):
    """One blocking keep-alive HTTP/1.1 connection."""

    def _connect(self) -> None:
        super()._connect()
        self.conn = h11.Connection(h11.CLIENT)

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        headers = [("Host", self.host), ("Content-Length", str(len(body)))]
        data = self.conn.send(h11.Request(method=method, target=target, headers=headers))
        data += self.conn.send(h11.Data(data=body)) if body else b""
        data += self.conn.send(h11.EndOfMessage())
        self.sock.sendall(data)
        status = 0
        response_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(1 << 20))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("server closed the connection")
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
            # hypercorn closes a keep-alive connection after keep_alive_max_requests (1,000)
            self.sock.close()
            self._connect()
        else:
            self.conn.start_next_cycle()
        return status, response_headers, b"".join(chunks)


class RawConnection(_Socket):
    """A keep-alive connection that sends pre-built requests and reads answers with no HTTP library.

    For latency rows: the timed span is one ``sendall`` and the reads until ``Content-Length``
    bytes of body are in (every allocsvc answer carries it), so the client's own parsing adds
    next to nothing to what is measured. Reconnects when the server says ``connection: close``.
    """

    def prepare(self, method: str, target: str, body: bytes) -> bytes:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one prepared request; return the status and the raw head once the body is in."""
        self.sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        length = next(int(v) for k, _, v in (line.partition(b":") for line in lines[1:]) if k == b"content-length")
        while len(rest) < length:
            rest += self.sock.recv(65536)
        if b"connection: close" in head.lower():
            self.sock.close()
            self._connect()
        return int(lines[0].split()[1]), head


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "", parts.port or 80, target


def seq(url: str, n: int) -> dict[str, object]:
    host, port, target = _split(url)
    conn = Connection(host, port)
    latencies: list[float] = []
    size = 0
    for _ in range(n):
        start = time.perf_counter()
        status, _, body = conn.request("GET", target)
        latencies.append((time.perf_counter() - start) * 1e3)
        if status != 200:
            raise SystemExit(f"GET {target}: {status}")
        size = len(body)
    conn.close()
    return {"lat_ms": latencies, "bytes": size}


def pages(url: str, passes: int) -> dict[str, object]:
    host, port, target = _split(url)
    conn = Connection(host, port)
    runs: list[list[float]] = []
    items = 0
    for _ in range(passes):
        token = ""
        run: list[float] = []
        items = 0
        while True:
            page = target + (f"&next_token={token}" if token else "")
            start = time.perf_counter()
            status, headers, body = conn.request("GET", page)
            run.append((time.perf_counter() - start) * 1e3)
            if status != 200:
                raise SystemExit(f"GET {page}: {status}")
            items += body.count(b'"ID":')
            token = headers.get("x-nomad-nexttoken", "")
            if not token:
                break
        runs.append(run)
    conn.close()
    return {"pages": runs, "items": items}


def writes(base: str, method: str, paths_file: str, body: str, gap: float = 0.0) -> dict[str, object]:
    host, port, _ = _split(base)
    conn = RawConnection(host, port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    with open(paths_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    for path in paths:
        request = conn.prepare(method, path, body.encode())
        time.sleep(gap)  # untimed: lets the previous operation's follow-up work settle
        start = time.perf_counter()
        status, _ = conn.exchange(request)
        latencies.append((time.perf_counter() - start) * 1e3)
        statuses[status] = statuses.get(status, 0) + 1
    conn.close()
    return {"lat_ms": latencies, "statuses": statuses}


def load(url: str, connections: int, seconds: float) -> dict[str, object]:
    host, port, target = _split(url)
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]

    def worker(i: int) -> None:
        conn = Connection(host, port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            conn.request("GET", target)
            latencies[i].append((time.perf_counter() - start) * 1e3)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    return {
        "rps": len(flat) / elapsed,
        "p50_ms": statistics.median(flat),
        "p99_ms": flat[max(0, int(len(flat) * 0.99) - 1)],
    }


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "seq":
        result = seq(args[0], int(args[1]))
    elif mode == "pages":
        result = pages(args[0], int(args[1]))
    elif mode == "writes":
        result = writes(args[0], args[1], args[2], args[3] if len(args) > 3 else "", float(args[4]) if len(args) > 4 else 0.0)
    elif mode == "load":
        result = load(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
