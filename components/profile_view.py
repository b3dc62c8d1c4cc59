"""The Data step's profile: one row per column with a small distribution chart."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.profiling import ColumnProfile, TableProfile
from backend.warehouse.base import TableSummary
from components.formatting import human, human_bytes


def _distribution(column: ColumnProfile) -> list[int]:
    if column.histogram:
        return [count for _, _, count in column.histogram]
    return [count for _, count in column.top_values]


def _summary(column: ColumnProfile) -> str:
    if column.kind == "numeric" and column.mean is not None:
        return f"{human(column.minimum)} … {human(column.maximum)} · mean {human(column.mean)} · sd {human(column.std)}"
    if column.kind == "datetime" and column.minimum is not None:
        return "dates spanning the range shown"
    if column.top_values:
        return " · ".join(f"{value} ({count:,})" for value, count in column.top_values[:3])
    return ""


def profile_frame(profile: TableProfile) -> pd.DataFrame:
    return pd.DataFrame([{
        "column": c.name, "type": c.sql_type, "missing": c.null_share, "distinct": c.distinct,
        "distribution": _distribution(c), "summary": _summary(c)} for c in profile.columns])


def summaries_frame(summaries: list[TableSummary], sizes: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame([{"schema": t.schema, "table": t.name, "kind": t.kind, "rows (≈)": t.rows,
                          "columns": t.columns, "size": human_bytes(size) if size else "—"}
                         for t, size in zip(summaries, sizes, strict=True)])


def show_profile(profile: TableProfile) -> None:
    st.dataframe(
        profile_frame(profile), hide_index=True, width="stretch",
        column_config={
            "missing": st.column_config.ProgressColumn("missing", format="percent", min_value=0.0, max_value=1.0),
            "distinct": st.column_config.NumberColumn("distinct (≈)", format="localized"),
            "distribution": st.column_config.BarChartColumn("distribution", width="medium", y_min=0),
            "summary": st.column_config.TextColumn("range / most frequent", width="large"),
        })
