"""The one module of cached calls into the backend. Writes and training are never cached.

The workspace (connection, registry, job manager) is shared by every session via `st.cache_resource`;
loaded model bundles likewise (they are immutable once verified). Reads that are slow and safe to reuse
go through `st.cache_data`, keyed by the workspace identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from backend import forecast_outcomes, forecast_workflow
from backend.checks import Finding
from backend.config import (
    WarehouseConfig,
    allowed_schemas_setting,
    hosted_app_name,
    warehouse_choices,
    warehouse_config,
)
from backend.dashboard import DashboardData, dashboard_data
from backend.deploy import change_threshold as change_model_threshold
from backend.deployed_model import load_bundle
from backend.evaluation.card import model_card_data
from backend.evaluation.rows import RowExplanation
from backend.forecast_outcomes import ForecastOutcome
from backend.forecast_workflow import ForecastPreview
from backend.forecasting.series import SeriesSpec
from backend.model_bundle import ModelBundle
from backend.model_health import Health, version_health
from backend.profiling import TableProfile
from backend.registry import ModelVersion
from backend.task_detection import FeatureChoice, TargetSummary, Task
from backend.warehouse.base import ColumnInfo, TableRef, TableSummary
from backend.warehouse.snowflake_session import connection_names, use_secrets
from backend.workspace import OutcomeChoices, Workspace, open_workspace
from components.model_card import render_model_card


@st.cache_resource(show_spinner="Opening the warehouse…")
def _workspace_for(config: WarehouseConfig, allowed_schemas: str = "", secrets_digest: str = "") -> Workspace:
    del secrets_digest  # part of the cache key only: edited secrets open a new connection
    return open_workspace(config, allowed_schemas=allowed_schemas, supervise=True)


def _snowflake_secrets() -> dict[str, Any] | None:
    """Streamlit's `[connections.snowflake]` secrets, if the app has a secrets file with them."""
    try:
        section = st.secrets.get("connections", {}).get("snowflake")
    except Exception:  # no secrets file at all
        return None
    return _plain(section) if section else None


def _plain(value: Any) -> Any:
    """Secrets as plain dicts: Snowpark edits nested parameters (session_parameters), which st.secrets forbids."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


WAREHOUSE_CHOICE = "warehouse.choice"  # the sidebar picker's widget key: this session's warehouse


@st.cache_data(ttl=60, show_spinner=False)
def _connection_names() -> list[str]:
    return connection_names()


def available_warehouses() -> list[WarehouseConfig]:
    """What the sidebar offers: the configured warehouse first (only it inside Snowflake)."""
    return warehouse_choices(warehouse_config(), _connection_names(), _snowflake_secrets() is not None)


def chosen_warehouse() -> WarehouseConfig:
    """This session's warehouse: the sidebar's choice when it is still on offer, else the configured one."""
    choice = st.session_state.get(WAREHOUSE_CHOICE)  # the picker keeps a choice's display name
    configured = warehouse_config()
    if choice and choice != configured.display_name:
        return next((c for c in available_warehouses() if c.display_name == choice), configured)
    return configured


WAREHOUSE_PARAM = "warehouse"  # a shared link's query parameter naming the warehouse its model lives in


def link_params(model_id: str) -> dict[str, str]:
    """Query parameters of a shareable link to `model_id`: the warehouse too when this session is not on the
    configured one, and only a Snowflake connection's name (never a file path)."""
    chosen = chosen_warehouse()
    params = {"model": model_id}
    if chosen != warehouse_config() and chosen.kind == "snowflake":
        params[WAREHOUSE_PARAM] = chosen.display_name
    return params


def workspace() -> Workspace:
    """This session's workspace, opened once per server process and warehouse, shared by every session on it."""
    use_secrets(_snowflake_secrets)
    chosen = chosen_warehouse()
    secrets = _snowflake_secrets() if chosen.kind == "snowflake" else None
    digest = hashlib.sha256(json.dumps(secrets, sort_keys=True, default=str).encode()).hexdigest() if secrets else ""
    return _workspace_for(chosen, allowed_schemas_setting(), digest)


def connection_details() -> list[tuple[str, str]]:
    """Where the app is connected, for the sidebar."""
    return _connection_details(workspace().warehouse.identity)


def hosted_app_address() -> str | None:
    """The Snowsight address of this hosted app (see flurry.toml's `[app] name`); None when not set or the
    account cannot say."""
    app = hosted_app_name()
    return _app_address(workspace().warehouse.identity, app) if app else None


@st.cache_data(ttl=3600, show_spinner=False)
def _app_address(identity: str, app: tuple[str, str, str]) -> str | None:
    del identity  # the cache key
    return workspace().warehouse.app_address(app)


@st.cache_data(ttl=300, show_spinner=False)
def _connection_details(identity: str) -> list[tuple[str, str]]:
    del identity  # the cache key: one entry per warehouse (on Snowflake each item is a round trip)
    return workspace().warehouse.connection_details()


def table_summaries() -> list[TableSummary]:
    return workspace().warehouse.table_summaries()


@st.cache_data(ttl=60, max_entries=8, show_spinner=False)
def table_sizes(identity: str, tables: list[TableRef]) -> list[int | None]:
    """Storage per table for the browser (catalog metadata only; cached a minute)."""
    del identity  # part of the cache key only
    return [workspace().warehouse.table_size_bytes(t) for t in tables]


def list_schemas() -> list[str]:
    return workspace().warehouse.list_schemas()


def list_tables(schema: str) -> list[str]:
    return workspace().warehouse.list_tables(schema)


def describe(table: TableRef) -> list[ColumnInfo]:
    return workspace().warehouse.describe(table)


def row_count(table: TableRef) -> int:
    return workspace().warehouse.row_count(table)


def table_size(table: TableRef) -> int | None:
    return workspace().warehouse.table_size_bytes(table)


def preview(table: TableRef, rows: int = 100, columns: list[ColumnInfo] | None = None) -> pd.DataFrame:
    return workspace().warehouse.preview(table, rows, columns)


@st.cache_data(ttl=60, max_entries=32, show_spinner="Profiling the table in the warehouse…")
def profile(identity: str, table: TableRef) -> TableProfile:
    del identity  # part of the cache key only
    return workspace().warehouse.profile(table)


@st.cache_data(ttl=30, show_spinner="Profiling the target in the warehouse…")
def target_summary(identity: str, table: TableRef, target: str) -> tuple[TargetSummary, list[FeatureChoice]]:
    return workspace().target_summary(table, target, profile(identity, table))


@st.cache_data(ttl=60, max_entries=32, show_spinner="Checking the data for traps…")
def checks(identity: str, table: TableRef, target: str, task: Task, features: list[str]) -> list[Finding]:
    return workspace().checks(table, target, task, features, profile(identity, table))


@st.cache_data(ttl=60, max_entries=32, show_spinner=False)
def outcome_choices(identity: str, table: TableRef, target: str) -> OutcomeChoices:
    del identity  # part of the cache key only
    return workspace().outcome_choices(table, target)


@st.cache_resource(max_entries=16)
def _bundle(model_id: str, threshold: float | None) -> ModelBundle:
    return load_bundle(workspace().registry, model_id)


def forget_bundles() -> None:
    """Drop cached bundles (after a version was deleted)."""
    _bundle.clear()


def bundle(model_id: str) -> ModelBundle:
    """The verified bundle, labelling at the threshold in force now (a change of threshold is a new entry)."""
    current = workspace().registry.threshold(model_id)
    return _bundle(model_id, None if current is None else current.threshold)


@st.cache_data(ttl=15, max_entries=256, show_spinner=False)
def _health(identity: str, model_id: str) -> Health:
    return version_health(workspace().registry, model_id)


def health(model_id: str) -> Health:
    """Whether the version can serve (its artifact verifies and loads), re-checked every 15 s at most."""
    return _health(workspace().warehouse.identity, model_id)


def model_version(model_id: str) -> ModelVersion:
    return workspace().registry.get_model_version(model_id)


def model_versions() -> list[ModelVersion]:
    return workspace().registry.list_model_versions()


@st.cache_data(max_entries=16, show_spinner="Loading holdout rows…")
def holdout(model_id: str) -> pd.DataFrame:
    return workspace().holdout_frame(model_id)


@st.cache_data(max_entries=64, show_spinner="Explaining this prediction with SHAP…")
def explain_holdout_row(model_id: str, position: int, threshold: float | None,
                        edits: tuple[tuple[str, Any], ...] = ()) -> RowExplanation:
    del threshold  # part of the cache key only: the label depends on it
    return workspace().explain_holdout_row(model_id, position, dict(edits))


@st.cache_data(max_entries=8, show_spinner="Writing the model card…")
def _model_card(model_id: str, threshold: float | None, notes_at: object) -> bytes:
    del threshold, notes_at  # part of the cache key only: the card changes with them
    return render_model_card(model_card_data(workspace().registry, model_id)).encode("utf-8")


def model_card(model_id: str) -> bytes:
    """The model card as a self-contained HTML file."""
    registry = workspace().registry
    current = registry.threshold(model_id)
    return _model_card(model_id, None if current is None else current.threshold, registry.notes(model_id).written_at)


def save_notes(model_id: str, intended_use: str, out_of_scope: str) -> None:
    workspace().registry.set_notes(model_id, intended_use.strip(), out_of_scope.strip())


def change_threshold(model_id: str, threshold: float, how: str, detail: dict[str, Any]) -> list[str]:
    ws = workspace()
    return change_model_threshold(ws.warehouse, ws.registry, model_id, threshold, how, detail)


def dashboard(model_id: str) -> DashboardData:
    ws = workspace()
    return dashboard_data(ws.warehouse, ws.registry, model_id)


@st.cache_data(ttl=60, max_entries=16, show_spinner=False)
def time_columns(identity: str, table: TableRef) -> list[str]:
    del identity  # part of the cache key only
    return forecast_workflow.time_columns(workspace().warehouse, table)


@st.cache_data(ttl=60, max_entries=16, show_spinner="Reading the series…")
def forecast_preview(identity: str, table: TableRef, spec: SeriesSpec) -> ForecastPreview:
    del identity  # part of the cache key only
    return forecast_workflow.preview(workspace().warehouse, table, spec)


@st.cache_data(ttl=30, max_entries=16, show_spinner="Comparing forecasts with what happened…")
def forecast_outcome(model_id: str) -> ForecastOutcome:
    return forecast_outcomes.forecast_outcome(workspace().warehouse, workspace().registry, model_id)
