"""Deployment: models callable from SQL, and batch scoring of a table into a new table.

The SQL function and the batch scorer both call `ModelBundle.predict` on frames built from Arrow, so the
warehouse returns exactly what the model's own `predict` returns.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from backend.errors import DeploymentError, FlurryError, InvalidIdentifierError
from backend.identifiers import quote_ident, slugify, validate_function_name
from backend.model_bundle import ModelBundle
from backend.reasons import explain_batch, explain_function_name
from backend.registry import ModelVersion, Registry
from backend.warehouse.base import ScheduledScoring, TableRef, Warehouse, column_kind, is_integer_type
from backend.warehouse.snowflake_deploy import SCHEDULES

logger = logging.getLogger(__name__)

SCORING_BATCH_ROWS = 100_000
PREDICTION_COLUMN = "prediction"
PROBABILITY_COLUMN = "probability"

_PARAMETER_TYPE = {"numeric": "DOUBLE", "text": "VARCHAR", "boolean": "BOOLEAN", "datetime": "TIMESTAMP"}


@dataclass(frozen=True)
class DeployedFunctions:
    predict: str
    probability: str | None
    registry_version: str | None = None  # "MODEL VERSION" in the warehouse's model registry, when logged there
    registry_note: str | None = None  # why it was not, when the warehouse has a registry
    explain: str | None = None  # the reasons function, where the warehouse has one

    def example_sql(self, bundle_features: list[str], table: TableRef) -> str:
        args = ", ".join(quote_ident(f) for f in bundle_features)
        source = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
        cols = [f"{self.predict}({args}) AS {PREDICTION_COLUMN}"]
        if self.probability:
            cols.append(f"{self.probability}({args}) AS {PROBABILITY_COLUMN}")
        if self.explain:
            cols.append(f"{self.explain}({args}) AS reasons")
        return "SELECT *,\n       " + ",\n       ".join(cols) + f"\nFROM {source}\nLIMIT 10;"


@dataclass(frozen=True)
class ScoringResult:
    table: TableRef
    rows: int
    prediction_column: str = PREDICTION_COLUMN
    probability_column: str | None = None
    scored_at_column: str | None = None  # the rows of this score carry `scored_at` here (None: in-warehouse scores)
    scored_at: pd.Timestamp | None = None


def default_function_name(version: ModelVersion) -> str:
    return f"flurry_predict_{slugify(version.table.name, max_length=20)}_{slugify(version.target, max_length=20)}"


def prediction_sql_type(bundle: ModelBundle) -> str:
    """The SQL type of a prediction: the target's own kind for classes, DOUBLE for regression."""
    if not bundle.is_classification:
        return "DOUBLE"
    kind = column_kind(bundle.target_sql_type)
    if kind == "text":
        return "VARCHAR"
    if kind == "boolean":
        return "BOOLEAN"
    return "BIGINT" if is_integer_type(bundle.target_sql_type) else "DOUBLE"


def _arrow_type(sql_type: str) -> pa.DataType:
    return {"VARCHAR": pa.string(), "BOOLEAN": pa.bool_(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}[sql_type]


def predictions_to_arrow(values: np.ndarray, sql_type: str) -> pa.Array:
    return pa.array(pd.Series(values).tolist(), type=_arrow_type(sql_type))


def predicted_class_probability(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """What the probability function and column hold: the outcome of interest's (binary) or the predicted
    class's (multiclass)."""
    return bundle.output_probability(frame) if len(frame) else np.array([], dtype=float)


def explain_sql_type(bundle: ModelBundle) -> str:
    """What `flurry_explain_…` returns: the prediction, its probability (classifiers) and the top reasons."""
    return f"STRUCT(prediction {prediction_sql_type(bundle)}, probability DOUBLE, reasons VARCHAR[])"


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


def load_bundle(registry: Registry, model_id: str) -> ModelBundle:
    """The version's verified bundle, labelling at the decision threshold in force (binary models)."""
    return _with_current_threshold(registry, model_id, verified_bundle(registry, registry.get_model_version(model_id))[0])


def _with_current_threshold(registry: Registry, model_id: str, bundle: ModelBundle) -> ModelBundle:
    threshold = registry.threshold(model_id)
    if threshold is None or threshold.how == "legacy":
        return bundle
    return bundle.with_threshold(threshold.threshold)


def verified_bundle(registry: Registry, version: ModelVersion) -> tuple[ModelBundle, bytes]:
    """The version's bundle and its file's bytes, after the bytes were checked against the recorded sha256."""
    content = registry.get_artifact(version.model_id, "bundle", expected_sha256=version.sha256)
    return ModelBundle.from_verified_bytes(content, version.sha256), content


def deployment_model(registry: Registry, function_name: str) -> str:
    """The model id behind a deployed function. Raises DeploymentError for an unknown name."""
    deployment = next((d for d in registry.list_deployments() if d.function_name == function_name), None)
    if deployment is None:
        raise DeploymentError(f"No deployed model is called {function_name!r}.", hint="Deploy the model first.")
    return deployment.model_id


def _probability_function(bundle: ModelBundle, function_name: str) -> str | None:
    return f"{function_name}_proba" if bundle.is_classification else None


def probability_column(bundle: ModelBundle) -> str:
    """The probability column's name: whose probability it is, for binary models ("probability_yes")."""
    if not bundle.is_binary or bundle.positive_class is None:  # older yes/no models keep their column
        return PROBABILITY_COLUMN
    slug = re.sub(r"[^a-z0-9]+", "_", str(bundle.outcome_of_interest).lower()).strip("_")[:30]
    return f"{PROBABILITY_COLUMN}_{slug}" if slug else PROBABILITY_COLUMN


def _output_columns(columns: set[str], bundle: ModelBundle) -> tuple[str, str]:
    """Names for the prediction and probability columns that do not clash with the scored table's."""
    prediction = _output_column(PREDICTION_COLUMN, columns)
    return prediction, _output_column(probability_column(bundle), columns | {prediction})


def register_functions(warehouse: Warehouse, bundle: ModelBundle, function_name: str,
                       background: pd.DataFrame | None = None) -> DeployedFunctions:
    handlers = make_handlers(bundle, background)
    # Parameters take the column's own SQL type (a text column read as numbers still arrives as text; the
    # bundle does the reading), so SQL callers pass their columns unchanged.
    params = [_PARAMETER_TYPE.get(column_kind(f["sql_type"]), "VARCHAR") for f in bundle.features]
    warehouse.register_function(function_name, handlers["predict"], params, prediction_sql_type(bundle))
    probability_name = _probability_function(bundle, function_name)
    if probability_name is not None:
        warehouse.register_function(probability_name, handlers["probability"], params, "DOUBLE")
    explain_name = explain_function_name(function_name)
    warehouse.register_function(explain_name, handlers["explain"], params, explain_sql_type(bundle))
    return DeployedFunctions(predict=function_name, probability=probability_name, explain=explain_name)


def _background_bytes(registry: Registry, model_id: str, bundle: ModelBundle) -> bytes | None:
    """The background rows' model columns as Parquet, for a staged reasons function."""
    frame = explanation_background(registry, model_id)
    if frame is None:
        return None
    buffer = io.BytesIO()
    frame[[c for c in bundle.feature_names if c in frame.columns]].to_parquet(buffer, index=False)
    return buffer.getvalue()


def explanation_background(registry: Registry, model_id: str) -> pd.DataFrame | None:
    """The version's stored holdout rows (verified), which explanations are measured against; None for a
    version stored without them."""
    try:
        content = registry.get_artifact(model_id, "holdout")
    except FlurryError:
        return None
    return pd.read_parquet(io.BytesIO(content))


def deploy(warehouse: Warehouse, registry: Registry, model_id: str, function_name: str) -> DeployedFunctions:
    """Make a model callable from SQL as `function_name(...)` (and `<name>_proba` for classifiers).

    Raises InvalidIdentifierError for a bad name, DeploymentError when the name belongs to another
    function, ArtifactIntegrityError when the model file does not verify."""
    validate_function_name(function_name)
    if not (warehouse.capabilities.python_udfs or warehouse.capabilities.staged_functions):
        raise DeploymentError("This warehouse cannot host Python functions yet.")
    existing = {d.function_name: d for d in registry.list_deployments()}
    if function_name not in existing and warehouse.function_exists(function_name):
        raise InvalidIdentifierError(f"The warehouse already has a function called {function_name!r}.",
                                     hint="Choose another name.")
    if warehouse.capabilities.staged_functions:
        version = registry.get_model_version(model_id)
        bundle, content = verified_bundle(registry, version)
        bundle = _with_current_threshold(registry, model_id, bundle)
        prediction_type = prediction_sql_type(bundle)
        background = _background_bytes(registry, model_id, bundle)
        predict, probability = warehouse.deploy_model_functions(function_name, bundle, content, version.sha256,
                                                                model_id, prediction_type, background)
        logged, note = warehouse.log_model_version(function_name, bundle, content, version.sha256, model_id,
                                                   prediction_type, version.metrics)
        functions = DeployedFunctions(predict=predict, probability=probability, registry_version=logged,
                                      registry_note=note, explain=explain_function_name(function_name))
    else:
        functions = register_functions(warehouse, load_bundle(registry, model_id), function_name,
                                       explanation_background(registry, model_id))
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
    try:
        for deployment in registry.list_deployments(model_id):
            deploy(warehouse, registry, model_id, deployment.function_name)
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
    """Register every recorded deployment on this connection (after a restart); return the names restored.
    A deployment whose model cannot be loaded gets functions that refuse every call with the reason, rather
    than vanishing. Permanent (staged) functions outlive the app, so there is nothing to restore for them."""
    if not warehouse.capabilities.python_udfs:
        return []
    restored = []
    for deployment in registry.list_deployments():
        try:
            bundle = load_bundle(registry, deployment.model_id)
        except Exception as exc:  # a damaged or unloadable artifact: say so when the function is called
            logger.warning("deployed function %s refuses calls: %s", deployment.function_name, exc)
            register_refusing_functions(warehouse, registry, deployment.function_name, deployment.model_id,
                                        str(exc))
            continue
        try:
            register_functions(warehouse, bundle, deployment.function_name,
                               explanation_background(registry, deployment.model_id))
            restored.append(deployment.function_name)
        except FlurryError:
            logger.exception("could not restore deployed function %s", deployment.function_name)
    return restored


def register_refusing_functions(warehouse: Warehouse, registry: Registry, function_name: str, model_id: str,
                                reason: str) -> None:
    """Functions under a deployment's names whose every call fails with `reason` (a broken model version)."""
    try:
        version = registry.get_model_version(model_id)
    except FlurryError:
        return
    params = [_PARAMETER_TYPE.get(column_kind(f["sql_type"]), "VARCHAR") for f in version.features]
    message = (f"Flurry will not score with model version {model_id}: {reason} Roll back to an earlier version "
               "on the Deploy step, or retrain the model.")

    def refuse(*arrays: pa.Array) -> pa.Array:
        raise DeploymentError(message)

    warehouse.register_function(function_name, refuse, params, "VARCHAR")
    if version.task != "regression":
        warehouse.register_function(f"{function_name}_proba", refuse, params, "DOUBLE")
    warehouse.register_function(explain_function_name(function_name), refuse, params, "VARCHAR")


def _output_column(name: str, taken: set[str]) -> str:
    lowered = {t.lower() for t in taken}
    candidate = name
    while candidate.lower() in lowered:
        candidate = f"{candidate}_flurry"
    return candidate


class ScoringStopped(FlurryError):
    """A batch score was stopped before it finished; the previous output is as it was."""


MODEL_VERSION_COLUMN = "model_version"
SCORED_AT_COLUMN = "scored_at"


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
    model_id = deployment_model(registry, function_name)
    if (output.schema, output.name.lower()) == (source.schema, source.name.lower()):
        raise DeploymentError("The scores cannot overwrite the table being scored.", hint="Choose a new table name.")
    if warehouse.table_exists(output) and not (overwrite or append):
        raise DeploymentError(f"The table {output} already exists.",
                              hint="Choose another name, tick 'Replace it' to overwrite it, or add the new scores "
                                   "to it.")
    version = registry.get_model_version(model_id)
    label = version.label
    bundle = load_bundle(registry, model_id)
    columns = [c.name for c in warehouse.describe(source)]
    missing = [f for f in bundle.feature_names if f not in columns]
    if missing:
        raise DeploymentError(f"The table {source} lacks the model's input column(s): {', '.join(missing)}.",
                              hint="Score a table with the same columns as the training table.")
    pred_col, proba_col = _output_columns(set(columns), bundle)
    version_col = _output_column(MODEL_VERSION_COLUMN, set(columns) | {pred_col, proba_col})
    time_col = _output_column(SCORED_AT_COLUMN, set(columns) | {pred_col, proba_col, version_col})
    out_type = prediction_sql_type(bundle)
    if warehouse.capabilities.staged_functions:  # scored where the rows are, in one statement
        warehouse.ensure_schema(output.schema)
        rows = warehouse.score_into(function_name, _probability_function(bundle, function_name),
                                    bundle.feature_names, source, output, pred_col, proba_col)
        probability = proba_col if bundle.is_classification else None
        registry.record_scoring(function_name, output, rows, (pred_col, probability, None))
        return ScoringResult(output, rows, pred_col, probability)
    total = warehouse.row_count(source)
    stamp = pd.Timestamp.now(tz="UTC").tz_localize(None)

    made: dict[pa.DataType, pa.Array] = {}

    def constant(value: object, kind: pa.DataType, rows: int) -> pa.Array:
        """`value` repeated `rows` times, built once per score and sliced (every batch but the last is full)."""
        if kind not in made or len(made[kind]) < rows:
            made[kind] = pa.array([value] * max(rows, SCORING_BATCH_ROWS), type=kind)
        return made[kind].slice(0, rows)

    def scored_batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in warehouse.scan_batches(source, columns, SCORING_BATCH_ROWS):
            frame = batch.to_pandas()
            arrays = [*list(batch.columns), predictions_to_arrow(bundle.predict(frame), out_type)]
            names = [*list(batch.schema.names), pred_col]
            if bundle.is_classification:
                arrays.append(pa.array(predicted_class_probability(bundle, frame), type=pa.float64()))
                names.append(proba_col)
            arrays += [constant(label, pa.string(), batch.num_rows), constant(stamp, pa.timestamp("us"), batch.num_rows)]
            names += [version_col, time_col]
            yield pa.RecordBatch.from_arrays(arrays, names=names)
            done += batch.num_rows
            if progress is not None and not progress(done, total):
                raise ScoringStopped(f"Scoring {source} was stopped after {done:,} of {total:,} rows.",
                                     hint=f"Nothing was written: {output} is as it was.")

    warehouse.ensure_schema(output.schema)
    write = warehouse.append_table_from_batches if append else warehouse.replace_table_from_batches
    rows = write(output, scored_batches())
    probability = proba_col if bundle.is_classification else None
    registry.record_scoring(function_name, output, rows, (pred_col, probability, time_col))
    return ScoringResult(output, rows, pred_col, probability, time_col, stamp)


SCHEDULE_CHOICES = tuple(SCHEDULES)  # offered where the warehouse has a scheduler


def schedule_scoring(warehouse: Warehouse, registry: Registry, function_name: str, source: TableRef,
                     output: TableRef, schedule: str) -> ScheduledScoring:
    """Re-score `source` into `output` on a schedule inside the warehouse (Snowflake Tasks): the task, and
    whether it runs or stays suspended (and why).
    Raises DeploymentError where the warehouse has no scheduler or the function is unknown."""
    if not warehouse.capabilities.staged_functions:
        raise DeploymentError("Scheduled scoring needs a warehouse with a scheduler (Snowflake).",
                              hint="Score the table from this page when you need fresh scores.")
    bundle = load_bundle(registry, deployment_model(registry, function_name))
    pred_col, proba_col = _output_columns({c.name for c in warehouse.describe(source)}, bundle)
    return warehouse.schedule_scoring(f"{function_name}_rescore", function_name,
                                      _probability_function(bundle, function_name), bundle.feature_names,
                                      source, output, pred_col, proba_col, schedule)
