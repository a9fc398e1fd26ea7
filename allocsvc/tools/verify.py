"""``allocsvc log verify``: replay a whole log and check every invariant, stopping at the first bad record.

Owns ``verify_log`` and ``Problem``. Checks, per record in index order: the index is the next one
(gap-free from 1), the CRC matches, the event decodes under the current schema and its tag
matches the ``type`` column, the stream's version is the previous one plus 1, and the event
folds into ``ClusterState``. When the fold reaches a snapshot's index, the snapshot must verify
(header, checksum, anchor) and equal the replayed state. Reads raw rows itself (rather than
``iter_file_records``) so it can name which check failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.events import Recorded
from allocsvc.store.codec import checksum, decode_event, event_tag
from allocsvc.store.snapshot import (
    SnapshotError,
    anchor_of,
    decode_snapshot,
    list_snapshots,
    paused_gc,
    read_header,
)
from allocsvc.tools.logfile import LogFile
from allocsvc.tools.progress import Progress


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """The first failed check: the log index it concerns, which check, and what was wrong."""

    position: int
    check: str
    message: str
    stream: str = ""


class VerifyReport(msgspec.Struct, kw_only=True):
    """What ``verify`` checked (``--json`` prints exactly this)."""

    path: str
    checked: int = 0
    last_index: int = 0
    streams: int = 0
    snapshots_checked: list[str] = msgspec.field(default_factory=list)
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return self.problem is None


def _plain(value: Any) -> Any:
    return vars(value) if hasattr(value, "__dict__") else value


def first_difference(a: ClusterState, b: ClusterState) -> str:
    """Where two states first differ, e.g. ``allocs['<id>']`` or ``last_index``."""
    fields_a, fields_b = vars(a), vars(b)
    for name in sorted(fields_a.keys() | fields_b.keys()):
        va, vb = _plain(fields_a.get(name)), _plain(fields_b.get(name))
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            for key in sorted(va.keys() | vb.keys(), key=repr):
                if _plain(va.get(key)) != _plain(vb.get(key)):
                    return f"{name}[{key!r}]"
        return name
    return "(no difference)"


def _check_snapshot(path: Path, state: ClusterState, recorded: Recorded) -> str | None:
    """None if the snapshot at this record's index is valid and equals ``state``, else why not."""
    try:
        data = path.read_bytes()
        header = read_header(data)
        if header.anchor != anchor_of(recorded):
            return f"snapshot {path.name} does not match the log's record at index {recorded.index}"
        _, snap = decode_snapshot(data)
    except (OSError, SnapshotError) as exc:
        return f"snapshot {path.name} is unusable: {exc}"
    if snap != state:
        return f"snapshot {path.name} differs from the replayed state at {first_difference(snap, state)}"
    return None


def verify_log(log: LogFile, *, progress: Progress | None = None, snapshots: bool = True) -> VerifyReport:
    """Check the log as it is now (records appended meanwhile are not checked)."""
    end = log.last_index
    report = VerifyReport(path=str(log.path), last_index=end)
    pending = dict(list_snapshots(log.snapshots)) if snapshots else {}
    versions: dict[str, int] = {}
    state = ClusterState()
    expected = 1

    def fail(position: int, check: str, message: str, stream: str = "") -> VerifyReport:
        report.problem = Problem(position=position, check=check, message=message, stream=stream)
        report.streams = len(versions)
        return report

    with paused_gc():
        for row in log.iter_rows(until=end):
            if row.idx != expected:
                return fail(expected, "index", f"index gap: expected {expected}, found {row.idx}")
            if checksum(row.data) != row.crc:
                return fail(
                    row.idx,
                    "checksum",
                    "checksum mismatch: the event's bytes changed after commit",
                    row.stream,
                )
            try:
                event = decode_event(row.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return fail(
                    row.idx, "schema", f"event does not decode under the current schema: {exc}", row.stream
                )
            if event_tag(event) != row.type:
                return fail(
                    row.idx,
                    "schema",
                    f"type column {row.type!r} but the event is {event_tag(event)!r}",
                    row.stream,
                )
            previous = versions.get(row.stream, 0)
            if row.version != previous + 1:
                return fail(
                    row.idx,
                    "version",
                    f"stream version {row.version} follows {previous} (expected {previous + 1})",
                    row.stream,
                )
            versions[row.stream] = row.version
            recorded = Recorded(
                index=row.idx, stream=row.stream, version=row.version, time=row.time, event=event
            )
            try:
                state.apply(recorded)
            except Exception as exc:
                return fail(
                    row.idx,
                    "fold",
                    f"event does not apply to the state: {type(exc).__name__}: {exc}",
                    row.stream,
                )
            snapshot = pending.pop(row.idx, None)
            if snapshot is not None:
                problem = _check_snapshot(snapshot, state, recorded)
                if problem is not None:
                    return fail(row.idx, "snapshot", problem)
                report.snapshots_checked.append(snapshot.name)
            report.checked += 1
            expected += 1
            if progress is not None:
                progress.advance()
    report.streams = len(versions)
    if expected - 1 != end:
        return fail(expected, "index", f"log ends at index {expected - 1}, expected {end}")
    for index, path in sorted(pending.items()):
        return fail(index, "snapshot", f"snapshot {path.name} is past the end of the log (index {end})")
    return report
