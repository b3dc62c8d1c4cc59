"""Seconds from pressing Start to the first leaderboard entry, on the 54k-row diamonds table.

Flurry's path: export the sample from the warehouse, start the worker process, FLAML's first trial, and the
event persisted in the warehouse. Peer: a fresh Python process running raw FLAML on the same Parquet file,
timed from process start to its first logged trial. Keys: seconds_to_first_model (target ≤ 5),
raw_flaml_seconds, ratio_vs_raw_flaml.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend.config import WarehouseConfig
from backend.warehouse.base import TableRef
from backend.workspace import open_workspace
from benchmarks._harness import default_config

TABLE = TableRef("demo", "diamond_prices")

RAW = """
import sys, time, threading, os
start = time.perf_counter()
import pandas as pd
from flaml import AutoML
frame = pd.read_parquet(sys.argv[1])
y = frame.pop("price")
log = sys.argv[2]
def fit():
    AutoML().fit(frame, y, task="regression", metric="r2", time_budget=20, log_file_name=log, log_type="all",
                 verbose=0)
threading.Thread(target=fit, daemon=True).start()
while not (os.path.exists(log) and open(log).read().count("validation_loss")):
    time.sleep(0.02)
print(time.perf_counter() - start)
os._exit(0)
"""


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(WarehouseConfig("duckdb", str(Path(tmp) / "first_model.duckdb")))
        config = default_config(ws, TABLE, "price", 60)
        start = time.perf_counter()
        run_id = ws.jobs.start(config)
        while not ws.jobs.progress(run_id).trials:
            time.sleep(0.02)
        flurry = time.perf_counter() - start
        ws.jobs.cancel(run_id)
        data = Path(tmp) / "diamonds.parquet"
        ws.warehouse.read_columns(TABLE, [name for name, _ in config.features] + ["price"]).to_parquet(data)
        ws.close()
        raw = float(subprocess.run([sys.executable, "-c", RAW, str(data), str(Path(tmp) / "raw.log")],
                                   capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    return {"seconds_to_first_model": flurry, "raw_flaml_seconds": raw, "ratio_vs_raw_flaml": flurry / raw}


if __name__ == "__main__":
    print(json.dumps(main()))
