"""The Data step's "bring your own data" panel."""

from __future__ import annotations

import streamlit as st

from backend.uploads import ImportResult, default_table_name, import_upload, max_upload_bytes
from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components import state
from components.feedback import user_errors
from components.formatting import md


def upload_sentences(result: ImportResult) -> list[str]:
    """What an upload made, and every column it had to rename, in words that stay on the page."""
    rows, columns = ("row" if result.rows == 1 else "rows"), ("column" if result.columns == 1 else "columns")
    lines = [f"Created {result.table} with {result.rows:,} {rows} and {result.columns} {columns}."]
    if result.renamed:
        lines.append("Renamed, since column names must differ by more than case: " + "; ".join(
            f"{old!r} is now {new!r}" for old, new in result.renamed) + ".")
    return lines


def upload_panel() -> None:
    limit_mb = max_upload_bytes() // (1024 * 1024)
    last = state.get(state.Key.UPLOAD_RESULT)
    if isinstance(last, ImportResult):
        st.success(md("  \n".join(upload_sentences(last))), icon=":material/upload_file:")
    with st.expander("Upload a CSV or Parquet file as a new table"):
        upload = st.file_uploader(f"File (CSV or Parquet, up to {limit_mb:,} MB)", key="data.upload",
                                  type=["csv", "tsv", "txt", "parquet", "pq"])
        if upload is None:
            return
        schema = st.text_input("Schema", value=calls.workspace().output_schema("uploads"), key="data.upload_schema")
        name = st.text_input("Table name", value=default_table_name(upload.name), key="data.upload_table")
        replace = st.checkbox("Replace it if a table with that name exists", key="data.upload_replace")
        if st.button("Create the table", type="primary", key="data.upload_create"):
            with user_errors("load the file"), st.spinner("Loading the file into the warehouse…"):
                result = import_upload(calls.workspace().warehouse, upload.name, upload.size, upload.getvalue(),
                                       TableRef(schema.strip(), name.strip()), replace=replace)
                st.cache_data.clear()  # listings and profiles of the replaced table are stale
                state.select_table(result.table)
                state.put(state.Key.JUMP_TO_TABLE, True)
                state.put(state.Key.UPLOAD_RESULT, result)  # said on the page until the next upload
                st.rerun()
