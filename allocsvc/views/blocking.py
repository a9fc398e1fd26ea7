"""Nomad's blocking queries (``blockingRPC``) as one generic wrapper around a query closure.

Owns ``QueryOptions`` and ``blocking_query``. ``index`` 0 never blocks; otherwise the query
re-runs whenever one of its watch keys fires, until its index passes ``min_index`` or the wait
(default and cap 300 s, plus up to wait/16 jitter) runs out, and then returns the current result.
A query with a ``recheck`` (an ACL re-validation) also wakes on ``table:acl``, which fires on every
ACL write and whenever a token reaches its expiration time, so a query whose token is deleted or
expires while it waits answers 403 and never the data.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec
import trio

from allocsvc.views.watch import WatchHub

T = TypeVar("T")

ACL_WATCH_KEY = "table:acl"
"""Fires on ACL writes and token expirations; rechecking waits also wait on it."""

DEFAULT_WAIT = 300.0
MAX_WAIT = 300.0
JITTER_FRACTION = 16


class QueryOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Blocking parameters of a read (``?index=`` and ``?wait=``)."""

    min_index: int = 0
    wait_seconds: float = 0.0


class QueryResult(msgspec.Struct, Generic[T], frozen=True):
    """A query's value, the index it reports, and the keys that would change it."""

    index: int
    value: T
    watch: tuple[str, ...]


def effective_wait(wait_seconds: float, rng: random.Random | None = None) -> float:
    """Clamp to 300 s (non-positive means the default) and add Nomad's jitter."""
    wait = DEFAULT_WAIT if wait_seconds <= 0 else min(wait_seconds, MAX_WAIT)
    return wait + (rng or random).random() * wait / JITTER_FRACTION


async def blocking_query(
    hub: WatchHub,
    options: QueryOptions,
    run: Callable[[], QueryResult[T]],
    *,
    recheck: Callable[[], Awaitable[None]] | None = None,
) -> QueryResult[T]:
    """Run ``run`` until its index exceeds ``options.min_index`` or the wait expires.

    ``recheck`` runs after every wake-up (ACL re-validation); it raises to abort the query. With a
    ``recheck`` the wait also wakes on ``table:acl`` (token deleted, replaced or expired).
    """
    result = run()
    if options.min_index == 0 or result.index > options.min_index:
        return result
    extra = (ACL_WATCH_KEY,) if recheck is not None else ()
    with trio.move_on_after(effective_wait(options.wait_seconds)):
        while result.index <= options.min_index:
            await hub.wait((*result.watch, *extra))
            if recheck is not None:
                await recheck()
            result = run()
        return result
    if recheck is not None:
        await recheck()
    return run()
