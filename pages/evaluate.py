"""Step 4 · Evaluate & explain: holdout quality against a naive baseline, global drivers, one row explained."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.metrics import METRICS, positive_class
from components import backend_calls as calls
from components import charts
from components.feedback import user_errors
from components.formatting import human
from components.pickers import pick_model
from components.shell import require_shell

require_shell()

st.title("How good is the model, and why?")
version = pick_model("evaluate.model")
if version is None:
    st.stop()

with user_errors("evaluate the model"):
    report = {k: v for k, v in version.metrics.items() if not k.startswith("_")}
    rows = version.metrics.get("_rows", {})
    st.caption(f"Measured on {rows.get('holdout', '?'):,} holdout rows the model never saw in training "
               f"(trained on {rows.get('train', '?'):,}).")
    cols = st.columns(len(report))
    for col, (name, values) in zip(cols, report.items(), strict=True):
        metric = METRICS[name]
        col.metric(metric.label, f"{values['model']:.4f}", f"{values['model'] - values['baseline']:+.4f} vs baseline",
                   delta_color="normal" if metric.greater_is_better else "inverse", help=metric.explanation)
    baseline = "the most frequent class" if version.task != "regression" else "the average training value"
    note = f"The baseline always predicts {baseline}; a useful model beats it clearly."
    if version.task == "binary":
        note += f" ROC AUC and F1 treat {positive_class(calls.bundle(version.model_id).classes)!r} as the positive outcome."
    st.caption(note)
    st.plotly_chart(charts.metric_comparison(report, {k: METRICS[k].label for k in report}), width="stretch")

    st.subheader("What drives the predictions")
    if version.importance:
        st.plotly_chart(charts.importance_bar(pd.DataFrame(version.importance)), width="stretch")
    else:
        st.info("SHAP importance could not be computed for this model.")

    st.subheader("Explain one prediction")
    holdout = calls.holdout(version.model_id)
    row = st.number_input(f"Holdout row (0 – {len(holdout) - 1})", min_value=0, max_value=len(holdout) - 1,
                          value=0, step=1, key="evaluate.row")
    model = calls.bundle(version.model_id)
    record = holdout.iloc[[int(row)]]
    predicted = model.predict(record)[0]
    actual = record[version.target].iloc[0]
    left, middle, right = st.columns(3)
    left.metric("Predicted", human(predicted))  # data values go in plain widgets, never markdown
    middle.metric("Actual", human(actual))
    if model.is_classification:
        right.metric("Confidence", f"{model.predict_proba(record).max():.1%}")
    explanation = calls.explain_holdout_row(version.model_id, int(row))
    st.plotly_chart(charts.row_contributions(explanation.values.iloc[0], record.iloc[0]), width="stretch")
    with st.expander("All drivers, averaged over sampled holdout rows"):
        st.dataframe(pd.DataFrame(version.importance), hide_index=True, width="stretch")
    st.page_link("pages/deploy.py", label="Next: deploy", icon=":material/arrow_forward:")
