"""Step 3 · Train: choose a time budget and a metric, start AutoML, watch it, see the leaderboard."""

from __future__ import annotations

import streamlit as st

from backend.metrics import METRICS, METRICS_BY_TASK, default_metric
from backend.task_detection import Task
from backend.training.config import DEFAULT_TIME_BUDGET_S, rows_cap, suggested_budget_s
from components import backend_calls as calls
from components import state
from components.feedback import user_errors
from components.formatting import md
from components.shell import require_shell
from components.target_proposal import adopt_proposal
from components.train_options import advanced_options
from components.training_view import forecast_training, live_progress

require_shell()

st.title("Train a model")
table, target, task, features = state.table(), state.target(), state.task(), state.features()
if table is not None and target is not None and (task is None or state.get(state.Key.FEATURES) is None):
    # the target was chosen but the Target step's run that proposes the rest did not finish: propose it here
    with user_errors("check the target"):
        proposal = adopt_proposal(table, target)
        if proposal is not None and proposal.blocking:
            st.error(f"Flurry cannot train on {md(repr(target))} as it is: "
                     f"{md(proposal.blocking[0].title)}. The Target step says why and what to do.")
            st.page_link("pages/target.py", label="Go to Target", icon=":material/target:")
            st.stop()
    task, features = state.task(), state.features()
if task is Task.FORECAST and table is not None:
    forecast_training(table, state.forecast_spec())
    st.stop()
if table is None or target is None or task is None or not features:
    st.info("First pick a table and what to predict." if target is None else
            "Finish the Target step: choose at least one column for the model to learn from.")
    st.page_link("pages/target.py", label="Go to Target", icon=":material/target:")
    st.stop()

outcome = f", looking for {md(repr(state.positive()))}" if task is Task.BINARY and state.positive() else ""
st.caption(f"Predicting **{md(target)}** in {md(table)} ({task.label.lower()}{outcome}) from {len(features)} column(s).")
date_columns: list[str] = []
with user_errors("read the table"):
    profile = calls.profile(calls.workspace().warehouse.identity, table)  # cached since the Target step
    rows = min(profile.rows, rows_cap(len(features) + 1))
    date_columns = [c.name for c in profile.columns if c.kind == "datetime" and c.name != target]
    st.caption(f"Rough guide: a table of this size ({rows:,} rows × {len(features)} columns) usually settles within "
               f"about {suggested_budget_s(rows, len(features)):,} seconds; a longer budget rarely helps much.")
budget = st.number_input("Time budget (seconds)", value=DEFAULT_TIME_BUDGET_S, step=10, key="train.budget",
                         help="AutoML tries models until the budget runs out. 60 s is plenty for most tables.")
metrics = METRICS_BY_TASK[task]
metric = st.radio("Optimise for", metrics, index=metrics.index(default_metric(task)), key="train.metric",
                  format_func=lambda m: METRICS[m].label, captions=[METRICS[m].explanation for m in metrics])
if state.get(state.Key.IMBALANCED) and metric == "accuracy":
    st.warning("The classes are imbalanced: accuracy can look high for a model that ignores the small class. "
               "ROC AUC or log loss judge it fairly.", icon=":material/balance:")

advanced = advanced_options(task, date_columns)

run_id = state.get(state.Key.RUN_ID)
busy = bool(run_id) and not calls.workspace().registry.get_run(run_id).state.is_final
if st.button("Start training", type="primary", key="train.start", disabled=busy,
             help="A run is in progress; wait for it or cancel it." if busy else None):
    with user_errors("start training"):
        config = calls.workspace().train_config(table, target, task, features, metric, int(budget),
                                                casts=tuple(state.casts()), deduplicate=state.deduplicate(),
                                                date_casts=tuple(state.date_casts()),
                                                positive_class=state.positive() if task is Task.BINARY else None,
                                                **advanced)
        state.put(state.Key.RUN_ID, calls.workspace().jobs.start(config))
        state.clear(state.Key.MODEL_ID)
        st.rerun()  # redraw with Start disabled while the run trains

if run_id:
    with user_errors("show the training progress"):
        progress = calls.workspace().jobs.progress(run_id)
        if progress.model_id:
            state.put(state.Key.MODEL_ID, progress.model_id)
        live_progress(progress)
