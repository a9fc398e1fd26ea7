"""Keeps ``scripts/bench`` working without running the benchmarks (CI never runs them).

Runs the suite's cheapest rows in smoke mode (a few thousand events, seconds) and checks the
report's shape; plus two mechanisms the benchmarks depend on: the binary-search pagination skip
and the multi-key waiters of the watch hub (which must leave no registration behind).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import trio
import trio.testing

from allocsvc.http.allocs import _after_token, _skip_to_token
from allocsvc.views.watch import WatchHub

ROOT = Path(__file__).resolve().parents[2]


def _smoke(out: Path, only: str) -> dict[str, Any]:
    """Run ``scripts/bench_suite.py --smoke --only ONLY`` and return its JSON report."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_suite.py"), "--smoke", "--only", only, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "report.json").read_text())  # type: ignore[no-any-return]


def test_bench_suite_smoke_writes_report_rows_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    report = _smoke(out, "append,replay")
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"append", "replay"}
    for row in rows.values():
        assert row["median"] > 0
        assert row["ceiling_median"] > 0
        assert row["ratio"] == row["median"] / row["ceiling_median"]
        assert isinstance(row["met"], bool)
    assert "| durable append, group commit" in (out / "report.md").read_text()
    assert report["meta"]["errors"] == {}


def test_bench_suite_smoke_lifecycle_rows_time_real_writes(tmp_path: Path) -> None:
    report = _smoke(tmp_path / "bench", "lifecycle")
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"lifecycle_signal", "lifecycle_restart", "lifecycle_stop"}
    for row in rows.values():
        assert row["median"] > 0
        assert row["ceiling_median"] > 0
        assert "statuses {'200': 5}" in row["notes"]
    assert "its commits 50 ms apart too" in rows["lifecycle_stop"]["notes"]
    assert report["meta"]["errors"] == {}


class _Alloc(msgspec.Struct):
    ID: str
    CreateIndex: int


class _Agg(msgspec.Struct):
    alloc: _Alloc


def test_pagination_skip_matches_the_full_scan() -> None:
    ids = [f"{i:02x}{'0' * 6}-aaaa-bbbb-cccc-{i:012x}" for i in range(60)]
    create = {a: 10 + i // 3 for i, a in enumerate(ids)}
    allocs = {a: _Agg(_Alloc(a, create[a])) for a in ids}
    by_create = sorted(ids, key=lambda a: (create[a], a))
    tokens = ["", "0", "12", "12.", f"15.{ids[17]}", f"15.{ids[15]}", f"99.{ids[0]}", f"3.{ids[59]}", ids[30], "zz", "00"]
    for token in tokens:
        for reverse in (False, True):
            for by_id, order in ((True, sorted(ids)), (False, by_create)):
                scan = order[::-1] if reverse else order
                expected = [
                    a for a in scan if _after_token(allocs[a], token, by_id=by_id, reverse=reverse)  # type: ignore[arg-type]
                ]
                skipped = _skip_to_token(order, allocs, token, by_id=by_id, reverse=reverse)  # type: ignore[arg-type]
                if skipped is not None:
                    assert skipped == expected, (token, reverse, by_id)
                else:
                    head, dot, _ = token.partition(".")
                    assert not token or (not by_id and not (dot and head.isdigit())), token


async def test_multi_key_waiters_leave_nothing_behind() -> None:
    hub = WatchHub()
    woke: list[str] = []

    async def reader(name: str) -> None:
        await hub.wait((f"alloc:{name}", "table:acl"))
        woke.append(name)

    async with trio.open_nursery() as nursery:
        for name in ("a", "b", "c"):
            nursery.start_soon(reader, name)
        await trio.testing.wait_all_tasks_blocked()
        assert hub.statistics().watched_keys == 4
        hub.notify(["alloc:b"])
        await trio.testing.wait_all_tasks_blocked()
        assert woke == ["b"]
        assert hub.statistics().woken == 1
        nursery.cancel_scope.cancel()
    assert hub.statistics().watched_keys == 0
    assert hub._multi == {}
