"""Error types shared by every layer.

Each error carries the HTTP status it suggests (``status_hint``) and the exact message body
Nomad would send, so the domain never imports HTTP and the HTTP layer never invents text.
"""

from __future__ import annotations


class AllocsvcError(Exception):
    """Root of every error allocsvc raises on purpose."""

    status_hint: int = 500

    def __init__(self, message: str, *, status_hint: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_hint is not None:
            self.status_hint = status_hint


class BadRequestError(AllocsvcError):
    """A client mistake in parameters or body (400)."""

    status_hint = 400


class NotFoundError(AllocsvcError):
    """The addressed object does not exist, or the caller may not learn that it does (404)."""

    status_hint = 404


class PermissionDeniedError(AllocsvcError):
    """The caller's token may not do this (403 ``Permission denied``)."""

    status_hint = 403

    def __init__(self, message: str = "Permission denied") -> None:
        super().__init__(message)


class MethodNotAllowedError(AllocsvcError):
    """The route exists but not for this method (405 ``Invalid method``)."""

    status_hint = 405

    def __init__(self) -> None:
        super().__init__("Invalid method")


class LifecycleError(AllocsvcError):
    """A command is not valid for the allocation's current state (raised by ``decide``)."""

    status_hint = 400


class VersionConflictError(AllocsvcError):
    """An append's expected stream version did not match the log (optimistic concurrency)."""

    status_hint = 409


class LogCorruptError(AllocsvcError):
    """The durable log could not be read back; ``position`` names the first bad record."""

    def __init__(self, message: str, *, position: int) -> None:
        super().__init__(f"event log corrupt at index {position}: {message}")
        self.position = position


class ActorStoppedError(AllocsvcError):
    """An ask reached an actor that has stopped or is shutting down (503)."""

    status_hint = 503


class DriverError(AllocsvcError):
    """A task driver failed to start, signal or exec a task."""

    def __init__(self, message: str, *, recoverable: bool = True) -> None:
        super().__init__(message)
        self.recoverable = recoverable
