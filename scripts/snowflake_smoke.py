"""Smoke test of Flurry's Snowflake path against a real account (needs credentials; nothing here runs in CI).

    .venv/bin/python -m scripts.snowflake_smoke --connection <name in connections.toml> [--keep]

Creates a scratch schema FLURRY_SMOKE_<random> in the connection's current database, then exercises
catalog → profile → training in a stored procedure → deploy (staged model, permanent UDFs) → batch scoring
in the warehouse → a scheduled re-scoring Task → drop. Flurry's own FLURRY schema (registry, stage) is
created if missing and kept; everything else it made is dropped unless --keep. Prints one JSON line with
what was checked. Credentials are never printed: only the account, role and warehouse names.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import numpy as np
import pandas as pd


def demo_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure months": rng.integers(1, 72, rows), "plan": rng.choice(["basic", "pro", "max"], rows),
                          "monthly fee": rng.uniform(10, 120, rows).round(2)})
    risk = (frame["tenure months"] < 12).astype(int) + (frame["plan"] == "basic") + rng.normal(0, 0.4, rows)
    frame["churned"] = np.where(risk > 1, "yes", "no")
    return frame


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="a connection name from connections.toml")
    parser.add_argument("--keep", action="store_true", help="leave the scratch schema, functions and task")
    args = parser.parse_args(argv)

    from backend.deploy import prediction_sql_type
    from backend.errors import FlurryError
    from backend.model_bundle import ModelBundle
    from backend.registry import Registry, RunState
    from backend.task_detection import Task
    from backend.training.config import TrainConfig
    from backend.warehouse.base import SampleSpec, TableRef
    from backend.warehouse.snowflake_deploy import scoring_sql, task_sql
    from backend.warehouse.snowflake_session import identity, open_session
    from backend.warehouse.snowflake_training import (
        RESULT_EVENT,
        artifact_path,
        job_payload,
        procedure_name,
        register_procedure,
    )
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    checks: dict[str, object] = {}
    try:
        session = open_session(args.connection)
    except FlurryError as exc:
        sys.stderr.write(f"{exc}\n{exc.hint or ''}\n")
        return 2
    who = dict(identity(session).lines())
    checks["connected_to"] = {k: who[k] for k in ("Account", "Role", "Warehouse", "Database")}
    wh = SnowflakeWarehouse(session)
    schema = f"FLURRY_SMOKE_{uuid.uuid4().hex[:6].upper()}"
    table = TableRef(schema, "Churn smoke")
    scored = TableRef(schema, "Churn smoke scored")
    function = f"flurry_smoke_{uuid.uuid4().hex[:6]}"
    try:
        wh.ensure_schema(schema)
        frame = demo_frame()
        wh.write_table(table, frame)
        checks["catalog"] = any((t.schema, t.name) == (schema, table.name) for t in wh.table_summaries())
        profile = wh.profile(table)
        checks["profile_rows"] = profile.rows
        checks["profile_top_plan"] = profile.column("plan").top_values[:1]

        registry = Registry(wh)
        registry.migrate()
        features = (("tenure months", "NUMBER(38,0)"), ("plan", "TEXT"), ("monthly fee", "FLOAT"))
        config = TrainConfig(table=table, target="churned", target_sql_type="TEXT",
                             task=Task.BINARY,
                             features=features, metric="roc_auc", time_budget_s=30)
        run_id = registry.create_run(table=table, target="churned", task="binary", metric="roc_auc",
                                     time_budget=30, config=config.to_dict(), job_dir="snowflake")
        spec = SampleSpec(table=table, columns=config.exported_columns, target="churned", max_rows=config.max_rows,
                          stratify=True)
        register_procedure(session, wh.database)
        started = time.monotonic()
        job = session.call(procedure_name(wh.database), job_payload(run_id, wh.database, config, spec), block=False)
        while not job.is_done():
            time.sleep(2)
        checks["procedure_seconds"] = round(time.monotonic() - started, 1)
        checks["procedure_state"] = job.result()[0][0] if job.result() else None
        checks["trial_events"] = len(registry.events(run_id, "trial"))
        result = registry.events(run_id, RESULT_EVENT)[-1].payload
        if result["state"] != RunState.SUCCEEDED.value:
            raise RuntimeError(f"training failed in Snowflake: {result.get('message')}")
        content = session.file.get_stream(artifact_path(wh.database, run_id, "bundle")).read()
        bundle = ModelBundle.from_verified_bytes(content, result["sha256"]["bundle"])
        checks["holdout_roc_auc"] = round(result["metrics"]["roc_auc"]["model"], 4)

        predict, probability = wh.deploy_model_functions(function, bundle, content, result["sha256"]["bundle"],
                                                         run_id, prediction_sql_type(bundle))
        rows = wh.score_into(predict, probability, bundle.feature_names, table, scored, "prediction", "probability")
        checks["scored_rows"] = rows
        back = wh.read_columns(scored, [*bundle.feature_names, "prediction"], limit=200)
        checks["sql_matches_bundle"] = bool((back["prediction"].to_numpy() == bundle.predict(back)).all())
        task = f"{function}_rescore"
        body = scoring_sql(wh.database, predict, probability, bundle.feature_names, wh.qualify(table),
                           wh.qualify(scored), prediction_column="prediction", probability_column="probability")
        for statement in task_sql(wh.database, task, who["Warehouse"], "daily", body):
            wh.execute(statement)
        checks["task_created"] = True
        if not args.keep:
            wh.execute(f'DROP TASK IF EXISTS {wh.qualify(TableRef("FLURRY", task))}')
    finally:
        if not args.keep:
            for name in (function, f"{function}_proba"):
                try:
                    wh.drop_function(name)
                except Exception as exc:  # report and go on dropping the rest
                    checks[f"drop_{name}"] = type(exc).__name__
            wh.execute(f"DROP SCHEMA IF EXISTS {wh.qualify(TableRef(schema, 'x')).rsplit('.', 1)[0]} CASCADE")
            checks["dropped"] = True
        sys.stdout.write(json.dumps(checks, default=str) + "\n")
    return 0 if checks.get("sql_matches_bundle") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
