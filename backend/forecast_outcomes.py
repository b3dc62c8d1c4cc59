"""Forecasts against what happened: the newest forecast table of a forecast deployment, joined with the
actual values its history table has gained since (as recorded, nothing filled in), and the error of every
forecast made so far (a table written with "add each new forecast" keeps them all)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.forecast_workflow import CREATED_AT_COLUMN, load_forecast_bundle, read_rows
from backend.forecasting.bundle import FORECAST_COLUMNS
from backend.forecasting.series import PERIOD, SERIES_KEY, observed_values, parse_times, series_keys
from backend.registry import Deployment, Registry
from backend.scoring_jobs import ScoringJobs
from backend.warehouse.base import TableRef, Warehouse

CHART_HISTORY = 40  # history periods per series shown before the newest forecast


@dataclass(frozen=True)
class ForecastOutcome:
    table: TableRef | None  # where the newest forecasts are (None: none written yet)
    latest: pd.DataFrame  # SERIES_KEY, PERIOD, actual, FORECAST_COLUMNS: recent history and the newest forecast
    errors: pd.DataFrame  # created_at, error_pct (mean absolute % error), periods: forecasts whose actuals arrived
    note: str = ""


def forecast_outcome(warehouse: Warehouse, registry: Registry, model_id: str) -> ForecastOutcome:
    written = [d for d in registry.list_deployments(model_id) if d.scored_table is not None]
    empty = pd.DataFrame(columns=[SERIES_KEY, PERIOD, "actual", *FORECAST_COLUMNS])
    no_errors = pd.DataFrame(columns=[CREATED_AT_COLUMN, "error_pct", "periods"])
    if not written:
        return ForecastOutcome(None, empty, no_errors, "No forecast table has been written yet.")
    deployment: Deployment = max(written, key=lambda d: d.scored_at or pd.Timestamp.min)
    table = deployment.scored_table
    assert table is not None
    if not warehouse.table_exists(table):
        return ForecastOutcome(table, empty, no_errors, f"The forecast table {table} no longer exists.")
    bundle = load_forecast_bundle(registry, model_id)
    spec = bundle.spec
    forecasts = warehouse.read_columns(table, [*spec.series_columns, spec.time_column, *FORECAST_COLUMNS,
                                               CREATED_AT_COLUMN])
    forecasts = forecasts.assign(**{SERIES_KEY: series_keys(forecasts, spec.series_columns),
                                    PERIOD: parse_times(forecasts[spec.time_column], spec.time_column)[0]})
    source = ScoringJobs(warehouse, registry).last_source(deployment.function_name) or \
        registry.get_model_version(model_id).table
    actuals = observed_values(read_rows(warehouse, source, bundle.input_columns), spec).rename(
        columns={spec.target: "actual"}).sort_values([SERIES_KEY, PERIOD], ignore_index=True)
    joined = forecasts.merge(actuals, on=[SERIES_KEY, PERIOD], how="left")
    newest = joined[joined[CREATED_AT_COLUMN] == joined[CREATED_AT_COLUMN].max()]
    recent = actuals.groupby(SERIES_KEY, sort=False).tail(CHART_HISTORY)
    recent = recent[~recent.set_index([SERIES_KEY, PERIOD]).index.isin(newest.set_index([SERIES_KEY, PERIOD]).index)]
    latest = pd.concat([recent, newest[[SERIES_KEY, PERIOD, "actual", *FORECAST_COLUMNS]]], ignore_index=True)
    return ForecastOutcome(table, latest, _errors(joined))


def _errors(joined: pd.DataFrame) -> pd.DataFrame:
    """Per forecast made (created_at): the mean absolute % error over its periods that now have an actual."""
    judged = joined[joined["actual"].notna() & (joined["actual"] != 0)]
    if judged.empty:
        return pd.DataFrame(columns=[CREATED_AT_COLUMN, "error_pct", "periods"])
    pct = 100 * np.abs(judged["actual"] - judged["forecast"]) / np.abs(judged["actual"])
    grouped = judged.assign(error_pct=pct).groupby(CREATED_AT_COLUMN)
    return pd.DataFrame({"error_pct": grouped["error_pct"].mean(), "periods": grouped.size()}).reset_index()
