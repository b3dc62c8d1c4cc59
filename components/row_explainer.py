"""One holdout row explained, found by position or by a column's value, with a what-if form over its inputs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from backend.evaluation.rows import find_rows
from backend.registry import ModelVersion
from backend.task_detection import Task
from components import backend_calls as calls
from components import evaluation_charts as charts
from components.feedback import user_errors
from components.formatting import human, md


def _pick_position(version: ModelVersion, rows: int, key: str) -> int | None:
    holdout = calls.holdout(version.model_id)
    how = st.radio("Find the row", ["by position", "by a column's value"], horizontal=True, key="evaluate.row_how")
    if how == "by position":
        position = int(st.number_input(f"Holdout row, 0 to {rows - 1:,}", min_value=0, max_value=rows - 1, value=0,
                                       step=1, key="evaluate.row"))
        judged = version.report.rows if version.report is not None else rows
        if judged > rows:
            st.caption(f"Flurry keeps the first {rows:,} of the {judged:,} holdout rows for this view.")
        return position
    left, right = st.columns(2)
    column = left.selectbox("Column", list(holdout.columns), key="evaluate.row_column")
    value = right.text_input("Value", key="evaluate.row_value", placeholder="e.g. a customer id")
    if not value:
        return None
    found = find_rows(holdout, column, value)
    if not found:
        st.info(f"No stored holdout row has {md(column)} = {md(value)} (Flurry keeps the first {rows:,} holdout rows).")
        return None
    if len(found) > 1:
        st.caption(f"{len(found):,} rows match; showing the first.")
    return found[0]


def _edits_form(version: ModelVersion, values: dict[str, Any], key: str) -> dict[str, Any]:
    """Inputs prefilled with the row's values; returns the ones the user changed."""
    edits: dict[str, Any] = {}
    with st.form(f"{key}.what_if"):
        st.caption("What if? Change any input and press Update.")
        columns = st.columns(3)
        for i, feature in enumerate(version.features):
            name, kind = feature.name, feature.kind
            original = values.get(name)
            box = columns[i % 3]
            label = md(name)
            if kind == "numeric":  # a text column read as numbers holds raw text: what does not parse is missing
                number = pd.to_numeric(pd.Series([original]), errors="coerce").iloc[0]
                original = None if pd.isna(number) else float(number)
                new = box.number_input(label, value=original, key=f"{key}.edit.{i}", format="%g")
            elif kind == "boolean":
                new = box.selectbox(label, [None, True, False], key=f"{key}.edit.{i}",
                                    index=[None, True, False].index(bool(original) if original is not None else None))
            else:  # text, and dates as ISO text (compared as text, so an untouched date is no edit)
                original = None if original is None else str(original)
                new = box.text_input(label, value=original or "", key=f"{key}.edit.{i}") or None
            if new != original:
                edits[name] = new
        st.form_submit_button("Update")
    return edits


def explain_one_row(version: ModelVersion) -> None:
    key = f"evaluate.{version.model_id}"
    holdout = calls.holdout(version.model_id)
    position = _pick_position(version, len(holdout), key)
    if position is None:
        return
    current = calls.workspace().registry.threshold(version.model_id)
    threshold = None if current is None else current.threshold
    with user_errors("explain the row") as outcome:  # a refused explanation says why, never a traceback
        original = calls.explain_holdout_row(version.model_id, position, threshold)
        edits = _edits_form(version, original.values, f"{key}.{position}")
        explained = (calls.explain_holdout_row(version.model_id, position, threshold, tuple(sorted(edits.items())))
                     if edits else original)
    if not outcome.ok:
        return
    left, middle, right = st.columns(3)
    changed = " (what-if)" if edits else ""
    left.metric("Predicted" + changed, human(explained.prediction),
                delta=None if not edits else f"was {human(original.prediction)}", delta_color="off")
    middle.metric("Actual", human(holdout[version.target].iloc[position]))
    if explained.probability is not None:
        label = (f"Probability of {explained.explained_class!r}" if version.task is Task.BINARY
                 else "Probability of the predicted class")
        right.metric(md(label) + changed, f"{explained.probability:.1%}",
                     delta=None if not edits or original.probability is None
                     else f"{explained.probability - original.probability:+.1%}")
    st.plotly_chart(charts.waterfall_figure(explained.contributions, explained.values, explained.base_value),
                    width="stretch", key=f"{key}.waterfall")
    st.caption(f"Contributions on the scale of the {md(explained.output)}, by {md(explained.method)}.")
    reasons = explained.reasons(version.target)
    if reasons:
        st.markdown("**In words** (what the model's explain function in SQL returns for this row):\n"
                    + "\n".join(f"- {md(reason)}" for reason in reasons))
