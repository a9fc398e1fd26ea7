"""design/lifecycle.md is generated from the lifecycle table and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lifecycle_doc_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_lifecycle.py"), "--check"], check=False, cwd=ROOT
    )
    assert result.returncode == 0, "run scripts/render_lifecycle.py to regenerate design/lifecycle.md"
