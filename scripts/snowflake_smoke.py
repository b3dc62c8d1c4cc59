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
from typing import TYPE_CHECKING, Any

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


def _wait(jobs: Any, run_id: str, limit_s: float = 900) -> Any:
    started = time.monotonic()
    while not (progress := jobs.progress(run_id)).run.state.is_final and time.monotonic() - started < limit_s:
        time.sleep(2)
    if progress.model_id is None:
        raise RuntimeError(f"training did not produce a model: {progress.run.message}")
    return progress


def registry_and_rollback(wh: Any, registry: Any, jobs: Any, config: Any, first_id: str) -> dict[str, object]:
    """Promote v1, train and promote v2, call v2 through MODEL(...)!PREDICT, roll back: the PROD alias and the
    production function must be on v1 again."""
    from backend.model_catalog import Catalog
    from backend.promotion import promote, rollback

    checks: dict[str, object] = {}
    promote(wh, registry, first_id)
    second_id = _wait(jobs, jobs.start(config)).model_id
    promoted = promote(wh, registry, second_id, accept_new_inputs=True)
    model = Catalog(registry).model_of(second_id)
    registry_model = f"{wh.qualify(TableRef('FLURRY', model.function_name.upper()))}"
    checks["registry_note"] = promoted.production.registry_note
    try:
        inputs = ", ".join(f'"{name}"' for name in ("tenure months", "plan", "monthly fee"))
        fresh = wh.query(f'SELECT MODEL({registry_model}, V{promoted.version.number})!PREDICT({inputs}) AS "p" '
                         f"FROM {wh.qualify(TableRef(config.table.schema, config.table.name))} LIMIT 5")
        checks["model_predict_rows"] = len(fresh)
    except Exception as exc:  # reported, not fatal: the functions are what Flurry serves with
        checks["model_predict_error"] = str(exc)[:300]
    rollback(wh, registry, model.key)
    try:
        versions = wh.query(f"SHOW VERSIONS IN MODEL {registry_model}")
        aliases = {str(row["name"]): str(row["aliases"]) for _, row in versions.iterrows()}
        checks["prod_alias_after_rollback"] = [name for name, held in aliases.items() if "PROD" in held]
    except Exception as exc:
        checks["registry_versions_error"] = str(exc)[:300]
    production = Catalog(registry).production(model.key)
    checks["production_after_rollback"] = production.label if production is not None else None
    return checks


def appended_forecasts(wh: Any, registry: Any, jobs: Any, schema: str) -> dict[str, object]:
    """A forecast written once, then appended again: the table holds both, each row stamped with its version."""
    from backend.forecast_workflow import deploy_forecast, forecast_config, write_forecast
    from backend.forecasting.series import SeriesSpec

    months = pd.date_range("2019-01-01", periods=48, freq="MS")
    noise = np.random.default_rng(1).normal(0, 2, 96)
    history = pd.DataFrame({"month": [m.date() for m in months] * 2, "store": ["North"] * 48 + ["South"] * 48,
                            "sales": [100.0 + 10 * (m.month in (11, 12)) for m in months] * 2 + noise})
    source, output = TableRef(schema, "Monthly sales"), TableRef(schema, "Monthly sales forecast")
    wh.write_table(source, history)
    config = forecast_config(wh, source, SeriesSpec("month", "sales", ("store",), horizon=6), "mase", 20)
    deployment = deploy_forecast(registry, _wait(jobs, jobs.start(config)).model_id)
    first = write_forecast(wh, registry, deployment, source, output, append=True)
    second = write_forecast(wh, registry, deployment, source, output, append=True)
    return {"forecast_rows_first": first.rows, "forecast_rows_after_append": wh.row_count(output),
            "forecast_appended": wh.row_count(output) == first.rows + second.rows}


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
        # the run belongs to its Task, not to the session that started it: that session ends now, as a viewer's
        # warehouse-runtime app instance would, and a new one watches the run finish
        session.close()
        session = open_session(args.connection)
        wh = SnowflakeWarehouse(session)
        registry = Registry(wh)
        jobs = ProcedureJobManager(wh, registry, Path(tempfile.mkdtemp()), training_warehouse=args.training_warehouse)
        while not (progress := jobs.progress(run_id)).run.state.is_final and time.monotonic() - started < 900:
            time.sleep(2)
        checks["run_outlived_its_session"] = progress.run.state.value == "SUCCEEDED"
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
        checks.update(registry_and_rollback(wh, registry, jobs, config, version.model_id))
        checks.update(appended_forecasts(wh, registry, jobs, schema))
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
