"""The optional PNG of a simulation run (``allocsvc simulate --plot PATH``).

Owns ``write_plot``: allocations by ClientStatus over simulated time, committed events per
simulated second, and blocking-query notification latency. matplotlib is an optional extra
(``pip install 'allocsvc[sim]'``) and is imported only here, only when a plot is asked for.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from allocsvc.sim.report import Sample

STATUS_ORDER = ("pending", "running", "complete", "failed", "lost", "unknown")


class PlotUnavailableError(Exception):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Fail early, before a long run, when the plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailableError("--plot needs matplotlib: pip install 'allocsvc[sim]'") from exc


def write_plot(samples: Sequence[Sample], path: Path, title: str, crashes: Sequence[float] = ()) -> None:
    """Draw the three panels into a PNG at ``path``; ``crashes`` (simulated seconds) are marked."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.time / 60 for s in samples]
    fig, (statuses, events, latency) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    try:
        fig.suptitle(title)
        present = [s for s in STATUS_ORDER if any(sample.statuses.get(s) for sample in samples)]
        for status in present:
            statuses.plot(minutes, [sample.statuses.get(status, 0) for sample in samples], label=status)
        statuses.set_ylabel("allocations")
        statuses.set_title("Allocations by ClientStatus")
        if present:
            statuses.legend(loc="upper left")

        rates = [0.0]
        for before, after in itertools.pairwise(samples):
            span = after.time - before.time
            rates.append((after.events - before.events) / span if span > 0 else 0.0)
        events.plot(minutes, rates[: len(minutes)], color="tab:purple")
        events.set_ylabel("events / simulated s")
        events.set_title("Committed events per second")

        p50 = [s.latency_p50_ms for s in samples]
        top = [s.latency_max_ms for s in samples]
        latency.plot(minutes, [v if v is not None else float("nan") for v in p50], label="p50", marker="o", linestyle="")
        latency.plot(minutes, [v if v is not None else float("nan") for v in top], label="max", marker=".", linestyle="")
        latency.set_ylabel("simulated ms")
        latency.set_xlabel("simulated minutes")
        latency.set_title("Blocking-query notification latency")
        latency.legend(loc="upper left")

        for at in crashes:
            for axis in (statuses, events, latency):
                axis.axvline(at / 60, color="grey", linestyle="--", linewidth=0.8)
        if crashes:
            statuses.plot([], [], color="grey", linestyle="--", linewidth=0.8, label="agent crash")
            statuses.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
