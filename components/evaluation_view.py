"""The Evaluate step's sections, drawn from a version's stored holdout report (no model is called here)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.evaluation import summary as words
from backend.evaluation.report import HoldoutReport
from backend.evaluation.summary import ModelWarning, Severity
from backend.evaluation.thresholds import DecisionThreshold, Payoff, ThresholdRow, best_value_threshold, value_curve
from backend.metrics import METRICS
from backend.registry import ModelVersion
from components import backend_calls as calls
from components import charts as basic_charts
from components import evaluation_charts as charts
from components.formatting import md


def model_warnings(version: ModelVersion) -> list[ModelWarning]:
    return words.warnings(version.report) if version.report is not None else []


def show_warnings(found: list[ModelWarning]) -> None:
    for warning in found:
        if warning.severity is Severity.BLOCKER:
            st.error(md(warning.text), icon=":material/block:")
        else:
            st.warning(md(warning.text), icon=":material/warning:")


def show_metrics(report: HoldoutReport) -> None:
    cols = st.columns(len(report.metrics))
    for col, score in zip(cols, report.metrics, strict=True):
        metric = METRICS[score.name]
        col.metric(metric.label, f"{score.model:.4f}", help=metric.explanation)
        interval = (f"95% interval {score.low:.3f}–{score.high:.3f}  \n" if score.low is not None and score.high is not None
                    else "")
        col.caption(f"{interval}baseline {score.baseline:.4f} ({score.baseline_rule})")
    st.caption(f"Measured on all {report.rows:,} holdout rows the model never saw in training (trained on "
               f"{report.train_rows:,}); intervals from resampling those rows.")
    note = words.accuracy_note(report)
    if note:
        st.info(md(note), icon=":material/balance:")


def show_legacy_scores(version: ModelVersion) -> None:
    """The scores of a version trained before holdout reports existed, beside their baselines."""
    scores = version.metrics.scores
    for col, (name, score) in zip(st.columns(max(1, len(scores))), scores.items(), strict=False):
        col.metric(METRICS[name].label, _four_places(score.model), help=METRICS[name].explanation)
        col.caption(f"baseline {_four_places(score.baseline)}")  # not a delta: it has no direction to point


def show_legacy_metrics(version: ModelVersion) -> None:
    """Scores and drivers of a version trained before holdout reports existed."""
    show_legacy_scores(version)
    if version.importance:
        st.plotly_chart(basic_charts.importance_bar(pd.DataFrame(version.importance)), width="stretch",
                        key="evaluate.legacy_importance")


def _four_places(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def threshold_picker(report: HoldoutReport, current: DecisionThreshold, key: str) -> tuple[ThresholdRow, str, dict]:
    """The cut-off slider and the payoff form; returns the holdout row at the chosen cut-off, how it was
    chosen ("manual" or "value") and the payoff detail."""
    assert report.holdout_table is not None and report.validation_table is not None
    options = report.holdout_table.thresholds
    snapped = report.holdout_table.at(current.threshold).threshold
    slider_key, how_key = f"{key}.threshold", f"{key}.how"
    st.session_state.setdefault(slider_key, snapped)

    with st.expander("Find the threshold worth the most to you"):
        st.caption("What is each outcome worth, in your own units (money, hours)? Flurry finds the threshold "
                   "with the most value on validation rows.")
        a, b, c = st.columns(3)
        catch = a.number_input("Value of a correct catch", value=100.0, step=10.0, key=f"{key}.catch")
        false_alarm = b.number_input("Cost of a false alarm", value=10.0, step=1.0, min_value=0.0, key=f"{key}.false")
        miss = c.number_input("Cost of a miss", value=0.0, step=10.0, min_value=0.0, key=f"{key}.miss")
        payoff = Payoff(float(catch), float(false_alarm), float(miss))
        best = best_value_threshold(report.validation_table, payoff)

        def use_best() -> None:
            st.session_state[slider_key] = report.holdout_table.at(best).threshold  # type: ignore[union-attr]
            st.session_state[how_key] = ("value", {"catch_value": payoff.catch_value,
                                                   "false_alarm_cost": payoff.false_alarm_cost,
                                                   "miss_cost": payoff.miss_cost}, best)

        st.plotly_chart(charts.value_figure(report.validation_table.thresholds,
                                            value_curve(report.validation_table, payoff), best),
                        width="stretch", key=f"{key}.value_chart")
        st.caption(f"The most valuable threshold on validation rows is {best:.3g}.")
        st.button("Use this threshold", key=f"{key}.use_value", on_click=use_best)

    chosen = st.select_slider("Decision threshold: flag a row when its probability is at least", options=options,
                              key=slider_key, format_func=lambda v: f"{v:.3g}")
    how, detail, value_at = st.session_state.get(how_key, ("manual", {}, None))
    if value_at is None or report.holdout_table.at(value_at).threshold != chosen:
        how, detail = "manual", {}
    return report.holdout_table.at(chosen), how, detail


def show_threshold_effect(report: HoldoutReport, row: ThresholdRow) -> None:
    positive = str(report.positive_class)
    other = next((c for c in report.classes if c != positive), "other")
    a, b, c, d = st.columns(4)
    a.metric("Precision", "—" if row.flagged == 0 else f"{row.precision:.1%}",
             help="Of the rows flagged, the share that truly are the outcome.")
    b.metric("Recall", "—" if row.tp + row.fn == 0 else f"{row.recall:.1%}",
             help="Of the rows that are the outcome, the share flagged.")
    c.metric("F1", f"{row.f1:.3f}")
    d.metric("Flagged", f"{round(1000 * row.share_flagged):,} in 1,000")
    st.info(md(words.worth_sentence(report, row)), icon=":material/lightbulb:")
    st.plotly_chart(charts.binary_confusion(row, positive, other), width="stretch", key="evaluate.confusion")
    st.caption(md(words.confusion_sentence(report, row)))


def show_binary_views(report: HoldoutReport, row: ThresholdRow) -> None:
    curves, gain, calibration = st.tabs(["ROC and precision–recall", "Gain and lift", "Calibration"])
    with curves:
        left, right = st.columns(2)
        if report.roc is not None:
            left.plotly_chart(charts.roc_figure(report.roc, row), width="stretch", key="evaluate.roc")
            left.caption(md(words.roc_sentence(report)))
        if report.pr is not None:
            right.plotly_chart(charts.pr_figure(report.pr, row, report.base_rate or 0.0), width="stretch",
                               key="evaluate.pr")
            right.caption(md(words.pr_sentence(report, row)))
    with gain:
        left, right = st.columns(2)
        left.plotly_chart(charts.gain_figure(report.gain), width="stretch", key="evaluate.gain")
        right.plotly_chart(charts.lift_figure(report.gain), width="stretch", key="evaluate.lift")
        st.caption(md(words.gain_sentence(report)))
    with calibration:
        st.plotly_chart(charts.calibration_figure(report.calibration), width="stretch", key="evaluate.calibration")
        st.caption(md(words.calibration_sentence(report)))


def show_multiclass_views(report: HoldoutReport) -> None:
    left, right = st.columns(2)
    left.plotly_chart(charts.confusion_figure(report.confusion, report.classes, "Confusion matrix (holdout)",
                                              row_shares=True), width="stretch", key="evaluate.confusion")
    left.caption(md(words.multiclass_confusion_sentence(report)))
    right.plotly_chart(charts.class_scores_figure(report.class_scores), width="stretch", key="evaluate.classes")
    right.caption(md(words.class_scores_sentence(report)))


def show_regression_views(report: HoldoutReport, target: str) -> None:
    left, right = st.columns(2)
    left.plotly_chart(charts.predicted_vs_actual(report.actual_sample, report.predicted_sample, target),
                      width="stretch", key="evaluate.scatter")
    left.caption(md(words.regression_sentence(report, target)))
    right.plotly_chart(charts.residuals_figure(report.actual_sample, report.predicted_sample), width="stretch",
                       key="evaluate.residuals")
    right.caption(md(words.residual_sentence(report)))
    if report.errors is not None:
        st.plotly_chart(charts.error_histogram_figure(report.errors), width="stretch", key="evaluate.errors")
    by_column = [view for view in report.segments if any(s.error_quantiles for s in view.segments)]
    if by_column:
        names = [view.column for view in by_column]
        chosen = st.selectbox("Errors against a column", names, key="evaluate.error_column")
        view = by_column[names.index(chosen)]
        st.plotly_chart(charts.column_errors_figure(view), width="stretch", key="evaluate.column_errors")
        st.caption(md(words.column_error_sentence(view)))
    if report.sampled_rows < report.rows:
        st.caption(f"The two scatter plots show {report.sampled_rows:,} of the {report.rows:,} holdout rows, drawn at "
                   "random; the error histogram and every figure above use all of them.")


def show_segments(report: HoldoutReport) -> None:
    if not report.segments:
        st.info("No column splits the holdout rows into segments.")
        return
    columns = [view.column for view in report.segments]
    flagged = [view.column for view in report.segments if any(s.much_worse for s in view.segments)]
    column = st.selectbox("Column", columns, key="evaluate.segment_column",
                          index=columns.index(flagged[0]) if flagged else 0)
    view = report.segment_view(column)
    assert view is not None
    st.plotly_chart(charts.segment_figure(view), width="stretch", key="evaluate.segments")
    st.caption(md(words.segment_sentence(view)))


def show_drivers(report: HoldoutReport) -> None:
    shap = report.shap
    if shap is None or not shap.effects:
        st.info(md(report.shap_note or "SHAP explanations could not be computed for this model."))
        return
    if words.is_useless(report):
        st.warning(words.USELESS_DRIVERS, icon=":material/warning:")
    st.caption(md(words.shap_caption(shap, report.rows)))
    for effect in shap.effects[:5]:
        st.markdown(f"- {md(effect.direction)}")
    left, right = st.columns(2)
    importance = {"feature": [e.feature for e in shap.effects], "importance": [e.mean_abs for e in shap.effects]}
    left.plotly_chart(basic_charts.importance_bar(pd.DataFrame(importance)), width="stretch", key="evaluate.importance")
    right.plotly_chart(charts.beeswarm_figure(shap.effects), width="stretch", key="evaluate.beeswarm")
    st.caption(md(words.importance_sentence(report)))
    names = [e.feature for e in shap.effects]
    chosen = st.selectbox("Dependence plot for", names, key="evaluate.dependence")
    effect = next(e for e in shap.effects if e.feature == chosen)
    st.plotly_chart(charts.dependence_figure(effect), width="stretch", key="evaluate.dependence_chart")
    st.caption(md(effect.direction))


def model_card_section(version: ModelVersion, notes_intended: str, notes_out: str) -> None:
    """The card's own words (saved with the version) and its download."""
    notes_form(version, notes_intended, notes_out)
    model_card_download(version.model_id, "evaluate.card")


def notes_form(version: ModelVersion, notes_intended: str, notes_out: str) -> None:
    """What the model is for and not for, in its owner's words, saved with the version."""
    with st.form(f"evaluate.{version.model_id}.card"):
        intended = st.text_area("What is this model for? (intended use)", value=notes_intended, max_chars=2000,
                                key=f"evaluate.{version.model_id}.intended")
        out = st.text_area("What must it not be used for? (out of scope)", value=notes_out, max_chars=2000,
                           key=f"evaluate.{version.model_id}.out_of_scope")
        if st.form_submit_button("Save to the model card"):
            calls.save_notes(version.model_id, intended, out)
            st.success("Saved with this model version.")


def model_card_download(model_id: str, key: str) -> None:
    """A button that writes the card, then its download (the card inlines plotly.js, some 4 MB: it is only
    made, and sent to the browser, when asked for; Streamlit 1.51 cannot defer a download's data)."""
    ready = f"{key}.ready.{model_id}"
    if not st.session_state.get(ready):
        if st.button("Prepare the model card", key=f"{key}.prepare", icon=":material/description:"):
            st.session_state[ready] = True
            st.rerun()
        return
    st.download_button("Download the model card (HTML)", calls.model_card(model_id),
                       file_name=f"model-card-{model_id}.html", mime="text/html", key=f"{key}.download",
                       icon=":material/download:")
