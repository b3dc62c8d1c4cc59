"""Training on Snowflake's compute: a stored procedure registered from the `backend` package.

The app starts it through the run's own Task (backend.procedure_jobs) and then only reads. Inside the
procedure the training sample is read by warehouse SQL, FLAML's trials and heartbeats go to Flurry's events
table as they happen (backend.training.progress, backend.training.run_signals), a stop request is read at each
search iteration, and at the end the procedure writes the model version itself (artifact parts, checksums
verified as they are read back, metrics) and marks the run SUCCEEDED or FAILED, so nothing waits for an app
session: on the warehouse runtime each viewer's app instance is short-lived.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import sys
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
from backend.training.run_signals import Pulse, StopRequested
from backend.training.runner import TRACEBACK_EVENT
from backend.warehouse.base import METADATA_SCHEMA, SampleSpec, ScheduledScoring, TableRef
from backend.warehouse.snowflake_deploy import stage_name
from backend.warehouse.snowflake_packages import (
    SHIPPED_PACKAGES,
    channel_packages,
    installed_version,
    require_channel_python,
    shipped_imports,
)
from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

PROCEDURE = "FLURRY_TRAIN"
BACKEND_DIR = Path(__file__).resolve().parent
# From the channel at this installation's versions; FLAML comes through the stage (snowflake_packages)
PROCEDURE_PACKAGES = ("snowflake-snowpark-python", "lightgbm", "xgboost", "scikit-learn", "shap", "pandas", "numpy",
                      "pyarrow", "scipy", "statsmodels")
RESULT_EVENT = "result"
JOB_EVENT = "job"  # the run's job, as the app recorded it when it prepared the run
MAX_TRACEBACK_CHARS = 8000
logger = logging.getLogger(__name__)  # in Snowflake, Python logging reaches the account's event table

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

    It beats into the registry as it goes and reads the user's stop request at each search iteration: asked to
    keep the best, it ends the search and refits the best trial so far in this same call. Never raises for a
    training failure: the run is marked FAILED with the reason, which the app shows, and the traceback goes to
    the account's event table (Python logging) and to the run's events. All its queries are issued from this
    one thread (Snowflake procedures do not support concurrent queries)."""
    job = json.loads(job_json)
    run_id, database, attempt = job["run_id"], job["database"], job.get("attempt")
    warehouse = SnowflakeWarehouse(session, database)
    registry = Registry(warehouse)
    pulse = Pulse(registry, run_id)
    try:
        config = TrainConfig.from_dict(job["config"])
        pulse.beat("reading the training rows")
        sql, params, _, _ = warehouse.training_sample_sql(_spec(job["spec"]))
        frame = warehouse.query(sql, params)
        stopped_early = bool(job.get("finalize"))
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "flaml.jsonl"
            if stopped_early:  # an earlier Flurry's second call for a stopped run: refit the best trial, no search
                result = _refit_best(frame, config, log, job["finalize"])
            else:
                pulse.beat("searching")
                try:
                    result = train_with_events(frame, config, log,
                                               lambda kind, payloads: registry.add_events(run_id, kind, payloads),
                                               between=pulse)
                except StopRequested as stop:
                    trials = [e.payload for e in registry.events(run_id, "trial")]
                    if not stop.keep_best or not any(t.get("config") is not None for t in trials):
                        return _cancelled(registry, run_id, stop.keep_best)
                    logger.info("run %s: stopped by the user, refitting the best trial so far", run_id)
                    pulse.beat("keeping the best model so far")
                    result, stopped_early = _refit_best(frame, config, log, trials), True
        pulse.beat("saving the model")
        bundle = result.bundle.to_bytes()
        summary = result_summary(result, bundle)
        current = registry.get_run(run_id).state
        if current.is_final:  # cancelled meanwhile: the user's word stands
            return current.value
        model_id = record_model_version(registry, run_id, config, summary, bundle,
                                        result.holdout_parquet, stopped_early=stopped_early)
        registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.SUCCEEDED.value, "attempt": attempt,
                                                    "model_id": model_id, **summary}])
        return RunState.SUCCEEDED.value
    except FlurryError as exc:
        message, details = str(exc), None
    except Exception as exc:  # the app shows the reason; the traceback goes to the event table and the run
        logger.exception("training run %s failed", run_id)
        message = f"Training failed in Snowflake: {type(exc).__name__}: {exc}"[:2000]
        details = traceback.format_exc()[-MAX_TRACEBACK_CHARS:]
    registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.FAILED.value, "message": message,
                                                "attempt": attempt}])
    if details:
        registry.add_events(run_id, TRACEBACK_EVENT, [{"traceback": details}])
    if not registry.get_run(run_id).state.is_final:
        registry.set_run_state(run_id, RunState.FAILED, message=message)
    return RunState.FAILED.value


def _refit_best(frame: Any, config: TrainConfig, log: Path, trials: list[dict[str, Any]]) -> Any:
    log.write_text(best_trial_log(trials), encoding="utf-8")
    return train_run(frame, config, log, from_log=True)


def _cancelled(registry: Registry, run_id: str, keep_best: bool) -> str:
    """A stop that keeps nothing: the run ends CANCELLED (unless the app already ended it), no model recorded."""
    message = ("Stopped by the user before any model had finished training, so there was none to keep."
               if keep_best else "Cancelled by the user.")
    registry.set_run_state(run_id, RunState.CANCELLED, message=message)  # refused if already final: it stands
    return registry.get_run(run_id).state.value


TRAINING_JOB = "run:"  # a training run's Task call: which run and attempt, in base64 (its job is in the registry)


def training_job(database: str, run_id: str, attempt: str) -> str:
    """The argument a run's Task passes the procedure: the job itself is the run's JOB_EVENT in the registry, so
    the Task's definition stays small whatever the table's width."""
    reference = {"database": database, "run_id": run_id, "attempt": attempt}
    return TRAINING_JOB + base64.b64encode(json.dumps(reference).encode()).decode()


def run_training_job(session: Any, argument: str) -> str:
    """A Task's call: read the run's job from the registry, then train it as run_procedure does."""
    reference = json.loads(base64.b64decode(argument[len(TRAINING_JOB):]))
    registry = Registry(SnowflakeWarehouse(session, reference["database"]))
    jobs = registry.events(reference["run_id"], JOB_EVENT)
    if not jobs:
        raise FlurryError(f"The run {reference['run_id']} has no training job recorded.")
    job = json.loads(jobs[-1].payload["payload"])
    job["attempt"] = reference["attempt"]
    return run_procedure(session, json.dumps(job))


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
    if job_json.startswith(TRAINING_JOB):
        return run_training_job(session, job_json)
    return run_procedure(session, job_json)


def procedure_name(database: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{PROCEDURE}"


def procedure_stage(database: str) -> str:
    """Where a permanent procedure's code goes: on the stage the registry's migrations create."""
    return f"@{stage_name(database)}/procedures"


@functools.cache
def procedure_digest(directory: Path = BACKEND_DIR) -> str:
    """What the registered procedure is made of: every module of `directory`, the channel pins, the Python
    line and the shipped packages' versions. Equal digests: the procedure in the account is this code."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    pins = [channel_packages(PROCEDURE_PACKAGES), list(sys.version_info[:2]),
            sorted((name, str(installed_version(name))) for name in SHIPPED_PACKAGES)]
    digest.update(json.dumps(pins).encode())
    return digest.hexdigest()


def procedure_comment(digest: str) -> str:
    return f"Flurry training procedure, code {digest[:20]}"


def registered_as(session: Any, database: str, digest: str) -> bool:
    """Whether the account's procedure was registered from this very code (its comment, which SHOW PROCEDURES
    lists as `description`, names the digest); False when it cannot be told."""
    try:
        rows = session.sql(f"SHOW PROCEDURES LIKE '{PROCEDURE}' IN SCHEMA "
                           f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}").collect()
    except Exception:  # no privilege to look, or an engine without procedures: register as before
        return False
    return any(procedure_comment(digest) in str(row.as_dict().get("description", "")) for row in rows)


def register_procedure(session: Any, database: str, *, permanent: bool = True) -> str:
    """Create (or replace) the training procedure from this installation's `backend` package — unless the
    account's permanent procedure was made from this same code: on the warehouse runtime every viewer's app
    instance is a new process, and each would otherwise upload `backend/` and FLAML and replace it."""
    from snowflake.snowpark.types import StringType

    require_channel_python()
    digest = procedure_digest()
    if permanent and registered_as(session, database, digest):
        return procedure_name(database)
    session.sproc.register(
        procedure_entry, name=procedure_name(database), return_type=StringType(), input_types=[StringType()],
        is_permanent=permanent, replace=True, comment=procedure_comment(digest),
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
