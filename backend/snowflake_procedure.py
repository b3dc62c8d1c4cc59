"""Training on Snowflake's compute: a stored procedure registered from the `backend` package.

The app starts it asynchronously (`session.call(..., block=False)`) and then only reads. Inside the
procedure the training sample is read by warehouse SQL, FLAML's trials go to Flurry's events table as they
happen (backend.training.progress), and at the end the procedure writes the model version itself (artifact
parts, checksums verified as they are read back, metrics) and marks the run SUCCEEDED or FAILED, so nothing
waits for an app session: on the warehouse runtime each viewer's app instance is short-lived.
"""

from __future__ import annotations

import base64
import json
import tempfile
import traceback
from pathlib import Path
from typing import Any

# At run time, not only for type checkers: Snowpark reads the entry's annotations when registering it.
from snowflake.snowpark import Session

from backend.errors import FlurryError
from backend.forecast_workflow import write_forecast
from backend.identifiers import quote_ident
from backend.registry import Registry, RunState
from backend.training.config import TrainConfig
from backend.training.dispatch import train_run
from backend.training.jobs import record_model_version
from backend.training.progress import best_trial_log, train_with_events
from backend.training.results import result_summary
from backend.warehouse.base import METADATA_SCHEMA, SampleSpec, ScheduledScoring, TableRef
from backend.warehouse.snowflake_deploy import stage_name
from backend.warehouse.snowflake_packages import channel_packages, shipped_imports
from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

PROCEDURE = "FLURRY_TRAIN"
BACKEND_DIR = Path(__file__).resolve().parent
# From the channel at this installation's versions; FLAML comes through the stage (snowflake_packages)
PROCEDURE_PACKAGES = ("snowflake-snowpark-python", "lightgbm", "xgboost", "scikit-learn", "shap", "pandas", "numpy",
                      "pyarrow", "scipy", "statsmodels")
RESULT_EVENT = "result"

def job_payload(run_id: str, database: str, config: TrainConfig, spec: SampleSpec,
                finalize: list[dict[str, Any]] | None = None) -> str:
    """What the app hands the procedure: one JSON string (its only argument). With `finalize` (the run's trial
    events), the procedure retrains the best of them instead of searching."""
    return json.dumps({"run_id": run_id, "database": database, "config": config.to_dict(), "finalize": finalize,
                       "spec": {"schema": spec.table.schema, "name": spec.table.name, "columns": list(spec.columns),
                                "target": spec.target, "max_rows": spec.max_rows, "seed": spec.seed,
                                "stratify": spec.stratify, "distinct": spec.distinct,
                                "exclude_target_values": list(spec.exclude_target_values),
                                "unlabelled": spec.unlabelled}})


def _spec(data: dict[str, Any]) -> SampleSpec:
    return SampleSpec(table=TableRef(data["schema"], data["name"]), columns=tuple(data["columns"]),
                      target=data["target"], max_rows=int(data["max_rows"]), seed=int(data["seed"]),
                      stratify=bool(data["stratify"]), distinct=bool(data["distinct"]),
                      exclude_target_values=tuple(data["exclude_target_values"]),
                      unlabelled=bool(data.get("unlabelled", False)))


def run_procedure(session: Any, job_json: str) -> str:
    """The procedure's body: train the job, then record its verified model version and the run's final state
    in Flurry's registry itself, so a run finishes and is usable whether or not any app session is open; the
    app only reads. Returns the final state.

    Never raises for a training failure: the run is marked FAILED with the reason, which the app shows. All its
    queries are issued from this one thread (Snowflake procedures do not support concurrent queries)."""
    job = json.loads(job_json)
    run_id, database, attempt = job["run_id"], job["database"], job.get("attempt")
    warehouse = SnowflakeWarehouse(session, database)
    registry = Registry(warehouse)
    try:
        config = TrainConfig.from_dict(job["config"])
        sql, params, _, _ = warehouse.training_sample_sql(_spec(job["spec"]))
        frame = warehouse.query(sql, params)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "flaml.jsonl"
            if job.get("finalize"):  # stopped by the user: retrain the best trial so far, no search
                log.write_text(best_trial_log(job["finalize"]), encoding="utf-8")
                result = train_run(frame, config, log, from_log=True)
            else:
                result = train_with_events(frame, config, log,
                                           lambda kind, payloads: registry.add_events(run_id, kind, payloads))
        bundle = result.bundle.to_bytes()
        summary = result_summary(result, bundle)
        current = registry.get_run(run_id).state
        if current.is_final:  # cancelled meanwhile: the user's word stands
            return current.value
        model_id = record_model_version(registry, run_id, config, summary, bundle,
                                        result.holdout_parquet, stopped_early=bool(job.get("finalize")))
        registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.SUCCEEDED.value, "attempt": attempt,
                                                    "model_id": model_id, **summary}])
        return RunState.SUCCEEDED.value
    except FlurryError as exc:
        message = str(exc)
    except Exception as exc:  # the app shows the reason; the traceback stays in the procedure's log
        traceback.print_exc()
        message = f"Training failed in Snowflake: {type(exc).__name__}: {exc}"[:2000]
    registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.FAILED.value, "message": message,
                                                "attempt": attempt}])
    if not registry.get_run(run_id).state.is_final:
        registry.set_run_state(run_id, RunState.FAILED, message=message)
    return RunState.FAILED.value


FORECAST_JOB = "b64:"  # a re-forecast job (a Task's call): its JSON in base64, safe inside a SQL literal


def forecast_job(database: str, deployment: str, source: TableRef, output: TableRef, *, append: bool) -> str:
    """The argument a Task passes the procedure to re-forecast: base64, so no table name can end the literal."""
    job = {"database": database, "deployment": deployment, "append": append,
           "source": [source.schema, source.name], "output": [output.schema, output.name]}
    return FORECAST_JOB + base64.b64encode(json.dumps(job).encode()).decode()


def run_forecast_job(session: Any, argument: str) -> str:
    """Write a forecast deployment's table from its source's newest history, inside Snowflake (a Task's call).
    Returns "SUCCEEDED: <what was written>"; raises on failure, so the Task's history shows the reason."""
    job = json.loads(base64.b64decode(argument[len(FORECAST_JOB):]))
    warehouse = SnowflakeWarehouse(session, job["database"])
    written = write_forecast(warehouse, Registry(warehouse), job["deployment"], TableRef(*job["source"]),
                             TableRef(*job["output"]), append=bool(job["append"]))
    return f"{RunState.SUCCEEDED.value}: {written.message}"


def procedure_entry(session: Session, job_json: str) -> str:
    """What Snowflake calls: (session, the job's JSON) → the final state (a training run's, or a re-forecast's).
    Snowpark refuses to register a procedure whose first parameter is not annotated as Session."""
    if job_json.startswith(FORECAST_JOB):
        return run_forecast_job(session, job_json)
    return run_procedure(session, job_json)


def procedure_name(database: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{PROCEDURE}"


def procedure_stage(database: str) -> str:
    """Where a permanent procedure's code goes: on the stage the registry's migrations create."""
    return f"@{stage_name(database)}/procedures"


def register_procedure(session: Any, database: str, *, permanent: bool = True) -> str:
    """Create (or replace) the training procedure from this installation's `backend` package."""
    from snowflake.snowpark.types import StringType

    session.sproc.register(
        procedure_entry, name=procedure_name(database), return_type=StringType(), input_types=[StringType()],
        is_permanent=permanent, replace=True,
        stage_location=procedure_stage(database),
        imports=[(str(BACKEND_DIR), "backend"), *shipped_imports()], packages=channel_packages(PROCEDURE_PACKAGES))
    return procedure_name(database)


def schedule_forecast_task(warehouse: Any, deployment: str, source: TableRef, output: TableRef, schedule: str, *,
                           append: bool) -> ScheduledScoring:
    """A Task that calls the training procedure to re-forecast `deployment` into `output` on `schedule`
    (the procedure registered first, as a training run would). `warehouse`: a SnowflakeWarehouse, or the
    workspace's allow-listed view of one."""
    with warehouse.session_lock():
        register_procedure(warehouse.session, warehouse.database)
    argument = forecast_job(warehouse.database, deployment, source, output, append=append)
    return warehouse.schedule_statement(f"{deployment}_reforecast",
                                        f"CALL {procedure_name(warehouse.database)}('{argument}')", schedule)
