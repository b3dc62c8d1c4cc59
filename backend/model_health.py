"""Whether a model version can serve: its artifact matches the checksum it was written with, and this runtime
can load it. A broken version says why and what to do, wherever it appears."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.deploy import refuse_calls
from backend.deployed_model import verified_bundle
from backend.errors import ArtifactIntegrityError, ModelNotFoundError
from backend.forecasting.bundle import ForecastBundle
from backend.registry import Registry
from backend.warehouse.base import Warehouse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str = ""  # why it cannot serve
    remedy: str = ""

    @property
    def message(self) -> str:
        return f"{self.reason} {self.remedy}".strip()


HEALTHY = Health(True)
REMEDY = "Roll back to an earlier version, or retrain the model."


# Whether this process's libraries can load a given artifact (model id, sha256) does not change while it runs.
_loadable: dict[tuple[str, str], Health] = {}
_LOADABLE_MAX = 256


def version_health(registry: Registry, model_id: str) -> Health:
    """Check one version's artifact against its sha256 (every call) and that this runtime can load it (once
    per artifact and process). Never raises for a damaged version."""
    try:
        version = registry.get_model_version(model_id)
    except ModelNotFoundError:
        return Health(False, f"The model version {model_id} no longer exists.", "Pick another version.")
    if not artifact_intact(registry, model_id):
        return Health(False, f"The stored file of model version {model_id} does not match its checksum, so Flurry "
                             "will not load it (it was changed or damaged after training).", REMEDY)
    key = (model_id, version.sha256)
    if key not in _loadable:
        if len(_loadable) >= _LOADABLE_MAX:
            _loadable.clear()
        _loadable[key] = _load_health(registry, model_id)
    return _loadable[key]


def _load_health(registry: Registry, model_id: str) -> Health:
    try:
        version = registry.get_model_version(model_id)
        if version.task == "forecast":
            ForecastBundle.from_verified_bytes(
                registry.get_artifact(model_id, "bundle", expected_sha256=version.sha256), version.sha256)
        else:
            verified_bundle(registry, version)
    except ArtifactIntegrityError:
        return Health(False, f"The stored file of model version {model_id} does not match its checksum.", REMEDY)
    except Exception as exc:  # unpickling with other library versions fails in many ways; all mean "cannot load"
        logger.info("model version %s cannot be loaded", model_id, exc_info=True)
        return Health(False, f"Model version {model_id} cannot be loaded by this app's libraries "
                             f"({type(exc).__name__}: {str(exc)[:200]}).", REMEDY)
    return HEALTHY


def artifact_intact(registry: Registry, model_id: str) -> bool:
    """Whether the stored bundle still matches its checksum (no unpickling: cheap enough to repeat)."""
    try:
        version = registry.get_model_version(model_id)
        registry.get_artifact(model_id, "bundle", expected_sha256=version.sha256)
    except (ArtifactIntegrityError, ModelNotFoundError):
        return False
    return True


def refuse_broken_deployments(warehouse: Warehouse, registry: Registry, refusing: set[str]) -> list[str]:
    """Replace the functions of every deployment whose artifact no longer verifies with functions that refuse
    calls (with the reason); `refusing` holds the names already replaced and is updated. Returns the names
    replaced now. Functions registered in this process would otherwise keep scoring with a model that the next
    start would refuse to load."""
    if not warehouse.capabilities.python_udfs:
        return []
    replaced = []
    for deployment in registry.function_deployments():
        if deployment.function_name in refusing or artifact_intact(registry, deployment.model_id):
            continue
        refuse_calls(warehouse, registry, deployment.function_name, deployment.model_id,
                     version_health(registry, deployment.model_id).reason)
        refusing.add(deployment.function_name)
        replaced.append(deployment.function_name)
    return replaced
