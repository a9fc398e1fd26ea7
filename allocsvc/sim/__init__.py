"""Deterministic simulation of a busy agent (``allocsvc simulate``).

Layout: ``options`` (what to run), ``workload`` (seeded jobs and user operations), ``faults``
(the log wrapper with slow disk and crash points, the faulty mock driver), ``ops`` (operations
through the HTTP app), ``watchers`` (blocking-query clients), ``invariants`` (the checker),
``harness`` (the MockClock run and its incarnations), ``report`` and ``plot`` (output).
"""

from allocsvc.sim.harness import SimHooks, SimResult, run_simulation
from allocsvc.sim.invariants import Violation
from allocsvc.sim.options import CHAOS, FaultOptions, SimOptions

__all__ = ["CHAOS", "FaultOptions", "SimHooks", "SimOptions", "SimResult", "Violation", "run_simulation"]
