"""Smoke test of Flurry's Snowflake path against a real account (needs credentials; nothing here runs in CI).

    .venv/bin/python -m scripts.snowflake_smoke --connection <name in connections.toml> [--keep] [--hosted]

First checks that the account's Anaconda channel offers every version environment.yml pins (and stops,
naming what is missing, when it does not). Then creates a scratch schema FLURRY_SMOKE_<random> in the
connection's current database and exercises catalog → profile → training in the stored procedure (through
the wizard's own job manager) → deploy (staged model, permanent UDFs) → batch scoring in the warehouse → a
scheduled re-scoring Task → drop. Flurry's own FLURRY schema (registry, stage) is created if missing and
kept; everything else it made is dropped unless --keep. With --hosted it also deploys the app itself into
the scratch schema with the Snowflake CLI (`snow streamlit deploy flurry`, from .venv-snowcli), checks that
SHOW STREAMLITS lists it, and drops it with the schema. Prints one JSON line with what was checked.
Credentials are never printed: only the account, role and warehouse names.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backend.warehouse.base import TableRef
from backend.warehouse.snowflake_packages import channel_pins, missing_from_channel, offered_packages_sql

if TYPE_CHECKING:
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse


def demo_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure months": rng.integers(1, 72, rows), "plan": rng.choice(["basic", "pro", "max"], rows),
                          "monthly fee": rng.uniform(10, 120, rows).round(2)})
    risk = (frame["tenure months"] < 12).astype(int) + (frame["plan"] == "basic") + rng.normal(0, 0.4, rows)
    frame["churned"] = np.where(risk > 1, "yes", "no")
    return frame


ROOT = Path(__file__).resolve().parents[1]


def deploy_hosted_app(wh: SnowflakeWarehouse, connection: str, schema: str) -> bool:
    """`snow streamlit deploy flurry` into `schema` with the project's own snowflake.yml; True when SHOW
    STREAMLITS then lists the app (it goes with the scratch schema)."""
    import os
    import subprocess

    from backend.warehouse.snowflake_packages import VENDOR_DIR, vendor_shipped_packages

    vendor_shipped_packages(ROOT / VENDOR_DIR)
    snow = ROOT / ".venv-snowcli" / "bin" / "snow"
    env = {**os.environ, "FLURRY_DATABASE": wh.database, "FLURRY_SCHEMA": schema,
           "FLURRY_WAREHOUSE_NAME": str(wh.session.get_current_warehouse() or "").strip('"')}
    subprocess.run([str(snow), "streamlit", "deploy", "flurry", "--replace", "--connection", connection], cwd=ROOT,
                   env=env, check=True, timeout=600)
    listed = wh.query(f"SHOW STREAMLITS IN SCHEMA {wh.qualify(TableRef(schema, 'x')).rsplit('.', 1)[0]}")
    return "FLURRY" in {str(name).upper() for name in listed.iloc[:, 1]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="a connection name from connections.toml")
    parser.add_argument("--keep", action="store_true", help="leave the scratch schema, functions and task")
    parser.add_argument("--hosted", action="store_true", help="also deploy the Streamlit app into the scratch schema")
    parser.add_argument("--training-warehouse", help="a warehouse for the training procedure (e.g. Snowpark-optimized)")
    args = parser.parse_args(argv)

    from backend.deploy import deploy, schedule_scoring, score_table
    from backend.deployed_model import load_bundle
    from backend.errors import FlurryError
    from backend.procedure_jobs import ProcedureJobManager
    from backend.registry import Registry
    from backend.task_detection import Task
    from backend.training.config import TrainConfig
    from backend.warehouse.snowflake_session import identity, open_session
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
    pins = channel_pins(ROOT / "environment.yml")
    sql, names = offered_packages_sql([name for name in pins if name != "python"])
    offered = [(str(r.n), str(r.v)) for r in wh.query(sql, names).itertuples()]
    checks["channel_missing"] = missing = missing_from_channel(pins, offered)
    if missing:
        sys.stderr.write("This account's Anaconda channel lacks these pinned packages: " + ", ".join(missing)
                         + "\nChoose versions it offers (requirements.txt and environment.yml) and retry.\n")
        sys.stdout.write(json.dumps(checks, default=str) + "\n")
        return 1
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
        jobs = ProcedureJobManager(wh, registry, Path(tempfile.mkdtemp()), training_warehouse=args.training_warehouse)
        features = (("tenure months", "NUMBER(38,0)"), ("plan", "TEXT"), ("monthly fee", "FLOAT"))
        config = TrainConfig(table=table, target="churned", target_sql_type="TEXT", task=Task.BINARY,
                             features=features, metric="roc_auc", time_budget_s=30)
        started = time.monotonic()
        run_id = jobs.start(config)
        while not (progress := jobs.progress(run_id)).run.state.is_final and time.monotonic() - started < 900:
            time.sleep(2)
        checks["training_seconds"] = round(time.monotonic() - started, 1)
        checks["run_state"] = progress.run.state.value
        checks["trial_events"] = len(progress.trials)
        if progress.model_id is None:
            raise RuntimeError(f"training did not produce a model: {progress.run.message}")
        version = registry.get_model_version(progress.model_id)
        checks["holdout_roc_auc"] = round(score, 4) if (score := version.metrics.model_score("roc_auc")) is not None else None

        functions = deploy(wh, registry, version.model_id, function)
        checks["functions"] = [functions.predict, functions.probability]
        checks["scored_rows"] = score_table(wh, registry, function, table, scored).rows
        bundle = load_bundle(registry, version.model_id)
        back = wh.read_columns(scored, [*bundle.feature_names, "prediction"], limit=200)
        checks["sql_matches_bundle"] = bool((back["prediction"].to_numpy() == bundle.predict(back)).all())
        scheduled = schedule_scoring(wh, registry, function, table, scored, "daily")
        checks["task_created"], checks["task_resumed"] = scheduled.task, scheduled.resumed
        if scheduled.reason:
            checks["task_suspended_because"] = scheduled.reason
        if not args.keep:
            wh.execute(f'DROP TASK IF EXISTS {wh.qualify(TableRef("FLURRY", scheduled.task))}')
        if args.hosted:
            checks["hosted_app_listed"] = deploy_hosted_app(wh, args.connection, schema)
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
