"""Deploying a model inside Snowflake: the bundle staged, permanent vectorized UDFs reading it, batch scoring
as one in-warehouse statement, and a Task that re-scores on a schedule.

Nothing here moves table rows out of the account: scoring is `CREATE OR REPLACE TABLE … AS SELECT fn(…)`,
which Snowflake swaps in atomically (a failed statement leaves the old table as it was).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from backend.errors import DeploymentError
from backend.identifiers import quote_ident
from backend.model_bundle import MODEL_LIBRARIES, ModelBundle
from backend.warehouse.base import METADATA_SCHEMA, ScheduledScoring, ScoreColumns, TableRef, column_kind
from backend.warehouse.snowflake_packages import channel_packages, require_channel_python, shipped_imports
from backend.warehouse.snowflake_session import snowflake_reason
from backend.warehouse.snowflake_udf import staged_handler

MODEL_STAGE = "MODELS"
BUNDLE_FILE = "bundle.pkl"
BACKGROUND_FILE = "background.parquet"
# The reasons function also computes SHAP values.
EXPLAIN_PACKAGES = ("shap",)
# Packages the UDF needs besides the model libraries (which are pinned to the versions it was trained with).
UDF_PACKAGES = ("pandas", "numpy", "pyarrow")
# Schedules offered for re-scoring: fixed cron strings, never user text, in the task's DDL.
SCHEDULES = {"hourly": "USING CRON 0 * * * * UTC", "daily": "USING CRON 0 6 * * * UTC",
             "weekly": "USING CRON 0 6 * * 1 UTC"}
BACKEND_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StagedModel:
    path: str  # @stage/model_id/bundle.pkl
    file_name: str
    sha256: str
    background_path: str | None = None  # @stage/model_id/background.parquet: the rows explanations are measured against
    background_sha256: str | None = None


def stage_name(database: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(MODEL_STAGE)}"


def function_name(database: str, name: str) -> str:
    """Scoring functions live beside Flurry's metadata: DB.FLURRY.<name> (names are plain lower-case)."""
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{name}"


def model_packages(bundle: ModelBundle) -> list[str]:
    """The UDF's channel packages: the model libraries at exactly the versions the bundle was trained with
    (FLAML, shipped through the stage, is an import instead: `model_imports`), then pandas, numpy and pyarrow
    at this installation's versions."""
    trained = [name for name in MODEL_LIBRARIES if name in bundle.versions]
    return [*channel_packages(trained, bundle.versions), *channel_packages(UDF_PACKAGES)]


def model_imports(staged: StagedModel) -> list[str | tuple[str, str]]:
    """The UDF's imports: the staged model file (and background rows), Flurry's backend package and the
    shipped packages."""
    extra = [staged.background_path] if staged.background_path else []
    return [staged.path, *extra, (str(BACKEND_DIR), "backend"), *shipped_imports()]


def stage_model(session: Any, database: str, model_id: str, content: bytes, sha256: str,
                background: bytes | None = None) -> StagedModel:
    """Put the model file (and the holdout rows its explanations are measured against) on Flurry's stage
    (which the registry's migrations created)."""
    path = f"@{stage_name(database)}/{model_id}/{BUNDLE_FILE}"
    session.file.put_stream(io.BytesIO(content), path, auto_compress=False, overwrite=True)
    if background is None:
        return StagedModel(path=path, file_name=BUNDLE_FILE, sha256=sha256)
    import hashlib

    rows_path = f"@{stage_name(database)}/{model_id}/{BACKGROUND_FILE}"
    session.file.put_stream(io.BytesIO(background), rows_path, auto_compress=False, overwrite=True)
    return StagedModel(path=path, file_name=BUNDLE_FILE, sha256=sha256, background_path=rows_path,
                       background_sha256=hashlib.sha256(background).hexdigest())


def _snowpark_type(kind: str) -> Any:
    from snowflake.snowpark import types

    return {"numeric": types.DoubleType(), "boolean": types.BooleanType(), "datetime": types.TimestampType(),
            "text": types.StringType()}.get(kind, types.StringType())


def _return_type(sql_type: str) -> Any:
    from snowflake.snowpark import types

    return {"VARCHAR": types.StringType(), "BOOLEAN": types.BooleanType(), "BIGINT": types.LongType(),
            "DOUBLE": types.DoubleType()}[sql_type]


# Rows per call of the reasons function: SHAP for 100 rows takes about a second for Flurry's tree models (the
# explain_speed benchmark), far inside the limit Snowflake sets a vectorized UDF's batch.
EXPLAIN_BATCH_ROWS = 100


def register_model_functions(session: Any, database: str, name: str, bundle: ModelBundle, staged: StagedModel,
                             prediction_type: str, *, permanent: bool = True) -> tuple[str, str | None]:
    """Create (or replace) the permanent UDFs `name`, for classifiers `name_proba`, and the reasons function
    (`flurry_explain_…`, a VARIANT per row); return the names of the first two.
    (`permanent=False` makes session-scoped ones, which Snowpark's local testing mode can register.)"""
    from snowflake.snowpark.types import PandasDataFrameType, PandasSeriesType, VariantType

    from backend.reasons import explain_function_name

    require_channel_python()
    explain_name = explain_function_name(name)

    inputs = [PandasDataFrameType([_snowpark_type(column_kind(f.sql_type)) for f in bundle.features])]
    packages = model_packages(bundle)
    common = {"input_types": inputs, "is_permanent": permanent, "replace": True,
              "stage_location": f"@{stage_name(database)}/functions",
              "imports": model_imports(staged), "packages": packages}
    try:
        session.udf.register(staged_handler(staged.file_name, staged.sha256, "predict", bundle.threshold),
                             return_type=PandasSeriesType(_return_type(prediction_type)),
                             name=function_name(database, name), **common)
        probability = None
        if bundle.is_classification:
            probability = f"{name}_proba"
            session.udf.register(staged_handler(staged.file_name, staged.sha256, "probability", bundle.threshold),
                                 return_type=PandasSeriesType(_return_type("DOUBLE")),
                                 name=function_name(database, probability), **common)
        background = ((BACKGROUND_FILE, staged.background_sha256) if staged.background_sha256 else None)
        session.udf.register(staged_handler(staged.file_name, staged.sha256, "explain", bundle.threshold, background),
                             return_type=PandasSeriesType(VariantType()), name=function_name(database, explain_name),
                             # SHAP per batch: a small batch keeps each call well inside the handler's time limit
                             max_batch_size=EXPLAIN_BATCH_ROWS,
                             **{**common, "packages": [*packages, *channel_packages(EXPLAIN_PACKAGES)]})
    except Exception as exc:  # the account's message (e.g. a package version the channel lacks) is the reason
        raise DeploymentError(f"Snowflake could not create the function {name!r}: {snowflake_reason(exc)}",
                              hint="If a package version is missing from the account's Anaconda channel, retrain "
                                   "the model in the account so it uses the versions there.") from exc
    return name, probability


def sql_string(value: str) -> str:
    """A Snowflake string literal of a value Flurry made (a version label, a timestamp), for statements that
    cannot bind (a Task's body): single quotes doubled and backslashes escaped, as "String & binary data types"
    reads escape sequences in single-quoted strings."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def timestamp_sql(stamp: pd.Timestamp) -> str:
    return f"{sql_string(stamp.strftime('%Y-%m-%d %H:%M:%S.%f'))}::TIMESTAMP_NTZ"


# SYSDATE(): "the current timestamp in the UTC time zone … TIMESTAMP_NTZ" (the embedded warehouse stamps naive UTC)
NOW_UTC = "SYSDATE()"


def served_version_sql(database: str, function: str) -> str:
    """The version a function serves when the statement runs, from Flurry's own tables: a Task that re-scores
    after a promotion stamps the version promoted, not the one scheduled."""
    meta = f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}"
    return (f"(SELECT COALESCE('v' || TO_VARCHAR(v.version_number), d.model_id) FROM {meta}.{quote_ident('deployments')} "
            f"d LEFT JOIN {meta}.{quote_ident('model_versions')} v ON v.model_id = d.model_id "
            f"WHERE d.function_name = {sql_string(function)} LIMIT 1)")


def scored_select(database: str, predict: str, probability: str | None, features: list[str], source: str,
                  columns: ScoreColumns, version_sql: str, time_sql: str) -> str:
    """`source`'s rows with the prediction, probability, version and time (names already quoted)."""
    args = ", ".join(quote_ident(f) for f in features)
    added = [f"{function_name(database, predict)}({args}) AS {quote_ident(columns.prediction)}"]
    if probability:
        added.append(f"{function_name(database, probability)}({args}) AS {quote_ident(columns.probability)}")
    added += [f"{version_sql} AS {quote_ident(columns.version)}", f"{time_sql} AS {quote_ident(columns.time)}"]
    return f"SELECT *, {', '.join(added)} FROM {source}"


def replace_sql(output: str, select: str) -> str:
    """`output` made anew from `select`, keeping the grants readers had on it (COPY GRANTS: a plain CREATE OR
    REPLACE drops them)."""
    return f"CREATE OR REPLACE TABLE {output} COPY GRANTS AS {select}"


def create_empty_sql(output: str, select: str) -> str:
    """`output` with `select`'s columns and no rows, unless it exists: what an append adds to."""
    return f"CREATE TABLE IF NOT EXISTS {output} AS {select} LIMIT 0"


def append_sql(output: str, select: str) -> str:
    return f"INSERT INTO {output} {select}"


def task_sql(database: str, task: str, warehouse: str, schedule: str, body: str) -> list[str]:
    """Statements creating the re-scoring Task suspended (Snowflake's default), then resuming it."""
    if schedule not in SCHEDULES:
        raise DeploymentError(f"Unknown schedule {schedule!r}.", hint=f"Choose one of {', '.join(SCHEDULES)}.")
    name = f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(task)}"
    return [f"CREATE OR REPLACE TASK {name} WAREHOUSE = {quote_ident(warehouse)} "
            f"SCHEDULE = '{SCHEDULES[schedule]}' AS {body}",
            f"ALTER TASK {name} RESUME"]


def scoring_target(database: str, table: TableRef) -> str:
    return f"{quote_ident(database)}.{quote_ident(table.schema)}.{quote_ident(table.name)}"


def argument_types(signature: str) -> str:
    """INFORMATION_SCHEMA's "(ARG1 FLOAT, ARG2 VARCHAR)" → "FLOAT, VARCHAR" (DROP FUNCTION names the types)."""
    return ", ".join(part.strip().split(" ", 1)[-1] for part in signature.strip().strip("()").split(",") if part.strip())


def stale_overload_drops(qualified_name: str, signatures: list[tuple[str, Any]]) -> list[str]:
    """DROP statements for every overload of a function but the one created last (signature, created)."""
    newest_first = sorted(signatures, key=lambda pair: pd.Timestamp(pair[1]), reverse=True)
    return [drop_function_sql(qualified_name, signature) for signature, _ in newest_first[1:]]


def drop_function_sql(qualified_name: str, signature: str) -> str:
    """DROP FUNCTION names the overload by its argument types."""
    return f"DROP FUNCTION IF EXISTS {qualified_name}({argument_types(signature)})"


def suspended_task(task: str, role: str, refusal: str, resume_sql: str) -> ScheduledScoring:
    """A re-scoring Task that exists but stays suspended because Snowflake refused to resume it: the reason
    names the privilege resuming needs (EXECUTE TASK, which SYSADMIN lacks by default) and what to run."""
    return ScheduledScoring(task, resumed=False, reason=(
        f"The task was created but stays suspended: Snowflake refused to resume it ({refusal}). Resuming a task "
        f"needs the EXECUTE TASK privilege: an administrator can run `GRANT EXECUTE TASK ON ACCOUNT TO ROLE "
        f"{quote_ident(role)}`, then `{resume_sql}`."))


# Snowflake's USER_TASK_TIMEOUT_MS defaults to one hour; a run's Task gets its budget and a margin for reading,
# reporting and saving, never more than a day.
TASK_TIMEOUT_MARGIN_S = 3600
TASK_TIMEOUT_MAX_MS = 86_400_000


RUN_TASK_PREFIX = "FLURRY_RUN_"


def qualified_task(database: str, name: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(name)}"


def run_task_name(database: str, run_id: str) -> str:
    """A training run's own Task (ids are `r` and hex, so the name needs no escaping beyond quoting)."""
    return qualified_task(database, RUN_TASK_PREFIX + run_id.upper())


def run_tasks_sql(database: str) -> str:
    """Every run's Task in Flurry's schema (SHOW's LIKE is case-insensitive; names are checked again after)."""
    return f"SHOW TASKS LIKE 'FLURRY_RUN_%' IN SCHEMA {quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}"


def run_task_sql(task: str, warehouse: str, budget_s: int, call: str) -> list[str]:
    """Create a run's Task (no schedule: it runs once, when executed) and execute it.

    Why a Task rather than the app's own asynchronous CALL: a CALL the warehouse-runtime app starts is a child
    job of that viewer's short-lived session, and Snowflake cancels child jobs still running when their parent
    ends ("Working with asynchronous child jobs"). EXECUTE TASK runs it "independent of the schedule" as the
    task owner's system user (EXECUTE TASK, usage notes), so the run outlives every viewer. It needs OWNERSHIP
    or OPERATE on the task, and the owner role needs USAGE on the warehouse and the global EXECUTE TASK
    privilege; a procedure called from a Task must have a warehouse (no serverless Task)."""
    timeout_ms = min(TASK_TIMEOUT_MAX_MS, (int(budget_s) + TASK_TIMEOUT_MARGIN_S) * 1000)
    return [f"CREATE OR REPLACE TASK {task} WAREHOUSE = {quote_ident(warehouse)} "
            f"USER_TASK_TIMEOUT_MS = {timeout_ms} AS {call}",
            f"EXECUTE TASK {task}"]


CANCEL_TASK_SQL = "SELECT SYSTEM$USER_TASK_CANCEL_ONGOING_EXECUTIONS(?)"  # binds the task's qualified name


def task_history_sql(database: str, run_id: str) -> str:
    """The last run of a run's Task, for the reason it ended (TASK_HISTORY takes the task's unqualified name)."""
    name = sql_string(RUN_TASK_PREFIX + run_id.upper())
    return (f'SELECT "STATE" AS "state", "ERROR_MESSAGE" AS "error" FROM TABLE({quote_ident(database)}.'
            f"INFORMATION_SCHEMA.TASK_HISTORY(TASK_NAME => {name}, RESULT_LIMIT => 1))")
