"""The Evaluate step of a forecast: the summary, history and forecast per series with intervals, backtest
errors per fold beside seasonal naive, per-series errors worst first, the methods tried, drivers in words,
what was found in the data, and the model card. Everything comes from the version's stored report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.forecasting.card import forecast_card
from backend.forecasting.report import ForecastReport
from backend.forecasting.scores import FORECAST_METRICS
from backend.forecasting.series import PERIOD, SERIES_KEY
from backend.registry import ModelVersion
from components import backend_calls as calls
from components import charts
from components.evaluation_view import notes_form
from components.forecast_charts import error_over_time, forecast_chart
from components.formatting import md

PERCENT_METRICS = ("smape", "mape")


def show_forecast_evaluation(version: ModelVersion, report: ForecastReport) -> None:
    st.subheader("In a sentence")
    for line in report.summary(version.target):
        st.markdown(md(line))
    show_scores(report)

    st.subheader("History and forecast")
    rows = calls.holdout(version.model_id)
    series = [s.series for s in report.by_series] or sorted(rows[SERIES_KEY].unique())
    shown = series[0]
    if len(series) > 1:
        shown = st.selectbox("Series (worst backtest first)", series, key=f"evaluate.series.{version.model_id}")
    one = rows[rows[SERIES_KEY] == shown]
    st.plotly_chart(forecast_chart(one, PERIOD, "actual", f"{version.target} · {shown}"), width="stretch")
    st.caption("The bands are as wide as this method's backtest errors at each step ahead: 80% and 95% of those "
               "errors (pooled across series, each scaled by its series' level) fell inside them.")

    st.subheader("Backtests: each fold beside repeating last season")
    folds = pd.DataFrame(report.by_fold).rename(columns={
        "fold": "fold (1 = oldest)", "mase": "MASE, this forecast", "seasonal_naive_mase": "MASE, seasonal naive"})
    st.dataframe(folds, hide_index=True, width="stretch")
    st.caption(f"Each fold trains on the {report.period_word}s before its start and is judged on the "
               f"{report.horizon} that follow; the folds end at the latest {report.period_word}s.")
    if len(report.by_series) > 1:
        st.subheader("Errors per series (worst first)")
        st.dataframe(pd.DataFrame([{"series": s.series, "MASE": s.mase, "MASE, seasonal naive": s.seasonal_naive_mase,
                                    "sMAPE %": s.smape} for s in report.by_series]),
                     hide_index=True, width="stretch")
    st.subheader("Methods tried")
    st.dataframe(pd.DataFrame([{"method": m["words"], "MASE": m["mase"], "sMAPE %": m["smape"],
                                "chosen": m["method"] == report.method} for m in report.methods]),
                 hide_index=True, width="stretch")
    if report.drivers:
        st.subheader("What drives the forecast")
        st.markdown("Most of all: " + md(", ".join(f"{d['words']} ({d['importance']:.0%})" for d in report.drivers[:3]))
                    + ".")
        importance = pd.DataFrame([{"feature": d["words"], "importance": d["importance"]} for d in report.drivers])
        st.plotly_chart(charts.importance_bar(importance, top=10), width="stretch")
    show_findings(report)
    st.subheader("Model card")
    notes = calls.workspace().registry.notes(version.model_id)
    notes_form(version, notes.intended_use, notes.out_of_scope)
    card = forecast_card(version.name, version.label, str(version.table), version.target, report,
                         intended_use=notes.intended_use, out_of_scope=notes.out_of_scope)
    st.download_button("Download the model card (Markdown)", card, file_name=f"model-card-{version.model_id}.md",
                       mime="text/markdown", key="evaluate.forecast_card", icon=":material/download:")


def show_scores(report: ForecastReport) -> None:
    cols = st.columns(len(report.scores))
    for col, (name, scores) in zip(cols, report.scores.items(), strict=True):
        metric = FORECAST_METRICS[name]
        unit = "%" if name in PERCENT_METRICS else ""
        col.metric(metric.label, _number(scores["model"], unit), help=metric.explanation)
        col.caption(f"seasonal naive {_number(scores['seasonal_naive'], unit)} · naive {_number(scores['naive'], unit)}")


def show_findings(report: ForecastReport) -> None:
    if not report.findings and not report.left_out:
        return
    st.subheader("What Flurry found in the data")
    for finding in report.findings:
        st.markdown(f"- {md(finding['message'])} {md(finding['remedy'])}")


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.1f}{unit}" if unit else f"{value:.3g}"


def show_forecast_dashboard(version: ModelVersion, report: ForecastReport) -> None:
    """The shared dashboard of a forecast: its summary, the newest forecast beside what has happened since,
    and the error of every forecast made so far."""
    for line in report.summary(version.target):
        st.markdown(md(line))
    st.subheader("Backtest quality")
    show_scores(report)
    st.subheader("The newest forecast and what happened")
    outcome = calls.forecast_outcome(version.model_id)
    if outcome.table is None or outcome.latest.empty:
        st.info(md(outcome.note or "No forecast has been written yet."))
        return
    st.caption(f"From {md(outcome.table)}.")
    series = list(pd.unique(outcome.latest[SERIES_KEY]))
    shown = series[0]
    if len(series) > 1:
        shown = st.selectbox("Series", series, key=f"dashboard.series.{version.model_id}")
    one = outcome.latest[outcome.latest[SERIES_KEY] == shown]
    st.plotly_chart(forecast_chart(one, PERIOD, "actual", f"{version.target} · {shown}"), width="stretch")
    st.subheader("Forecast error over time")
    if outcome.errors.empty:
        st.info("None of the forecast periods has an actual value yet; the error appears here as they arrive "
                "in the history table.")
    else:
        st.plotly_chart(error_over_time(outcome.errors), width="stretch")
        st.dataframe(outcome.errors.rename(columns={"created_at": "forecast made at", "error_pct": "error %",
                                                    "periods": "periods with actuals"}),
                     hide_index=True, width="stretch")
