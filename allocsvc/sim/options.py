"""What a simulation run is asked to do: workload sizes, rates and the faults to inject.

Owns ``SimOptions`` and ``FaultOptions``. They are plain data: the CLI builds them from flags,
tests build them directly, and the report echoes them (everything that changes the event log is
here, so two runs with equal options and seed produce identical logs).
"""

from __future__ import annotations

import msgspec


class FaultOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Faults to inject; every default is "off"."""

    start_failures: float = 0.0
    """Probability that one driver start fails (a recoverable ``Driver Failure``)."""
    crashes_per_hour: float = 0.0
    """Rate at which a running task crashes (exit 137, SIGKILL), per task per simulated hour."""
    slow_disk: float = 0.0
    """Seconds every log commit takes (group commit: appends arriving meanwhile share it)."""
    agent_crashes: int = 0
    """Agent crashes in the middle of a log write, each followed by recovery on the same log."""
    disconnects: float = 0.0
    """Probability that a blocking-query client hangs up before its answer arrives."""

    @property
    def any(self) -> bool:
        """Whether any fault is switched on."""
        return bool(
            self.start_failures or self.crashes_per_hour or self.slow_disk or self.agent_crashes or self.disconnects
        )


CHAOS = FaultOptions(start_failures=0.05, crashes_per_hour=1.0, slow_disk=0.005, agent_crashes=2, disconnects=0.2)
"""The fault mix ``--chaos`` switches on."""


class SimOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulation run."""

    seed: int = 1
    allocs: int = 200
    """Allocations placed by the initial job registrations (later scale changes and stops add more)."""
    duration: float = 600.0
    """Simulated seconds the workload runs."""
    storage: str = "memory"
    """``memory`` or ``sqlite`` (the data dir itself is not an option: it does not change the log)."""
    watchers: int = 8
    """Concurrent blocking-query clients."""
    ops_per_minute: float = 30.0
    """User stop/signal/restart calls per simulated minute."""
    scale_per_minute: float = 1.0
    """Job scale changes (and occasional deregistrations) per simulated minute."""
    check_every: float = 60.0
    """Simulated seconds between full replay-versus-live checks (per-commit checks always run)."""
    faults: FaultOptions = FaultOptions()
