"""``GET /v1/event/stream``: Nomad's event stream, durable and resumable because it reads the log.

Owns parameter parsing (Nomad's order and texts: ``index``, then ``topic``, then the common
``parse``), the subscription's ACL check, and the NDJSON body: ``{}`` first, a ``{}`` heartbeat
every 30 s, and one ``{"Index":N,"Events":[...]}`` line per published record.

The body reads matching records from the log from the start index on and then follows commits.
It tracks the last index it has read and always reads on from there, so replay and live follow
are one loop: no gap, no duplicate, across agent restarts. Quart pulls the body generator only
as fast as the socket drains, so a slow reader holds at most one chunk in memory. The token is
re-checked before every chunk and heartbeat, and after every ACL write, and the stream ends when
the token expires, is deleted or loses the subscription's permissions (CVE-2022-3867,
CVE-2025-0937).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING

import msgspec
import trio
from quart import Blueprint, Response, request

from allocsvc.errors import AllocsvcError, BadRequestError, PermissionDeniedError
from allocsvc.gocompat import go_quote
from allocsvc.http.auth import Authorizer, authorizer_for
from allocsvc.http.query import parse_list_options, request_token
from allocsvc.views.history import READ_CHUNK
from allocsvc.views.stream_events import (
    NAMESPACED_TOPICS,
    AsOfStates,
    EventHead,
    LineCache,
    Topics,
    describe,
    encode_line,
)

if TYPE_CHECKING:
    from allocsvc.domain.events import Recorded
    from allocsvc.service import Service

HEARTBEAT_INTERVAL = 30.0
"""Seconds between ``{}`` heartbeats (Nomad: 30 s)."""

FLUSH_BYTES = 64 * 1024
"""A chunk is handed to the server once it holds this many bytes of lines."""

FOLD_CAPACITY = 8192
"""Streams whose past state one subscriber keeps while replaying (see ``AsOfStates``)."""

READ_JOB = "read-job"
LOG_KEY = "table:log"
ACL_KEY = "table:acl"
EXTENSION = "allocsvc.event_stream"
"""Key of the ``EventStreamer`` in ``app.extensions``."""

_ATOI = re.compile(r"[+-]?[0-9]+")


def parse_start_index(text: str) -> int:
    """Nomad's ``strconv.Atoi`` of ``?index=`` (empty means 0), with Go's error text."""
    if text == "":
        return 0
    if not _ATOI.fullmatch(text):
        raise BadRequestError(f"Unable to parse index: strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise BadRequestError(f"Unable to parse index: strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value


def subscription_allowed(authz: Authorizer, topics: Topics, namespace: str) -> bool:
    """Nomad's ``aclCheckForEvents``: namespaced topics need ``read-job``, any other management."""
    if authz.is_management:
        return True
    for name in topics.names:
        if name not in NAMESPACED_TOPICS or not authz.allow_namespace_op(namespace, READ_JOB):
            return False
    return True


class EventStreamStatistics(msgspec.Struct, frozen=True):
    """Open subscriptions and where each one is in the log."""

    subscribers: int
    positions: tuple[int, ...]
    lines_sent: int


class Subscription:
    """One open stream: its filter, its caller and its position in the log."""

    def __init__(
        self,
        streamer: EventStreamer,
        *,
        topics: Topics,
        namespace: str,
        authz: Authorizer,
        token: str,
        start: int,
    ) -> None:
        service = streamer.service
        self._service = service
        self._streamer = streamer
        self._topics = topics
        self._namespace = namespace
        self._authz = authz
        self._token = token
        self._acl_index = service.model.index("acl")
        self._namespaces: dict[str, bool] = {}
        self._as_of = AsOfStates(
            service.model.state, service.model.history, service.log, capacity=streamer.fold_capacity
        )
        self.position = service.log.last_index if start <= 0 else start - 1
        """The index of the last record read (replay starts right after it)."""

    def _authorized(self) -> bool:
        """Re-check the caller; re-resolve the token after any ACL write (policy edits)."""
        if not self._authz.still_valid():
            return False
        acl_index = self._service.model.index("acl")
        if acl_index != self._acl_index:
            self._acl_index = acl_index
            try:
                authz = authorizer_for(self._service, {}, token=self._token)
            except AllocsvcError:
                return False
            if not subscription_allowed(authz, self._topics, self._namespace):
                return False
            self._authz = authz
            self._namespaces.clear()
        return True

    def _visible(self, head: EventHead) -> bool:
        if self._namespace != "*" and head.namespace != self._namespace:
            return False
        if self._authz.is_management:
            return True
        allowed = self._namespaces.get(head.namespace)
        if allowed is None:
            allowed = self._namespaces[head.namespace] = self._authz.allow_namespace_op(head.namespace, READ_JOB)
        return allowed

    def _head(self, recorded: Recorded) -> EventHead | None:
        """The record's event if this subscriber gets it."""
        head = describe(recorded, self._service.model.state)
        if head is None or not self._topics.matches(head) or not self._visible(head):
            return None
        return head

    def _wanted(self, recorded: Recorded) -> bool:
        return self._head(recorded) is not None

    async def _line(self, recorded: Recorded) -> bytes | None:
        head = self._head(recorded)
        if head is None:
            return None
        lines = self._streamer.lines
        line = lines.get(recorded.index)
        if line is None:
            line = encode_line(recorded, head, await self._as_of.object_for(recorded))
            lines.put(recorded.index, line)
        return line

    async def body(self) -> AsyncIterator[bytes]:
        """The NDJSON body: ``{}``, then matching records from the log, then live ones."""
        self._streamer.subscriptions.add(self)
        try:
            async with aclosing(self._chunks()) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._streamer.subscriptions.discard(self)

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        model, log = self._service.model, self._service.log
        streamer = self._streamer
        interval = streamer.heartbeat
        yield b"{}\n"
        next_beat = trio.current_time() + interval
        while True:
            if not self._authorized():
                return
            upto = log.last_index
            if self.position < upto:
                records = await model.history.records_after(log, self.position, upto=upto, limit=READ_CHUNK)
                if not records:
                    raise RuntimeError(f"log has no record after {self.position} though its last index is {upto}")
                await self._as_of.prepare([r for r in records if self._wanted(r) and r.index not in streamer.lines])
                chunk: list[bytes] = []
                size = 0
                for recorded in records:
                    line = await self._line(recorded)
                    self.position = recorded.index
                    if line is None:
                        continue
                    chunk.append(line)
                    size += len(line)
                    if size >= FLUSH_BYTES:
                        streamer.lines_sent += len(chunk)
                        yield b"".join(chunk)
                        chunk, size = [], 0
                        if not self._authorized():
                            return
                if chunk:
                    streamer.lines_sent += len(chunk)
                    yield b"".join(chunk)
            else:
                with trio.move_on_at(next_beat):
                    await model.hub.wait((LOG_KEY, ACL_KEY))
            now = trio.current_time()
            if now >= next_beat:
                if not self._authorized():
                    return
                yield b"{}\n"
                while next_beat <= now:
                    next_beat += interval


class EventStreamer:
    """The event stream of one service: shared line cache, heartbeat interval, open subscriptions."""

    def __init__(
        self, service: Service, *, heartbeat: float = HEARTBEAT_INTERVAL, fold_capacity: int = FOLD_CAPACITY
    ) -> None:
        self.service = service
        self.heartbeat = heartbeat
        self.fold_capacity = fold_capacity
        self.lines = LineCache()
        self.subscriptions: set[Subscription] = set()
        self.lines_sent = 0

    def statistics(self) -> EventStreamStatistics:
        """Open subscriptions, their positions and the lines sent so far."""
        subs = list(self.subscriptions)
        return EventStreamStatistics(len(subs), tuple(sorted(s.position for s in subs)), self.lines_sent)


def event_stream_routes(service: Service) -> Blueprint:
    """``/v1/event/stream`` bound to one service; the streamer is ``app.extensions[EXTENSION]``."""
    bp = Blueprint("event_stream", __name__)
    streamer = EventStreamer(service)
    bp.record_once(lambda state: state.app.extensions.__setitem__(EXTENSION, streamer))

    @bp.route("/v1/event/stream", methods=["GET", "PUT", "POST", "DELETE", "PATCH"])
    async def event_stream() -> Response:
        args = request.args
        start = parse_start_index(args.get("index", ""))
        topics = Topics.parse(args.getlist("topic") if "topic" in args else None)
        opts = parse_list_options(args)
        token = request_token(request.headers)
        authz = authorizer_for(service, request.headers)
        if not subscription_allowed(authz, topics, opts.namespace):
            raise PermissionDeniedError()
        subscription = Subscription(
            streamer, topics=topics, namespace=opts.namespace, authz=authz, token=token, start=start
        )
        response = Response(
            subscription.body(), status=200, content_type="application/json", headers={"Cache-Control": "no-cache"}
        )
        response.timeout = None
        return response

    return bp
