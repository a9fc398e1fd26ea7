"""``allocsvc log info``: what a log holds, from a few aggregate queries (no event is decoded).

Owns ``LogInfo`` and ``log_info``. Counts come from SQL over the live file, so the numbers are a
consistent view of one moment even while an agent appends.
"""

from __future__ import annotations

import msgspec

from allocsvc.gocompat import rfc3339nano
from allocsvc.store.snapshot import list_snapshots
from allocsvc.tools.logfile import LogFile


class SnapshotInfo(msgspec.Struct, frozen=True):
    """One snapshot file."""

    file: str
    index: int
    bytes: int


class LogInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Summary of one log (``--json`` prints exactly this)."""

    path: str
    format: str
    node_id: str
    events: int
    first_index: int
    last_index: int
    first_time: str | None
    last_time: str | None
    streams: int
    streams_by_kind: dict[str, int]
    events_by_kind: dict[str, int]
    events_by_type: dict[str, int]
    bytes_on_disk: dict[str, int]
    total_bytes: int
    snapshots: list[SnapshotInfo]


def stream_kind(stream: str) -> str:
    """``alloc``, ``job``, ``eval``, ``namespace``, ``acl`` … (the stream name's first segment)."""
    return stream.split("/", 1)[0]


def log_info(log: LogFile) -> LogInfo:
    """Summarise ``log``: counts, index and time range, per-type and per-stream totals, sizes."""
    conn = log.connect()
    try:
        conn.execute("BEGIN")  # one read transaction: every number describes the same prefix
        count, first, last, first_time, last_time = conn.execute(
            "SELECT COUNT(*), COALESCE(MIN(idx), 0), COALESCE(MAX(idx), 0), MIN(time), MAX(time) FROM events"
        ).fetchone()
        by_type = dict(
            conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY COUNT(*) DESC, type")
        )
        per_stream = conn.execute("SELECT stream, COUNT(*) FROM events GROUP BY stream").fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    streams_by_kind: dict[str, int] = {}
    events_by_kind: dict[str, int] = {}
    for stream, events in per_stream:
        kind = stream_kind(stream)
        streams_by_kind[kind] = streams_by_kind.get(kind, 0) + 1
        events_by_kind[kind] = events_by_kind.get(kind, 0) + events
    sizes = log.sizes()
    return LogInfo(
        path=str(log.path),
        format=log.meta("format") or "",
        node_id=log.meta("node_id") or "",
        events=count,
        first_index=first,
        last_index=last,
        first_time=rfc3339nano(first_time) if first_time is not None else None,
        last_time=rfc3339nano(last_time) if last_time is not None else None,
        streams=len(per_stream),
        streams_by_kind=dict(sorted(streams_by_kind.items())),
        events_by_kind=dict(sorted(events_by_kind.items())),
        events_by_type=by_type,
        bytes_on_disk=sizes,
        total_bytes=sum(sizes.values()),
        snapshots=[
            SnapshotInfo(file=path.name, index=index, bytes=path.stat().st_size)
            for index, path in sorted(list_snapshots(log.snapshots))
        ],
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} B"


def render_info(info: LogInfo) -> str:
    """The human-readable form."""
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in info.streams_by_kind.items())
    parts = ", ".join(f"{name} {_mb(n)}" for name, n in info.bytes_on_disk.items())
    lines = [
        f"Log            = {info.path}",
        f"Format         = {info.format}",
        f"Node ID        = {info.node_id}",
        f"Events         = {info.events:,}",
        f"Index range    = {info.first_index:,} - {info.last_index:,}"
        if info.events
        else "Index range    = (empty)",
        f"Time range     = {info.first_time} - {info.last_time}"
        if info.events
        else "Time range     = (empty)",
        f"Streams        = {info.streams:,}" + (f" ({kinds})" if kinds else ""),
        f"Size on disk   = {_mb(info.total_bytes)} ({parts})",
    ]
    if info.snapshots:
        lines.append(
            "Snapshots      = "
            + ", ".join(f"{s.file} (index {s.index:,}, {_mb(s.bytes)})" for s in info.snapshots)
        )
    else:
        lines.append("Snapshots      = none")
    if info.events_by_type:
        lines.append("")
        lines.append("Events by type")
        width = max(len(t) for t in info.events_by_type)
        for type_, n in info.events_by_type.items():
            lines.append(f"  {type_:<{width}}  {n:>12,}")
    return "\n".join(lines)
