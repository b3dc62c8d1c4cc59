"""Deployment: models callable from SQL, and batch scoring of a table into a new table.

What to do lives here (names, checks, what the registry records); how, on each warehouse, in
backend.deployment_targets. The SQL function and the batch scorer both call `ModelBundle.predict` on frames
built from Arrow, so the warehouse returns exactly what the model's own `predict` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from backend.deployed_model import (
    PREDICTION_COLUMN,
    DeployedFunctions,
    deployment_model,
    load_bundle,
    probability_column,
)
from backend.deployment_targets import ScoringPlan, target_for
from backend.errors import DeploymentError, InvalidIdentifierError
from backend.identifiers import table_target_slug, validate_function_name
from backend.model_bundle import ModelBundle
from backend.model_catalog import Catalog
from backend.registry import ModelVersion, Registry
from backend.warehouse.base import ScheduledScoring, TableRef, Warehouse
from backend.warehouse.snowflake_deploy import SCHEDULES

MODEL_VERSION_COLUMN = "model_version"
SCORED_AT_COLUMN = "scored_at"


@dataclass(frozen=True)
class ScoringResult:
    table: TableRef
    rows: int
    prediction_column: str = PREDICTION_COLUMN
    probability_column: str | None = None
    scored_at_column: str | None = None  # the rows of this score carry `scored_at` here (None: in-warehouse scores)
    scored_at: pd.Timestamp | None = None


def default_function_name(version: ModelVersion) -> str:
    """`flurry_predict_<table>_<target>`, a word the two names share said once (identifiers.table_target_slug)."""
    return "flurry_predict_" + table_target_slug(version.table.name, version.target)


def _output_columns(columns: set[str], bundle: ModelBundle) -> tuple[str, str]:
    """Names for the prediction and probability columns that do not clash with the scored table's."""
    prediction = _output_column(PREDICTION_COLUMN, columns)
    return prediction, _output_column(probability_column(bundle), columns | {prediction})


def _output_column(name: str, taken: set[str]) -> str:
    lowered = {t.lower() for t in taken}
    candidate = name
    while candidate.lower() in lowered:
        candidate = f"{candidate}_flurry"
    return candidate


def deploy(warehouse: Warehouse, registry: Registry, model_id: str, function_name: str, *,
           production: bool = False) -> DeployedFunctions:
    """Make a model callable from SQL as `function_name(...)` (with `<name>_proba` for classifiers and
    `flurry_explain_…` for its reasons); `production`: these are its model's production functions.

    Raises InvalidIdentifierError for a bad name, DeploymentError when the name belongs to another
    function, ArtifactIntegrityError when the model file does not verify."""
    validate_function_name(function_name)
    target = target_for(warehouse)
    existing = {d.function_name: d for d in registry.list_deployments()}
    if function_name in existing and function_name not in {d.function_name for d in registry.function_deployments()}:
        raise InvalidIdentifierError(f"{function_name!r} is the name of a forecast's deployment.",
                                     hint="Choose another name.")
    if function_name not in existing and warehouse.function_exists(function_name):
        raise InvalidIdentifierError(f"The warehouse already has a function called {function_name!r}.",
                                     hint="Choose another name.")
    functions = target.create(registry, model_id, function_name, production=production)
    registry.upsert_deployment(function_name, model_id)
    return functions


def change_threshold(warehouse: Warehouse, registry: Registry, model_id: str, threshold: float, how: str,
                     detail: dict[str, object] | None = None) -> list[str]:
    """Put a new decision threshold in force for a binary version and re-create every SQL function deployed
    from it, so they label at the new threshold; return those functions' names.
    Raises InvalidTrainingOptionError for a version without thresholds or a value outside [0, 1]."""
    previous = registry.threshold(model_id)
    registry.set_threshold(model_id, threshold, how, dict(detail or {}))
    redeployed: list[str] = []
    production = Catalog(registry).model_of(model_id).function_name
    try:
        for deployment in registry.list_deployments(model_id):
            deploy(warehouse, registry, model_id, deployment.function_name,
                   production=deployment.function_name == production)
            redeployed.append(deployment.function_name)
    except Exception:
        # a function that could not be re-created still labels at the old threshold: put it back in force
        # (and re-create those already changed), so what the registry says is what SQL does
        if previous is not None and previous.how not in ("legacy", "unvalidated"):
            registry.set_threshold(model_id, previous.threshold, previous.how, previous.detail)
            for name in redeployed:
                deploy(warehouse, registry, model_id, name)
        raise
    return redeployed


def restore_deployments(warehouse: Warehouse, registry: Registry) -> list[str]:
    """Bring back every recorded deployment on this connection (after a restart); return the names restored.
    A deployment whose model cannot be loaded gets functions that refuse every call with the reason."""
    return target_for(warehouse).restore(registry)


def refuse_calls(warehouse: Warehouse, registry: Registry, function_name: str, model_id: str, reason: str) -> None:
    """Make a deployment's functions fail every call with `reason` (a broken model version)."""
    target_for(warehouse).refuse(registry, function_name, model_id, reason)


def score_table(warehouse: Warehouse, registry: Registry, function_name: str, source: TableRef,
                output: TableRef, *, overwrite: bool = False, append: bool = False,
                progress: Callable[[int, int], bool] | None = None) -> ScoringResult:
    """Score every row of `source` into `output`: its columns, the prediction and probability, the model
    version that scored it and when.

    The output is written to a staging table first, then swapped in (or, with `append`, its rows added to
    `output` in one transaction), so a failure or a stop leaves any old output intact. `progress(done,
    total)` is told after each batch and stops the score by returning False (ScoringStopped).
    Raises DeploymentError when `output` exists and neither `overwrite` nor `append` is set, or `output` is
    `source`."""
    plan = _scoring_plan(warehouse, registry, function_name, source, output, progress=progress, append=append)
    if warehouse.table_exists(output) and not (overwrite or append):
        raise DeploymentError(f"The table {output} already exists.",
                              hint="Choose another name, tick 'Replace it' to overwrite it, or add the new scores "
                                   "to it.")
    scored = target_for(warehouse).score(plan)
    probability = plan.probability_column if plan.bundle.is_classification else None
    time_column = plan.time_column if scored.scored_at is not None else None
    registry.record_scoring(function_name, output, scored.rows, (plan.prediction_column, probability, time_column))
    return ScoringResult(output, scored.rows, plan.prediction_column, probability, time_column, scored.scored_at)


def _scoring_plan(warehouse: Warehouse, registry: Registry, function_name: str, source: TableRef, output: TableRef,
                  *, progress: Callable[[int, int], bool] | None = None, append: bool = False) -> ScoringPlan:
    """The score's settled names. Raises DeploymentError for an unknown function, `output` equal to `source`,
    or a source lacking the model's inputs."""
    model_id = deployment_model(registry, function_name)
    if (output.schema, output.name.lower()) == (source.schema, source.name.lower()):
        raise DeploymentError("The scores cannot overwrite the table being scored.", hint="Choose a new table name.")
    bundle = load_bundle(registry, model_id)
    columns = [c.name for c in warehouse.describe(source)]
    missing = [f for f in bundle.feature_names if f not in columns]
    if missing:
        raise DeploymentError(f"The table {source} lacks the model's input column(s): {', '.join(missing)}.",
                              hint="Score a table with the same columns as the training table.")
    pred_col, proba_col = _output_columns(set(columns), bundle)
    version_col = _output_column(MODEL_VERSION_COLUMN, set(columns) | {pred_col, proba_col})
    time_col = _output_column(SCORED_AT_COLUMN, set(columns) | {pred_col, proba_col, version_col})
    return ScoringPlan(function_name, bundle, registry.get_model_version(model_id).label, source, output, columns,
                       pred_col, proba_col, version_col, time_col, append, progress)


SCHEDULE_CHOICES = tuple(SCHEDULES)  # offered where the warehouse has a scheduler


def schedule_scoring(warehouse: Warehouse, registry: Registry, function_name: str, source: TableRef,
                     output: TableRef, schedule: str, *, append: bool = False) -> ScheduledScoring:
    """Re-score `source` into `output` on a schedule inside the warehouse (Snowflake Tasks), re-creating it or
    (`append`) adding each run's rows: the task, and whether it runs or stays suspended (and why).
    Raises DeploymentError where the warehouse has no scheduler or the function is unknown."""
    plan = _scoring_plan(warehouse, registry, function_name, source, output, append=append)
    return target_for(warehouse).schedule(plan, schedule)
