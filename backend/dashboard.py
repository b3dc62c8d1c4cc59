"""What a model's shared dashboard shows: quality, drivers and the distribution of its latest scores."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from backend.deployed_model import PREDICTION_COLUMN
from backend.registry import Deployment, ModelVersion, Registry
from backend.warehouse.base import Warehouse


@dataclass(frozen=True)
class DashboardData:
    version: ModelVersion
    deployments: list[Deployment]
    latest: Deployment | None
    score_distribution: pd.DataFrame | None
    note: str


def dashboard_data(warehouse: Warehouse, registry: Registry, model_id: str) -> DashboardData:
    """Everything the dashboard page shows for `model_id`. Raises ModelNotFoundError."""
    version = registry.get_model_version(model_id)
    deployments = registry.list_deployments(model_id)
    scored = [d for d in deployments if d.scored_table is not None and d.scored_at is not None]
    latest = max(scored, key=lambda d: d.scored_at) if scored else None  # type: ignore[arg-type,return-value]
    distribution, note = None, ""
    if latest is None:
        note = "This model has not scored a table yet."
    elif not warehouse.table_exists(latest.scored_table):  # type: ignore[arg-type]
        note = f"The latest scores table {latest.scored_table} no longer exists."
    else:
        columns = [c.name for c in warehouse.describe(latest.scored_table)]  # type: ignore[arg-type]
        column = latest.prediction_column if latest.prediction_column in columns else next(  # older scores: guess
            (c for c in reversed(columns) if c.startswith(PREDICTION_COLUMN)), None)
        if column is None:
            note = f"The table {latest.scored_table} has no prediction column."
        else:
            distribution = warehouse.aggregate_distribution(latest.scored_table, column)  # type: ignore[arg-type]
    return DashboardData(version=version, deployments=deployments, latest=latest,
                         score_distribution=distribution, note=note)
