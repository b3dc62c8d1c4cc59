"""Make sure every page runs inside app.py's navigation shell.

Streamlit runs the very first request of a fresh server in its legacy "pages/ directory" mode when a
`pages/` folder sits beside the entry script, so a first visitor arriving by a shared link (say
`/dashboard?model=…`) would get the page without app.py: no page config, no wizard navigation. Pages call
`require_shell()` first; outside the shell it switches Streamlit to `st.navigation` mode and reruns, and the
same URL then resolves through app.py (legacy and `st.Page` hashes both derive from the URL path).
"""

from __future__ import annotations

import streamlit as st

from backend.config import viewer_mode

_SHELL_KEY = "shell.ran"


def mark_shell() -> None:
    """Called by app.py on every run, before the page runs."""
    st.session_state[_SHELL_KEY] = True


def require_shell(*, viewer_page: bool = False) -> None:
    """Rerun inside app.py's shell when needed; in viewer mode, refuse every page but the dashboards (a wizard
    page reached by its address, say)."""
    if viewer_mode() and not viewer_page:
        st.error("This Flurry app shows dashboards only: open one from the sidebar, or by the link you were sent.",
                 icon=":material/visibility:")
        st.stop()
    if st.session_state.get(_SHELL_KEY):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # what st.navigation itself sets once it has run
    st.rerun()
