"""Nomad's restart policy decision (client ``restarts.RestartTracker.GetState``), as a pure function.

Owns: default policies per job type and ``decide_after_exit``. The caller passes ``jitter`` in
[0, 1) so the function stays deterministic; Nomad draws it from ``rand``.
"""

from __future__ import annotations

import msgspec

from allocsvc.domain.model import RestartPolicy
from allocsvc.gocompat import HOUR, MINUTE, SECOND, format_duration

SERVICE_DEFAULT = RestartPolicy(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail")
BATCH_DEFAULT = RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail")

REASON_WITHIN_POLICY = "Restart within policy"
REASON_NO_RESTARTS = "Policy allows no restarts"
REASON_UNRECOVERABLE = "Error was unrecoverable"
REASON_DELAY = "Exceeded allowed attempts, applying a delay"


class Tracker(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Restart attempts counted inside the current interval window."""

    attempts: int = 0
    window_start: int = 0


class Restart(msgspec.Struct, frozen=True, kw_only=True):
    """Decision: restart after ``delay`` ns."""

    delay: int
    reason: str
    tracker: Tracker


class GiveUp(msgspec.Struct, frozen=True, kw_only=True):
    """Decision: do not restart; the task fails."""

    reason: str
    tracker: Tracker


class Finish(msgspec.Struct, frozen=True, kw_only=True):
    """Decision: the task completed successfully and stays dead, with no event."""

    tracker: Tracker


Decision = Restart | GiveUp | Finish


def default_policy(job_type: str) -> RestartPolicy:
    """Nomad's default restart policy for a job type."""
    return BATCH_DEFAULT if job_type in ("batch", "sysbatch") else SERVICE_DEFAULT


def restarts_on_success(job_type: str, lifecycle_hook: str, sidecar: bool) -> bool:
    """Whether a task that exited 0 restarts (Nomad ``shouldRestartOnSuccess``)."""
    if lifecycle_hook in ("prestart", "poststart"):
        return sidecar
    if lifecycle_hook == "poststop":
        return False
    return job_type not in ("batch", "sysbatch")


def decide_after_exit(
    policy: RestartPolicy,
    tracker: Tracker,
    *,
    now: int,
    exit_code: int,
    start_failed: bool,
    recoverable: bool,
    restart_on_success: bool,
    jitter: float,
) -> Decision:
    """Decide what follows a task exit or start failure (FACTS §6.5 order)."""
    if policy.attempts == 0 and not start_failed and exit_code == 0 and not restart_on_success:
        return Finish(tracker=tracker)
    if policy.attempts == 0:
        return GiveUp(reason=REASON_NO_RESTARTS, tracker=tracker)
    window_start = tracker.window_start
    attempts = tracker.attempts
    if window_start == 0 or now - window_start > policy.interval:
        window_start, attempts = now, 0
    attempts += 1
    updated = Tracker(attempts=attempts, window_start=window_start)
    if start_failed and not recoverable:
        return GiveUp(reason=REASON_UNRECOVERABLE, tracker=updated)
    if not start_failed and exit_code == 0 and not restart_on_success:
        return Finish(tracker=updated)
    if attempts > policy.attempts:
        if policy.mode == "delay":
            remaining = max(0, window_start + policy.interval - now)
            return Restart(delay=remaining, reason=REASON_DELAY, tracker=updated)
        return GiveUp(
            reason=(
                f"Exceeded allowed attempts {policy.attempts} in interval "
                f'{format_duration(policy.interval)} and mode is "{policy.mode}"'
            ),
            tracker=updated,
        )
    delay = policy.delay + int(policy.delay * 0.25 * jitter)
    return Restart(delay=delay, reason=REASON_WITHIN_POLICY, tracker=updated)
