"""``allocsvc log history <alloc-id-prefix>``: one allocation's whole life as a readable timeline.

Owns ``alloc_history`` and ``TimelineEntry``. It reads only that allocation's stream (an index
range scan, fast on any log size) and describes each event with Nomad's TaskEvent ``Type`` and
``DisplayMessage`` where the event has one, or a short description of its own otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from allocsvc.domain import events as ev
from allocsvc.domain.display import to_task_event
from allocsvc.gocompat import SECOND
from allocsvc.store.codec import event_tag, verified_event
from allocsvc.tools.logfile import LogFile, ToolError


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the timeline."""

    index: int
    time: int
    task: str
    type: str
    message: str
    tag: str


def describe(event: ev.Event, time: int) -> tuple[str, str, str]:
    """(task, type, message) for one event of an allocation stream."""
    match event:
        case ev.TaskEventBase():
            nomad = to_task_event(event, time)
            if nomad is not None:
                return event.task, nomad.Type, nomad.DisplayMessage
            return event.task, "Completed", "Task finished successfully and will not run again"
        case ev.AllocPlaced():
            return (
                "",
                "Placed",
                (
                    f"Placed on node {event.node_name or event.node_id} from job {event.job_id!r} "
                    f"version {event.job_version}, group {event.task_group!r}"
                ),
            )
        case ev.AllocStopRequested():
            return "", "Stop Requested", f"Stop requested (evaluation {event.eval_id})"
        case ev.AllocDesiredStatusChanged():
            return "", "Desired Status", f"Desired status {event.desired_status}: {event.description}"
        case ev.ExecSessionRecorded():
            outcome = f"error: {event.error}" if event.error else f"exit code {event.exit_code}"
            return event.task, "Exec", f"Exec session {' '.join(event.command)!r} ended ({outcome})"
    return str(getattr(event, "task", "")), event_tag(event), ""


def resolve_alloc(log: LogFile, prefix: str) -> str:
    """The one allocation whose ID starts with ``prefix``; raises ToolError otherwise."""
    if not prefix:
        raise ToolError("an allocation ID or prefix is required")
    ids = [s[len("alloc/") :] for s in log.streams_with_prefix(ev.alloc_stream(prefix), limit=21)]
    if prefix in ids:
        return prefix
    if not ids:
        raise ToolError(f'No allocation(s) with prefix or id "{prefix}" found')
    if len(ids) > 1:
        raise ToolError("Prefix matched multiple allocations\n\n" + "\n".join(ids[:20]))
    return ids[0]


def alloc_history(log: LogFile, prefix: str, *, task: str = "") -> tuple[str, list[TimelineEntry]]:
    """The allocation's ID and every event of its stream (optionally one task's), in log order."""
    alloc_id = resolve_alloc(log, prefix)
    entries: list[TimelineEntry] = []
    for row in log.stream_rows(ev.alloc_stream(alloc_id)):
        event = verified_event(row.data, row.crc, row.idx)
        event_task, type_, message = describe(event, row.time)
        if task and event_task != task:
            continue
        entries.append(
            TimelineEntry(
                index=row.idx,
                time=row.time,
                task=event_task,
                type=type_,
                message=message,
                tag=event_tag(event),
            )
        )
    return alloc_id, entries


def format_time(unix_ns: int) -> str:
    """UTC with milliseconds, e.g. ``2023-11-14T22:13:20.123Z``."""
    seconds, nanos = divmod(unix_ns, SECOND)
    return (
        datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1_000_000:03d}Z"
    )


def render_history(alloc_id: str, entries: list[TimelineEntry]) -> str:
    """The timeline as an aligned table."""
    header = ("Time", "Index", "Task", "Type", "Description")
    rows = [(format_time(e.time), str(e.index), e.task or "-", e.type, e.message) for e in entries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"Allocation {alloc_id}: {len(entries)} events", ""]
    for r in [header, *rows]:
        lines.append(
            "  ".join(r[i].ljust(widths[i]) if i != 1 else r[i].rjust(widths[i]) for i in range(4))
            + "  "
            + r[4]
        )
    return "\n".join(line.rstrip() for line in lines)
