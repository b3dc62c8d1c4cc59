"""Flurry: entry point. Page config, warehouse bootstrap, navigation and the shared sidebar."""

from __future__ import annotations

import streamlit as st

from backend.config import viewer_mode
from backend.errors import FlurryError
from components import backend_calls as calls
from components import state
from components.formatting import md
from components.shell import mark_shell
from components.sidebar import active_runs_panel, show_choices, warehouse_picker

st.set_page_config(page_title="Flurry", page_icon=":material/ac_unit:", layout="wide")
mark_shell()

viewer = viewer_mode()  # dashboards only, for analysts
with st.sidebar:
    if not viewer:
        warehouse_picker()
state.follow_warehouse(calls.chosen_warehouse())
try:
    ws = calls.workspace()
except FlurryError as exc:
    st.error(f"{md(exc.message)}  \n{md(exc.hint)}", icon=":material/error:")
    st.stop()

pages = {
    "Build a model": [
        st.Page("pages/data.py", title="1 · Data", icon=":material/table:", url_path="data", default=True),
        st.Page("pages/target.py", title="2 · Target", icon=":material/target:", url_path="target"),
        st.Page("pages/train.py", title="3 · Train", icon=":material/model_training:", url_path="train"),
        st.Page("pages/evaluate.py", title="4 · Evaluate & explain", icon=":material/insights:", url_path="evaluate"),
        st.Page("pages/deploy.py", title="5 · Deploy", icon=":material/rocket_launch:", url_path="deploy"),
    ],
    "Manage": [st.Page("pages/experiments.py", title="Experiments", icon=":material/science:",
                       url_path="experiments")],
    "Share": [st.Page("pages/dashboard.py", title="Dashboards", icon=":material/dashboard:", url_path="dashboard")],
}
if viewer:
    pages = {"Share": [st.Page("pages/dashboard.py", title="Dashboards", icon=":material/dashboard:",
                               url_path="dashboard", default=True)]}
navigation = st.navigation(pages)

with st.sidebar:
    for label, value in calls.connection_details():
        st.caption(f"{label} · {md(value)}")
    choice_slot = st.empty()
    show_choices(choice_slot)  # as the run starts; a page that ends in st.stop() gets nothing drawn after it
    if not viewer:
        active_runs_panel()

try:
    navigation.run()
finally:
    show_choices(choice_slot)  # again, with the choices the page just made (when it ran to the end)
