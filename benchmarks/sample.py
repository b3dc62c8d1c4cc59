"""A stratified 1M-row training sample from a 50M-row table, drawn in the embedded warehouse.

Keys: seconds, rows_written, peak_rss_mb (target ≤ 2048), class_share_error (largest gap between a class's
share in the sample and in the table), ratio_vs_reservoir (time / DuckDB's own reservoir sample written to
Parquet, unstratified, same run).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import measure_in_fresh_process

ROWS = int(os.environ.get("FLURRY_BENCH_ROWS", "50000000"))
SAMPLE = 1_000_000

GENERATE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute('SET enable_progress_bar = false')
con.execute('CREATE SCHEMA lab')
con.execute(f'''
CREATE TABLE lab.events AS
SELECT i AS id, random() AS x1, random() * 10 AS x2, (i % 17)::VARCHAR AS segment,
       CASE WHEN hash(i) % 1000 < 5 THEN 'fraud' WHEN hash(i) % 1000 < 105 THEN 'review' ELSE 'ok' END AS outcome
FROM range({int(sys.argv[2])}) t(i)''')
"""


def measure(db: str, what: str) -> dict[str, float]:
    from backend.warehouse.base import SampleSpec, TableRef
    from backend.warehouse.duckdb_warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(db)
    table = TableRef("lab", "events")
    out = Path(db).with_name(f"{what}.parquet")
    start = time.perf_counter()
    if what == "flurry":
        spec = SampleSpec(table, ("x1", "x2", "segment", "outcome"), "outcome", max_rows=SAMPLE, stratify=True)
        rows = wh.export_training_sample(spec, out).rows_written
    else:
        wh.execute(f"COPY (SELECT x1, x2, segment, outcome FROM {wh.qualify(table)} USING SAMPLE "
                   f"reservoir({SAMPLE} ROWS) REPEATABLE (1)) TO '{out}' (FORMAT parquet)")
        rows = SAMPLE
    seconds = time.perf_counter() - start
    shares = wh.query(f"SELECT outcome, count(*) / sum(count(*)) OVER () AS share FROM {wh.qualify(table)} "
                      "GROUP BY 1")
    sample = wh.query(f"SELECT outcome, count(*) / sum(count(*)) OVER () AS share FROM read_parquet('{out}') "
                      "GROUP BY 1")
    gap = shares.merge(sample, on="outcome", suffixes=("_t", "_s"))
    wh.close()
    return {"seconds": seconds, "rows": rows, "share_error": float((gap.share_t - gap.share_s).abs().max()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sample_bench.duckdb"
        subprocess.run([sys.executable, "-c", GENERATE, str(db), str(ROWS)], check=True)
        reservoir = measure_in_fresh_process("benchmarks.sample", db, "reservoir")
        flurry = measure_in_fresh_process("benchmarks.sample", db, "flurry")
    return {"table_rows": ROWS, "rows_written": flurry["rows"], "seconds": flurry["seconds"],
            "peak_rss_mb": flurry["peak_rss_mb"], "class_share_error": flurry["share_error"],
            "ratio_vs_reservoir": flurry["seconds"] / reservoir["seconds"],
            "reservoir_peak_rss_mb": reservoir["peak_rss_mb"]}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(main()))
