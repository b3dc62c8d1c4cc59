"""Scoring throughput: the SQL function and the batch scorer against the model's raw `predict`, on about 1M
rows (diamonds × 19) with a LightGBM model from Flurry; and the reasons function against the plain one.

Prints ratios (Flurry's rows/s divided by raw predict rows/s in the same run), since the machine is shared.
Keys: sql_function_vs_predict (target ≥ 0.6), batch_vs_predict (≥ 0.85), explain_vs_predict_function (time of
flurry_explain_… over the plain function's on 10k rows, ≤ 3), rows, trees.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from backend.config import WarehouseConfig
from backend.deploy import deploy, score_table
from backend.deployed_model import load_bundle
from backend.warehouse.base import TableRef
from backend.workspace import open_workspace
from benchmarks._harness import default_config

TABLE = TableRef("demo", "diamond_prices")


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(WarehouseConfig("duckdb", str(Path(tmp) / "bench.duckdb")))
        config = replace(default_config(ws, TABLE, "price", 10), estimators=("lgbm",), ensemble=False)
        run_id = ws.jobs.start(config)
        while not (progress := ws.jobs.progress(run_id)).run.state.is_final:
            time.sleep(0.5)
        model_id = progress.model_id
        assert model_id, progress.run.message
        bundle = load_bundle(ws.registry, model_id)
        features = bundle.feature_names
        deploy(ws.warehouse, ws.registry, model_id, "bench_predict")
        ws.warehouse.execute('CREATE TABLE demo.big AS SELECT * FROM demo.diamond_prices, range(19)')
        ws.warehouse.execute('CREATE TABLE demo.small AS SELECT * FROM demo.diamond_prices LIMIT 10000')
        big = TableRef("demo", "big")
        frame = ws.warehouse.read_columns(big, features)
        rows = len(frame)

        start = time.perf_counter()
        bundle.predict(frame)
        raw = time.perf_counter() - start

        args = ", ".join(f'"{f}"' for f in features)
        start = time.perf_counter()
        ws.warehouse.query(f'SELECT sum(bench_predict({args})) AS s FROM demo.big')
        udf = time.perf_counter() - start

        start = time.perf_counter()
        score_table(ws.warehouse, ws.registry, "bench_predict", big, TableRef("demo", "big_scored"))
        batch = time.perf_counter() - start

        start = time.perf_counter()
        ws.warehouse.query(f'SELECT count(bench_predict({args})) AS n FROM demo.small')
        plain_small = time.perf_counter() - start
        start = time.perf_counter()
        ws.warehouse.query(f'SELECT count(bench_predict_explain({args})) AS n FROM demo.small')
        explain_small = time.perf_counter() - start
        trees = int(getattr(bundle.estimator.estimator, "n_estimators", 0) or 0)
        ws.close()
    return {"rows": rows, "trees": trees, "sql_function_vs_predict": raw / udf, "batch_vs_predict": raw / batch,
            "explain_vs_predict_function": explain_small / plain_small}


if __name__ == "__main__":
    print(json.dumps(main()))
