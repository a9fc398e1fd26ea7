"""The simulation report: deterministic JSON for stdout, the timeline for the plot, the log digest.

Owns ``Sample`` (one point of the timeline), ``percentiles``, ``log_digest`` and
``encode_report``. Everything here depends only on simulated quantities, so the same seed and
options give byte-identical output; wall-clock figures are the CLI's business (stderr).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from allocsvc.domain.events import Recorded
from allocsvc.store.codec import encode_event


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """The cluster at one simulated instant, for the plot."""

    time: float
    """Simulated seconds since the start."""
    statuses: dict[str, int]
    """Allocations by ClientStatus."""
    events: int
    """Records committed so far."""
    latency_p50_ms: float | None
    latency_max_ms: float | None
    """Blocking-query notification latency over the interval since the previous sample."""


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """Nearest-rank p50/p90/p99 and max of ``values``, with the count."""
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1]}


def record_bytes(recorded: Recorded) -> bytes:
    """One record as the determinism digest sees it: index, stream, version, time and event bytes."""
    head = f"{recorded.index}\t{recorded.stream}\t{recorded.version}\t{recorded.time}\n".encode()
    return head + encode_event(recorded.event) + b"\n"


def log_digest(records: Iterable[Recorded]) -> tuple[int, str]:
    """(record count, SHA-256 of every record's bytes in order)."""
    digest = hashlib.sha256()
    count = 0
    for recorded in records:
        digest.update(record_bytes(recorded))
        count += 1
    return count, digest.hexdigest()


def sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    """Counts by key, sorted, zeros dropped."""
    return {k: v for k, v in sorted(counts.items()) if v}


def encode_report(report: dict[str, Any]) -> bytes:
    """The report as indented JSON with sorted keys and a trailing newline."""
    return msgspec.json.format(msgspec.json.encode(report, order="sorted"), indent=2) + b"\n"
