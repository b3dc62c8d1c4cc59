"""Step 2 · Target: pick the column to predict, confirm the task, choose the feature columns."""

from __future__ import annotations

import streamlit as st

from backend.task_detection import Task, check_task_override
from components import backend_calls as calls
from components import state
from components.checks_view import show_findings
from components.feature_picker import pick_features
from components.feedback import user_errors
from components.forecast_setup import pick_forecast
from components.formatting import md
from components.shell import require_shell
from components.target_proposal import keep_features, propose_features, propose_task

require_shell()


def adopt_target() -> None:
    """The column just chosen becomes the target, its kind detected afresh rather than carried over."""
    target = st.session_state.get("target.column")
    if target != state.target():
        state.choose_target(target)
        for widget in ("target.task", "target.positive"):
            st.session_state.pop(widget, None)


st.title("What should the model predict?")
table = state.table()
if table is None:
    st.info("First pick a table on the Data step.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/table:")
    st.stop()

with user_errors("read the table's columns"):
    columns = calls.describe(table)
    names = [c.name for c in columns]
    saved = state.target()
    # adopted in the change callback, before the run: the sidebar, drawn first, then names the new target
    target = st.selectbox("Column to predict (the target)", names, key="target.column",
                          index=names.index(saved) if saved in names else None,
                          placeholder="Choose a column…", on_change=adopt_target)
    if target is None:
        st.stop()
    if target != state.target():  # a value the widget restored, without a change
        adopt_target()

    proposal = propose_task(table, target)
    summary, choices = proposal.summary, proposal.choices
    if summary.null_rows:
        st.warning(f"{summary.null_rows:,} of {summary.rows:,} rows have no value for {md(repr(target))}; "
                   f"they will be left out of training ({summary.usable_rows:,} rows remain).")
    tasks, suggested = proposal.tasks, proposal.suggested
    chosen_task = state.task() if state.task() in tasks else suggested
    task = st.radio("Kind of prediction", tasks, index=tasks.index(chosen_task), key="target.task",
                    format_func=lambda t: t.label + (
                        " · suggested: the rows look like a time series" if t is suggested is Task.FORECAST else
                        " · detected" if t is summary.detected_task else ""))
    check_task_override(summary, next(c for c in columns if c.name == target), task)
    state.put(state.Key.TASK, task.value)
    if task is Task.FORECAST:
        spec = pick_forecast(table, target, proposal.profile, proposal.time_columns)
        if spec is not None:
            st.page_link("pages/train.py", label="Next: train", icon=":material/arrow_forward:")
        st.stop()
    if task is Task.BINARY:
        outcomes = calls.outcome_choices(calls.workspace().warehouse.identity, table, target)
        saved_outcome = state.positive()
        counts = dict(zip(outcomes.values, outcomes.rows, strict=True))
        outcome = st.radio("Which outcome are you looking for?", outcomes.values, key="target.positive",
                           index=outcomes.values.index(saved_outcome) if saved_outcome in counts else 0,
                           format_func=lambda v: f"{v} ({counts[v]:,} rows)", horizontal=True,
                           help="The event the model should find (a churner, a default, a buyer). Every score, "
                                "chart and probability is about it. Flurry proposes the rarer value.")
        state.put(state.Key.POSITIVE, outcome)
    else:
        state.clear(state.Key.POSITIVE)

    checked = propose_features(table, target, task, choices)
    keep_features(checked)
    plan, findings = checked.plan, checked.findings

    st.subheader("Checks")
    show_findings(findings)
    if checked.blocking:
        st.error("Flurry cannot train on this target as it is; see the checks above.")
        st.stop()

    st.subheader("Columns the model may use")
    st.caption("Flurry leaves out columns that cannot help; tick or untick any column to change that.")
    selected = pick_features(table, target, choices, plan)
    if not selected:
        st.error("Select at least one column for the model to learn from.")
        st.stop()
    st.success(f"{summary.detected_task.label if task is summary.detected_task else task.label} of "
               f"**{md(target)}** from {len(selected)} column(s).")
    st.page_link("pages/train.py", label="Next: train", icon=":material/arrow_forward:")
