"""The Deploy step of a forecast: which version the forecast deployment writes with, the forecast table
written now (replaced, or added to so earlier forecasts stay), re-forecasts on a schedule as new history
arrives, and the dashboard link."""

from __future__ import annotations

import streamlit as st

from backend.deploy import SCHEDULE_CHOICES
from backend.forecast_workflow import (
    CREATED_AT_COLUMN,
    MODEL_VERSION_COLUMN,
    deploy_forecast,
    forecast_name,
)
from backend.forecasting.bundle import FORECAST_COLUMNS
from backend.identifiers import quote_ident, slugify
from backend.registry import ModelVersion
from backend.scoring_jobs import OutputMode
from backend.workspace import Workspace
from components import backend_calls as calls
from components import scoring_view, state
from components.feedback import user_errors
from components.formatting import md
from components.sharing import share_sentence
from components.state import Key

MODES = {OutputMode.REPLACE: "Replace it with the newest forecast",
         OutputMode.APPEND: "Add each new forecast to it (keeps every forecast, to compare with what happened)",
         OutputMode.NEW: "Stop if the table exists"}


def forecast_deployment(version: ModelVersion) -> None:
    ws = calls.workspace()
    name = forecast_name(version)
    current = next((d for d in ws.registry.list_deployments() if d.function_name == name), None)
    st.subheader("1 · Which version forecasts")
    if current is not None and current.model_id == version.model_id:
        st.success(f"{md(name)} forecasts with this version ({version.label}).", icon=":material/check_circle:")
    else:
        if current is not None:
            st.info(f"{md(name)} forecasts with another version ({md(calls.model_version(current.model_id).label)}).")
        if st.button(f"Forecast with {version.label}", type="primary", key="deploy.forecast_use"):
            with user_errors("deploy the forecast"):
                deploy_forecast(ws.registry, version.model_id)
                st.rerun()
        return

    st.subheader("2 · Write the forecast into a table")
    st.caption("One row per series and period ahead: the series, the period, "
               f"{md(', '.join(FORECAST_COLUMNS))}, the {md(MODEL_VERSION_COLUMN)} that made it and when "
               f"({md(CREATED_AT_COLUMN)}). It starts after the newest history in {md(version.table)}.")
    out_schema = st.text_input("Write the forecast into schema", value=ws.output_schema("forecasts", version.table),
                               key="deploy.forecast.out_schema")
    out_name = st.text_input("…as the table", value=ws.plain_name(f"{slugify(version.table.name, max_length=40)}_forecast"),
                             key="deploy.forecast.out_table")
    mode = st.radio("If that table exists", list(MODES), format_func=MODES.get, key="deploy.forecast.mode")
    scoring_view.score_now(ws, name, version.table, out_schema, out_name, mode, label="Write the forecast",
                           key="deploy.forecast_write", working="Forecasting…",
                           job_key=f"deploy.forecast.job.{version.model_id}")
    st.code(f"SELECT *\nFROM {quote_ident(out_schema)}.{quote_ident(out_name)}\n"
            f"WHERE {CREATED_AT_COLUMN} = (SELECT max({CREATED_AT_COLUMN}) FROM {quote_ident(out_schema)}."
            f"{quote_ident(out_name)});",
            language="sql")

    st.subheader("3 · Forecast again as new history arrives")
    if ws.warehouse.capabilities.staged_functions:
        snowflake_task(ws, name, version, out_schema, out_name)
    elif ws.supervisor is not None:
        scoring_view.embedded_schedules(ws, name, version.table, out_schema, out_name,
                                        title="Re-forecast on a schedule")
    else:
        st.info("Schedules run while the app is open; open it to schedule re-forecasts.", icon=":material/schedule:")

    st.subheader("4 · Share")
    if st.button("Open this model's dashboard", icon=":material/dashboard:", key="deploy.open_dashboard"):
        state.put(Key.OPEN_DASHBOARD, version.model_id)
        st.switch_page("pages/dashboard.py")
    st.caption(md(share_sentence(calls.link_params(version.model_id))))


def snowflake_task(ws: Workspace, name: str, version: ModelVersion, out_schema: str, out_name: str) -> None:
    """A Snowflake Task re-forecasting from the newest history, inside the account, with no app open."""
    left, right = st.columns(2)
    schedule = left.selectbox("Re-forecast", SCHEDULE_CHOICES, key="deploy.forecast_schedule",
                              help="A Snowflake Task calls Flurry's procedure on this schedule (UTC).")
    mode = right.radio("Each time", [OutputMode.REPLACE, OutputMode.APPEND], format_func=MODES.get,
                       key="deploy.forecast_schedule_mode")
    if st.button("Schedule re-forecasting", key="deploy.forecast_schedule_start"):
        with user_errors("schedule re-forecasting"):
            output = scoring_view.output_table(out_schema, out_name)
            scheduled = ws.schedule_forecast(name, version.table, output, schedule, append=mode is OutputMode.APPEND)
            if scheduled.resumed:
                st.success(f"The task {md(scheduled.task)} re-forecasts {md(output)} {schedule}.")
            else:
                st.warning(md(scheduled.reason or f"The task {scheduled.task} is suspended."))
