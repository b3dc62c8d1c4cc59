"""Shared dashboard (read-only): a deployed model's quality, drivers and latest scores. Linked per model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.evaluation import summary as words
from backend.evaluation.summary import Severity
from backend.forecasting.report import ForecastReport
from backend.learner_names import plain_name
from backend.task_detection import Task
from components import backend_calls as calls
from components import charts, monitoring_view, state, versions_view
from components import evaluation_view as view
from components.feedback import user_errors
from components.forecast_view import show_forecast_dashboard
from components.formatting import md
from components.pickers import describe_version
from components.shell import require_shell
from components.state import Key

require_shell(viewer_page=True)

st.title("Model dashboard")
with user_errors("open the dashboard"):
    handed_over = state.take(Key.OPEN_DASHBOARD)  # from Deploy's "Open this model's dashboard"
    if handed_over:
        st.query_params.update(calls.link_params(handed_over))  # the address bar is the shareable link
    model_id = st.query_params.get("model")
    if not model_id:
        deployed = {d.model_id for d in calls.workspace().registry.list_deployments()}
        versions = [v for v in calls.model_versions() if v.model_id in deployed]
        if not versions:
            st.info("No model has been deployed yet. Deploy one on the Deploy step to get its dashboard.")
            st.stop()
        choice = st.selectbox("Deployed model", versions, format_func=describe_version, key="dashboard.model")
        st.query_params.update(calls.link_params(choice.model_id))  # the address bar is the shareable link
        model_id = choice.model_id

    version = calls.model_version(model_id)
    forecast = ForecastReport.of(version.metrics)
    if forecast is not None:
        st.caption(f"{md(version.name)} · {version.label} · forecast · {md(forecast.method_words)} · trained "
                   f"{version.created_at:%Y-%m-%d %H:%M} UTC · id {version.model_id}")
        versions_view.show_broken(calls.health(version.model_id), f"This model version ({version.label})",
                                  versions_view.OWNER_REMEDY)
        show_forecast_dashboard(version, forecast)
        st.stop()
    data = calls.dashboard(model_id)
    version = data.version
    st.caption(f"{md(version.name)} · {version.label} · {version.task} · best model {plain_name(version.best_estimator)} · "
               f"trained {version.created_at:%Y-%m-%d %H:%M} UTC · id {version.model_id}")
    versions_view.show_broken(calls.health(version.model_id), f"This model version ({version.label})",
                              versions_view.OWNER_REMEDY)
    monitoring_view.production_section(version)

    report = version.report
    if report is not None:
        view.show_warnings([w for w in words.warnings(report) if w.severity is Severity.BLOCKER])
        current = calls.workspace().registry.threshold(version.model_id)
        row = report.outcome_at(current.threshold if current is not None else None)
        for line in words.summary(report, row, version.target):
            st.markdown(md(line))
        if current is not None:
            st.caption(f"Rows are labelled {md(repr(report.positive_class))} when the probability is at least "
                       f"{md(current.description)}.")
        st.subheader("Quality on holdout rows")
        view.show_metrics(report)
    else:
        st.subheader("Quality on holdout rows")
        view.show_legacy_scores(version)  # its drivers follow below
    view.model_card_download(version.model_id, "dashboard.card")

    st.subheader("Top drivers")
    if version.importance:
        st.plotly_chart(charts.importance_bar(pd.DataFrame(version.importance), top=10), width="stretch")

    st.subheader("Does today's data still look like the training data?")
    monitoring_view.drift_section(version)

    st.subheader("Did the predictions come true?")
    monitoring_view.realised_section(version)

    st.subheader("Latest scores")
    if data.score_distribution is not None and data.latest is not None:
        st.caption(f"{data.latest.scored_rows:,} rows scored into {md(data.latest.scored_table)} "
                   f"at {data.latest.scored_at:%Y-%m-%d %H:%M} UTC by {md(data.latest.function_name)}.")
        st.plotly_chart(charts.score_distribution(data.score_distribution, numeric=version.task is Task.REGRESSION),
                        width="stretch")
    else:
        st.info(md(data.note))
    if data.deployments:
        st.caption("SQL functions: " + md(", ".join(d.function_name for d in data.deployments)))
