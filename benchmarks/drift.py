"""Drift report for a 10M-row scored table × 20 columns (10 numbers, 10 texts) against its baseline, computed
in the embedded warehouse, divided by DuckDB's own SUMMARIZE of that table in the same process.

The drift side runs in a fresh process so its peak RSS is its own (the table is built first, in another).
Keys: ratio_vs_summarize (target ≤ 1.0), peak_rss_mb (target ≤ 1024), drift_s, summarize_s, rows; and the
same two with the app's DuckDB memory setting at 512MB (DuckDB otherwise keeps scanned blocks cached up to 80%
of RAM, which is most of the peak).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 10_000_000
NUMBERS, TEXTS = 10, 10
TABLE = ("bench", "scored")
LIMITED = "512MB"  # FLURRY_DUCKDB_MEMORY for the second measurement


def build(db: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    numbers = ", ".join(f"random() * {i + 1} + (CASE WHEN random() < 0.02 THEN NULL ELSE 0 END) AS n{i}"
                        for i in range(NUMBERS))
    texts = ", ".join(f"'v' || CAST(floor(random() * {5 + 5 * i}) AS INTEGER) AS t{i}" for i in range(TEXTS))
    con.execute("CREATE SCHEMA IF NOT EXISTS bench")
    con.execute(f"CREATE TABLE bench.scored AS SELECT {numbers}, {texts}, random() AS prediction FROM range({ROWS})")
    # the baseline, as training would have made it: from a sample, here and not in the measured process
    from backend.monitoring import baseline_of

    sample = con.execute("SELECT * FROM bench.scored USING SAMPLE 100000 ROWS").df()
    features = [c for c in sample.columns if c != "prediction"]
    baseline = baseline_of(sample, features, sample["prediction"], "a sample")
    db.with_suffix(".baseline.json").write_text(json.dumps(baseline.to_dict()))
    con.close()


def measure(db: Path) -> dict[str, float]:
    from backend.monitoring import MonitoringBaseline, drift_report
    from backend.warehouse.base import TableRef
    from backend.warehouse.duckdb_warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(db)
    table = TableRef(*TABLE)
    baseline = MonitoringBaseline.from_dict(json.loads(db.with_suffix(".baseline.json").read_text()))
    start = time.perf_counter()
    report = drift_report(wh, table, baseline, "prediction")
    drift_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before SUMMARIZE adds its own
    assert report.rows == ROWS and len(report.columns) == NUMBERS + TEXTS
    start = time.perf_counter()
    wh.query(f"SUMMARIZE {wh.qualify(table)}")
    summarize_s = time.perf_counter() - start
    wh.close()
    return {"drift_s": drift_s, "summarize_s": summarize_s, "peak_rss_mb": peak_mb}


def main() -> dict[str, float]:
    import os

    from benchmarks._harness import measure_in_fresh_process

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "drift.duckdb"
        # built in a child too: a process's peak RSS survives fork and exec, so a parent that built the table
        # would hand its own peak to the measuring child
        subprocess.run([sys.executable, "-m", "benchmarks.drift", "--build", str(db)], check=True)
        measured = measure_in_fresh_process("benchmarks.drift", db, "drift")
        os.environ["FLURRY_DUCKDB_MEMORY"] = LIMITED  # the same, with the app's DuckDB memory setting
        limited = measure_in_fresh_process("benchmarks.drift", db, "drift")
    return {"ratio_vs_summarize": measured["drift_s"] / measured["summarize_s"], "peak_rss_mb": measured["peak_rss_mb"],
            "drift_s": measured["drift_s"], "summarize_s": measured["summarize_s"], "rows": float(ROWS),
            f"ratio_at_{LIMITED}": limited["drift_s"] / limited["summarize_s"],
            f"peak_rss_mb_at_{LIMITED}": limited["peak_rss_mb"]}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]))))
    elif len(sys.argv) > 2 and sys.argv[1] == "--build":
        build(Path(sys.argv[2]))
    else:
        print(json.dumps(main()))
