"""Seconds from a training worker writing its result to the model version being recorded in the registry,
with no browser attached: only the app's supervisor is there to notice. Three small runs; the worst counts.
Keys: collect_latency_s (target ≤ 3), collect_latency_median_s, runs.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RUNS = 3


def main() -> dict[str, float]:
    from backend.config import WarehouseConfig
    from backend.task_detection import Task
    from backend.training import job_files as jf
    from backend.warehouse.base import TableRef
    from backend.workspace import open_workspace

    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(WarehouseConfig("duckdb", str(Path(tmp) / "s.duckdb")), seed_demo=False, supervise=True)
        try:
            rng = np.random.default_rng(0)
            x = rng.normal(size=2000)
            ws.warehouse.ensure_schema("bench")
            table = TableRef("bench", "small")
            ws.warehouse.write_table(table, pd.DataFrame({"x": x, "z": rng.normal(size=2000),
                                                          "y": np.where(x > 0, "up", "down")}))
            for _ in range(RUNS):
                config = ws.train_config(table, "y", Task.BINARY, ["x", "z"], "roc_auc", 2, ensemble=False,
                                         estimators=("lgbm",))
                run_id = ws.jobs.start(config)
                status = Path(ws.registry.get_run(run_id).job_dir) / jf.STATUS
                finished_at = None
                while ws.registry.model_for_run(run_id) is None:
                    if finished_at is None and status.exists():
                        final = [s for s in jf.read_complete_lines(status) if s.get("state") == "SUCCEEDED"]
                        finished_at = final[0]["at"] if final else None
                    time.sleep(0.02)
                recorded = time.time()
                assert finished_at is not None, "the version was recorded before its result could be read"
                latencies.append(recorded - finished_at)
        finally:
            ws.close()
    return {"collect_latency_s": max(latencies), "collect_latency_median_s": statistics.median(latencies),
            "runs": float(RUNS)}


if __name__ == "__main__":
    print(json.dumps(main()))
