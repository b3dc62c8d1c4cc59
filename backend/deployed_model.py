"""What every deployment target shares: a version's verified model as SQL functions serve it, their names,
and the types and Arrow values they return.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from backend.errors import DeploymentError, FlurryError
from backend.identifiers import quote_ident
from backend.model_bundle import ModelBundle
from backend.registry import ModelVersion, Registry
from backend.version_records import Feature
from backend.warehouse.base import TableRef, column_kind, is_integer_type

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


def parameter_types(features: list[Feature]) -> list[str]:
    """The SQL functions' parameter types: each column's own kind (a text column read as numbers still arrives
    as text; the bundle does the reading), so SQL callers pass their columns unchanged."""
    return [_PARAMETER_TYPE.get(column_kind(f.sql_type), "VARCHAR") for f in features]


def load_bundle(registry: Registry, model_id: str) -> ModelBundle:
    """The version's verified bundle, labelling at the decision threshold in force (binary models)."""
    return with_current_threshold(registry, model_id, verified_bundle(registry, registry.get_model_version(model_id))[0])


def with_current_threshold(registry: Registry, model_id: str, bundle: ModelBundle) -> ModelBundle:
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


def probability_function(bundle: ModelBundle, function_name: str) -> str | None:
    return f"{function_name}_proba" if bundle.is_classification else None


def probability_column(bundle: ModelBundle) -> str:
    """The probability column's name: whose probability it is, for binary models ("probability_yes")."""
    if not bundle.is_binary or bundle.positive_class is None:  # older yes/no models keep their column
        return PROBABILITY_COLUMN
    slug = re.sub(r"[^a-z0-9]+", "_", str(bundle.outcome_of_interest).lower()).strip("_")[:30]
    return f"{PROBABILITY_COLUMN}_{slug}" if slug else PROBABILITY_COLUMN


def background_bytes(registry: Registry, model_id: str, bundle: ModelBundle) -> bytes | None:
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
