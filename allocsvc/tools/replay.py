"""``allocsvc log replay``: rebuild the state as of a log index and render it as Nomad JSON.

Owns ``state_at`` (newest verified snapshot at or before the index, then the log up to it) and
the renderers, which use the read model's own encoding so the output is byte-identical to
``GET /v1/allocation/:id`` at that index.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from allocsvc.domain.cluster import ClusterState
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.store.snapshot import load_newest, paused_gc
from allocsvc.tools.logfile import LogFile, ToolError
from allocsvc.tools.progress import Progress
from allocsvc.views.read_model import ReadModel


def state_at(
    log: LogFile, until: int | None = None, *, use_snapshots: bool = True, progress: Progress | None = None
) -> tuple[ClusterState, Path | None]:
    """The cluster state after index ``until`` (default: the end), and the snapshot it started from."""
    last = log.last_index
    if until is None:
        until = last
    if until < 0:
        raise ToolError(f"invalid index {until}")
    if until > last:
        raise ToolError(f"index {until} is past the end of the log (last index {last})")
    loaded, path, _ = load_newest(log, log.snapshots if use_snapshots else None, max_index=until)
    state = loaded or ClusterState()
    if progress is not None:
        progress.total = until - state.last_index
    with paused_gc(), contextlib.closing(log.iter_records(after=state.last_index)) as records:
        for recorded in records:
            if recorded.index > until:
                break
            state.apply(recorded)
            if progress is not None:
                progress.advance()
    return state, path


def find_alloc(state: ClusterState, id_or_prefix: str) -> AllocAggregate:
    """An allocation by full ID or unique prefix; raises ToolError naming the candidates."""
    exact = state.allocs.get(id_or_prefix)
    if exact is not None:
        return exact
    matches = sorted(a for a in state.allocs if a.startswith(id_or_prefix))
    if not matches:
        raise ToolError(
            f'No allocation(s) with prefix or id "{id_or_prefix}" found at index {state.last_index}'
        )
    if len(matches) > 1:
        raise ToolError("Prefix matched multiple allocations\n\n" + "\n".join(matches[:20]))
    return state.allocs[matches[0]]


def alloc_json(state: ClusterState, id_or_prefix: str) -> bytes:
    """One allocation with its job snapshot, exactly as ``GET /v1/allocation/:id`` encodes it."""
    return ReadModel(state).encoded_detail(find_alloc(state, id_or_prefix))


def all_allocs_json(state: ClusterState) -> bytes:
    """Every allocation (create order) as a JSON array of the same per-allocation documents."""
    model = ReadModel(state)
    return (
        b"[" + b",".join(model.encoded_detail(state.allocs[a]) for a in model.allocs_in_create_order()) + b"]"
    )
