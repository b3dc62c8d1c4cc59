"""The Target step's data checks on a wide table, against pandas' own pairwise correlation of the same columns.

A table of 1,000 numeric columns × 5,000 rows (5% of values missing, two planted twins) in the embedded
warehouse; Flurry's whole check pass (target, leakage, near-duplicates, columns) is timed against
`DataFrame.corr(min_periods=30)` on the same numbers, which is what the near-duplicate check used to run.
Keys: checks_s, pandas_corr_s, ratio_vs_pandas_corr (target ≤ 1.5: the whole pass, a small tree per column
included, within half again the one correlation it used to run besides), twins_found (2), columns, rows.
FLURRY_BENCH_COLUMNS / FLURRY_BENCH_ROWS resize it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = int(os.environ.get("FLURRY_BENCH_COLUMNS", "1000"))
ROWS = int(os.environ.get("FLURRY_BENCH_ROWS", "5000"))


def wide_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(ROWS, COLUMNS))
    values[rng.random(values.shape) < 0.05] = np.nan
    frame = pd.DataFrame(values, columns=[f"m{i}" for i in range(COLUMNS)])
    frame["m1_copy"] = frame["m1"] * 100 + 3  # the same measure in other units
    frame["m2_1"] = frame["m2"]  # what an upload calls a second "m2" header
    return frame.assign(outcome=np.where(rng.random(ROWS) < 0.3, "yes", "no"))


def main() -> dict[str, float]:
    from backend.config import WarehouseConfig
    from backend.task_detection import Task
    from backend.warehouse.base import TableRef
    from backend.workspace import open_workspace

    frame = wide_frame()
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(WarehouseConfig("duckdb", str(Path(tmp) / "wide.duckdb")), seed_demo=False)
        table = TableRef("bench", "wide")
        ws.warehouse.ensure_schema(table.schema)
        ws.warehouse.write_table(table, frame)
        features = [c for c in frame.columns if c != "outcome"]
        profile = ws.warehouse.profile(table)
        start = time.perf_counter()
        found = ws.checks(table, "outcome", Task.BINARY, features, profile)
        checks_s = time.perf_counter() - start
        ws.close()
    numbers = frame[features]
    start = time.perf_counter()
    numbers.corr(min_periods=30)
    pandas_s = time.perf_counter() - start
    twins = {f.column for f in found if f.check == "near_duplicate"}
    return {"checks_s": checks_s, "pandas_corr_s": pandas_s, "ratio_vs_pandas_corr": checks_s / pandas_s,
            "twins_found": len(twins & {"m1_copy", "m2_1"}), "columns": len(features), "rows": ROWS}


if __name__ == "__main__":
    print(json.dumps(main()))
