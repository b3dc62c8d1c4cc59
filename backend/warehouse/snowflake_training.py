"""Training on Snowflake's compute: a stored procedure registered from the `backend` package.

The app starts it asynchronously (`session.call(..., block=False)`), then follows it exactly as it follows
a local worker: through run events. Inside the procedure the training sample is read by warehouse SQL,
FLAML's trials go to Flurry's events table as they happen (backend.training.progress), the model file and
holdout go to the stage FLURRY.MODELS, and a last "result" event carries the metrics and the files'
sha256, which the app checks before it records a model version.
"""

from __future__ import annotations

import io
import json
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# At run time, not only for type checkers: Snowpark reads the entry's annotations when registering it.
from snowflake.snowpark import Session

from backend.errors import FlurryError
from backend.identifiers import quote_ident
from backend.registry import Registry, RunState
from backend.training import job_files as jf
from backend.training.config import TrainConfig
from backend.training.fit import result_summary, train
from backend.training.progress import best_trial_log, train_with_events
from backend.warehouse.base import METADATA_SCHEMA, SampleSpec, TableRef

PROCEDURE = "FLURRY_TRAIN"
BACKEND_DIR = Path(__file__).resolve().parents[1]
PROCEDURE_PACKAGES = ("snowflake-snowpark-python", "flaml", "lightgbm", "xgboost", "scikit-learn", "shap", "pandas",
                      "numpy", "pyarrow")
RESULT_EVENT = "result"

PutFile = Callable[[str, bytes], None]


def job_payload(run_id: str, database: str, config: TrainConfig, spec: SampleSpec,
                finalize: list[dict[str, Any]] | None = None) -> str:
    """What the app hands the procedure: one JSON string (its only argument). With `finalize` (the run's trial
    events), the procedure retrains the best of them instead of searching."""
    return json.dumps({"run_id": run_id, "database": database, "config": config.to_dict(), "finalize": finalize,
                       "spec": {"schema": spec.table.schema, "name": spec.table.name, "columns": list(spec.columns),
                                "target": spec.target, "max_rows": spec.max_rows, "seed": spec.seed,
                                "stratify": spec.stratify, "distinct": spec.distinct,
                                "exclude_target_values": list(spec.exclude_target_values)}})


def _spec(data: dict[str, Any]) -> SampleSpec:
    return SampleSpec(table=TableRef(data["schema"], data["name"]), columns=tuple(data["columns"]),
                      target=data["target"], max_rows=int(data["max_rows"]), seed=int(data["seed"]),
                      stratify=bool(data["stratify"]), distinct=bool(data["distinct"]),
                      exclude_target_values=tuple(data["exclude_target_values"]))


def artifact_path(database: str, run_id: str, name: str) -> str:
    return f"@{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.MODELS/runs/{run_id}/{name}"


def stage_writer(session: Any) -> PutFile:
    def put(path: str, content: bytes) -> None:
        session.file.put_stream(io.BytesIO(content), path, auto_compress=False, overwrite=True)

    return put


def run_procedure(session: Any, job_json: str, put_file: PutFile | None = None) -> str:
    """The procedure's body: train the job and report through run events; returns the final state.

    Never raises for a training failure: the reason goes into the "result" event, where the app reads it."""
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    job = json.loads(job_json)
    run_id, database = job["run_id"], job["database"]
    registry = Registry(SnowflakeWarehouse(session, database))
    put = put_file or stage_writer(session)
    try:
        config = TrainConfig.from_dict(job["config"])
        warehouse = SnowflakeWarehouse(session, database)
        sql, params, _, _ = warehouse.training_sample_sql(_spec(job["spec"]))
        frame = session.sql(sql, params=params).to_pandas()
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "flaml.jsonl"
            if job.get("finalize"):  # stopped by the user: retrain the best trial so far, no search
                log.write_text(best_trial_log(job["finalize"]), encoding="utf-8")
                result = train(frame, config, log, from_log=True)
            else:
                result = train_with_events(frame, config, log,
                                           lambda kind, payloads: registry.add_events(run_id, kind, payloads))
        bundle, holdout = result.bundle.to_bytes(), result.holdout_parquet
        put(artifact_path(database, run_id, jf.BUNDLE), bundle)
        put(artifact_path(database, run_id, jf.HOLDOUT), holdout)
        registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.SUCCEEDED.value,
                                                    **result_summary(result, bundle)}])
        return RunState.SUCCEEDED.value
    except FlurryError as exc:
        message = str(exc)
    except Exception as exc:  # the app shows the reason; the traceback stays in the procedure's log
        traceback.print_exc()
        message = f"Training failed in Snowflake: {type(exc).__name__}: {exc}"[:500]
    registry.add_events(run_id, RESULT_EVENT, [{"state": RunState.FAILED.value, "message": message}])
    return RunState.FAILED.value


def procedure_entry(session: Session, job_json: str) -> str:
    """What Snowflake calls: (session, the job's JSON) → the final state. Snowpark refuses to register a
    procedure whose first parameter is not annotated as Session."""
    return run_procedure(session, job_json)


def procedure_name(database: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{PROCEDURE}"


def register_procedure(session: Any, database: str, *, permanent: bool = True) -> str:
    """Create (or replace) the training procedure from this installation's `backend` package."""
    from snowflake.snowpark.types import StringType

    session.sproc.register(
        procedure_entry, name=procedure_name(database), return_type=StringType(), input_types=[StringType()],
        is_permanent=permanent, replace=True,
        stage_location=f"@{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.MODELS/procedures",
        imports=[(str(BACKEND_DIR), "backend")], packages=list(PROCEDURE_PACKAGES))
    return procedure_name(database)
