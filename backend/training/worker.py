"""The training worker: `python -m backend.training.worker JOB_DIR`.

Runs outside the Streamlit process and never opens the warehouse (the app holds the DuckDB file); it
reads its sample from Parquet and leaves its results as files in the job directory for the app to collect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from backend.errors import FlurryError, no_room, storage_full
from backend.training import job_files as jf
from backend.training.config import TrainConfig
from backend.training.dispatch import train_run
from backend.training.results import result_summary

logger = logging.getLogger("flurry.worker")


def run_job(job_dir: Path, *, finalize: bool = False) -> int:
    """Train one job; return the process exit code (0 on success). With `finalize`, retrain the best
    configuration an interrupted search left in its log instead of searching."""
    jf.append_status(job_dir, {"state": "RUNNING", "pid": os.getpid(), "at": time.time(), "finalize": finalize})
    try:
        config = TrainConfig.from_dict(json.loads((job_dir / jf.CONFIG).read_text(encoding="utf-8")))
        frame = pd.read_parquet(job_dir / jf.DATA)
        deadline = None if finalize else jf.read_deadline(job_dir, time.time(), time.monotonic())
        result = train_run(frame, config, job_dir / jf.FLAML_LOG, from_log=finalize, deadline=deadline)
        fingerprint = job_dir / jf.FINGERPRINT
        if fingerprint.exists():
            result.bundle.fingerprint = json.loads(fingerprint.read_text(encoding="utf-8"))
        bundle_bytes = result.bundle.to_bytes()
        jf.write_atomic(job_dir / jf.BUNDLE, bundle_bytes)
        jf.write_atomic(job_dir / jf.HOLDOUT, result.holdout_parquet)
        jf.write_atomic(job_dir / jf.RESULT, json.dumps(result_summary(result, bundle_bytes)).encode())
        jf.append_status(job_dir, {"state": "SUCCEEDED", "at": time.time(), "stopped_early": finalize})
        return 0
    except FlurryError as exc:
        jf.append_status(job_dir, {"state": "FAILED", "message": str(exc), "at": time.time()})
        return 1
    except Exception as exc:  # the app shows the message; the traceback goes to the worker's log
        if no_room(exc):
            message = str(storage_full("the training's results", job_dir))
        else:
            logger.error("training failed:\n%s", traceback.format_exc())
            message = f"Training failed: {type(exc).__name__}: {exc}"[:500]
        # on a full disk not even a status line may fit: the app then finds the worker gone and says so
        with contextlib.suppress(OSError):
            jf.append_status(job_dir, {"state": "FAILED", "message": message, "at": time.time()})
        return 1


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--finalize"):
        sys.stderr.write("usage: python -m backend.training.worker JOB_DIR [--finalize]\n")
        return 2
    return run_job(Path(argv[1]), finalize=len(argv) == 3)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
