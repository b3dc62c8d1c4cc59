"""Take the model out of Flurry: a scoring bundle (the verified model file, a small `predict.py`, the model's
own code and pinned requirements) that scores a CSV anywhere Python runs.

Generated code comes from Jinja2 templates (backend/templates); every value that lands in Python source is
written as a JSON literal, and text in docstrings is made harmless, so a column named with three double quotes
cannot end one.
"""

from __future__ import annotations

import io
import zipfile
from importlib import metadata
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from backend.deploy import load_bundle, probability_column
from backend.digests import sha256_bytes
from backend.model_bundle import MODEL_LIBRARIES
from backend.registry import Registry

BACKEND_DIR = Path(__file__).resolve().parent
TEMPLATES = BACKEND_DIR / "templates"
# What the bundle's code imports besides the model libraries (backend.model_bundle and what it pulls in).
RUNTIME_PACKAGES = ("pandas", "numpy", "pyarrow", "scipy", "platformdirs")
# The model's own code: the pure-Python modules unpickling needs; warehouse adapters and UI stay home.
LEFT_OUT = ("__pycache__", "templates")


def _doc(text: object) -> str:
    """Text safe inside a triple-quoted docstring: no backslashes, no closing quotes, one line."""
    return " ".join(str(text).replace("\\", "/").replace('"""', "'''").split())


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      autoescape=False)  # Python source, not HTML: values go in as JSON literals
    env.filters["doc"] = _doc
    return env


def requirements(versions: dict[str, str]) -> str:
    """Pinned requirements: the model libraries at the versions it was trained with, the rest at this app's."""
    lines = []
    for name in (*MODEL_LIBRARIES, *RUNTIME_PACKAGES):
        try:
            version = versions.get(name) or metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if version:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def scoring_bundle(registry: Registry, model_id: str) -> bytes:
    """The zip of a version's scoring bundle, labelling at the threshold in force now. Raises
    ArtifactIntegrityError when the stored model does not verify."""
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
        archive.writestr("requirements.txt", requirements(bundle.versions))
        for path in sorted(BACKEND_DIR.rglob("*.py")):
            if not any(part in LEFT_OUT for part in path.relative_to(BACKEND_DIR).parts):
                archive.write(path, f"backend/{path.relative_to(BACKEND_DIR).as_posix()}")
    return buffer.getvalue()
