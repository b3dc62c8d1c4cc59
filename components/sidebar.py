"""The shared sidebar: what is training right now, kept fresh while anything runs."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from components import backend_calls as calls
from components.formatting import md


def active_runs_panel() -> None:
    jobs = calls.workspace().jobs
    # Poll only while something trains; the fragment then persists progress even if no page shows it.
    every = timedelta(seconds=2) if jobs.active_runs() else None

    @st.fragment(run_every=every)
    def panel() -> None:
        active = jobs.active_runs()
        for run in active:
            jobs.sync(run.run_id)
        still_active = jobs.active_runs()
        if every is not None and not still_active:
            st.rerun()  # a run just finished: redraw the page so it shows the result
        for run in still_active:
            st.caption(f":material/hourglass_top: Training on {md(run.table.name)} → {md(run.target)} "
                       f"({run.state.value.lower()})")

    panel()
