"""Step 1 · Data: pick a schema and a table; see its size, columns and first rows."""

from __future__ import annotations

import streamlit as st

from backend.warehouse.base import PREVIEW_CELL_CHARS, PREVIEW_MAX_COLUMNS, TableRef, search_tables
from components import backend_calls as calls
from components import state
from components.feedback import user_errors
from components.formatting import human_bytes
from components.pickers import initial_index
from components.profile_view import show_profile, summaries_frame
from components.shell import require_shell
from components.upload_view import upload_panel

require_shell()

BROWSE_ROWS = 200

st.title("Pick the data to learn from")
st.caption("Flurry reads only aggregates and a preview here; your table stays in the warehouse.")

upload_panel()
with user_errors("list the warehouse's tables"):
    search = st.text_input("Find a table", key="data.search", placeholder="Type part of a schema or table name")
    matches = search_tables(calls.table_summaries(), search)
    if not matches:
        st.info("No table matches that search." if search else
                "The warehouse has no tables yet. Upload a file above, or load a table into the warehouse.")
        st.stop()
    with st.expander(f"Browse {len(matches):,} table(s)"):
        shown = matches[:BROWSE_ROWS]
        sizes = calls.table_sizes(calls.workspace().warehouse.identity, [TableRef(t.schema, t.name) for t in shown])
        st.dataframe(summaries_frame(shown, sizes), hide_index=True, width="stretch")
        if len(matches) > BROWSE_ROWS:
            st.caption(f"Showing the first {BROWSE_ROWS}; type in the search box to narrow the list.")
    schemas = sorted({t.schema for t in matches})
    current = state.table()
    if state.get(state.Key.JUMP_TO_TABLE) and current is not None:  # e.g. a table just uploaded
        state.clear(state.Key.JUMP_TO_TABLE)
        st.session_state["data.schema"], st.session_state["data.table"] = current.schema, current.name
    if st.session_state.get("data.schema") not in schemas:
        st.session_state.pop("data.schema", None)
    schema = st.selectbox("Schema", schemas, key="data.schema", **initial_index(
        "data.schema", schemas, current.schema if current else None))
    tables = [t.name for t in matches if t.schema == schema]
    if st.session_state.get("data.table") not in tables:
        st.session_state.pop("data.table", None)
    name = st.selectbox("Table", tables, key="data.table", **initial_index(
        "data.table", tables, current.name if current and current.schema == schema else None))
    chosen = TableRef(schema, name)
    state.select_table(chosen)

    columns = calls.describe(chosen)
    rows = calls.row_count(chosen)
    size = calls.table_size(chosen)  # None or 0 where the warehouse reports none (a view, unsaved changes)
    left, middle, right = st.columns(3)
    left.metric("Rows", f"{rows:,}")
    middle.metric("Columns", f"{len(columns):,}")
    if size:
        right.metric("Size on disk", human_bytes(size), help="Storage the warehouse reports for this table.")
    if rows == 0:
        st.warning("This table has no rows, so there is nothing to learn from. Pick another table.")

    st.subheader("Columns")
    st.caption("Computed inside the warehouse; only these summaries come back.")
    show_profile(calls.profile(calls.workspace().warehouse.identity, chosen))
    st.subheader("First rows")
    first_rows = calls.preview(chosen, 100, columns)
    st.dataframe(first_rows, hide_index=True, width="stretch")
    if len(columns) > PREVIEW_MAX_COLUMNS:
        st.caption(f"Showing the first {PREVIEW_MAX_COLUMNS:,} of {len(columns):,} columns.")
    texts = first_rows.select_dtypes(exclude=["number", "bool", "datetime"])
    if any(texts[c].astype(str).str.len().max() >= PREVIEW_CELL_CHARS for c in texts.columns if len(texts)):
        st.caption(f"Values longer than {PREVIEW_CELL_CHARS:,} characters are cut short here (not in the table).")
    st.page_link("pages/target.py", label="Next: choose what to predict", icon=":material/arrow_forward:")
