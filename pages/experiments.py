"""Experiments: every training run, runs side by side, rerun or delete."""

from __future__ import annotations

import streamlit as st

from backend.experiments import compare_runs, runs_table, summarize_runs
from components import backend_calls as calls
from components import state, versions_view
from components.feedback import user_errors
from components.formatting import md
from components.shell import require_shell

require_shell()

st.title("Experiments")
with user_errors("list the training runs"):
    ws = calls.workspace()
    summaries = summarize_runs(ws.registry)
    if not summaries:
        st.info("No model has been trained yet.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    table = runs_table(summaries)
    healths = {s.version.model_id: calls.health(s.version.model_id) for s in summaries if s.version is not None}
    table.insert(1, "version", [s.version.label if s.version else None for s in summaries])
    table.insert(2, "health", [None if s.version is None else
                               versions_view.health_word(s.version, healths[s.version.model_id]) for s in summaries])
    for s in summaries:
        if s.version is not None and not healths[s.version.model_id].ok:
            versions_view.show_broken(healths[s.version.model_id],
                                      f"{s.version.name} {s.version.label} (run {s.run.run_id})")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"score": st.column_config.NumberColumn(format="%.4f"),
                                "seconds": st.column_config.NumberColumn(format="%.0f")})

    st.subheader("Compare")
    ids = [s.run.run_id for s in summaries]
    chosen = st.multiselect("Runs to compare", ids, default=ids[:2], key="experiments.compare")
    if chosen:
        st.dataframe(compare_runs([s for s in summaries if s.run.run_id in chosen]), width="stretch")

    st.subheader("Rerun or delete a run")
    by_id = {s.run.run_id: s for s in summaries}
    run_id = st.selectbox("Run", ids, key="experiments.run",
                          format_func=lambda i: f"{i} · {by_id[i].run.target} from {by_id[i].run.table.name} · "
                                                f"{by_id[i].run.state.value.lower()}")
    left, right = st.columns(2)
    if left.button("Rerun with the same data and options", key="experiments.rerun", icon=":material/replay:"):
        state.put(state.Key.RUN_ID, ws.jobs.rerun(run_id))
        st.switch_page("pages/train.py")
    with right:
        confirm = st.checkbox("Yes, delete this run, its model and any SQL function deployed from it",
                              key="experiments.confirm")
        if st.button("Delete", key="experiments.delete", disabled=not confirm, type="primary",
                     icon=":material/delete:"):
            removed = ws.delete_run(run_id)
            calls.forget_bundles()  # cached model bundles of the deleted version
            st.toast(f"Deleted run {md(run_id)}" + (f" and functions {md(', '.join(removed))}" if removed else ""))
            st.rerun()
