"""Snapshots of the projected cluster state, so startup replays only the tail of the log.

Owns the snapshot file format (design/event-log.md, "Snapshots"), writing one atomically (temp
file, fsync, rename, keep the newest two), reading one back with its checks, ``restore_state``
(newest valid snapshot plus the tail, else a full replay) and ``Snapshotter``, the service task
that writes a snapshot every ``snapshot_every`` committed events. ``open_service`` and the
``allocsvc log`` tools call it.

A snapshot holds every attribute of ``ClusterState`` (and of nested plain objects such as
``ACLState``), each under its name. Writing refuses a state with an attribute this module has no
type for, and reading refuses a file whose attributes differ, so a snapshot can never silently
drop state: startup then logs a warning and replays the whole log.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
import trio

from allocsvc.domain.acl_state import ACLPolicyRecord, ACLState, ACLTokenRecord
from allocsvc.domain.cluster import ClusterState, JobRecord
from allocsvc.domain.events import Recorded
from allocsvc.domain.lifecycle import AllocAggregate
from allocsvc.domain.model import Evaluation, Namespace
from allocsvc.store.codec import encode_event
from allocsvc.store.log import EventLog

logger = logging.getLogger("allocsvc.snapshot")

SNAPSHOT_FORMAT = 1
"""Version of the snapshot file layout; a file of another version is ignored (full replay)."""

FREEZE_AFTER = 100_000
"""A restored state this large is moved out of the cyclic GC's reach (``gc.freeze``): it is
acyclic, and every full collection would otherwise walk its millions of objects (~1 s at 1M
events)."""

DEFAULT_EVERY = 100_000
"""Events between snapshots when ``snapshot_every`` is 0."""

KEEP = 2
"""Snapshots kept on disk; older ones are deleted after a new one is written."""

CHUNK = 250
"""Entries per encoded piece of a large map. Encoding one piece holds the GIL (about 1 ms for 250
allocations); the writer thread gives the GIL up after each piece, so the event loop waits at
most one piece, not a switch interval plus a 2,000-entry piece (7.5 ms, which put 150-190 ms on
requests served during a snapshot at 100k allocations). Any piece size decodes."""

_MAGIC = b"ALCSNAP\x00"
_HEADER = struct.Struct("<8sIQIQQI")
"""magic, format, log index, anchor CRC, raw length, payload length, payload CRC; then a header CRC."""
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size


class SnapshotError(Exception):
    """A snapshot could not be written or is unusable (bad checksum, undecodable, wrong log)."""


class RecordSource(Protocol):
    """The part of ``EventLog`` snapshots need; the log tools pass a read-only file reader."""

    @property
    def last_index(self) -> int:
        """The newest committed index."""
        ...

    def iter_records(self, after: int = 0) -> Iterator[Recorded]:
        """Committed records after ``after``, in order."""
        ...


# --- what a snapshot holds ------------------------------------------------------------------------


class _Object:
    """How one plain class is stored: each attribute by name, with its declared type.

    ``Map`` attributes are stored in pieces of ``CHUNK`` entries; ``_Object`` attributes nest.
    """

    def __init__(self, cls: type[Any], fields: dict[str, Any]) -> None:
        self.cls = cls
        self.fields = fields

    def check(self, obj: object) -> None:
        have, known = set(vars(obj)), set(self.fields)
        if have != known:
            raise SnapshotError(
                f"{self.cls.__name__} attributes {sorted(have ^ known)} are not covered by the snapshot format"
            )

    def copy(self, obj: Any) -> Any:
        """A copy that later folds cannot change (containers copied, mutable Structs copied)."""
        self.check(obj)
        out = object.__new__(self.cls)
        for name, kind in self.fields.items():
            value = getattr(obj, name)
            if isinstance(kind, _Object):
                value = kind.copy(value)
            elif isinstance(value, dict):
                value = (
                    {k: _copy_value(v) for k, v in value.items()}
                    if _has_mutable_values(value)
                    else dict(value)
                )
            setattr(out, name, value)
        return out

    def encode(self, obj: object) -> dict[str, Any]:
        """Attribute name → encoded value (a ``Raw``, or a list of ``Raw`` pieces for a Map)."""
        self.check(obj)
        return {name: self._encode_field(kind, getattr(obj, name)) for name, kind in self.fields.items()}

    def encode_parts(self, obj: object) -> Iterator[bytes]:
        """``msgpack.encode(self.encode(obj))`` as consecutive parts, never joined into one buffer.

        Joining a 100k-allocation state (200 MB) is one 145 ms call holding the GIL; the parts
        let a writer thread compress as it goes and give the GIL up between them.
        """
        self.check(obj)
        yield _container_header(0x80, 0xDE, len(self.fields))
        for name, kind in self.fields.items():
            yield msgspec.msgpack.encode(name)
            value = self._encode_field(kind, getattr(obj, name))
            if isinstance(value, list):
                yield _container_header(0x90, 0xDC, len(value))
                yield from value
            else:
                yield value

    @staticmethod
    def _encode_field(kind: Any, value: Any) -> Any:
        if isinstance(kind, _Object):
            return msgspec.Raw(msgspec.msgpack.encode(kind.encode(value)))
        if isinstance(kind, Map):
            entries = iter(value.items())
            pieces: list[msgspec.Raw] = []
            while piece := dict(itertools.islice(entries, CHUNK)):
                pieces.append(msgspec.Raw(msgspec.msgpack.encode(piece)))
                time.sleep(0)  # let a waiting thread (the event loop) take the GIL
            return pieces
        return msgspec.Raw(msgspec.msgpack.encode(value))

    def decode(self, encoded: dict[str, Any]) -> Any:
        """Rebuild an instance without running ``__init__``; every attribute must be present."""
        if set(encoded) != set(self.fields):
            raise SnapshotError(
                f"snapshot {self.cls.__name__} attributes {sorted(set(encoded) ^ set(self.fields))} differ from this build"
            )
        obj = object.__new__(self.cls)
        for name, kind in self.fields.items():
            if isinstance(kind, _Object):
                value = kind.decode(msgspec.msgpack.decode(encoded[name], type=dict[str, msgspec.Raw]))
            elif isinstance(kind, Map):
                pieces = msgspec.msgpack.decode(encoded[name], type=kind.pieces)
                value = (
                    pieces[0] if len(pieces) == 1 else {k: v for piece in pieces for k, v in piece.items()}
                )
            else:
                value = msgspec.msgpack.decode(encoded[name], type=kind)
            setattr(obj, name, value)
        return obj


def _container_header(fix: int, sized: int, count: int) -> bytes:
    """A msgpack map (``0x80``/``0xDE``) or array (``0x90``/``0xDC``) header, smallest form."""
    if count < 16:
        return bytes([fix | count])
    if count < 1 << 16:
        return bytes([sized]) + count.to_bytes(2, "big")
    return bytes([sized + 1]) + count.to_bytes(4, "big")


class Map:
    """A dict attribute stored in pieces (``type`` is its full ``dict[K, V]`` type)."""

    def __init__(self, type_: Any) -> None:
        self.type = type_
        self.pieces: Any = list.__class_getitem__(type_)


def _has_mutable_values(value: dict[Any, Any]) -> bool:
    first = next(iter(value.values()), None)
    return isinstance(first, msgspec.Struct) and not type(first).__struct_config__.frozen


def _copy_value(value: Any) -> Any:
    """Copy a mutable Struct (e.g. JobRecord) and its dict fields; frozen values are shared."""
    if isinstance(value, msgspec.Struct) and not type(value).__struct_config__.frozen:
        changes = {
            name: dict(getattr(value, name))
            for name in value.__struct_fields__
            if isinstance(getattr(value, name), dict)
        }
        return msgspec.structs.replace(value, **changes)
    return value


ACL_FORMAT = _Object(
    ACLState,
    {
        "policies": dict[str, ACLPolicyRecord],
        "tokens": dict[str, ACLTokenRecord],
        "_by_secret": dict[str, str],
        "bootstrap_index": int,
        "policy_index": int,
        "token_index": int,
    },
)

STATE_FORMAT = _Object(
    ClusterState,
    {
        "namespaces": dict[str, Namespace],
        "jobs": Map(dict[tuple[str, str], JobRecord]),
        "evals": Map(dict[str, Evaluation]),
        "allocs": Map(dict[str, AllocAggregate]),
        "table_index": dict[str, int],
        "last_index": int,
        "stream_versions": Map(dict[str, int]),
        "acl": ACL_FORMAT,
    },
)
"""Every ``ClusterState`` attribute and its type; a new attribute must be added here."""


# --- files ----------------------------------------------------------------------------------------


def snapshot_dir(data_dir: str | Path) -> Path:
    """Where a data dir's snapshots live."""
    return Path(data_dir) / "snapshots"


def snapshot_name(index: int) -> str:
    """File name of the snapshot taken at log ``index`` (zero-padded so names sort by index)."""
    return f"state-{index:012d}.msgpack"


def list_snapshots(directory: Path | None) -> list[tuple[int, Path]]:
    """Snapshot files in ``directory`` as (index, path), newest first."""
    if directory is None or not directory.is_dir():
        return []
    found: list[tuple[int, Path]] = []
    for path in directory.glob("state-*.msgpack"):
        stem = path.name[len("state-") : -len(".msgpack")]
        if stem.isdigit():
            found.append((int(stem), path))
    return sorted(found, reverse=True)


def anchor_of(recorded: Recorded) -> int:
    """CRC32 of the record at the snapshot's index: ties a snapshot to the log it came from."""
    return zlib.crc32(
        encode_event(recorded.event), zlib.crc32(f"{recorded.stream}\x00{recorded.version}".encode())
    )


def record_at(log: RecordSource, index: int) -> Recorded | None:
    """The log's record at ``index`` (None if the log is shorter)."""
    if index < 1 or index > log.last_index:
        return None
    records = log.iter_records(after=index - 1)
    try:
        first = next(iter(records), None)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return first if first is not None and first.index == index else None


def encode_snapshot(state: ClusterState, anchor: int) -> bytes:
    """The complete file contents for ``state`` (header + compressed payload)."""
    compressor = zlib.compressobj(1)
    raw_length = 0
    compressed: list[bytes] = []
    for part in STATE_FORMAT.encode_parts(state):
        raw_length += len(part)
        compressed.append(compressor.compress(part))  # deflate runs without the GIL
    compressed.append(compressor.flush())
    payload = b"".join(compressed)
    header = _HEADER.pack(
        _MAGIC, SNAPSHOT_FORMAT, state.last_index, anchor, raw_length, len(payload), zlib.crc32(payload)
    )
    return header + _HEADER_CRC.pack(zlib.crc32(header)) + payload


def write_snapshot(directory: Path, state: ClusterState, anchor: int, *, keep: int = KEEP) -> Path:
    """Write ``state`` atomically as ``state-<index>.msgpack``; delete all but the newest ``keep``.

    Call it with a state nothing else mutates (``copy_state`` gives one). Raises SnapshotError.
    """
    try:
        data = encode_snapshot(state, anchor)
    except msgspec.EncodeError as exc:
        raise SnapshotError(f"cannot encode the state: {exc}") from exc
    final = directory / snapshot_name(state.last_index)
    temp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        temp.replace(final)
        _fsync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise SnapshotError(f"cannot write {final}: {exc}") from exc
    for _, old in list_snapshots(directory)[keep:]:
        old.unlink(missing_ok=True)
    return final


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotHeader(msgspec.Struct, frozen=True):
    """The verified header of a snapshot file."""

    index: int
    anchor: int
    raw_length: int
    payload_length: int


def read_header(data: bytes) -> SnapshotHeader:
    """Parse and check a snapshot header; raises SnapshotError."""
    if len(data) < HEADER_SIZE:
        raise SnapshotError("file too short for a snapshot header")
    header = data[: _HEADER.size]
    (header_crc,) = _HEADER_CRC.unpack_from(data, _HEADER.size)
    if zlib.crc32(header) != header_crc:
        raise SnapshotError("header checksum mismatch")
    magic, version, index, anchor, raw_length, payload_length, payload_crc = _HEADER.unpack(header)
    if magic != _MAGIC:
        raise SnapshotError("not a snapshot file")
    if version != SNAPSHOT_FORMAT:
        raise SnapshotError(f"snapshot format {version} is not {SNAPSHOT_FORMAT}")
    payload = memoryview(data)[HEADER_SIZE:]
    if len(payload) != payload_length:
        raise SnapshotError(f"payload is {len(payload)} bytes, header says {payload_length}")
    if zlib.crc32(payload) != payload_crc:
        raise SnapshotError("payload checksum mismatch")
    return SnapshotHeader(index, anchor, raw_length, payload_length)


def decode_snapshot(data: bytes) -> tuple[SnapshotHeader, ClusterState]:
    """Verify and decode a snapshot file's contents; raises SnapshotError."""
    header = read_header(data)
    try:
        raw = zlib.decompress(memoryview(data)[HEADER_SIZE:], bufsize=max(header.raw_length, 1))
        with paused_gc():
            encoded = msgspec.msgpack.decode(raw, type=dict[str, msgspec.Raw])
            state: ClusterState = STATE_FORMAT.decode(encoded)
    except (zlib.error, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"undecodable snapshot: {exc}") from exc
    if state.last_index != header.index:
        raise SnapshotError(f"state is at index {state.last_index}, header says {header.index}")
    return header, state


def read_snapshot(path: Path) -> ClusterState:
    """Load one snapshot file; raises SnapshotError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc
    return decode_snapshot(data)[1]


def copy_state(state: ClusterState) -> ClusterState:
    """A copy of ``state`` that later folds cannot change, cheap enough to take between commits."""
    copied: ClusterState = STATE_FORMAT.copy(state)
    return copied


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while building millions of acyclic objects (it triples decode time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- startup --------------------------------------------------------------------------------------


@dataclass
class Restored:
    """What ``restore_state`` rebuilt and how."""

    state: ClusterState
    snapshot: Path | None = None
    replayed: int = 0
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def snapshot_index(self) -> int:
        """The index the loaded snapshot was taken at (0 without one)."""
        return self.state.last_index - self.replayed


def load_newest(
    log: RecordSource, directory: Path | None, *, max_index: int | None = None
) -> tuple[ClusterState | None, Path | None, list[tuple[Path, str]]]:
    """The newest snapshot (at or before ``max_index``) that verifies against ``log``.

    Returns (state, its file, rejected files with the reason); bad files are logged as warnings.
    """
    rejected: list[tuple[Path, str]] = []
    for index, path in list_snapshots(directory):
        if max_index is not None and index > max_index:
            continue
        try:
            if index > log.last_index:
                raise SnapshotError(f"snapshot index {index} is past the log's last index {log.last_index}")
            data = path.read_bytes()
            header = read_header(data)
            if header.index != index:
                raise SnapshotError(f"file name says index {index}, header says {header.index}")
            record = record_at(log, index)
            if record is None or anchor_of(record) != header.anchor:
                raise SnapshotError(f"snapshot does not match the log's record at index {index}")
            _, state = decode_snapshot(data)
        except (OSError, SnapshotError) as exc:
            rejected.append((path, str(exc)))
            logger.warning("ignoring snapshot %s: %s", path, exc)
            continue
        return state, path, rejected
    return None, None, rejected


def restore_state(log: RecordSource, directory: Path | None) -> Restored:
    """Load the newest valid snapshot in ``directory`` and replay the log after it.

    Falls back to a full replay (with a logged warning per bad snapshot). Log errors
    (``LogCorruptError``) propagate. ``directory`` None (a memory log) means a full replay.
    """
    state, path, rejected = load_newest(log, directory)
    restored = Restored(state=state or ClusterState(), snapshot=path, rejected=rejected)
    with paused_gc():
        restored.replayed = restored.state.apply_all(log.iter_records(after=restored.state.last_index))
        if restored.state.last_index >= FREEZE_AFTER:
            gc.freeze()  # before the GC runs again: its next collection would walk the whole new state first
    if path is not None:
        logger.info(
            "restored state from snapshot %s and replayed %d events after it", path.name, restored.replayed
        )
    elif rejected:
        logger.warning("no usable snapshot; replayed the whole log (%d events)", restored.replayed)
    return restored


def remove_temp_files(directory: Path | None) -> None:
    """Delete half-written snapshots left by a crash."""
    if directory is not None and directory.is_dir():
        for temp in directory.glob(".state-*.tmp"):
            temp.unlink(missing_ok=True)


# --- the periodic task ----------------------------------------------------------------------------


class Snapshotter:
    """Writes a snapshot after every ``every`` committed events (the service runs one).

    ``on_commit`` is a log listener subscribed after the read model's, so the state already
    holds each batch when it is called. Snapshots are copied between commits in the event loop
    (milliseconds) and encoded, compressed and written in a worker thread.
    """

    def __init__(
        self, log: EventLog, state: ClusterState, directory: Path, *, every: int, last_index: int = 0
    ) -> None:
        self.log = log
        self.state = state
        self.directory = directory
        self.every = every if every > 0 else DEFAULT_EVERY
        self.last_index = last_index
        """Index of the last snapshot attempted (written or failed)."""
        self.written_index = last_index
        """Index of the newest snapshot on disk."""
        self._due = trio.Event()
        self._written = trio.Event()

    def on_commit(self, records: Sequence[Recorded]) -> None:
        """Log listener: flag a snapshot as due once enough events have committed."""
        if records and records[-1].index - self.last_index >= self.every:
            self._due.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take snapshots whenever one is due, until cancelled; failures are logged, not raised."""
        remove_temp_files(self.directory)
        task_status.started()
        while True:
            if self.state.last_index - self.last_index < self.every:
                await self._due.wait()
                self._due = trio.Event()
                continue
            try:
                await self.take()
            except Exception:  # a snapshot is an optimisation: never let it take the agent down
                logger.exception("snapshot at index %d failed", self.state.last_index)
                self.last_index = self.state.last_index

    async def take(self) -> Path:
        """Snapshot the state as it is now; returns the file written."""
        copy = copy_state(self.state)
        path = await trio.to_thread.run_sync(self._write, copy)
        self.last_index = self.written_index = copy.last_index
        self._written.set()
        self._written = trio.Event()
        logger.info("wrote snapshot %s", path.name)
        return path

    async def wait_written(self, index: int) -> None:
        """Return once a snapshot at or after ``index`` is on disk."""
        while self.written_index < index:
            await self._written.wait()

    def _write(self, state: ClusterState) -> Path:
        record = record_at(self.log, state.last_index)
        if record is None:
            raise SnapshotError(f"log has no record at index {state.last_index}")
        return write_snapshot(self.directory, state, anchor_of(record))
