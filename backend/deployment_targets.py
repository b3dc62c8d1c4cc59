"""Where deployed models run: one small interface, an embedded and a Snowflake implementation.

- Embedded (DuckDB): Python functions registered on the app's own connection, gone when it closes (so
  restored at every open); batch scores stream through the app in Arrow batches, into a staging table swapped
  in at the end; schedules are the app's own (backend.schedules).
- Snowflake: permanent vectorised UDFs created from the staged, checksummed model; scores are one
  `CREATE TABLE … AS SELECT` in the warehouse; schedules are Tasks; each production version is the Model
  Registry's default version and carries the PROD alias.

`backend.deploy` says what to do (names, checks, records); a target says how, on its warehouse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from backend.deployed_model import (
    DeployedFunctions,
    background_bytes,
    explain_sql_type,
    explanation_background,
    load_bundle,
    parameter_types,
    predicted_class_probability,
    prediction_sql_type,
    predictions_to_arrow,
    probability_function,
    verified_bundle,
    with_current_threshold,
)
from backend.errors import DeploymentError, FlurryError
from backend.model_bundle import ModelBundle
from backend.model_catalog import Catalog
from backend.reasons import explain_batch, explain_function_name
from backend.registry import Registry
from backend.warehouse.base import (
    PythonFunctionHost,
    ScheduledScoring,
    ScoreColumns,
    StagedModelHost,
    TableRef,
    Warehouse,
)
from backend.warehouse.snowflake_model_registry import registry_version_name

logger = logging.getLogger(__name__)

SCORING_BATCH_ROWS = 100_000
PRODUCTION_ALIAS = "PROD"


class ScoringStopped(FlurryError):
    """A batch score was stopped before it finished; the previous output is as it was."""


@dataclass(frozen=True)
class ScoringPlan:
    """One batch score, its names already settled: what scores, what is read, and the columns written."""

    function_name: str
    bundle: ModelBundle
    version_label: str
    source: TableRef
    output: TableRef
    columns: list[str]  # the source's, all copied to the output
    prediction_column: str
    probability_column: str
    version_column: str
    time_column: str
    append: bool = False
    progress: Callable[[int, int], bool] | None = None  # told (done, total) per batch; False stops the score

    @property
    def score_columns(self) -> ScoreColumns:
        return ScoreColumns(self.prediction_column, self.probability_column, self.version_column, self.time_column,
                            self.version_label)


@dataclass(frozen=True)
class Scored:
    rows: int
    scored_at: pd.Timestamp | None  # None when the warehouse stamps its own rows


class DeploymentTarget(Protocol):
    def create(self, registry: Registry, model_id: str, function_name: str, *, production: bool = False
               ) -> DeployedFunctions:
        """Make the version callable as `function_name(…)` with its `_proba` and `_explain` companions;
        `production`: these are the model's production functions."""

    def restore(self, registry: Registry) -> list[str]:
        """Bring back every recorded deployment on a new connection; the names restored."""

    def refuse(self, registry: Registry, function_name: str, model_id: str, reason: str) -> None:
        """Replace a deployment's functions with ones that fail every call with `reason`."""

    def score(self, plan: ScoringPlan) -> Scored:
        """Score `plan.source` into `plan.output`, leaving any old output intact on failure."""

    def schedule(self, plan: ScoringPlan, schedule: str) -> ScheduledScoring:
        """Re-score on a schedule run by the warehouse itself."""


def target_for(warehouse: Warehouse) -> DeploymentTarget:
    """The deployment target of `warehouse`. Raises DeploymentError for one that hosts no Python functions."""
    if warehouse.capabilities.staged_functions:
        return SnowflakeTarget(warehouse)
    if warehouse.capabilities.python_udfs:
        return EmbeddedTarget(warehouse)
    raise DeploymentError("This warehouse cannot host Python functions yet.")


def make_handlers(bundle: ModelBundle, background: pd.DataFrame | None = None) -> dict[str, Callable[..., pa.Array]]:
    """Vectorised Arrow handlers: arguments arrive as one Arrow array per feature, in feature order.
    `background` (stored holdout rows) is what explanations are measured against where the explainer needs
    rows (blends, sample-based SHAP), the same rows the Evaluate page uses."""
    names = bundle.feature_names
    out_type = prediction_sql_type(bundle)

    def to_frame(arrays: tuple[pa.Array, ...]) -> pd.DataFrame:
        return pd.DataFrame({name: arr.to_pandas() for name, arr in zip(names, arrays, strict=True)})

    def predict(*arrays: pa.Array) -> pa.Array:
        return predictions_to_arrow(bundle.predict(to_frame(arrays)), out_type)

    handlers: dict[str, Callable[..., pa.Array]] = {"predict": predict}
    if bundle.is_classification:
        def probability(*arrays: pa.Array) -> pa.Array:
            return pa.array(predicted_class_probability(bundle, to_frame(arrays)), type=pa.float64())

        handlers["probability"] = probability

    def explain(*arrays: pa.Array) -> pa.Array:
        rows = explain_batch(bundle, to_frame(arrays), background, bundle.target)
        return pa.StructArray.from_arrays(
            [predictions_to_arrow(np.asarray([r.prediction for r in rows], dtype=object), out_type),
             pa.array([r.probability for r in rows], type=pa.float64()),
             pa.array([r.reasons for r in rows], type=pa.list_(pa.string()))],
            names=["prediction", "probability", "reasons"])

    handlers["explain"] = explain
    return handlers


class EmbeddedTarget:
    """Python functions on the app's DuckDB connection; scores streamed through the app."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # its capabilities say it hosts Python functions (the allow-list's guard forwards them)
        self.functions = cast(PythonFunctionHost, warehouse)

    def create(self, registry: Registry, model_id: str, function_name: str, *, production: bool = False
               ) -> DeployedFunctions:
        return self._register(load_bundle(registry, model_id), function_name, explanation_background(registry, model_id))

    def _register(self, bundle: ModelBundle, function_name: str, background: pd.DataFrame | None
                  ) -> DeployedFunctions:
        handlers = make_handlers(bundle, background)
        params = parameter_types(bundle.features)
        self.functions.register_function(function_name, handlers["predict"], params, prediction_sql_type(bundle))
        probability_name = probability_function(bundle, function_name)
        if probability_name is not None:
            self.functions.register_function(probability_name, handlers["probability"], params, "DOUBLE")
        explain_name = explain_function_name(function_name)
        self.functions.register_function(explain_name, handlers["explain"], params, explain_sql_type(bundle))
        return DeployedFunctions(predict=function_name, probability=probability_name, explain=explain_name)

    def restore(self, registry: Registry) -> list[str]:
        """A deployment whose model cannot be loaded gets functions that refuse every call with the reason,
        rather than vanishing."""
        restored = []
        for deployment in registry.function_deployments():
            try:
                bundle = load_bundle(registry, deployment.model_id)
            except Exception as exc:  # a damaged or unloadable artifact: say so when the function is called
                logger.warning("deployed function %s refuses calls: %s", deployment.function_name, exc)
                self.refuse(registry, deployment.function_name, deployment.model_id, str(exc))
                continue
            try:
                self._register(bundle, deployment.function_name, explanation_background(registry, deployment.model_id))
                restored.append(deployment.function_name)
            except FlurryError:
                logger.exception("could not restore deployed function %s", deployment.function_name)
        return restored

    def refuse(self, registry: Registry, function_name: str, model_id: str, reason: str) -> None:
        try:
            version = registry.get_model_version(model_id)
        except FlurryError:
            return
        params = parameter_types(version.features)
        message = (f"Flurry will not score with model version {model_id}: {reason} Roll back to an earlier version "
                   "on the Deploy step, or retrain the model.")

        def refuse(*arrays: pa.Array) -> pa.Array:
            raise DeploymentError(message)

        self.functions.register_function(function_name, refuse, params, "VARCHAR")
        if version.task != "regression":
            self.functions.register_function(f"{function_name}_proba", refuse, params, "DOUBLE")
        self.functions.register_function(explain_function_name(function_name), refuse, params, "VARCHAR")

    def score(self, plan: ScoringPlan) -> Scored:
        bundle, out_type = plan.bundle, prediction_sql_type(plan.bundle)
        total = self.warehouse.row_count(plan.source)
        stamp = pd.Timestamp.now(tz="UTC").tz_localize(None)
        made: dict[pa.DataType, pa.Array] = {}

        def constant(value: object, kind: pa.DataType, rows: int) -> pa.Array:
            """`value` repeated `rows` times, built once per score and sliced (every batch but the last is full)."""
            if kind not in made or len(made[kind]) < rows:
                made[kind] = pa.array([value] * max(rows, SCORING_BATCH_ROWS), type=kind)
            return made[kind].slice(0, rows)

        def scored_batches() -> Iterator[pa.RecordBatch]:
            done = 0
            for batch in self.warehouse.scan_batches(plan.source, plan.columns, SCORING_BATCH_ROWS):
                frame = batch.to_pandas()
                arrays = [*list(batch.columns), predictions_to_arrow(bundle.predict(frame), out_type)]
                names = [*list(batch.schema.names), plan.prediction_column]
                if bundle.is_classification:
                    arrays.append(pa.array(predicted_class_probability(bundle, frame), type=pa.float64()))
                    names.append(plan.probability_column)
                arrays += [constant(plan.version_label, pa.string(), batch.num_rows),
                           constant(stamp, pa.timestamp("us"), batch.num_rows)]
                names += [plan.version_column, plan.time_column]
                yield pa.RecordBatch.from_arrays(arrays, names=names)
                done += batch.num_rows
                if plan.progress is not None and not plan.progress(done, total):
                    raise ScoringStopped(f"Scoring {plan.source} was stopped after {done:,} of {total:,} rows.",
                                         hint=f"Nothing was written: {plan.output} is as it was.")

        self.warehouse.ensure_schema(plan.output.schema)
        write = self.warehouse.append_table_from_batches if plan.append else self.warehouse.replace_table_from_batches
        return Scored(write(plan.output, scored_batches()), stamp)

    def schedule(self, plan: ScoringPlan, schedule: str) -> ScheduledScoring:
        raise DeploymentError("The embedded warehouse has no scheduler of its own.",
                              hint="Add a schedule under 'Score on a schedule': Flurry runs it while the app runs, "
                                   "and `python -m backend.score` runs it from the system's cron.")


class SnowflakeTarget:
    """Permanent UDFs from the staged model, scores and schedules inside the warehouse, the Model Registry."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # its capabilities say it hosts staged models (the allow-list's guard forwards them)
        self.models = cast(StagedModelHost, warehouse)

    def create(self, registry: Registry, model_id: str, function_name: str, *, production: bool = False
               ) -> DeployedFunctions:
        version = registry.get_model_version(model_id)
        bundle, content = verified_bundle(registry, version)
        bundle = with_current_threshold(registry, model_id, bundle)
        prediction_type = prediction_sql_type(bundle)
        predict, probability = self.models.deploy_model_functions(
            function_name, bundle, content, version.sha256, model_id, prediction_type,
            background_bytes(registry, model_id, bundle))
        # one registry model per Flurry model, named like its production function, its versions V<n>
        catalog = Catalog(registry)
        named, number = catalog.model_of(model_id), catalog.version(model_id).number
        default = version.report.default_threshold if version.report is not None else None
        logged, note = self.models.log_model_version(
            named.function_name, registry_version_name(number, bundle.threshold, default), bundle, content,
            version.sha256, model_id, prediction_type, version.metrics.finite_scores(),
            alias=PRODUCTION_ALIAS if production else None)
        return DeployedFunctions(predict=predict, probability=probability, registry_version=logged,
                                 registry_note=note, explain=explain_function_name(function_name))

    def restore(self, registry: Registry) -> list[str]:
        return []  # permanent functions outlive the app

    def refuse(self, registry: Registry, function_name: str, model_id: str, reason: str) -> None:
        pass  # the staged functions check the model file's sha256 when they load it, and refuse by themselves

    def score(self, plan: ScoringPlan) -> Scored:
        self.warehouse.ensure_schema(plan.output.schema)
        stamp = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us")
        rows = self.models.score_into(plan.function_name, probability_function(plan.bundle, plan.function_name),
                                         plan.bundle.feature_names, plan.source, plan.output, plan.score_columns,
                                         stamp, append=plan.append)
        return Scored(rows, stamp)

    def schedule(self, plan: ScoringPlan, schedule: str) -> ScheduledScoring:
        self.warehouse.ensure_schema(plan.output.schema)
        return self.models.schedule_scoring(f"{plan.function_name}_rescore", plan.function_name,
                                               probability_function(plan.bundle, plan.function_name),
                                               plan.bundle.feature_names, plan.source, plan.output,
                                               plan.score_columns, schedule, append=plan.append)
