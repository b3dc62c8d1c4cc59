"""Promote and roll back: what SQL returns follows the production version, without anyone editing a query.

Promoting a version deploys it under its own name (`flurry_predict_<model>_v3`) and under the model's name
(`flurry_predict_<model>`, with `_proba`), then records the change; the version that was in production is
archived and stays callable by its own name. A rollback promotes the version that was in production before.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.deploy import deploy
from backend.deployed_model import DeployedFunctions, load_bundle
from backend.errors import DeploymentError
from backend.model_catalog import Catalog, CatalogVersion, NamedModel, current_actor
from backend.registry import Registry
from backend.warehouse.base import Warehouse


@dataclass(frozen=True)
class Promotion:
    model: NamedModel
    version: CatalogVersion
    production: DeployedFunctions  # the model's functions, now serving this version
    own: DeployedFunctions  # the version's own functions


def input_change(registry: Registry, model_id: str) -> str | None:
    """How `model_id`'s inputs differ from its model's production version's, in words, or None when they are
    the same (or nothing is in production): promoting it changes the production function's arguments."""
    catalog = Catalog(registry)
    current = catalog.production(catalog.model_of(model_id).key)
    if current is None or current.model_id == model_id:
        return None
    old = [(f.name, f.sql_type) for f in registry.get_model_version(current.model_id).features]
    new = [(f.name, f.sql_type) for f in registry.get_model_version(model_id).features]
    if old == new:
        return None
    added = [name for name, _ in new if name not in dict(old)]
    dropped = [name for name, _ in old if name not in dict(new)]
    parts = ([f"adds {', '.join(added)}"] if added else []) + ([f"drops {', '.join(dropped)}"] if dropped else [])
    return (f"It takes different inputs from {current.label} ({'; '.join(parts) or 'same columns, other order or types'}): "
            "every query calling the production function must change its arguments.")


def promote(warehouse: Warehouse, registry: Registry, model_id: str, *, actor: str | None = None,
            note: str = "", accept_new_inputs: bool = False) -> Promotion:
    """Serve `model_id` from its model's SQL functions. Nothing changes when its artifact does not verify
    (ArtifactIntegrityError), a function cannot be created, or its inputs differ from the production version's
    and that was not accepted (DeploymentError)."""
    catalog = Catalog(registry)
    model = catalog.model_of(model_id)
    version = catalog.version(model_id)
    change = input_change(registry, model_id)
    if change is not None and not accept_new_inputs:
        raise DeploymentError(f"{version.label} cannot simply replace the production version. {change}",
                              hint=f"Confirm the new inputs, or call it by its own name, "
                                   f"{model.version_function(version.number)}.")
    load_bundle(registry, model_id)  # a broken version is refused before any function changes
    own = deploy(warehouse, registry, model_id, model.version_function(version.number))
    production = deploy(warehouse, registry, model_id, model.function_name, production=True)
    catalog.record_promotion(model.key, model_id, actor or current_actor(), note or f"{version.label} promoted")
    return Promotion(model, catalog.version(model_id), production, own)


def rollback(warehouse: Warehouse, registry: Registry, model_key: str, *, actor: str | None = None) -> Promotion:
    """Put back the version that was in production before this one. Raises DeploymentError when there is
    none."""
    catalog = Catalog(registry)
    previous = catalog.previous_production(model_key)
    if previous is None:
        raise DeploymentError("There is no earlier production version to roll back to.",
                              hint="Promote another version instead.")
    current = catalog.production(model_key)
    note = f"rolled back from {current.label} to {previous.label}" if current else f"rolled back to {previous.label}"
    return promote(warehouse, registry, previous.model_id, actor=actor, note=note, accept_new_inputs=True)


def deploy_version(warehouse: Warehouse, registry: Registry, model_id: str) -> DeployedFunctions:
    """Make one version callable by its own name (`flurry_predict_<model>_v3`), whatever its stage."""
    catalog = Catalog(registry)
    model = catalog.model_of(model_id)
    return deploy(warehouse, registry, model_id, model.version_function(catalog.version(model_id).number))
