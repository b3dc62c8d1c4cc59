"""A Snowflake model monitor for a model's production version, where the account allows one: the account's
own observability over the scores Flurry stamps and the outcomes the user named (backend.realised). Never a
condition of anything: without a production version, scores, outcomes, or the account's consent, it says why."""

from __future__ import annotations

from typing import cast

from backend.deploy import MODEL_VERSION_COLUMN
from backend.model_catalog import Catalog
from backend.realised import outcome_source
from backend.registry import Registry
from backend.warehouse.base import StagedModelHost, Warehouse
from backend.warehouse.snowflake_model_registry import registry_version_name
from backend.warehouse.snowflake_monitor import MonitorPlan


def attach_model_monitor(warehouse: Warehouse, registry: Registry, model_key: str) -> str:
    """Create (or move) the model monitor onto `model_key`'s production version; a sentence saying what was
    done or why not. Only on warehouses that host staged models (Snowflake)."""
    if not warehouse.capabilities.staged_functions:
        return "Model monitors are Snowflake's; the embedded warehouse measures realised quality on the Dashboards."
    catalog = Catalog(registry)
    production = catalog.production(model_key)
    source = outcome_source(registry, model_key)
    if production is None or source is None:
        return "A Snowflake model monitor needs a version in production and a table of actual outcomes."
    scored = [d for d in registry.list_deployments(production.model_id)
              if d.scored_table is not None and d.scored_at_column and d.prediction_column]
    if not scored:
        return "A Snowflake model monitor watches scored rows: score a table with the production version first."
    latest = max(scored, key=lambda d: d.scored_at or d.created_at)
    version = registry.get_model_version(production.model_id)
    threshold = registry.threshold(production.model_id)
    default = version.report.default_threshold if version.report is not None else None
    model = catalog.model(model_key)
    assert latest.scored_table is not None and latest.scored_at_column and latest.prediction_column
    plan = MonitorPlan(
        model=model.function_name.upper(),
        version=registry_version_name(production.number, threshold.threshold if threshold else None, default),
        task=version.task.value, scored=warehouse.qualify(latest.scored_table), outcomes=warehouse.qualify(source.table),
        key_column=source.key_column, outcome_column=source.outcome_column,
        prediction_column=latest.prediction_column, probability_column=latest.probability_column,
        scored_at_column=latest.scored_at_column, version_column=MODEL_VERSION_COLUMN,
        version_label=production.label,
        positive_class=version.report.positive_class if version.report is not None else None, warehouse="")
    return cast(StagedModelHost, warehouse).monitor_model(plan)
