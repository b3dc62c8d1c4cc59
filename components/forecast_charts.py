"""Plotly figures of forecasts: a series' history and forecast with its intervals, and forecast against what
happened. Pure functions of frames."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 380, "hovermode": "x unified"}
_BAND = {0.95: "rgba(31, 119, 180, 0.12)", 0.8: "rgba(31, 119, 180, 0.25)"}


def forecast_chart(rows: pd.DataFrame, time: str, actual: str, title: str) -> go.Figure:
    """History (`actual`) and the forecast with its 80% and 95% bands; `rows` has `time`, `actual`, forecast,
    lower_80, upper_80, lower_95, upper_95 (NaN where a row has none)."""
    fig = go.Figure()
    ahead = rows[rows["forecast"].notna()].sort_values(time)
    before = rows[rows[actual].notna() & (rows[time] < ahead[time].min())].sort_values(time).tail(1)
    joined = pd.concat([before.assign(forecast=before[actual]), ahead])  # the forecast line starts at the last actual
    for level in (0.95, 0.8):
        suffix = round(level * 100)
        fig.add_trace(go.Scatter(x=ahead[time], y=ahead[f"upper_{suffix}"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ahead[time], y=ahead[f"lower_{suffix}"], mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=_BAND[level], name=f"{suffix}% interval"))
    past = rows[rows[actual].notna()].sort_values(time)
    fig.add_trace(go.Scatter(x=past[time], y=past[actual], mode="lines", name="history",
                             line={"color": "#444444"}))
    fig.add_trace(go.Scatter(x=joined[time], y=joined["forecast"], mode="lines+markers", name="forecast",
                             line={"color": "#1f77b4"}))
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def error_over_time(errors: pd.DataFrame) -> go.Figure:
    """Mean absolute percentage error per forecast run (`created_at`, `error_pct`, `periods`)."""
    fig = go.Figure(go.Scatter(x=errors["created_at"], y=errors["error_pct"], mode="lines+markers",
                               text=errors["periods"], hovertemplate="%{y:.1f}% over %{text} periods"))
    fig.update_layout(title="Forecast error once the actuals arrived (mean absolute % error)", **_LAYOUT)
    fig.update_yaxes(title="error %", rangemode="tozero")
    return fig
