"""The Target step's forecast choices: the time column, the series, the horizon, the columns known in
advance and what to do with untidy rows; then the series as Flurry reads them, with every finding."""

from __future__ import annotations

import streamlit as st

from backend.forecast_workflow import default_horizon, default_series_columns
from backend.forecasting.series import MAX_SERIES, Duplicates, Gaps, SeriesSpec
from backend.profiling import TableProfile
from backend.training.config import MAX_HORIZON
from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components import state
from components.formatting import md

DUPLICATE_WORDS = {Duplicates.SUM: "add them up (a day's sales lines → the day's total)",
                   Duplicates.MEAN: "average them (several readings in one hour)",
                   Duplicates.REFUSE: "stop: each series should have one row per period"}
GAP_WORDS = {Gaps.INTERPOLATE: "draw a straight line between their neighbours (not recorded)",
             Gaps.ZERO: "count them as zero (nothing happened: no sales that day)"}


def pick_forecast(table: TableRef, target: str, profile: TableProfile, dated: list[str]) -> SeriesSpec | None:
    """The user's forecast choices, checked against the table's rows (None until they are usable)."""
    identity = calls.workspace().warehouse.identity
    saved: SeriesSpec | None = state.forecast_spec()
    if saved is not None and saved.target != target:
        saved = None
    state.clear(state.Key.FORECAST)  # put back below only once the choices read as usable series
    if not dated:
        st.error(f"{md(table)} has no date or time column, so there is nothing to order a forecast by.",
                 icon=":material/event_busy:")
        return None
    time_column = st.selectbox("Time column", dated, key="target.forecast.time",
                               index=dated.index(saved.time_column) if saved and saved.time_column in dated else 0,
                               help="The date or time of each row. Text columns that hold dates are offered too.")
    others = [c.name for c in profile.columns if c.name not in (target, time_column) and c.kind in ("text", "numeric", "boolean")]
    default_series = list(saved.series_columns) if saved else list(default_series_columns(profile, target, time_column))
    series_columns = st.multiselect(
        "One series per", [c for c in others if profile.column(c).kind in ("text", "numeric")],
        default=[c for c in default_series if c in others], key="target.forecast.series",
        help=f"A separate forecast for each value (each store, product or region), at most {MAX_SERIES:,} series. "
             "Leave empty to forecast the table as one series.")
    known_choices = [c for c in others if c not in series_columns and profile.column(c).kind in ("numeric", "boolean")]
    known = st.multiselect("Columns known in advance (optional)", known_choices,
                           default=[c for c in (saved.known_columns if saved else ()) if c in known_choices],
                           key="target.forecast.known",
                           help="Values you know for the future periods too: a planned price, a promotion, a "
                                "holiday flag. Rows dated after the last value of the target give them.")
    left, right = st.columns(2)
    duplicates = left.radio("Several rows for one series and period", list(Duplicates), key="target.forecast.dups",
                            index=list(Duplicates).index(saved.duplicates) if saved else 0,
                            format_func=DUPLICATE_WORDS.get)
    gaps = right.radio("Missing periods", list(Gaps), key="target.forecast.gaps",
                       index=list(Gaps).index(saved.gaps if saved else Gaps.INTERPOLATE), format_func=GAP_WORDS.get)
    probe = SeriesSpec(time_column, target, tuple(series_columns), horizon=1, known_columns=tuple(known),
                       duplicates=duplicates, gaps=gaps)
    probed = calls.forecast_preview(identity, table, probe)  # the unit the horizon is counted in, the history
    word = probed.frequency.frequency.period_word
    horizon = int(st.number_input(f"Forecast the next … {word}s", min_value=1, max_value=MAX_HORIZON, step=1,
                                  value=saved.horizon if saved else default_horizon(probed),
                                  key="target.forecast.horizon"))
    spec = SeriesSpec(time_column, target, tuple(series_columns), horizon=horizon, known_columns=tuple(known),
                      duplicates=duplicates, gaps=gaps)
    found = calls.forecast_preview(identity, table, spec)
    state.put(state.Key.FORECAST, spec)
    st.subheader("Checks")
    st.markdown(f"The rows are **{md(found.frequency.words)}**: {found.series:,} series, the longest with "
                f"{found.periods:,} {word}s of history. Flurry will forecast the next {horizon} {word}s of each.")
    if not found.findings:
        st.success("No problems found in these series.", icon=":material/check_circle:")
    for finding in found.findings:
        with st.container(border=True):
            st.markdown(md(finding.message))
            st.caption(md(finding.remedy))
    st.success(f"Forecast of **{md(target)}**, {horizon} {word}s ahead.")
    return spec


