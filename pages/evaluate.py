"""Step 4 · Evaluate & explain: what the model is worth, the decision threshold, the holdout views, segments,
drivers, and one row explained with what-if. Everything drawn comes from the version's stored report."""

from __future__ import annotations

import streamlit as st

from backend.evaluation import summary as words
from backend.forecasting.report import ForecastReport
from components import backend_calls as calls
from components import evaluation_view as view
from components.feedback import user_errors
from components.forecast_view import show_forecast_evaluation
from components.formatting import md
from components.pickers import pick_model
from components.row_explainer import explain_one_row
from components.shell import require_shell

require_shell()

st.title("How good is the model, and why?")
version = pick_model("evaluate.model")
if version is None:
    st.stop()

with user_errors("evaluate the model"):
    forecast = ForecastReport.of(version.metrics)
    if forecast is not None:
        show_forecast_evaluation(version, forecast)
        st.page_link("pages/deploy.py", label="Next: deploy", icon=":material/arrow_forward:")
        st.stop()
    report = version.report
    if report is None:  # what an older version has: its metrics, drivers and rows explained
        st.warning("This model was trained before Flurry kept evaluation reports, so it has no curves, threshold, "
                   "segments or summary here, and it labels rows with the most probable class (0.5). Retrain it "
                   "(Experiments → Rerun with the same data and options) to get them.", icon=":material/history:")
        view.show_legacy_metrics(version)
        st.subheader("Explain one prediction")
        explain_one_row(version)
        st.stop()
    view.show_warnings(words.warnings(report))
    current = calls.workspace().registry.threshold(version.model_id)
    st.subheader("In a sentence")
    threshold_row = report.outcome_at(current.threshold if current is not None else None)
    for line in words.summary(report, threshold_row, version.target):
        st.markdown(md(line))
    view.show_metrics(report)

    if report.task == "binary" and report.holdout_table is not None and current is not None:
        st.subheader(f"When to flag a row as {md(repr(report.positive_class))}")
        st.caption(f"In force: {md(current.description)}; since {current.chosen_at:%Y-%m-%d %H:%M} UTC.")
        if words.is_useless(report):
            st.warning(words.USELESS_THRESHOLD, icon=":material/block:")
        if report.validation_table is None:
            st.caption("No validation predictions could be made for this model, so it keeps the 0.5 threshold.")
            row, how, detail = report.holdout_table.at(current.threshold), "manual", {}
        else:
            row, how, detail = view.threshold_picker(report, current, f"evaluate.{version.model_id}")
        view.show_threshold_effect(report, row)
        if row.threshold != current.threshold and st.button(
                f"Use {row.threshold:.3g} for this model", type="primary", key="evaluate.save_threshold",
                help="Every label from now on (SQL functions, batch scores, dashboards) uses it."):
            redeployed = calls.change_threshold(version.model_id, row.threshold, how, detail)
            st.toast(f"Threshold {row.threshold:.3g} saved." + (
                f" Re-created {md(', '.join(redeployed))} with it." if redeployed else ""))
            st.rerun()
        view.show_binary_views(report, row)
    elif report.task == "multiclass":
        st.subheader("Which classes it gets right")
        view.show_multiclass_views(report)
    elif report.task == "regression":
        st.subheader("How far off it is")
        view.show_regression_views(report, version.target)

    st.subheader("Performance by segment")
    view.show_segments(report)
    st.subheader("What drives the predictions")
    view.show_drivers(report)
    st.subheader("Explain one prediction")
    explain_one_row(version)
    st.subheader("Model card")
    notes = calls.workspace().registry.notes(version.model_id)
    view.model_card_section(version, notes.intended_use, notes.out_of_scope)
    st.page_link("pages/deploy.py", label="Next: deploy", icon=":material/arrow_forward:")
