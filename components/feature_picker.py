"""The Target step's table of feature columns: tick or untick each, with the reason Flurry left it out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.checks import FeaturePlan
from backend.task_detection import FeatureChoice
from backend.warehouse.base import TableRef
from components import state


def pick_features(table: TableRef, target: str, choices: list[FeatureChoice], plan: FeaturePlan) -> list[str]:
    chosen = set(state.features())
    editor = pd.DataFrame([{
        "use": c.name in chosen, "column": c.name, "type": c.sql_type,
        "note": plan.reasons.get(c.name, "") if (c.name not in chosen or c.name in state.casts()
                                                   or c.name in state.date_casts()) else ""}
        for c in choices])
    version = state.get(state.Key.EDITOR_VERSION, 0)
    edited = st.data_editor(editor, hide_index=True, width="stretch", key=f"target.features.{table}.{target}.{version}",
                            disabled=["column", "type", "note"],
                            column_config={"use": st.column_config.CheckboxColumn("use"),
                                           "note": st.column_config.TextColumn("why left out / how it is read")})
    selected = edited.loc[edited["use"], "column"].tolist()
    state.put(state.Key.FEATURES, selected)
    return selected
