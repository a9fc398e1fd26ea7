"""``allocsvc log export --format jsonl``: every record as one JSON object per line.

Owns the export line format, documented in design/event-log.md ("Export format"):
``{"index":…,"stream":…,"version":…,"time":…,"type":…,"event":{…}}`` where ``event`` is the
event's msgspec JSON form, tag included, so ``msgspec.json.decode(…, type=<event union>)``
reads it back. Records are checked (order, CRC, schema) as they are read.
"""

from __future__ import annotations

import contextlib
from typing import BinaryIO

import msgspec

from allocsvc.domain.events import Recorded
from allocsvc.tools.logfile import LogFile
from allocsvc.tools.progress import Progress

_encoder = msgspec.json.Encoder()


def export_line(recorded: Recorded) -> bytes:
    """One record's line, newline included; key order is fixed."""
    enc = _encoder.encode
    return b"".join(
        (
            b'{"index":',
            str(recorded.index).encode(),
            b',"stream":',
            enc(recorded.stream),
            b',"version":',
            str(recorded.version).encode(),
            b',"time":',
            str(recorded.time).encode(),
            b',"type":',
            enc(type(recorded.event).__struct_config__.tag),
            b',"event":',
            enc(recorded.event),
            b"}\n",
        )
    )


def export_jsonl(
    log: LogFile,
    out: BinaryIO,
    *,
    after: int = 0,
    until: int | None = None,
    stream_prefix: str = "",
    progress: Progress | None = None,
) -> int:
    """Write records with after < index <= until (matching ``stream_prefix``) to ``out``; returns the count."""
    written = 0
    buffer: list[bytes] = []
    with contextlib.closing(log.iter_records(after=after)) as records:
        for recorded in records:
            if until is not None and recorded.index > until:
                break
            if progress is not None:
                progress.advance()
            if stream_prefix and not recorded.stream.startswith(stream_prefix):
                continue
            buffer.append(export_line(recorded))
            written += 1
            if len(buffer) >= 1000:
                out.write(b"".join(buffer))
                buffer.clear()
    out.write(b"".join(buffer))
    out.flush()
    return written
