"""One exec session over an accepted WebSocket: Nomad's frames both ways, lifecycle and audit.

Owns ``ExecStream`` and the frame encoders. Server frames are Nomad's, byte for byte:
``{"stdout":{"data":"<b64>"}}``, ``{"stderr":{...}}``, ``{"stdout":{"close":true}}`` at EOF and
finally ``{"exited":true,"result":{"exit_code":N}}`` (``exit_code`` omitted when 0), then a normal
close. Client frames are decoded as gorilla's ``ReadJSON`` would (stdin data/close, tty_size,
anything else ignored as a heartbeat); a frame that does not decode ends the session with 1011 and
Go's error text. Output is sent as it comes and each send is awaited (backpressure). The session
ends, killing the process group, when the client goes away, when the task stops or restarts
(its ``StartedAt`` changes) and, with ACLs on, when the caller's token stops being valid. Every
session that got this far is recorded with ``RecordExecSession`` before the exit frame is sent.
Created by ``http/exec.py`` once a request passed validation.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import trio

from allocsvc.domain.commands import RecordExecSession
from allocsvc.domain.model import TaskStatus
from allocsvc.drivers.exec_session import (
    ExecSession,
    ExecSpec,
    ExecStartError,
    NotATerminalError,
    open_exec_session,
)
from allocsvc.errors import AllocsvcError
from allocsvc.http.auth import Authorizer
from allocsvc.http.gojson import (
    GoJSONError,
    decode_first,
    go_bool,
    go_bytes,
    go_int,
    go_slice,
    go_string,
    go_struct,
)
from allocsvc.views.blocking import ACL_WATCH_KEY
from allocsvc.views.watch import wait_any

if TYPE_CHECKING:
    from allocsvc.service import Service

logger = logging.getLogger("allocsvc.exec")

NORMAL_CLOSURE, POLICY_VIOLATION, INTERNAL_ERROR = 1000, 1008, 1011
MAX_CLOSE_REASON = 123
"""A close frame's reason is at most 123 bytes (RFC 6455 §5.5); longer reasons are truncated."""

AUDIT_TIMEOUT = 10.0
"""How long recording the audit event may take before the session gives up on it."""

CLIENT_FRAME = go_struct(
    "proto.ExecTaskStreamingRequest",
    {
        "setup": go_struct("proto.ExecTaskStreamingRequest_Setup", {"command": go_slice(go_string()), "tty": go_bool()}),
        "stdin": go_struct("proto.ExecTaskStreamingIOOperation", {"data": go_bytes(), "close": go_bool()}),
        "tty_size": go_struct("proto.ExecTaskStreamingRequest_TerminalSize", {"height": go_int(32), "width": go_int(32)}),
    },
)
"""What Nomad decodes each client frame into (``drivers.ExecTaskStreamingRequestMsg``)."""


class ExecTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A validated exec request: where, what, and who asked."""

    alloc_id: str
    task: str
    started_at: str
    accessor_id: str
    spec: ExecSpec


class Socket(Protocol):
    """The part of Quart's ``websocket`` an exec stream uses."""

    async def receive(self) -> str | bytes:
        """The next client message."""
        ...

    async def send(self, data: str | bytes) -> None:
        """Send one text (str) or binary (bytes) message."""
        ...

    async def close(self, code: int, reason: str = "") -> None:
        """Send a close frame."""
        ...


# --- frames -------------------------------------------------------------------------------------


def data_frame(stream: str, data: bytes) -> str:
    """``{"stdout":{"data":"<b64>"}}`` (or stderr)."""
    return '{"' + stream + '":{"data":"' + base64.b64encode(data).decode("ascii") + '"}}'


def close_frame(stream: str) -> str:
    """``{"stdout":{"close":true}}`` (or stderr): the stream reached EOF."""
    return '{"' + stream + '":{"close":true}}'


def exit_frame(exit_code: int) -> str:
    """``{"exited":true,"result":{...}}``; Nomad's omitempty drops ``exit_code`` when it is 0."""
    if exit_code == 0:
        return '{"exited":true,"result":{}}'
    return '{"exited":true,"result":{"exit_code":' + str(exit_code) + "}}"


def close_reason(message: str) -> str:
    """A close reason that fits a close frame (UTF-8 safe truncation)."""
    raw = message.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON:
        return message
    return raw[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


# --- the session --------------------------------------------------------------------------------


class ExecStream:
    """Runs one exec session to its end; ``serve`` returns when it is over."""

    def __init__(self, service: Service, socket: Socket, target: ExecTarget, authz: Authorizer) -> None:
        self._service = service
        self._socket = socket
        self._target = target
        self._authz = authz
        self._send_lock = trio.Lock()
        self._session: ExecSession | None = None
        self._scope: trio.CancelScope | None = None
        self._input_stopped = False
        self._recorded = False
        self.started_at = service.runtime.clock.now_ns()
        #: Why the session ended early (the audit record's ``error``); empty for a normal exit.
        self.error = ""
        #: The close frame sent after the exit frame (or instead of it when aborted).
        self.close_code, self.close_text = NORMAL_CLOSURE, ""

    async def serve(self) -> None:
        """Start the process, pump frames until it exits, record the session, close the socket."""
        target = self._target
        logger.info(
            "exec session starting: alloc %s task %s command %s tty %s accessor %s",
            target.alloc_id, target.task, list(target.spec.argv), target.spec.tty, target.accessor_id,
        )  # fmt: skip
        try:
            try:
                self._session = await open_exec_session(target.spec)
            except ExecStartError as exc:
                self.error = exc.message
                await self._record(-1)
                await self._socket.close(INTERNAL_ERROR, close_reason(exc.message))
                return
            exit_code = await self._run(self._session)
            if exit_code is None:
                await self._session.aclose()
                await self._record(self._session.exit_code)
                await self._socket.close(self.close_code, close_reason(self.close_text))
                return
            await self._record(exit_code)
            await self._send(exit_frame(exit_code))
            await self._socket.close(self.close_code, close_reason(self.close_text))
        finally:
            with trio.CancelScope(shield=True):
                if self._session is not None:
                    await self._session.aclose()
                if not self._recorded:
                    self.error = self.error or "client disconnected"
                    await self._record(self._session.exit_code if self._session is not None else None)
            logger.info("exec session ended: alloc %s task %s error %r", target.alloc_id, target.task, self.error)

    async def _run(self, session: ExecSession) -> int | None:
        """Pump until the process exits (its exit code) or the session is aborted (None)."""
        exit_code: int | None = None
        async with trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            nursery.start_soon(self._read_input, session)
            nursery.start_soon(self._watch, session)
            exit_code = await session.run(self)
            nursery.cancel_scope.cancel()
        return exit_code

    def _abort(self, code: int, reason: str, error: str) -> None:
        self.close_code, self.close_text, self.error = code, reason, error
        assert self._scope is not None
        self._scope.cancel()

    # --- output sink (ExecSession.run calls these) --------------------------------------------

    async def output(self, stream: str, data: bytes) -> None:
        """Send one output chunk as a data frame."""
        await self._send(data_frame(stream, data))

    async def closed(self, stream: str) -> None:
        """Send the stream's close frame."""
        await self._send(close_frame(stream))

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self._socket.send(text)

    # --- input --------------------------------------------------------------------------------

    async def _read_input(self, session: ExecSession) -> None:
        """Apply client frames like Nomad's ``handleStdin``; keep draining after input stops."""
        while True:
            message = await self._socket.receive()
            if self._input_stopped:
                continue
            try:
                frame: dict[str, Any] = decode_first(message, CLIENT_FRAME) or {}
            except GoJSONError as exc:
                self._abort(INTERNAL_ERROR, exc.message, exc.message)
                return
            stdin, size = frame.get("stdin"), frame.get("tty_size")
            if stdin is not None and stdin.get("data"):
                await session.write_stdin(stdin["data"])
            elif stdin is not None and stdin.get("close"):
                await session.close_stdin()
            elif size is not None:
                try:
                    session.resize(size.get("height", 0), size.get("width", 0))
                except NotATerminalError as exc:
                    # Nomad stops reading input; the error closes the socket after the exit frame.
                    self._input_stopped = True
                    self.close_code, self.close_text, self.error = INTERNAL_ERROR, exc.message, exc.message

    # --- lifecycle ----------------------------------------------------------------------------

    def _task_gone(self) -> str:
        """Why the session must end now, or ``""``."""
        agg = self._service.model.alloc(self._target.alloc_id)
        state = (agg.alloc.TaskStates or {}).get(self._target.task) if agg is not None else None
        if state is None or state.State != TaskStatus.RUNNING:
            return "task stopped"
        if state.StartedAt != self._target.started_at:
            return "task restarted"
        return ""

    async def _watch(self, session: ExecSession) -> None:
        """End the session when the task stops or restarts, or the caller's token is revoked."""
        hub = self._service.model.hub
        acl = self._service.config.acl_enabled
        while True:
            events = [hub.event_for(f"alloc:{self._target.alloc_id}")]
            if acl:
                events.append(hub.event_for(ACL_WATCH_KEY))
            if acl and not self._authz.still_valid():
                self._abort(POLICY_VIOLATION, "Permission denied", "token no longer valid")
                return
            reason = self._task_gone()
            if reason:
                self.error = reason
                session.kill()
                return
            await wait_any(events)

    # --- audit --------------------------------------------------------------------------------

    async def _record(self, exit_code: int | None) -> None:
        """Append ``ExecSessionRecorded`` to the allocation's stream (once; best effort)."""
        if self._recorded:
            return
        self._recorded = True
        target = self._target
        command = RecordExecSession(
            task=target.task,
            command=target.spec.argv,
            tty=target.spec.tty,
            accessor_id=target.accessor_id,
            exit_code=-1 if exit_code is None else exit_code,
            started_at=self.started_at,
            error=self.error,
        )
        with trio.CancelScope(shield=True), trio.move_on_after(AUDIT_TIMEOUT):
            try:
                await self._service.supervisor.ask(target.alloc_id, command)
            except AllocsvcError as exc:
                logger.warning("could not record exec session into %s: %s", target.alloc_id, exc.message)
