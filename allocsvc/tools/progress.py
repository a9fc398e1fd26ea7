"""A carriage-return progress counter for long tool runs, shown only when stderr is a terminal.

Owns ``Progress``. Tools call ``advance`` per record; the line is redrawn at most ten times a
second, so the cost per record is one counter increment and one comparison.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

_CHECK_EVERY = 4096


class Progress:
    """``label  412,000/1,000,000  41%  310,000/s`` on one self-overwriting stderr line."""

    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self.done = 0
        self._next_check = _CHECK_EVERY
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items; redraw if a tenth of a second has passed."""
        self.done += count
        if self.enabled and self.done >= self._next_check:
            self._next_check = self.done + _CHECK_EVERY
            now = time.monotonic()
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = f"{self.done / elapsed:,.0f}/s"
        if self.total > 0:
            pct = min(100, self.done * 100 // self.total)
            text = f"{self.label}  {self.done:,}/{self.total:,}  {pct:3d}%  {rate}"
        else:
            text = f"{self.label}  {self.done:,}  {rate}"
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the line (the tool prints its own result)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
