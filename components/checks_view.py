"""The Target step's checks: each finding in plain words, with its one-click remedy."""

from __future__ import annotations

import streamlit as st

from backend.checks import Finding, Remedy
from components import state
from components.formatting import md

_TOGGLES: dict[Remedy, tuple[str, str]] = {  # remedy -> (label to apply, label to undo)
    Remedy.EXCLUDE: ("Leave it out", "Use it anyway"),
    Remedy.CAST_NUMBER: ("Read as numbers", "Keep as text"),
    Remedy.CAST_DATE: ("Read as dates", "Keep as text"),
    Remedy.DEDUPLICATE: ("Train on distinct rows", "Keep the copies"),
}


def _applied(finding: Finding) -> bool:
    if finding.remedy is Remedy.EXCLUDE:
        return finding.column not in state.features()
    if finding.remedy is Remedy.CAST_NUMBER:
        return finding.column in state.casts()
    if finding.remedy is Remedy.CAST_DATE:
        return finding.column in state.date_casts()
    if finding.remedy is Remedy.DEDUPLICATE:
        return state.deduplicate()
    return True


def _toggle(finding: Finding) -> None:
    column = finding.column or ""
    if finding.remedy is Remedy.EXCLUDE:
        chosen = state.features()
        state.put(state.Key.FEATURES, [c for c in chosen if c != column] if column in chosen else [*chosen, column])
    elif finding.remedy is Remedy.CAST_NUMBER:
        casts = state.casts()
        state.put(state.Key.CASTS, [c for c in casts if c != column] if column in casts else [*casts, column])
    elif finding.remedy is Remedy.CAST_DATE:
        dates = state.date_casts()
        state.put(state.Key.DATE_CASTS, [c for c in dates if c != column] if column in dates else [*dates, column])
    elif finding.remedy is Remedy.DEDUPLICATE:
        state.put(state.Key.DEDUPLICATE, not state.deduplicate())
    state.bump_editor()


def show_findings(findings: list[Finding]) -> None:
    if not findings:
        st.success("No problems found in this table for this target.", icon=":material/check_circle:")
        return
    for i, finding in enumerate(findings):
        with st.container(border=True):
            head = f"**{md(finding.title)}**" + (f" · {md(finding.column)}" if finding.column else "")
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.markdown(head)
            left.caption(md(finding.explanation))
            toggle = _TOGGLES.get(finding.remedy)
            if toggle is not None:
                applied = _applied(finding)
                label = toggle[1] if applied else toggle[0]
                right.button(label, key=f"target.fix.{i}.{finding.check}", on_click=_toggle, args=(finding,),
                             type="secondary" if applied else "primary")
