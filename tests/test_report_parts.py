"""The holdout report's parts on crafted numbers: thresholds, bootstrap intervals, segments and the evidence
behind a warning, and the sentences that explain accuracy, log-odds and dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.evaluation import summary as words
from backend.evaluation.report import _batched_statistic, _row_arrays
from backend.evaluation.thresholds import (
    Payoff,
    best_f1_threshold,
    best_value_threshold,
    cutoff_grid,
    threshold_table,
)
from backend.metrics import REPORTED, metric_value
from backend.task_detection import Task
from components import evaluation_charts as charts


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


def test_log_odds_contributions_read_as_points_of_chance() -> None:
    from backend.reasons import points_of_chance

    margin, contribution = 0.3, 1.1
    p = 1 / (1 + np.exp(-margin))
    without = 1 / (1 + np.exp(-(margin - contribution)))
    assert points_of_chance(contribution, p, "log-odds") == pytest.approx(100 * (p - without))
    assert points_of_chance(0.21, 0.4, "probability") == pytest.approx(21.0)


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
