"""The shared sidebar: which warehouse this session works in, and what is training right now."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from backend.config import SECRETS_CONNECTION, WarehouseConfig, default_duckdb_path
from backend.warehouse.snowflake_session import ACTIVE
from components import backend_calls as calls
from components import state
from components.formatting import md


def warehouse_label(config: WarehouseConfig) -> str:
    if config.kind == "duckdb":
        same = config.location == str(default_duckdb_path())
        return "Embedded (DuckDB)" if same else f"DuckDB · {config.location.rsplit('/', 1)[-1]}"
    if config.location == ACTIVE:
        return "Snowflake · this account"
    if config.location == SECRETS_CONNECTION:
        return "Snowflake · the app's secrets"
    return f"Snowflake · {config.location}"


def warehouse_picker() -> None:
    """Choose the warehouse for this session (shown only when there is a choice, so never inside Snowflake).
    Drawn before the warehouse is opened, so a connection that fails can be swapped for another."""
    choices = calls.available_warehouses()
    if len(choices) < 2:
        return
    names = [c.display_name for c in choices]  # plain strings: what the widget keeps between reruns
    labels = dict(zip(names, map(warehouse_label, choices), strict=True))
    current = calls.chosen_warehouse().display_name
    requested = st.query_params.get(calls.WAREHOUSE_PARAM)  # a shared link opens where its model lives
    if calls.WAREHOUSE_CHOICE not in st.session_state and requested in names:
        current = requested
    # the default goes through `index`: a value put into session state first does not survive a rerun here
    st.selectbox("Warehouse", names, index=names.index(current), format_func=labels.__getitem__,
                 key=calls.WAREHOUSE_CHOICE,
                 help="Where tables are read, models trained and functions deployed. Snowflake connections "
                      "come from connections.toml or the app's [connections.snowflake] secrets.")


def active_runs_panel() -> None:
    jobs = calls.workspace().jobs
    # Poll only while something trains (the next full run stops it); the fragment then persists progress even
    # if no page shows it. It never reruns the whole page when a run ends: that run may be another session's,
    # and a rerun landing on this one's click would swallow it (the Train step redraws its own run's result).
    every = timedelta(seconds=2) if jobs.active_runs() else None

    @st.fragment(run_every=every)
    def panel() -> None:
        if not jobs.supervised:  # on Snowflake, the page refreshes what the procedure recorded
            for run in jobs.active_runs():
                jobs.sync(run.run_id)
        for run in jobs.active_runs():
            st.caption(f":material/hourglass_top: Training on {md(run.table.name)} → {md(run.target)} "
                       f"({run.state.value.lower()})")

    panel()


def show_choices(slot: DeltaGenerator) -> None:
    """The table and target this session chose, in `slot` (an st.empty, so drawing again replaces it)."""
    table, target = state.table(), state.target()
    if table is not None:
        slot.caption(f"Table · {md(table)}" + (f" → predicting **{md(target)}**" if target else ""))
