"""Plotly figures of a model's holdout report. Pure functions of the stored records; no Streamlit here."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from backend.evaluation.report import (
    CalibrationBin,
    ClassScores,
    Curve,
    FeatureEffect,
    GainBin,
    Histogram,
    SegmentView,
)
from backend.evaluation.thresholds import ThresholdRow
from backend.metrics import METRICS

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340}
_MODEL, _REFERENCE, _MARK, _WORSE = "#2563eb", "#9ca3af", "#dc2626", "#f59e0b"


def _layout(fig: go.Figure, title: str, x: str, y: str, **extra: object) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, showlegend=False, **{**_LAYOUT, **extra})
    return fig


def roc_figure(curve: Curve, row: ThresholdRow | None) -> go.Figure:
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": _REFERENCE},
                                name="random"),
                     go.Scatter(x=curve.x, y=curve.y, mode="lines", line={"color": _MODEL}, name="model")])
    if row is not None:
        fig.add_trace(go.Scatter(x=[row.false_positive_rate], y=[row.recall], mode="markers", name="threshold",
                                 marker={"color": _MARK, "size": 11}))
    return _layout(fig, "ROC curve (the dot is the current threshold)", "false alarm rate", "share of positives found")


def pr_figure(curve: Curve, row: ThresholdRow | None, base_rate: float) -> go.Figure:
    fig = go.Figure([go.Scatter(x=[0, 1], y=[base_rate, base_rate], mode="lines", name="random",
                                line={"dash": "dot", "color": _REFERENCE}),
                     go.Scatter(x=curve.x, y=curve.y, mode="lines", line={"color": _MODEL}, name="model")])
    if row is not None and np.isfinite(row.precision):
        fig.add_trace(go.Scatter(x=[row.recall], y=[row.precision], mode="markers", name="threshold",
                                 marker={"color": _MARK, "size": 11}))
    return _layout(fig, "Precision and recall (the dot is the current threshold)", "recall", "precision",
                   yaxis_range=[0, 1.02])


def confusion_figure(matrix: list[list[int]], labels: list[str], title: str,
                     row_shares: bool = False) -> go.Figure:
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    text = [[f"{int(c):,}" + (f"<br>{s:.0%}" if row_shares else "") for c, s in zip(r, sr, strict=True)]
            for r, sr in zip(counts, shares, strict=True)]
    fig = go.Figure(go.Heatmap(z=shares if row_shares else counts, x=labels, y=labels, text=text,
                               texttemplate="%{text}", colorscale="Blues", showscale=False))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return _layout(fig, title, "predicted", "actual")


def binary_confusion(row: ThresholdRow, positive: str, other: str) -> go.Figure:
    return confusion_figure([[row.tp, row.fn], [row.fp, row.tn]], [positive, other],
                            f"Holdout rows at threshold {row.threshold:.3g}")


def gain_figure(bins: list[GainBin]) -> go.Figure:
    x = [0.0] + [b.decile / 10 for b in bins]
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": _REFERENCE}),
                     go.Scatter(x=x, y=[0.0] + [b.cumulative_found for b in bins], mode="lines+markers",
                                line={"color": _MODEL})])
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "Cumulative gain", "rows contacted, highest scores first", "share of positives found")


def lift_figure(bins: list[GainBin]) -> go.Figure:
    fig = go.Figure([go.Bar(x=[str(b.decile) for b in bins], y=[b.lift for b in bins], marker_color=_MODEL)])
    fig.add_hline(y=1.0, line_dash="dot", line_color=_REFERENCE)
    return _layout(fig, "Lift per tenth of rows", "tenth (1 = highest scores)", "lift over the average rate")


def calibration_figure(bins: list[CalibrationBin]) -> go.Figure:
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": _REFERENCE}),
                     go.Scatter(x=[b.mean_predicted for b in bins], y=[b.observed_rate for b in bins],
                                mode="lines+markers", line={"color": _MODEL},
                                text=[f"{b.rows:,} rows" for b in bins])])
    return _layout(fig, "Calibration (reliability curve)", "predicted probability", "observed share")


def value_figure(thresholds: list[float], values: list[float], chosen: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=thresholds, y=values, mode="lines", line={"color": _MODEL}))
    fig.add_vline(x=chosen, line_color=_MARK)
    return _layout(fig, "Value of acting on the model's flags (validation rows)", "threshold", "total value")


def class_scores_figure(scores: list[ClassScores]) -> go.Figure:
    labels = [s.label for s in scores]
    fig = go.Figure([go.Bar(name=name, x=labels, y=[getattr(s, name) for s in scores])
                     for name in ("precision", "recall", "f1")])
    fig.update_layout(barmode="group", showlegend=True)
    fig.update_xaxes(type="category")
    fig.update_layout(title="Precision, recall and F1 per class", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig


def predicted_vs_actual(actual: list[float], predicted: list[float], target: str) -> go.Figure:
    low = float(min(min(actual, default=0), min(predicted, default=0)))
    high = float(max(max(actual, default=1), max(predicted, default=1)))
    fig = go.Figure([go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"dash": "dot", "color": _REFERENCE}),
                     go.Scatter(x=actual, y=predicted, mode="markers", marker={"color": _MODEL, "opacity": 0.4, "size": 5})])
    return _layout(fig, "Predicted against actual", f"actual {target}", f"predicted {target}")


def residuals_figure(actual: list[float], predicted: list[float]) -> go.Figure:
    residual = np.asarray(predicted) - np.asarray(actual)
    fig = go.Figure(go.Scatter(x=predicted, y=residual, mode="markers", marker={"color": _MODEL, "opacity": 0.4, "size": 5}))
    fig.add_hline(y=0.0, line_dash="dot", line_color=_REFERENCE)
    return _layout(fig, "Errors against the prediction", "predicted", "predicted − actual")


def error_histogram_figure(histogram: Histogram) -> go.Figure:
    edges = np.asarray(histogram.edges)
    centres = (edges[:-1] + edges[1:]) / 2 if len(edges) > 1 else edges
    fig = go.Figure(go.Bar(x=centres, y=histogram.counts, marker_color=_MODEL))
    return _layout(fig, "How big the errors are (every holdout row)", "predicted − actual", "rows")


def segment_figure(view: SegmentView) -> go.Figure:
    label = METRICS[view.metric].label if view.metric in METRICS else view.metric
    fig = go.Figure(go.Bar(x=[s.value for s in view.segments], y=[s.metric for s in view.segments],
                           marker_color=[_WORSE if s.much_worse else _MODEL for s in view.segments],
                           text=[f"{s.rows:,} rows" for s in view.segments]))
    fig.add_hline(y=view.overall, line_dash="dot", line_color=_REFERENCE)
    fig.update_xaxes(type="category")
    return _layout(fig, f"{label} by {view.column} (dotted: overall; orange: much worse)", view.column, label)


def column_errors_figure(view: SegmentView) -> go.Figure:
    """Predicted − actual per value (or bin) of a column: boxes of the middle half, whiskers to 5% and 95%."""
    shown = [s for s in view.segments if s.error_quantiles]
    q = np.asarray([s.error_quantiles for s in shown], dtype=float).reshape(-1, 5)
    fig = go.Figure(go.Box(x=[s.value for s in shown], lowerfence=q[:, 0], q1=q[:, 1], median=q[:, 2], q3=q[:, 3],
                           upperfence=q[:, 4], marker_color=_MODEL, hoverinfo="x+y"))
    fig.add_hline(y=0.0, line_dash="dot", line_color=_REFERENCE)
    fig.update_xaxes(type="category")
    return _layout(fig, f"Errors by {view.column}", view.column, "predicted − actual")


def beeswarm_figure(effects: list[FeatureEffect], top: int = 10) -> go.Figure:
    """Each dot a holdout row: its SHAP value for the column, coloured by the column's value (numbers only)."""
    rng = np.random.default_rng(0)
    fig = go.Figure()
    shown = effects[:top][::-1]
    for position, effect in enumerate(shown):
        jitter = position + rng.uniform(-0.3, 0.3, len(effect.shap))
        numeric = [v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in effect.values]
        colour = {"color": numeric, "colorscale": "RdBu_r", "showscale": position == len(shown) - 1,
                  "colorbar": {"title": "value (low→high)"}} if effect.numeric else {"color": _REFERENCE}
        fig.add_trace(go.Scatter(x=effect.shap, y=jitter, mode="markers", marker={"size": 5, "opacity": 0.7, **colour},
                                 text=[str(v) for v in effect.values], hovertemplate="%{text}: %{x:.3f}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(shown))), ticktext=[e.feature for e in shown])
    return _layout(fig, "Every explained row's SHAP value per column", "SHAP value", "", height=420)


def dependence_figure(effect: FeatureEffect) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[str(v) if not effect.numeric else v for v in effect.values], y=effect.shap,
                               mode="markers", marker={"color": _MODEL, "opacity": 0.5, "size": 6}))
    if not effect.numeric:
        fig.update_xaxes(type="category")
    return _layout(fig, f"How {effect.feature} moves the prediction", effect.feature, "SHAP value")


def waterfall_figure(contributions: dict[str, float], values: dict[str, object], base: float, top: int = 10
                     ) -> go.Figure:
    """From the base value to this row's output, the largest contributions one by one, the rest together."""
    order = sorted(contributions, key=lambda name: abs(contributions[name]), reverse=True)
    shown, rest = order[:top], sum(contributions[name] for name in order[top:])
    labels = ["average prediction"] + [f"{name} = {values.get(name)!s:.30}" for name in shown]
    measures, ys = ["absolute"], [base]
    for name in shown:
        measures.append("relative")
        ys.append(contributions[name])
    if order[top:]:
        labels.append(f"{len(order) - top} other columns")
        measures.append("relative")
        ys.append(rest)
    labels.append("this row")
    measures.append("total")
    ys.append(0.0)
    fig = go.Figure(go.Waterfall(orientation="h", y=labels, x=ys, measure=measures,
                                 increasing={"marker": {"color": _MARK}}, decreasing={"marker": {"color": _MODEL}}))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Why the model predicted this: bars to the right raise it, to the left lower it",
                   "model output", "",
                   height=120 + 28 * len(labels))
