"""The model bundle: what training produces and every scorer loads.

One `predict` / `predict_proba` / `explain` surface used by the app, the SQL functions and the batch scorer,
so they cannot disagree. Input columns are coerced to the kinds seen in training before the model sees them.
"""

from __future__ import annotations

import importlib
import pickle
import platform
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from backend import fast_transform
from backend.digests import sha256_bytes
from backend.errors import ArtifactIntegrityError
from backend.version_records import Feature

Bundle = TypeVar("Bundle")

TRACKED_LIBRARIES = ("flaml", "lightgbm", "xgboost", "scikit-learn", "shap", "pandas", "numpy", "pyarrow", "duckdb")


# The module a distribution installs, where the names differ.
_MODULE_OF = {"scikit-learn": "sklearn"}


def library_versions() -> dict[str, str]:
    """The tracked libraries' versions here: from their package metadata, or, for a library shipped as code
    without it (FLAML reaches Snowflake's UDFs, procedures and registry models as a folder of modules, since
    Snowflake's channel lacks it), from its own `__version__`."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            shipped = _shipped_version(_MODULE_OF.get(name, name))
            if shipped is not None:
                versions[name] = shipped
    return versions


def _shipped_version(module_name: str) -> str | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else None


# Libraries whose pickled models only load reliably within the same major.minor line.
MODEL_LIBRARIES = ("flaml", "lightgbm", "xgboost", "scikit-learn")


def incompatible_versions(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The model libraries whose major.minor here differs from the one the model was trained with."""
    def line(version: str | None) -> str | None:
        return ".".join(version.split(".")[:2]) if version else None

    return [f"{name} {recorded[name]} (here {current.get(name, 'missing')})" for name in MODEL_LIBRARIES
            if name in recorded and line(recorded[name]) != line(current.get(name))]


def prepare_features(frame: pd.DataFrame, features: list[Feature]) -> pd.DataFrame:
    """Select the model's input columns in order and coerce each to the kind it had in training.

    Text becomes object dtype (FLAML turns it into categories), booleans become 0/1 floats and numbers
    become floats, so a value read through Arrow, Parquet or a SQL function always reaches the model alike.
    """
    columns: dict[str, pd.Series] = {}
    for feature in features:
        name, kind = feature.name, feature.kind
        series = frame[name]
        if kind == "text":
            columns[name] = series.astype(object).where(series.notna(), None)
        elif kind == "boolean":
            columns[name] = series.astype("boolean").astype("Float64").astype(float)
        elif kind == "datetime" and pd.api.types.is_datetime64_any_dtype(series):
            columns[name] = pd.to_datetime(series, errors="coerce")
        elif kind == "datetime":
            # text read as dates: each value by its own format ("mixed"), as the warehouse's check read them,
            # never by a format guessed from a batch's first value (a row would parse by the batch it lands in)
            columns[name] = pd.to_datetime(series, errors="coerce", format="mixed")
        else:
            columns[name] = pd.to_numeric(series, errors="coerce").astype(float)
    return pd.DataFrame(columns, index=frame.index)


def model_column_names(count: int) -> list[str]:
    """Positional names the learners see. Table columns may hold quotes, colons or unicode that LightGBM and
    XGBoost reject in feature names; the bundle maps back to the real names for every user-facing output."""
    return [f"c{i}" for i in range(count)]


def to_model_frame(prepared: pd.DataFrame) -> pd.DataFrame:
    renamed = prepared.copy(deep=False)
    renamed.columns = model_column_names(prepared.shape[1])
    return renamed


def _typed(labels: np.ndarray, classes: list[Any]) -> np.ndarray:
    """Labels in the classes' own numpy type (bool, int, float), object for text, as FLAML returns them."""
    if all(isinstance(c, bool | np.bool_) for c in classes):
        return labels.astype(bool)
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        return labels.astype(np.int64)
    if all(isinstance(c, float | np.floating) for c in classes):
        return labels.astype(float)
    return labels


ALL_ROWS = "all"  # a member fitted on every training row
SPLIT_ROWS = "split"  # on the training part of the blend's validation split (holdout-mode blends keep that fit)


@dataclass(frozen=True)
class MemberRecipe:
    learner: str  # FLAML's name for the family, e.g. "lgbm"
    config: dict[str, Any]  # FLAML's hyperparameters for it, as in its search log
    weight: float = 1.0
    rows: str = ALL_ROWS

    def to_dict(self) -> dict[str, Any]:
        return {"learner": self.learner, "config": self.config, "weight": self.weight, "rows": self.rows}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> MemberRecipe:
        return MemberRecipe(str(data["learner"]), dict(data["config"]), float(data.get("weight", 1.0)),
                            str(data.get("rows", ALL_ROWS)))


def clean_config(config: dict[str, Any]) -> dict[str, Any]:
    """FLAML's config without its bookkeeping (the sample size a trial used), JSON-safe."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in config.items() if k != "FLAML_sample_size"}


@dataclass
class ModelBundle:
    """A fitted FLAML pipeline with everything needed to score, explain and reproduce it."""

    task: str
    target: str
    target_sql_type: str
    features: list[Feature]
    classes: list[Any]
    best_estimator: str
    flaml_task: Any
    transformer: Any
    estimator: Any
    label_transformer: Any
    config: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=library_versions)
    # Binary models: the class the user looks for, and the probability of it from which a row is labelled
    # with it. Bundles pickled before these existed read the class defaults: the last class, the most
    # probable class (0.5).
    positive_class: Any = None
    threshold: float | None = None
    # How to fit this model again without its search (backend.training.recipe); empty for bundles made before.
    recipe: tuple[MemberRecipe, ...] = ()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # bundles pickled before features were records hold them as dicts
        self.__dict__.update(state, features=[f if isinstance(f, Feature) else Feature.from_dict(f)
                                              for f in state.get("features", [])])

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @property
    def is_binary(self) -> bool:
        return self.task == "binary" and len(self.classes) == 2

    @property
    def outcome_of_interest(self) -> Any:
        """The binary class every metric, threshold and probability column is about."""
        return self.classes[-1] if self.positive_class is None else self.positive_class

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.outcome_of_interest)

    def with_threshold(self, threshold: float | None) -> ModelBundle:
        """The same fitted model labelling binary rows at `threshold` (None: the most probable class)."""
        return replace(self, threshold=threshold)

    def positive_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Binary models: the probability of the outcome of interest per row."""
        proba = self.predict_proba(frame)
        return proba[:, self.positive_index] if len(proba) else np.zeros(0)

    def output_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The probability a scorer writes beside each label: of the outcome of interest for binary models,
        of the predicted class for multiclass ones (and for yes/no models trained before the outcome of interest
        existed, whose SQL functions keep the meaning they were deployed with)."""
        if self.is_binary and self.positive_class is not None:
            return self.positive_probability(frame)
        proba = self.predict_proba(frame)
        return proba.max(axis=1) if len(proba) else np.zeros(0)

    def labels_from_probability(self, probability: np.ndarray) -> np.ndarray:
        """Binary labels from probabilities of the outcome of interest, at this bundle's threshold."""
        cut = 0.5 if self.threshold is None else self.threshold
        flagged = probability >= cut if self.threshold is not None else probability > cut
        index = np.where(flagged, self.positive_index, 1 - self.positive_index)
        return _typed(np.asarray(self.classes, dtype=object)[index], self.classes)

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame as FLAML's trained estimator expects it (after our coercion and FLAML's transform)."""
        prepared = to_model_frame(prepare_features(frame, self.features))
        if self.transformer is not None and not self.flaml_task.is_ts_forecast():
            return fast_transform.transform(self.transformer, prepared)  # FLAML's own, without its overhead
        return self.flaml_task.preprocess(prepared, self.transformer)

    def original_name(self, model_column: str) -> str | None:
        """The table column a learner's input column comes from (FLAML adds `<part>_<column>` for a date's
        year, month, … and older FLAML releases `<column>_<part>`)."""
        names = model_column_names(len(self.features))
        if model_column in names:
            return self.feature_names[names.index(model_column)]
        for part in (model_column.rsplit("_", 1)[-1], model_column.split("_", 1)[0]):
            if part in names:
                return self.feature_names[names.index(part)]
        return None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted label (classification) or value (regression) per row."""
        if len(frame) == 0:
            return np.array([], dtype=float if not self.is_classification else object)
        if self.is_binary and (self.threshold is not None or self.positive_class is not None):
            return self.labels_from_probability(self.positive_probability(frame))
        raw = np.asarray(self.estimator.predict(self.model_input(frame)))
        if raw.ndim > 1:
            raw = raw.ravel()
        if self.label_transformer is not None:
            return np.asarray(self.label_transformer.inverse_transform(pd.Series(raw.astype(int))))
        return raw if self.is_classification else raw.astype(float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of `classes`."""
        if not self.is_classification:
            raise TypeError("predict_proba is only defined for classification models")
        if len(frame) == 0:
            return np.zeros((0, len(self.classes)))
        return np.asarray(self.estimator.predict_proba(self.model_input(frame)))

    # --- serialisation ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_verified_bytes(content: bytes, expected_sha256: str) -> ModelBundle:
        """Unpickle a bundle only if its bytes match the checksum Flurry recorded when writing it."""
        return unpickle_verified(content, expected_sha256, ModelBundle, "model bundle")


def unpickle_verified(content: bytes, expected_sha256: str, kind: type[Bundle], what: str) -> Bundle:
    """Unpickle `content` only if it matches the checksum Flurry recorded when writing it, and only as a `kind`.
    Raises ArtifactIntegrityError otherwise."""
    if sha256_bytes(content) != expected_sha256:
        raise ArtifactIntegrityError("A model file does not match the checksum Flurry recorded; it was not loaded.",
                                     hint="Retrain the model.")
    bundle = pickle.loads(content)
    if not isinstance(bundle, kind):
        raise ArtifactIntegrityError(f"A stored model file is not a Flurry {what}.")
    return bundle
