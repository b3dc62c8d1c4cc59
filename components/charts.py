"""Plotly figure builders. Pure functions of data; no Streamlit here either."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from backend.training.jobs import TrialEvent

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 360}


def importance_bar(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    """Mean |SHAP| per original column, largest on top."""
    data = importance.head(top).iloc[::-1]
    fig = px.bar(data, x="importance", y="feature", orientation="h",
                 labels={"importance": "Mean |SHAP value| (impact on the prediction)", "feature": ""},
                 title="What drives the model's predictions")
    fig.update_layout(**_LAYOUT)
    return fig


def row_contributions(contributions: pd.Series, values: pd.Series, top: int = 12) -> go.Figure:
    """Signed SHAP contributions for one row, with each column's value in the label."""
    order = contributions.abs().sort_values(ascending=False).head(top).index[::-1]
    labels = [f"{name} = {values.get(name)!s:.30}" for name in order]
    colors = ["#dc2626" if contributions[n] > 0 else "#2563eb" for n in order]
    fig = go.Figure(go.Bar(x=contributions[order].to_numpy(), y=labels, orientation="h", marker_color=colors))
    fig.update_layout(title="Why the model predicted this (red pushes up, blue pushes down)",
                      xaxis_title="SHAP contribution", **_LAYOUT)
    return fig


def best_score_over_time(points: list[TrialEvent], metric_label: str) -> go.Figure:
    frame = pd.DataFrame([{"elapsed": p.elapsed, "best": p.best_score, "estimator": p.estimator} for p in points])
    fig = px.line(frame, x="elapsed", y="best", markers=True, labels={"elapsed": "seconds", "best": metric_label},
                  title=f"Best {metric_label} so far")
    fig.update_layout(**{**_LAYOUT, "height": 280})
    return fig


def score_distribution(distribution: pd.DataFrame, numeric: bool) -> go.Figure:
    fig = px.bar(distribution, x="value", y="count", labels={"value": "prediction", "count": "rows"},
                 title="Latest batch scores")
    if not numeric:
        fig.update_xaxes(type="category")
    fig.update_layout(**_LAYOUT)
    return fig


def metric_comparison(report: dict[str, dict[str, float]], labels: dict[str, str]) -> go.Figure:
    rows = [{"metric": labels.get(name, name), "who": who, "value": v[who]}
            for name, v in report.items() for who in ("model", "baseline")]
    fig = px.bar(pd.DataFrame(rows), x="metric", y="value", color="who", barmode="group",
                 title="Model vs naive baseline on holdout rows")
    fig.update_layout(**_LAYOUT)
    return fig
