"""Shared by the benchmarks: run one side of a comparison in a fresh process, so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def measure_in_fresh_process(module: str, db: Path, what: str) -> dict[str, float]:
    """Run `python -m <module> --measure <db> <what>` and return the JSON object it prints last."""
    done = subprocess.run([sys.executable, "-m", module, "--measure", str(db), what],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
