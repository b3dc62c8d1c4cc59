"""The handler behind Flurry's scoring functions in Snowflake: a vectorized Python UDF.

Snowflake calls it with batches of rows as a pandas DataFrame whose columns are the function's arguments
in order. The model bundle is a staged file imported into the UDF; it is loaded once per Python process,
only if its bytes match the sha256 Flurry recorded, and only under the library versions it was trained
with. Pure functions of a frame, so they are tested directly on pandas (local testing mode would call a
vectorized UDF row by row).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from backend.errors import ArtifactIntegrityError
from backend.model_bundle import ModelBundle, incompatible_versions, library_versions

# In Snowflake, Python logging reaches the event table set for the account or database ("Logging from Python
# handler code"): why a function refused to load its model is readable there, beside the query's error.
logger = logging.getLogger("flurry.udf")


def import_directory() -> Path:
    """Where Snowflake puts a UDF's IMPORTS (the staged model file among them)."""
    return Path(sys._xoptions.get("snowflake_import_directory", "."))  # type: ignore[attr-defined]


@functools.cache
def load_staged_bundle(directory: str, file_name: str, sha256: str) -> ModelBundle:
    """The bundle in `directory/file_name`, verified against `sha256` and this runtime's library versions."""
    bundle = ModelBundle.from_verified_bytes((Path(directory) / file_name).read_bytes(), sha256)
    problems = incompatible_versions(bundle.versions, library_versions())
    if problems:
        logger.error("model %s refused: library versions differ: %s", file_name, "; ".join(problems))
        raise ArtifactIntegrityError(
            "This model was trained with other library versions than this Snowflake runtime has: "
            + "; ".join(problems), hint="Retrain the model with the packages the account provides.")
    return bundle


def as_feature_frame(bundle: ModelBundle, arguments: pd.DataFrame) -> pd.DataFrame:
    """Name the UDF's positional argument columns after the model's features."""
    if arguments.shape[1] != len(bundle.features):
        raise ValueError(f"expected {len(bundle.features)} arguments, got {arguments.shape[1]}")
    frame = arguments.copy(deep=False)
    frame.columns = bundle.feature_names
    return frame


def predict_batch(bundle: ModelBundle, arguments: pd.DataFrame) -> pd.Series:
    """Predicted label or value per row (what `ModelBundle.predict` returns, as a Series)."""
    predictions = bundle.predict(as_feature_frame(bundle, arguments))
    return pd.Series(predictions, index=arguments.index)


def probability_batch(bundle: ModelBundle, arguments: pd.DataFrame) -> pd.Series:
    """The probability of the outcome of interest (binary) or of the predicted class (multiclass) per row."""
    frame = as_feature_frame(bundle, arguments)
    return pd.Series(bundle.output_probability(frame) if len(frame) else np.zeros(0), index=arguments.index)


@functools.cache
def load_staged_background(directory: str, file_name: str, sha256: str) -> pd.DataFrame:
    """The staged holdout rows explanations are measured against, verified against `sha256`."""
    import hashlib
    import io

    content = (Path(directory) / file_name).read_bytes()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ArtifactIntegrityError("The staged background rows of this model do not match their checksum.",
                                     hint="Deploy the model again.")
    return pd.read_parquet(io.BytesIO(content))


def explain_batch_frame(bundle: ModelBundle, arguments: pd.DataFrame, background: pd.DataFrame | None
                        ) -> pd.Series:
    """Per row a JSON object (Snowflake VARIANT): the prediction, its probability and the top reasons."""
    from backend.reasons import explain_batch

    rows = explain_batch(bundle, as_feature_frame(bundle, arguments), background, bundle.target)
    return pd.Series([{"prediction": r.prediction, "probability": r.probability, "reasons": r.reasons}
                      for r in rows], index=arguments.index, dtype=object)


def staged_handler(file_name: str, sha256: str, kind: str, threshold: float | None = None,
                   background: tuple[str, str] | None = None) -> Callable[[pd.DataFrame], pd.Series]:
    """The function Snowpark registers: loads the staged bundle on first call, then scores each batch,
    labelling binary rows at `threshold` (the version's decision threshold when the function was made).
    `kind` "explain" returns reasons, measured against the staged `background` (file name, sha256) rows."""

    def handler(arguments: pd.DataFrame) -> pd.Series:
        directory = str(import_directory())
        try:
            bundle = load_staged_bundle(directory, file_name, sha256)
        except Exception:
            logger.exception("the staged model %s could not be loaded", file_name)
            raise
        bundle = bundle if threshold is None else bundle.with_threshold(threshold)
        if kind == "explain":
            rows = load_staged_background(directory, *background) if background else None
            return explain_batch_frame(bundle, arguments, rows)
        return (predict_batch if kind == "predict" else probability_batch)(bundle, arguments)

    handler._sf_vectorized_input = pd.DataFrame  # type: ignore[attr-defined]  # Snowpark's vectorized marker
    return handler
