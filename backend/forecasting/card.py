"""A forecast version's model card (Markdown): what it forecasts, how, how well in backtests, what it rests on
and where it should not be trusted."""

from __future__ import annotations

from backend.forecasting.model import method_words
from backend.forecasting.report import ForecastReport
from backend.forecasting.scores import FORECAST_METRICS


def forecast_card(name: str, label: str, table: str, target: str, report: ForecastReport, *,
                  intended_use: str = "", out_of_scope: str = "") -> str:
    lines = [f"# Model card: {name} ({label})", "", "## What it does", *report.summary(target), "",
             "## Data", f"- Table: {table}; target: {target}; rows are {report.frequency_words}.",
             f"- {report.series:,} series forecast {report.horizon} {report.period_word}s ahead."]
    if report.left_out:
        lines.append(f"- Left out as too short: {', '.join(report.left_out[:20])}"
                     + (" …" if len(report.left_out) > 20 else "") + ".")
    lines += [f"- {f['message']} {f['remedy']}" for f in report.findings]
    lines += ["", "## How well it did (rolling-origin backtests, the past only to forecast the future)",
              "| metric | this forecast | seasonal naive | naive |", "|---|---|---|---|"]
    for metric, scores in report.scores.items():
        lines.append(f"| {FORECAST_METRICS[metric].label} | {_number(scores['model'])} | "
                     f"{_number(scores['seasonal_naive'])} | {_number(scores['naive'])} |")
    lines += ["", *(f"- {FORECAST_METRICS[m].label}: {FORECAST_METRICS[m].explanation}" for m in report.scores), "",
              "## Method", f"- {method_words(report.method).capitalize()}"
              + (f" (learner: {report.learner})." if report.learner else ".")]
    if report.drivers:
        lines.append("- What it leans on most: " + ", ".join(
            f"{d['words']} ({d['importance']:.0%})" for d in report.drivers[:5]) + ".")
    lines += ["- Intervals (80% and 95%) come from this method's own backtest errors at each step ahead.", "",
              "## Intended use", intended_use or "_Not written yet._", "", "## Not meant for",
              out_of_scope or "_Not written yet._", "",
              "## Limits", "- A forecast assumes the coming periods behave like the backtested ones; a break "
              "(a new product, a pandemic, a price change not in the data) makes it wrong without warning.",
              "- Beyond the horizon it was backtested on, its errors are unknown."]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"
