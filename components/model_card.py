"""The model card: one self-contained HTML file (charts and plotly.js inlined, no external requests), rendered
with Jinja2 from the registry's record of the model. No Streamlit here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, FileSystemLoader, select_autoescape

from backend.evaluation import summary as words
from backend.evaluation.card import ModelCardData
from backend.metrics import METRICS
from components import charts as basic_charts
from components import evaluation_charts as charts

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENVIRONMENT = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                           trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class CardChart:
    html: str
    caption: str


def _figures(card: ModelCardData) -> list[tuple[go.Figure, str]]:
    report, target = card.version.report, card.version.target
    if report is None:
        return []
    figures: list[tuple[go.Figure, str]] = []
    row = card.threshold_row
    if report.task == "binary" and row is not None:
        positive = str(report.positive_class)
        other = next((c for c in report.classes if c != positive), "other")
        figures.append((charts.binary_confusion(row, positive, other), words.confusion_sentence(report, row)))
        if report.roc is not None:
            figures.append((charts.roc_figure(report.roc, row), words.roc_sentence(report)))
        if report.pr is not None:
            figures.append((charts.pr_figure(report.pr, row, report.base_rate or 0.0), words.pr_sentence(report, row)))
        figures.append((charts.gain_figure(report.gain), words.gain_sentence(report)))
        figures.append((charts.lift_figure(report.gain), ""))
        figures.append((charts.calibration_figure(report.calibration), words.calibration_sentence(report)))
    elif report.task == "multiclass":
        figures.append((charts.confusion_figure(report.confusion, report.classes, "Confusion matrix (holdout)",
                                                row_shares=True), words.multiclass_confusion_sentence(report)))
        figures.append((charts.class_scores_figure(report.class_scores), words.class_scores_sentence(report)))
    else:
        figures.append((charts.predicted_vs_actual(report.actual_sample, report.predicted_sample, target),
                        words.regression_sentence(report, target)))
        figures.append((charts.residuals_figure(report.actual_sample, report.predicted_sample),
                        words.residual_sentence(report)))
        if report.errors is not None:
            figures.append((charts.error_histogram_figure(report.errors), ""))
    if report.shap is not None and report.shap.effects:
        importance = pd.DataFrame({"feature": [e.feature for e in report.shap.effects],
                                   "importance": [e.mean_abs for e in report.shap.effects]})
        figures.append((basic_charts.importance_bar(importance), words.drivers_sentence(report)))
    return figures


def render_model_card(card: ModelCardData) -> str:
    """The card as one HTML document. plotly.js is inlined once, with the first chart."""
    chart_html = []
    for i, (figure, caption) in enumerate(_figures(card)):
        html = figure.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        chart_html.append(CardChart(html, caption))
    report = card.version.report
    weak = [(view, s) for view in (report.segments if report else []) for s in view.segments if s.much_worse]
    segment_metric = report.segments[0].metric if report and report.segments else ""
    chosen = next((e for e in card.version.leaderboard if e.estimator == card.version.best_estimator), None)
    return _ENVIRONMENT.get_template("model_card.html.j2").render(
        card=card, v=card.version, report=report, fp=card.fingerprint, charts=chart_html, weak_segments=weak,
        segment_label=METRICS[segment_metric].label if segment_metric in METRICS else segment_metric,
        labels={name: m.label for name, m in METRICS.items()}, metric_label=METRICS[card.version.metric].label,
        blend=chosen.blend if chosen is not None else None)
