"""Step 1 · Data: pick a schema and a table; see its size, columns and first rows."""

from __future__ import annotations

import streamlit as st

from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components import state
from components.feedback import user_errors
from components.formatting import md
from components.profile_view import show_profile
from components.shell import require_shell
from components.upload_view import upload_panel

require_shell()

st.title("Pick the data to learn from")
st.caption("Flurry reads only aggregates and a preview here; your table stays in the warehouse.")

upload_panel()
with user_errors("list the warehouse's tables"):
    schemas = calls.list_schemas()
    if not schemas:
        st.info("The warehouse has no tables yet. Load a table into it, then come back.")
        st.stop()
    current = state.table()
    if state.get(state.Key.JUMP_TO_TABLE) and current is not None:  # e.g. a table just uploaded
        state.clear(state.Key.JUMP_TO_TABLE)
        st.session_state["data.schema"], st.session_state["data.table"] = current.schema, current.name
    schema = st.selectbox("Schema", schemas, key="data.schema",
                          index=schemas.index(current.schema) if current and current.schema in schemas else 0)
    tables = calls.list_tables(schema)
    if not tables:
        st.info(f"The schema {md(schema)} has no tables.")
        st.stop()
    default = tables.index(current.name) if current and current.schema == schema and current.name in tables else 0
    name = st.selectbox("Table", tables, index=default, key="data.table")
    chosen = TableRef(schema, name)
    state.select_table(chosen)

    columns = calls.describe(chosen)
    rows = calls.row_count(chosen)
    left, right = st.columns(2)
    left.metric("Rows", f"{rows:,}")
    right.metric("Columns", f"{len(columns):,}")
    if rows == 0:
        st.warning("This table has no rows, so there is nothing to learn from. Pick another table.")

    st.subheader("Columns")
    st.caption("Computed inside the warehouse; only these summaries come back.")
    show_profile(calls.profile(calls.workspace().warehouse.identity, chosen))
    st.subheader("First rows")
    st.dataframe(calls.preview(chosen, 100), hide_index=True, width="stretch")
    st.page_link("pages/target.py", label="Next: choose what to predict", icon=":material/arrow_forward:")
