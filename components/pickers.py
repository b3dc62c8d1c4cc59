"""Shared pickers: which model version a page is about."""

from __future__ import annotations

import streamlit as st

from backend.learner_names import plain_name
from backend.registry import ModelVersion
from components import backend_calls as calls
from components import state


def describe_version(version: ModelVersion) -> str:
    number = f" · v{version.number}" if version.number is not None else ""
    return (f"{version.name}{number} · {plain_name(version.best_estimator)} · {version.created_at:%Y-%m-%d %H:%M} · "
            f"{version.model_id}")


def pick_model(key: str) -> ModelVersion | None:
    """A selectbox of READY model versions, defaulting to the one this session trained last."""
    versions = calls.model_versions()
    if not versions:
        st.info("No model has been trained yet.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return None
    ids = [v.model_id for v in versions]
    current = state.get(state.Key.MODEL_ID)
    chosen = st.selectbox("Model", versions, index=ids.index(current) if current in ids else 0, key=key,
                          format_func=describe_version)
    state.put(state.Key.MODEL_ID, chosen.model_id)
    return chosen


def initial_index(key: str, options: list[str], preferred: str | None) -> dict[str, int]:
    """`index=` for a keyed selectbox only on its first draw; afterwards its session state rules (passing both
    makes Streamlit warn)."""
    if key in st.session_state:
        return {}
    return {"index": options.index(preferred) if preferred in options else 0}
