"""Evaluate & decide: thresholds, the holdout report, its words and warnings, the outcome of interest end to end,
SHAP additivity and what-if — on real FLAML fits, real SHAP and real DuckDB functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.deploy import change_threshold, deploy, score_table
from backend.deployed_model import load_bundle
from backend.evaluation import summary as words
from backend.evaluation.report import _batched_statistic, _row_arrays
from backend.evaluation.thresholds import (
    Payoff,
    best_f1_threshold,
    best_value_threshold,
    cutoff_grid,
    threshold_table,
)
from backend.explain import explain_rows
from backend.metrics import REPORTED, metric_value
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
def test_threshold_table_counts_and_the_f1_best_cut_off() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    p = np.array([0.9, 0.8, 0.35, 0.4, 0.3, 0.2, 0.1, 0.1, 0.05, 0.0])
    table = threshold_table(truth, p, cutoff_grid(p))
    assert len(table.thresholds) >= 101
    row = table.at(0.35)
    assert (row.tp, row.fp, row.tn, row.fn) == (3, 1, 6, 0)  # 0.9, 0.8, 0.35 caught; 0.4 a false alarm
    assert row.flagged == 4 and row.rows == 10
    # F1 6/7 from cut-offs in (0.3, 0.35] (3 caught, 1 alarm) beats 4/5 at 0.8 (2 caught, 1 missed) and every
    # lower cut-off (more alarms)
    best = best_f1_threshold(table)
    assert table.at(best).f1 == pytest.approx(max(r.f1 for r in table.all_rows()))
    assert table.at(best).f1 == pytest.approx(6 / 7)
    assert 0.3 < best <= 0.35


def test_the_default_threshold_prefers_a_high_stretch_to_a_lone_spike() -> None:
    from backend.evaluation.thresholds import ThresholdTable

    cuts = [round(i / 100, 2) for i in range(101)]
    # 100 positives, 900 negatives; F1 about 0.50 across cut-offs 0.60–0.80, one spike of 0.55 at 0.20
    tp, fp = [], []
    for c in cuts:
        if 0.60 <= c <= 0.80:
            tp.append(50), fp.append(50)
        elif c == 0.20:
            tp.append(60), fp.append(38)
        else:
            tp.append(30), fp.append(90)
    table = ThresholdTable(cuts, tp, fp, [900 - f for f in fp], [100 - t for t in tp])
    assert max(table.all_rows(), key=lambda r: r.f1).threshold == 0.20  # the spike is the single best
    assert 0.60 <= best_f1_threshold(table) <= 0.80


def test_value_maximising_threshold_on_a_crafted_payoff() -> None:
    truth = np.array([1, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    p = np.array([0.95, 0.7, 0.6, 0.5, 0.45, 0.3, 0.2, 0.1])
    table = threshold_table(truth, p, cutoff_grid(p))
    # a catch earns 10, a false alarm costs 1: flag down to 0.3 (3 catches, 3 alarms = 27) beats 0.7 (20)
    assert table.at(best_value_threshold(table, Payoff(10, 1, 0))).tp == 3
    # false alarms cost 20: only the sure ones (0.95, 0.7: 2 catches, no alarm) are worth flagging
    high = table.at(best_value_threshold(table, Payoff(10, 20, 0)))
    assert (high.tp, high.fp) == (2, 0)


def test_bootstrap_statistics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    n = 400
    for task, classes in [(Task.BINARY, ["a", "b"]), (Task.MULTICLASS, ["x", "y", "z"]), (Task.REGRESSION, [])]:
        if task is Task.REGRESSION:
            y = pd.Series(rng.normal(size=n))
            labels, proba, positive = (y + rng.normal(size=n) * 0.5).to_numpy(), None, None
        else:
            proba = rng.dirichlet(np.ones(len(classes)), size=n)
            y = pd.Series(np.asarray(classes, dtype=object)[rng.integers(0, len(classes), n)])
            labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
            positive = "a" if task is Task.BINARY else None
        arrays = _row_arrays(task, y, labels, proba, classes, positive)
        for name in REPORTED[task]:
            batched = _batched_statistic(task, name, len(classes))(*[a[None, :] for a in arrays])[0]
            assert batched == pytest.approx(metric_value(name, y, labels, proba, classes, positive), abs=1e-9), name


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


def test_segments_call_out_the_weak_group() -> None:
    from backend.evaluation.segments import segment_views

    rng = np.random.default_rng(0)
    n = 2000
    group = rng.choice(["a", "b", "c", "d"], n)
    truth = rng.random(n) < 0.3
    good_score = truth + rng.normal(0, 0.3, n)
    score = np.where(group == "d", rng.random(n), good_score)  # the model knows nothing for group d
    p = 1 / (1 + np.exp(-4 * (score - 0.5)))
    labels = np.where(p >= 0.5, "yes", "no").astype(object)
    views = segment_views(Task.BINARY, pd.DataFrame({"group": group}), ["group"],
                          pd.Series(np.where(truth, "yes", "no")), labels, p, "yes")
    worse = [s.value for s in views[0].segments if s.much_worse]
    assert worse == ["d"]
    d = next(s for s in views[0].segments if s.value == "d")
    # the sentence gives what the call rests on: the interval, the rows and the rows of the outcome
    assert (f"group is d: {d.metric:.3f}, 90% interval {d.low:.3f}–{d.high:.3f}, on {d.rows:,} rows, "
            f"{d.positives:,} of them the outcome of interest") in words.segment_sentence(views[0])


def test_a_segment_is_not_called_much_worse_on_a_handful_of_positives() -> None:
    """A rare outcome: a group with only 8 positives and a poor ROC AUC there is noise, not a finding."""
    from backend.evaluation.segments import segment_views

    rng = np.random.default_rng(4)
    n = 6000
    group = np.where(np.arange(n) < 300, "small", "big")
    truth = rng.random(n) < 0.03
    truth[:300] = False
    truth[:8] = True  # 8 positives in the small group
    p = 1 / (1 + np.exp(-(3 * truth - 3.5 + rng.normal(0, 1, n))))
    p[:300] = rng.random(300) * 0.2  # the model knows nothing there
    labels = np.where(p >= 0.5, "yes", "no").astype(object)
    views = segment_views(Task.BINARY, pd.DataFrame({"group": group}), ["group"],
                          pd.Series(np.where(truth, "yes", "no")), labels, p, "yes")
    small = next(s for s in views[0].segments if s.value == "small")
    assert small.positives == 8 and small.metric < views[0].overall - 0.1  # it looks much worse…
    assert not small.much_worse  # …but 8 positives cannot say so


def test_errors_against_a_column_show_where_a_regression_is_biased() -> None:
    from backend.evaluation.segments import segment_views

    rng = np.random.default_rng(1)
    n = 3000
    region = rng.choice(["north", "south", "east"], n)
    actual = rng.normal(100, 10, n)
    predicted = actual + rng.normal(0, 2, n) + np.where(region == "south", 25.0, 0.0)  # south over-predicted
    view = segment_views(Task.REGRESSION, pd.DataFrame({"region": region}), ["region"], pd.Series(actual),
                         predicted, None, None)[0]
    medians = {s.value: s.error_quantiles[2] for s in view.segments}
    assert medians["south"] == pytest.approx(25.0, abs=1.0) and abs(medians["north"]) < 1.0
    south = next(s for s in view.segments if s.value == "south")
    assert south.error_quantiles == sorted(south.error_quantiles)
    sentence = words.column_error_sentence(view)
    assert sentence.split(" to ")[1].startswith("+24.9") and "where it is south" in sentence
    assert len(charts.column_errors_figure(view).data) == 1


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


def test_f1_is_searched_for_the_outcome_of_interest_not_the_last_class() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from backend.training.fit import search_metric

    assert search_metric("f1", ["bad", "good"], "good") == "f1"  # FLAML's own F1 is about the last class
    assert search_metric("roc_auc", ["bad", "good"], "bad") == "roc_auc"
    metric = search_metric("f1", ["bad", "good"], "bad")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + rng.normal(0, 1, 400) > 1).astype(int)  # FLAML's encoding: 0 = 'bad' (sorts first)
    model = LogisticRegression().fit(x, y)
    loss, shown = metric(x, y, model)
    assert shown["f1"] == pytest.approx(f1_score(y, model.predict(x), pos_label=0))
    assert shown["f1"] != pytest.approx(f1_score(y, model.predict(x), pos_label=1))
    assert loss == pytest.approx(1 - shown["f1"])


def test_a_column_of_lists_has_no_segments_and_breaks_nothing() -> None:
    from backend.evaluation.segments import segment_views

    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame({"tags": [[i % 3, i % 5] for i in range(n)], "region": rng.choice(["n", "s"], n)})
    truth = pd.Series(rng.choice(["yes", "no"], n))
    p = rng.random(n)
    views = segment_views(Task.BINARY, frame, ["tags", "region"], truth, np.where(p >= 0.5, "yes", "no"), p, "yes")
    assert [v.column for v in views] == ["region"]


def test_a_segment_of_one_class_says_why_it_has_no_score() -> None:
    from backend.evaluation.segments import segment_views

    rng = np.random.default_rng(2)
    n = 400
    group = np.where(np.arange(n) < 100, "quiet", rng.choice(["a", "b"], n))
    truth = np.where(group == "quiet", "no", rng.choice(["yes", "no"], n))  # 'quiet' rows are all 'no'
    p = rng.random(n)
    (view,) = segment_views(Task.BINARY, pd.DataFrame({"group": group}), ["group"], pd.Series(truth),
                            np.where(p >= 0.5, "yes", "no"), p, "yes")
    quiet = next(s for s in view.segments if s.value == "quiet")
    assert not np.isfinite(quiet.metric) and not quiet.much_worse
    assert "No ROC AUC for quiet: those rows hold a single class." in words.segment_sentence(view)


# --- reasons from SQL ------------------------------------------------------------------------------------
def test_log_odds_contributions_read_as_points_of_chance() -> None:
    from backend.reasons import points_of_chance

    margin, contribution = 0.3, 1.1
    p = 1 / (1 + np.exp(-margin))
    without = 1 / (1 + np.exp(-(margin - contribution)))
    assert points_of_chance(contribution, p, "log-odds") == pytest.approx(100 * (p - without))
    assert points_of_chance(0.21, 0.4, "probability") == pytest.approx(21.0)


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


def _rare_report(threshold: float):  # type: ignore[no-untyped-def]
    from backend.evaluation.report import build_report
    from backend.evaluation.thresholds import cutoff_grid, threshold_table

    rng = np.random.default_rng(11)
    n = 4000
    truth = rng.random(n) < 0.03
    p = np.clip(1 / (1 + np.exp(-(truth * 2.2 - 4 + rng.normal(0, 1.2, n)))), 0, 1)
    y = pd.Series(np.where(truth, "yes", "no"))
    labels = np.where(p >= threshold, "yes", "no").astype(object)
    proba = np.column_stack([1 - p, p])
    validation = threshold_table(truth, p, cutoff_grid(p))
    return build_report(Task.BINARY, y_true=y, labels=labels, proba=proba, y_train=y, classes=["no", "yes"],
                        positive="yes", train_rows=n, validation=validation, validation_rows=n, threshold=threshold,
                        segments=[], shap=None)


def test_accuracy_below_the_baseline_is_explained_by_the_threshold_that_causes_it() -> None:
    report = _rare_report(0.08)
    accuracy = report.metric("accuracy")
    assert accuracy is not None and accuracy.model < accuracy.baseline  # what a careful user would stop at
    note = words.accuracy_note(report)
    at_half = report.holdout_table.at(0.5)
    assert note.startswith(f"Accuracy ({accuracy.model:.3f}) is below the majority baseline ({accuracy.baseline:.3f})")
    assert "decision threshold, 0.08," in note and f"would give accuracy {at_half.accuracy:.3f}" in note
    assert words.accuracy_note(_rare_report(0.5)) == ""  # at the most-probable-class rule there is nothing to explain


def test_a_dates_effect_reads_along_time_not_one_day_at_a_time() -> None:
    import datetime
    from types import SimpleNamespace

    from backend.evaluation.shap_summary import direction_words

    bundle = SimpleNamespace(is_binary=True, is_classification=True, outcome_of_interest="fraud",
                             classes=["fraud", "ok"], positive_index=0, target="label")
    days = [datetime.date(2022, 1, 1) + datetime.timedelta(days=i) for i in range(100)]
    rising = np.linspace(-1, 1, 100)
    for values in (pd.Series(days, dtype=object), pd.Series(pd.to_datetime(days))):  # Arrow's DATE, and a TIMESTAMP
        assert direction_words("signup_date", values, rising, bundle) == "later signup_date pushes toward 'fraud'"


def test_a_segment_is_much_worse_only_when_its_interval_says_so() -> None:
    from sklearn.metrics import roc_auc_score

    from backend.evaluation.segments import _much_worse, metric_interval

    # the interval decides: the same drop of 0.15 is a finding only when the interval lies below overall
    assert _much_worse("roc_auc", 0.70, 0.85, interval=(0.62, 0.80))
    assert not _much_worse("roc_auc", 0.70, 0.85, interval=(0.55, 0.86))
    # Hanley and McNeil's interval is about as wide as a bootstrap's on the same rows
    rng = np.random.default_rng(2)
    truth = rng.random(400) < 0.2
    score = truth * 0.8 + rng.normal(0, 0.6, 400)
    value = roc_auc_score(truth, score)
    low, high = metric_interval("roc_auc", value, truth, score)
    resampled = []
    for _ in range(400):
        pick = rng.integers(0, 400, 400)
        if 0 < truth[pick].sum() < 400:
            resampled.append(roc_auc_score(truth[pick], score[pick]))
    boot_low, boot_high = np.quantile(resampled, [0.05, 0.95])
    assert abs((high - low) - (boot_high - boot_low)) < 0.3 * (boot_high - boot_low)
