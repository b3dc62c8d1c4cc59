"""The files a training job exchanges with the app: the app owns the database, the worker owns none.

job_dir/
  config.json      written by the app before the worker starts
  data.parquet     the training sample, exported by the app from the warehouse
  flaml.jsonl      FLAML's per-trial log (one JSON line per trial, flushed as it happens)
  status.jsonl     the worker's state changes, appended one JSON line at a time
  bundle.pkl       the pickled ModelBundle (written atomically, then its sha256 recorded in result.json)
  holdout.parquet  a holdout sample for evaluation and explanations
  result.json      metrics, leaderboard, importance and the artifacts' checksums; written last
  fingerprint.json what data the run saw: table, rows, sample spec and the sample's sha256
  clock.json       when the user's wait began (wall clock) and the budget: the worker's deadline
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG = "config.json"
DATA = "data.parquet"
FLAML_LOG = "flaml.jsonl"
STATUS = "status.jsonl"
BUNDLE = "bundle.pkl"
HOLDOUT = "holdout.parquet"
RESULT = "result.json"
FINGERPRINT = "fingerprint.json"
CLOCK = "clock.json"


def write_atomic(path: Path, content: bytes) -> None:
    """Write a file so readers see either nothing or the whole content."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, say: no half file left behind for anyone to mistake for a whole one
        tmp.unlink(missing_ok=True)
        raise


def append_status(job_dir: Path, record: dict[str, Any]) -> None:
    with open(job_dir / STATUS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def read_complete_lines(path: Path) -> list[dict[str, Any]]:
    """JSON records from a file another process is appending to; a half-written last line is skipped."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    records = []
    for line in text.split("\n")[:-1]:  # the part after the last newline may still be being written
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# What the app needs after the worker ends (verifying the files, recording the version): the worker is done
# this long before the run's budget is.
COLLECT_MARGIN_S = 0.5


def write_clock(job_dir: Path, started_epoch: float, budget_s: float) -> None:
    """The instant the user's wait for this run began and the budget it has, for the worker to keep."""
    write_atomic(job_dir / CLOCK, json.dumps({"started": started_epoch, "budget_s": budget_s}).encode())


def read_deadline(job_dir: Path, now_epoch: float, now_monotonic: float) -> float | None:
    """The worker's deadline on its monotonic clock: the run's budget from when the user's wait began, less what
    the app needs to collect the result. None when the job has no clock (a run kept as it is, or an old job)."""
    try:
        clock = json.loads((job_dir / CLOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    left = float(clock["started"]) + float(clock["budget_s"]) - now_epoch - COLLECT_MARGIN_S
    return now_monotonic + left
