"""Logging a deployed model to the Snowflake Model Registry, when `snowflake-ml-python` is installed.

The registry keeps a model version beside Flurry's own SQL functions, so teams that govern models there see
it (lineage, metrics, `MODEL(...)!PREDICT`). It is a convenience on top of a deployment, never a condition of
one: without the package, or when the account refuses, the functions stand and the reason is reported.

The logged model is a registry `CustomModel` wrapping the same verified bundle the UDFs score with; its
input columns are the model's features under plain upper-case names (the registry's signatures need SQL
identifiers; the bundle's own names may hold spaces or quotes), mapped back by position, as the UDF does.
"""

# No `from __future__ import annotations`: the registry checks the inference method's annotations at run time
# (they must be pandas.DataFrame itself, not the string "pd.DataFrame").
import contextlib
import importlib.util
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.identifiers import quote_ident
from backend.model_bundle import ModelBundle
from backend.warehouse.base import METADATA_SCHEMA, column_kind
from backend.warehouse.snowflake_deploy import BACKEND_DIR, BUNDLE_FILE, model_packages
from backend.warehouse.snowflake_packages import shipped_imports
from backend.warehouse.snowflake_session import snowflake_reason
from backend.warehouse.snowflake_udf import as_feature_frame, load_staged_bundle

PREDICTION_OUTPUT = "PREDICTION"
PROBABILITY_OUTPUT = "PROBABILITY"
_REGISTRY_TASK = {"binary": "TABULAR_BINARY_CLASSIFICATION", "multiclass": "TABULAR_MULTI_CLASSIFICATION",
                  "regression": "TABULAR_REGRESSION"}


@dataclass(frozen=True)
class RegistryOutcome:
    """What became of the registry step: `logged` names the model version, else `reason` says why not."""

    logged: str | None = None
    reason: str | None = None


def registry_installed() -> bool:
    return importlib.util.find_spec("snowflake.ml") is not None


def registry_feature_names(features: list[str]) -> list[str]:
    """Upper-case SQL identifiers standing for `features`, in order and unique (`tenure months` → TENURE_MONTHS)."""
    names: list[str] = []
    for feature in features:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", feature).strip("_").upper() or "FEATURE"
        base = f"F_{base}" if base[0].isdigit() else base
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def registry_scores(bundle: ModelBundle, inputs: pd.DataFrame) -> pd.DataFrame:
    """The registry model's output for a batch of inputs (columns in feature order, registry names)."""
    frame = as_feature_frame(bundle, inputs)
    scores = pd.DataFrame({PREDICTION_OUTPUT: bundle.predict(frame)}, index=inputs.index)
    if bundle.is_classification:
        scores[PROBABILITY_OUTPUT] = bundle.output_probability(frame) if len(frame) else np.zeros(0)
    return scores


def registry_code_paths() -> list[str]:
    """Code the registry model carries: Flurry's backend and the packages shipped rather than taken from the
    channel (FLAML), each from this installation."""
    return [str(BACKEND_DIR), *(directory for directory, _ in shipped_imports())]


def _signature(bundle: ModelBundle, prediction_type: str) -> Any:
    from snowflake.ml.model import model_signature as ms

    kinds = {"numeric": ms.DataType.DOUBLE, "boolean": ms.DataType.BOOL, "datetime": ms.DataType.TIMESTAMP_NTZ}
    inputs = [ms.FeatureSpec(name, kinds.get(column_kind(f.sql_type), ms.DataType.STRING))
              for name, f in zip(registry_feature_names(bundle.feature_names), bundle.features, strict=True)]
    returned = {"VARCHAR": ms.DataType.STRING, "BOOLEAN": ms.DataType.BOOL, "BIGINT": ms.DataType.INT64,
                "DOUBLE": ms.DataType.DOUBLE}[prediction_type]
    outputs = [ms.FeatureSpec(PREDICTION_OUTPUT, returned)]
    if bundle.is_classification:
        outputs.append(ms.FeatureSpec(PROBABILITY_OUTPUT, ms.DataType.DOUBLE))
    return ms.ModelSignature(inputs=inputs, outputs=outputs)


def _custom_model(bundle_path: Path, sha256: str, threshold: float | None = None) -> Any:
    """A registry CustomModel that loads the bundle only if its bytes match `sha256`, then scores batches
    (binary labels at `threshold`, the version's decision threshold when it was logged)."""
    from snowflake.ml.model import custom_model

    class FlurryModel(custom_model.CustomModel):
        def __init__(self, context: custom_model.ModelContext) -> None:
            super().__init__(context)
            path = Path(self.context.path("bundle"))
            bundle = load_staged_bundle(str(path.parent), path.name, sha256)
            self.bundle = bundle if threshold is None else bundle.with_threshold(threshold)

        @custom_model.inference_api
        def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
            return registry_scores(self.bundle, inputs)

    return FlurryModel(custom_model.ModelContext(bundle=str(bundle_path)))


# Exact pins, as the bundle's own version check requires. Without this snowflake-ml relaxes every `==x.y.z` to
# `>=x.y,<x+1` for the warehouse (registry/_manager/model_parameter_reconciler.py, _reconcile_relax_version:
# "`relax_version` is not set and therefore defaulted to True"), the warehouse installs the newest match, and
# the model refuses to load under versions it was not trained with.
REGISTRY_SAVE_OPTIONS: dict[str, Any] = {"relax_version": False}


def version_already_logged(reason: str) -> bool:
    """Whether log_model refused because the version exists: snowflake-ml says "Model X version Y already
    existed." (registry/_manager/model_manager.py), not "already exists"."""
    return "already exist" in reason.lower()


def registry_version_name(number: int, threshold: float | None, default_threshold: float | None) -> str:
    """The registry version of Flurry's version `number`: V3, as the wizard says v3. A version's labels depend
    on its threshold, so one deployed at a threshold other than the one it was trained with is a version of its
    own: V3_T04500 (threshold 0.45)."""
    same = threshold is None or (default_threshold is not None and round(threshold, 4) == round(default_threshold, 4))
    return f"V{int(number)}" + ("" if same else f"_T{round(float(threshold or 0) * 10000):05d}")


def log_model_version(session: Any, database: str, model_name: str, version: str, model_id: str,
                      bundle: ModelBundle, content: bytes, sha256: str, prediction_type: str,
                      metrics: dict[str, float], alias: str | None = None) -> RegistryOutcome:
    """Log the model as `version` (registry_version_name) of registry model `model_name` in DATABASE.FLURRY — one
    registry model per Flurry model, named like its production function — and, for the production version, make
    it the default version and move `alias` onto it. A version logged before (its own version function deployed
    first) is not logged again.

    Never raises: the deployment it follows has already succeeded."""
    if not registry_installed():
        return RegistryOutcome(reason="snowflake-ml-python is not installed here, so the Model Registry was skipped.")
    from snowflake.ml.model import task as registry_task
    from snowflake.ml.registry import Registry

    model_name, version = model_name.upper(), version.upper()
    registry = None
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / BUNDLE_FILE
            path.write_bytes(content)
            registry = Registry(session, database_name=database, schema_name=METADATA_SCHEMA)
            registry.log_model(
                _custom_model(path, sha256, bundle.threshold), model_name=model_name, version_name=version,
                comment=f"Flurry model {model_id}: {bundle.best_estimator} predicting {bundle.target}",
                metrics=metrics, conda_dependencies=model_packages(bundle), target_platforms=["WAREHOUSE"],
                signatures={"predict": _signature(bundle, prediction_type)}, code_paths=registry_code_paths(),
                task=registry_task.Task(_REGISTRY_TASK.get(bundle.task, "UNKNOWN")),
                options=dict(REGISTRY_SAVE_OPTIONS))
    except Exception as exc:  # the registry's own reason (privileges, an existing version, a package) is the news
        reason = snowflake_reason(exc)
        # this version was logged before and can still be made the default, which needs the registry open
        if registry is None or not version_already_logged(reason):
            return RegistryOutcome(reason=f"The Model Registry refused the model: {reason}")
    if alias is None:  # a version function's model: logged, production stays where it is
        return RegistryOutcome(logged=f"{model_name} {version}")
    try:  # MODEL(...)!PREDICT serves the default version: production's, labelling at the threshold in force
        registry.get_model(model_name).default = version
    except Exception as exc:
        return RegistryOutcome(logged=f"{model_name} {version}",
                               reason=f"The Model Registry kept another default version: {snowflake_reason(exc)}")
    unset, set_alias = alias_statements(database, model_name, version, alias)
    with contextlib.suppress(Exception):  # fails when no version holds the alias yet (the first promotion)
        session.sql(unset).collect()
    try:
        session.sql(set_alias).collect()
    except Exception as exc:
        return RegistryOutcome(logged=f"{model_name} {version}",
                               reason=f"The Model Registry did not move the {alias} alias: {snowflake_reason(exc)}")
    return RegistryOutcome(logged=f"{model_name} {version} ({alias})")


def alias_statements(database: str, model: str, version: str, alias: str) -> list[str]:
    """Moving `alias` onto `version`: off whichever version holds it (setting an alias another version holds
    fails), then onto this one."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", alias):
        raise ValueError(f"{alias!r} is not an alias Snowflake accepts unquoted")
    qualified = f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(model)}"
    return [f"ALTER MODEL IF EXISTS {qualified} VERSION {alias} UNSET ALIAS",
            f"ALTER MODEL {qualified} VERSION {quote_ident(version)} SET ALIAS = {alias}"]
