"""A data dir's event log opened read-only: rows, records, meta and sizes for the log tools.

Owns ``LogFile`` (which also satisfies ``allocsvc.store.snapshot.RecordSource``, so snapshots can
be verified against it), the raw ``Row`` and ``ToolError``. Each query runs in its own read
transaction on a read-only connection, so the tools are safe beside a running agent: they see a
prefix of the log that only grows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from allocsvc.domain.events import Recorded
from allocsvc.service import log_path
from allocsvc.store.snapshot import snapshot_dir
from allocsvc.store.sqlite import connect, iter_file_records, read_meta


class ToolError(Exception):
    """A tool cannot run (no log, bad argument, unknown allocation); the CLI prints it and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Row(NamedTuple):
    """One ``events`` row exactly as stored (nothing decoded or checked)."""

    idx: int
    stream: str
    version: int
    time: int
    type: str
    data: bytes
    crc: int


class LogFile:
    """The log of one data dir, read-only."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = log_path(self.data_dir)
        self.snapshots = snapshot_dir(self.data_dir)
        if not self.path.is_file():
            raise ToolError(f"no event log at {self.path}")

    def connect(self) -> sqlite3.Connection:
        """A new read-only connection."""
        try:
            return connect(self.path, readonly=True)
        except sqlite3.Error as exc:
            raise ToolError(f"cannot open {self.path}: {exc}") from exc

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query to completion."""
        conn = self.connect()
        try:
            return list(conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise ToolError(f"cannot read {self.path}: {exc}") from exc
        finally:
            conn.close()

    @property
    def last_index(self) -> int:
        """The newest index in the file now (0 when empty)."""
        row = self.query("SELECT COALESCE(MAX(idx), 0) FROM events")
        return int(row[0][0])

    def meta(self, key: str) -> str | None:
        """A value from the meta table (``format``, ``node_id``)."""
        conn = self.connect()
        try:
            return read_meta(conn, key)
        finally:
            conn.close()

    def iter_records(self, after: int = 0) -> Generator[Recorded, None, None]:
        """Decoded, checked records after ``after`` (raises ``LogCorruptError`` at a bad one).

        A generator, so ``contextlib.closing`` releases the connection when a caller stops early.
        """
        yield from iter_file_records(self.path, after)

    def iter_rows(self, after: int = 0, until: int | None = None, *, chunk: int = 5000) -> Iterator[Row]:
        """Raw rows with after < index <= until, in index order, fetched ``chunk`` at a time."""
        conn = self.connect()
        try:
            cursor = after
            while True:
                rows = conn.execute(
                    "SELECT idx, stream, version, time, type, data, crc FROM events WHERE idx > ? ORDER BY idx LIMIT ?",
                    (cursor, chunk),
                ).fetchall()
                if not rows:
                    return
                for row in rows:
                    if until is not None and row[0] > until:
                        return
                    yield Row(*row)
                cursor = rows[-1][0]
        finally:
            conn.close()

    def stream_rows(self, stream: str) -> list[Row]:
        """Every row of one stream in version order (uses the (stream, version) index)."""
        rows = self.query(
            "SELECT idx, stream, version, time, type, data, crc FROM events WHERE stream = ? ORDER BY version",
            (stream,),
        )
        return [Row(*row) for row in rows]

    def streams_with_prefix(self, prefix: str, *, limit: int = 50) -> list[str]:
        """Distinct stream names starting with ``prefix`` (an index range scan)."""
        rows = self.query(
            "SELECT DISTINCT stream FROM events WHERE stream >= ? AND stream < ? ORDER BY stream LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        )
        return [str(row[0]) for row in rows]

    def sizes(self) -> dict[str, int]:
        """Bytes on disk: the database, its WAL and shared-memory files, and the snapshots."""
        out: dict[str, int] = {}
        for suffix in ("", "-wal", "-shm"):
            part = self.path.with_name(self.path.name + suffix)
            if part.is_file():
                out[part.name] = part.stat().st_size
        if self.snapshots.is_dir():
            out["snapshots"] = sum(p.stat().st_size for p in self.snapshots.iterdir() if p.is_file())
        return out
