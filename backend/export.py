"""Take the model out of Flurry: a bundle (the verified model file, a small `predict.py` that scores a CSV
anywhere Python runs, a `reproduce.py` that repeats the training run from the warehouse and prints its holdout
metrics, the model's own code and pinned requirements).

Generated code comes from Jinja2 templates (backend/templates); every value that lands in Python source is
written as a Python literal, and text in docstrings is made harmless, so a column named with three double quotes
cannot end one.
"""

from __future__ import annotations

import io
import math
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from backend.config import WarehouseConfig
from backend.deployed_model import load_bundle, probability_column
from backend.digests import sha256_bytes
from backend.model_bundle import MODEL_LIBRARIES, MemberRecipe
from backend.registry import Registry
from backend.training.config import TrainConfig

BACKEND_DIR = Path(__file__).resolve().parent
TEMPLATES = BACKEND_DIR / "templates"
# What the bundle's code imports besides the model libraries (backend.model_bundle and what it pulls in).
RUNTIME_PACKAGES = ("pandas", "numpy", "pyarrow", "scipy", "platformdirs")
# What reproduce.py needs to draw the training sample again, per warehouse.
WAREHOUSE_DRIVERS = {"duckdb": ("duckdb",), "snowflake": ("snowflake-snowpark-python",)}
# The model's own code: the pure-Python modules unpickling needs; warehouse adapters and UI stay home.
LEFT_OUT = ("__pycache__", "templates")


def _doc(text: object) -> str:
    """Text safe inside a triple-quoted docstring: no backslashes, no closing quotes, one line."""
    return " ".join(str(text).replace("\\", "/").replace('"""', "'''").split())


def python_literal(value: Any) -> str:
    """`value` (JSON-like data) as Python source that evaluates to it; JSON's null/true/false and a bare nan
    would not."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      autoescape=False)  # Python source, not HTML: values go in as JSON literals
    env.filters["doc"] = _doc
    env.filters["py"] = python_literal
    return env


def requirements(versions: dict[str, str], drivers: tuple[str, ...] = ()) -> str:
    """Pinned requirements: the model libraries at the versions it was trained with, the rest (and the warehouse
    driver `reproduce.py` reads the sample with) at this app's."""
    lines = []
    for name in (*MODEL_LIBRARIES, *RUNTIME_PACKAGES, *drivers):
        try:
            version = versions.get(name) or metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if version:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def recipe_text(recipe: tuple[MemberRecipe, ...]) -> str:
    """E.g. "lgbm" or "a blend of lgbm 62%, xgboost 25%, rf 13%"."""
    if len(recipe) == 1:
        return recipe[0].learner
    return "a blend of " + ", ".join(f"{m.learner} {m.weight:.0%}" for m in recipe)


def reproduce_script(registry: Registry, model_id: str, warehouse: WarehouseConfig) -> str:
    """`reproduce.py` for a version: repeats its run on `warehouse` and prints the holdout metrics. Raises
    ArtifactIntegrityError when the stored model does not verify."""
    version = registry.get_model_version(model_id)
    bundle = load_bundle(registry, model_id)
    config = TrainConfig.from_dict(bundle.config)
    recorded = {name: score.model for name, score in version.metrics.scores.items() if score.model is not None}
    return _environment().get_template("reproduce.py.j2").render(
        name=_doc(version.name), label=version.label, model_id=version.model_id, table=str(config.table),
        seed=config.seed, recipe_text=recipe_text(bundle.recipe) if bundle.recipe else bundle.best_estimator,
        config=bundle.config, recipe=[m.to_dict() for m in bundle.recipe],
        threshold=bundle.threshold if bundle.is_binary else None,
        positive=str(bundle.outcome_of_interest) if bundle.is_binary else "",
        warehouse={"kind": warehouse.kind, "location": warehouse.location}, warehouse_text=warehouse.display_name,
        sample_sha256=str(bundle.fingerprint.get("sha256", "")), recorded=recorded)


def scoring_bundle(registry: Registry, model_id: str, warehouse: WarehouseConfig) -> bytes:
    """The zip of a version's bundle: `predict.py` labelling at the threshold in force now, and `reproduce.py`
    repeating its run on `warehouse`. Raises ArtifactIntegrityError when the stored model does not verify."""
    version = registry.get_model_version(model_id)
    bundle = load_bundle(registry, model_id)
    content = bundle.to_bytes()
    probability = probability_column(bundle) if bundle.is_classification else None
    predict_py = _environment().get_template("predict.py.j2").render(
        name=_doc(version.name), label=version.label, model_id=version.model_id,
        features=[_doc(f) for f in bundle.feature_names], sha256=sha256_bytes(content),
        prediction_column="prediction", probability_column=probability,
        threshold=bundle.threshold if bundle.is_binary else None,
        positive=str(bundle.outcome_of_interest) if bundle.is_binary else None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.pkl", content)
        archive.writestr("predict.py", predict_py)
        if bundle.recipe:  # models trained before recipes were recorded cannot be refitted without a search
            archive.writestr("reproduce.py", reproduce_script(registry, model_id, warehouse))
        archive.writestr("requirements.txt", requirements(bundle.versions, WAREHOUSE_DRIVERS.get(warehouse.kind, ())))
        for path in sorted(BACKEND_DIR.rglob("*.py")):
            if not any(part in LEFT_OUT for part in path.relative_to(BACKEND_DIR).parts):
                archive.write(path, f"backend/{path.relative_to(BACKEND_DIR).as_posix()}")
    return buffer.getvalue()
