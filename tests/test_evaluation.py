"""Evaluate & decide on real FLAML fits, real SHAP and real DuckDB functions: the outcome of interest end to end,
a changed threshold, the report's words on real models, every chart, SHAP additivity, what-if and the model
card. The report's parts on crafted numbers are in test_report_parts.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.deploy import change_threshold, deploy, score_table
from backend.deployed_model import load_bundle
from backend.evaluation import summary as words
from backend.explain import explain_rows
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from components import evaluation_charts as charts
from tests.conftest import make_workspace, put_table, wait_for


def credit_frame(n: int = 800, seed: int = 1) -> pd.DataFrame:
    """A credit table whose rare outcome ('bad', about 8%) sorts first, so "the last class" would be wrong."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    debt = rng.normal(20, 8, n)
    region = rng.choice(["north", "south", "east"], n)
    risk = (debt - 0.4 * income) / 6 + rng.normal(0, 0.6, n)
    status = np.where(risk > np.quantile(risk, 0.92), "bad", "good")
    return pd.DataFrame({"application id": [f"A{i:05d}" for i in range(n)], "income": income.round(1),
                         "debt": debt.round(1), "region": region, "status": status})


def train(ws: Workspace, table: TableRef, target: str, features: list[str], task: Task, *,
          positive: str | None = None, budget: int = 2) -> str:
    """A single LightGBM model (blends are tested in test_ensemble)."""
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "r2"}[task.value]
    config = ws.train_config(table, target, task, features, metric, budget,
                             positive_class=positive, estimators=("lgbm",), ensemble=False)
    progress = wait_for(ws, ws.jobs.start(config))
    assert progress.model_id, progress.run.message
    return progress.model_id


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, str]]]:
    ws = make_workspace(tmp_path_factory.mktemp("evaluation") / "w.duckdb", seed_demo=False)
    rng = np.random.default_rng(3)
    credit = put_table(ws, "credit", credit_frame())
    noise = put_table(ws, "noise", pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800),
                                                 "c": rng.choice(["x", "y"], 800),
                                                 "outcome": rng.choice(["yes", "no"], 800, p=[0.3, 0.7])}))
    x = rng.normal(size=600)
    kinds = put_table(ws, "kinds", pd.DataFrame({"x": x, "z": rng.normal(size=600),
                                                 "kind": np.where(x < -0.5, "low", np.where(x > 0.5, "high", "mid")),
                                                 "amount": 10 * x + rng.normal(0, 1, 600)}))
    models = {
        "credit": train(ws, credit, "status", ["income", "debt", "region"], Task.BINARY, positive="bad"),
        "noise": train(ws, noise, "outcome", ["a", "b", "c"], Task.BINARY),
        "multiclass": train(ws, kinds, "kind", ["x", "z"], Task.MULTICLASS),
        "regression": train(ws, kinds, "amount", ["x", "z"], Task.REGRESSION),
    }
    yield ws, models
    ws.close()


# --- thresholds on crafted cases -------------------------------------------------------------------------


# --- the trained models' reports -------------------------------------------------------------------------
def test_the_outcome_of_interest_is_honoured_end_to_end(trained) -> None:
    ws, models = trained
    model_id = models["credit"]
    version = ws.registry.get_model_version(model_id)
    report = version.report
    assert report is not None and report.positive_class == "bad"
    bundle = load_bundle(ws.registry, model_id)
    assert bundle.outcome_of_interest == "bad" and bundle.classes == ["bad", "good"]
    holdout = ws.holdout_frame(model_id)
    p_bad = bundle.positive_probability(holdout)
    assert np.allclose(p_bad, bundle.predict_proba(holdout)[:, 0])
    # ROC AUC is about 'bad': high probabilities of 'bad' go with 'bad' rows
    assert report.metric("roc_auc").model > 0.75
    assert p_bad[holdout["status"] == "bad"].mean() > p_bad[holdout["status"] == "good"].mean()
    # labels at the stored threshold, probabilities of 'bad' from the SQL functions and the batch scorer
    functions = deploy(ws.warehouse, ws.registry, model_id, "credit_risk")
    args = ", ".join(f'"{c}"' for c in ["income", "debt", "region"])
    sql = ws.warehouse.query(f'SELECT {functions.predict}({args}) AS label, {functions.probability}({args}) AS p '
                             f'FROM "lab"."credit"')
    frame = ws.warehouse.sample(TableRef("lab", "credit"), ["income", "debt", "region"], 10_000)
    expected_p = bundle.positive_probability(frame)
    assert np.allclose(np.sort(sql["p"].to_numpy()), np.sort(expected_p))
    assert set(sql["label"]) <= {"bad", "good"}
    assert (sql["label"] == "bad").sum() == int((expected_p >= bundle.threshold).sum())
    scored = score_table(ws.warehouse, ws.registry, "credit_risk", TableRef("lab", "credit"), TableRef("lab", "scored"))
    columns = [c.name for c in ws.warehouse.describe(scored.table)]
    assert "probability_bad" in columns


def test_changing_the_threshold_changes_labels_and_only_labels(trained) -> None:
    ws, models = trained
    model_id = models["credit"]
    deploy(ws.warehouse, ws.registry, model_id, "credit_flags")
    args = '"income", "debt", "region"'
    query = f'SELECT credit_flags({args}) AS label, credit_flags_proba({args}) AS p FROM "lab"."credit" ORDER BY "application id"'
    before = ws.warehouse.query(query)
    before_scores = score_table(ws.warehouse, ws.registry, "credit_flags", TableRef("lab", "credit"),
                                TableRef("lab", "flags"), overwrite=True)
    before_batch = ws.warehouse.query('SELECT prediction FROM "lab"."flags" ORDER BY "application id"')
    old = ws.registry.threshold(model_id)
    assert old is not None and old.how == "max_f1"
    redeployed = change_threshold(ws.warehouse, ws.registry, model_id, 0.9, "manual")
    assert "credit_flags" in redeployed
    after = ws.warehouse.query(query)
    assert np.allclose(after["p"], before["p"])  # the probabilities do not move
    assert (after["label"] == "bad").sum() == int((after["p"] >= 0.9).sum()) < (before["label"] == "bad").sum()
    score_table(ws.warehouse, ws.registry, "credit_flags", TableRef("lab", "credit"), TableRef("lab", "flags"),
                overwrite=True)
    after_batch = ws.warehouse.query('SELECT prediction FROM "lab"."flags" ORDER BY "application id"')
    assert (after_batch["prediction"] == "bad").sum() < (before_batch["prediction"] == "bad").sum()
    assert before_scores.rows == 800
    current = ws.registry.threshold(model_id)
    assert current is not None and current.threshold == 0.9 and current.how == "manual"
    change_threshold(ws.warehouse, ws.registry, model_id, old.threshold, "max_f1")  # leave it as trained


def test_the_useless_model_is_called_useless_and_the_real_one_is_not(trained) -> None:
    ws, models = trained
    noise = ws.registry.get_model_version(models["noise"]).report
    credit = ws.registry.get_model_version(models["credit"]).report
    assert noise is not None and credit is not None
    assert words.is_useless(noise) and "barely better" in words.warnings(noise)[0].text
    assert not words.is_useless(credit)
    assert all(w.kind != "useless" for w in words.warnings(credit))


def test_the_summary_states_the_computed_numbers(trained) -> None:
    ws, models = trained
    report = ws.registry.get_model_version(models["credit"]).report
    assert report is not None and report.holdout_table is not None and report.default_threshold is not None
    row = report.holdout_table.at(report.default_threshold)
    sentence = words.worth_sentence(report, row)
    assert f"Of every 100 rows it flags, {round(100 * row.precision)} are 'bad'" in sentence
    assert f"it finds {round(100 * row.recall)} of every 100 'bad' rows" in sentence
    assert f"{round(100 * report.base_rate)} of every 100 flagged" in sentence
    auc = report.metric("roc_auc")
    assert auc.low is not None and auc.low <= auc.model <= auc.high
    assert report.validation_rows and report.validation_rows > report.rows  # out-of-fold on the training rows


def test_every_chart_builds_for_every_task(trained) -> None:
    ws, models = trained
    for key in ("credit", "multiclass", "regression"):
        report = ws.registry.get_model_version(models[key]).report
        assert report is not None
        figures = [charts.segment_figure(report.segments[0]), charts.beeswarm_figure(report.shap.effects),
                   charts.dependence_figure(report.shap.effects[0])]
        if report.task == "binary":
            row = report.holdout_table.at(report.default_threshold)
            figures += [charts.roc_figure(report.roc, row), charts.pr_figure(report.pr, row, report.base_rate),
                        charts.binary_confusion(row, "bad", "good"), charts.gain_figure(report.gain),
                        charts.lift_figure(report.gain), charts.calibration_figure(report.calibration)]
            assert len(report.gain) == 10 and report.brier is not None
            assert words.roc_sentence(report) and words.gain_sentence(report) and words.calibration_sentence(report)
        elif report.task == "multiclass":
            figures += [charts.confusion_figure(report.confusion, report.classes, "c", row_shares=True),
                        charts.class_scores_figure(report.class_scores)]
            assert np.asarray(report.confusion).sum() == report.rows
            assert words.multiclass_confusion_sentence(report) and words.class_scores_sentence(report)
        else:
            figures += [charts.predicted_vs_actual(report.actual_sample, report.predicted_sample, "amount"),
                        charts.residuals_figure(report.actual_sample, report.predicted_sample),
                        charts.error_histogram_figure(report.errors), charts.column_errors_figure(report.segments[0])]
            assert sum(report.errors.counts) == report.rows
            assert all(s.error_quantiles for s in report.segments[0].segments)
            assert words.regression_sentence(report, "amount")
        assert all(len(f.data) >= 1 for f in figures)


# --- explanations and what-if ----------------------------------------------------------------------------
def test_shap_values_add_up_to_the_model_output(trained) -> None:
    ws, models = trained
    bundle = load_bundle(ws.registry, models["credit"])
    rows = ws.holdout_frame(models["credit"]).head(40)
    explanation = explain_rows(bundle, rows)
    assert explanation.output == "log-odds" and explanation.explained_class[0] == "bad"
    p = bundle.positive_probability(rows)
    margin = np.log(p / (1 - p))
    assert np.allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-4)


def test_what_if_moves_the_prediction_the_expected_way(trained) -> None:
    ws, models = trained
    model_id = models["credit"]
    holdout = ws.holdout_frame(model_id)
    bundle = load_bundle(ws.registry, model_id)
    position = int(np.argmin(bundle.positive_probability(holdout)))  # the safest applicant
    row = ws.explain_holdout_row(model_id, position)
    risky = ws.explain_holdout_row(model_id, position, {"debt": 60.0, "income": 10.0})
    assert risky.probability > row.probability  # much more debt, much less income: more likely 'bad'
    assert row.prediction == "good"
    assert risky.values["debt"] == 60.0
    assert sum(risky.contributions.values()) > sum(row.contributions.values())


def test_a_row_is_found_by_its_key_column(trained) -> None:
    from backend.evaluation.rows import find_rows

    ws, models = trained
    holdout = ws.holdout_frame(models["credit"])
    key = holdout["application id"].iloc[7]  # not a model input, kept beside the holdout rows
    assert find_rows(holdout, "application id", f"  {key.lower()} ") == [7]
    assert "application id" not in load_bundle(ws.registry, models["credit"]).feature_names


def test_models_without_a_report_say_so_and_keep_half(tmp_path: Path) -> None:
    from backend.evaluation.thresholds import DEFAULT_RULE

    ws = make_workspace(tmp_path / "old.duckdb", seed_demo=False)
    try:
        table = put_table(ws, "old", credit_frame(300))
        model_id = train(ws, table, "status", ["income", "debt"], Task.BINARY, budget=2)
        # a version recorded before reports existed: no report, no threshold rows
        ws.warehouse.execute(f"UPDATE {ws.registry.t('model_versions')} SET report_json = NULL")
        ws.warehouse.execute(f"DELETE FROM {ws.registry.t('decision_thresholds')}")
        current = ws.registry.threshold(model_id)
        assert current is not None and current.how == "legacy" and current.threshold == DEFAULT_RULE
        assert "keeps 0.5" in current.description
        assert not ws.registry.get_model_version(model_id).has_threshold
    finally:
        ws.close()


def test_the_model_card_opens_in_a_real_browser_whole_and_offline(trained, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from backend.evaluation.card import model_card_data
    from components.model_card import render_model_card
    from tests.test_browser import _chromium_or_skip, _launch

    _chromium_or_skip()
    ws, models = trained
    ws.registry.set_notes(models["credit"], "Rank applications for a second look <b>before</b> approval.",
                          "Automatic refusals.")
    html = render_model_card(model_card_data(ws.registry, models["credit"]))
    assert "<b>before</b>" not in html and "&lt;b&gt;before&lt;/b&gt;" in html  # the user's text is escaped
    path = tmp_path / "card.html"
    path.write_text(html, encoding="utf-8")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot")
        for heading in ("Model details", "Intended use", "Out of scope", "Training data", "Evaluation",
                        "Performance by segment", "Drivers", "Limitations and warnings"):
            assert page.get_by_role("heading", name=heading).count() == 1, heading
        assert page.locator(".js-plotly-plot").count() >= 5  # confusion, ROC, PR, gain, lift, calibration…
        assert page.get_by_text("Automatic refusals.").is_visible()
        browser.close()
    assert requests == [path.as_uri()], requests  # nothing but the file itself


# --- reasons from SQL ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["credit", "multiclass", "regression"])
def test_the_explain_function_gives_the_evaluate_pages_reasons(trained, key: str) -> None:
    from backend.deploy import deploy
    from backend.evaluation.rows import explain_row
    from backend.identifiers import quote_ident

    ws, models = trained
    model_id = models[key]
    version = ws.registry.get_model_version(model_id)
    functions = deploy(ws.warehouse, ws.registry, model_id, f"flurry_predict_reasons_{key}")
    assert functions.explain == f"flurry_explain_reasons_{key}"
    holdout = ws.holdout_frame(model_id)
    bundle = load_bundle(ws.registry, model_id)
    rows = holdout.head(5).reset_index(drop=True)
    ws.warehouse.write_table(TableRef("lab", f"reasons_{key}"), rows[version.feature_names], replace=True)
    args = ", ".join(quote_ident(f) for f in version.feature_names)
    sql = ws.warehouse.query(f"SELECT {functions.explain}({args}) AS e, {functions.predict}({args}) AS p "
                             f"FROM {ws.warehouse.qualify(TableRef('lab', f'reasons_{key}'))}")
    for i in range(len(rows)):
        shown = explain_row(bundle, rows.iloc[[i]], holdout)  # what the Evaluate page draws for this row
        expected = shown.reasons(version.target)
        got = sql["e"].iloc[i]
        assert list(got["reasons"]) == expected and 1 <= len(expected) <= 3  # zero contributions are no reason
        assert got["prediction"] == sql["p"].iloc[i] == shown.prediction
        if key == "regression":
            assert got["probability"] is None or np.isnan(got["probability"])
            assert " the predicted amount by " in expected[0]
        else:
            assert got["probability"] == pytest.approx(shown.probability)
            assert " the chance of " in expected[0] and "point" in expected[0]
    if key == "credit":
        assert "'bad'" in next(iter(sql["e"].iloc[0]["reasons"]))  # the outcome of interest, not the last class
