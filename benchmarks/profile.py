"""Profiling a 10M-row × 20-column table in the embedded warehouse, against DuckDB's own SUMMARIZE.

Keys: ratio_vs_summarize (Flurry's full profile time / SUMMARIZE time; target ≤ 1.5), peak_rss_mb (target ≤ 1024),
profile_s, summarize_s, rows, columns.
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

ROWS = int(os.environ.get("FLURRY_BENCH_ROWS", "10000000"))

GENERATE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute('SET enable_progress_bar = false')
con.execute(f'''
CREATE TABLE bench.wide AS
SELECT
  i AS id,
  (i * 7919) % 1000 AS int_small,
  (i * 104729) % 1000000 AS int_big,
  CASE WHEN i % 10 = 0 THEN NULL ELSE hash(i) % 100000 / 100.0 END AS amount,
  random() AS r1, random() * 50 AS r2, CASE WHEN i % 3 = 0 THEN NULL ELSE random() END AS r3,
  (hash(i) % 997)::DOUBLE AS r4, sqrt(i) AS r5, (i % 13) * 1.5 AS r6,
  ['north', 'south', 'east', 'west'][1 + (i % 4)] AS region,
  'plan_' || (hash(i) % 20)::VARCHAR AS plan,
  CASE WHEN i % 5 = 0 THEN NULL ELSE ['a', 'b', 'c'][1 + (i % 3)] END AS grade,
  'customer_' || i::VARCHAR AS customer_key,
  (hash(i) % 50000)::VARCHAR AS code_text,
  i % 2 = 0 AS flag,
  DATE '2020-01-01' + (i % 1500)::INTEGER AS day,
  CASE WHEN i % 100 = 0 THEN 'n/a' ELSE (i % 500)::VARCHAR END AS mixed,
  'constant' AS constant,
  CASE WHEN i % 50 = 0 THEN i ELSE NULL END AS mostly_null
FROM range({int(sys.argv[2])}) t(i)''')
con.close()
"""


def measure(db: str, what: str) -> dict[str, float]:
    """Run one side in this (fresh) process, so its peak RSS is its own."""
    from backend.warehouse.base import TableRef
    from backend.warehouse.duckdb_warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(db)
    table = TableRef("bench", "wide")
    start = time.perf_counter()
    if what == "summarize":
        wh.query(f"SUMMARIZE {wh.qualify(table)}")
        rows, columns = 0, 0
    else:
        profile = wh.profile(table)
        rows, columns = profile.rows, len(profile.columns)
    seconds = time.perf_counter() - start
    wh.close()
    return {"seconds": seconds, "rows": rows, "columns": columns,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "profile_bench.duckdb"
        subprocess.run([sys.executable, "-c", "import duckdb,sys; duckdb.connect(sys.argv[1]).execute("
                        "'CREATE SCHEMA bench')", str(db)], check=True)
        subprocess.run([sys.executable, "-c", GENERATE, str(db), str(ROWS)], check=True)
        summarize = measure_in_fresh_process("benchmarks.profile", db, "summarize")
        flurry = measure_in_fresh_process("benchmarks.profile", db, "profile")
    return {"rows": flurry["rows"], "columns": flurry["columns"], "summarize_s": summarize["seconds"],
            "profile_s": flurry["seconds"], "ratio_vs_summarize": flurry["seconds"] / summarize["seconds"],
            "peak_rss_mb": flurry["peak_rss_mb"], "summarize_peak_rss_mb": summarize["peak_rss_mb"]}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(main()))
