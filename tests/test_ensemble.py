"""Blending the search's best models: weight selection, candidates, real learners, SHAP and SQL scoring."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flaml.automl.model import ExtraTreesEstimator, LGBMEstimator, RandomForestEstimator

from backend.deploy import deploy
from backend.deployed_model import load_bundle
from backend.explain import explain_rows
from backend.metrics import METRICS
from backend.model_bundle import ALL_ROWS, SPLIT_ROWS, ModelBundle, prepare_features, to_model_frame
from backend.registry import ModelVersion, now
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.ensemble import Candidate, WeightedEnsemble, blend, candidates_from_log, select_weights
from backend.training.fit import fit_bundle, training_rows
from backend.training.recipe import refit
from backend.version_records import LeaderboardEntry, VersionMetrics
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import put_table

LEARNERS = {"lgbm": LGBMEstimator, "rf": RandomForestEstimator, "extra_tree": ExtraTreesEstimator}
CANDIDATES = [
    Candidate("lgbm", {"n_estimators": 60, "num_leaves": 8, "learning_rate": 0.1}, 0.1, 0.01),
    Candidate("rf", {"n_estimators": 40, "max_features": 0.6}, 0.2, 0.01),
    Candidate("extra_tree", {"n_estimators": 40, "max_features": 0.8}, 0.3, 0.01),
]


def mse(truth: np.ndarray):
    return lambda p: float(np.mean((p - truth) ** 2))


def test_selection_weighs_independent_errors_and_ignores_a_useless_model() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=2000)
    good_a, good_b = truth + rng.normal(0, 0.5, 2000), truth + rng.normal(0, 0.5, 2000)
    useless = rng.normal(4, 1, size=2000)  # far off: any weight on it adds error
    weights = select_weights([good_a, good_b, useless], mse(truth))
    assert weights[2] == 0 and weights[0] > 0.3 and weights[1] > 0.3
    assert weights.sum() == pytest.approx(1.0)
    blended = weights[0] * good_a + weights[1] * good_b
    assert mse(truth)(blended) < 0.7 * min(mse(truth)(good_a), mse(truth)(good_b))


def test_candidates_are_the_best_of_each_family_then_the_next_best() -> None:
    records = [
        {"learner": "lgbm", "validation_loss": 0.30, "config": {"n_estimators": 4}, "trial_time": 1.0, "sample_size": 500},
        {"learner": "lgbm", "validation_loss": 0.20, "config": {"n_estimators": 9, "FLAML_sample_size": 500},
         "trial_time": 2.0, "sample_size": 500},
        {"learner": "rf", "validation_loss": 0.25, "config": {"n_estimators": 5}, "trial_time": 0.5, "sample_size": 1000},
        {"learner": "rf", "validation_loss": float("inf"), "config": {"n_estimators": 6}},
        {"curr_best_record_id": 1},
        {"learner": "lgbm", "validation_loss": 0.30, "config": {"n_estimators": 4}, "trial_time": 1.0, "sample_size": 500},
    ]
    chosen = candidates_from_log(records, n_rows=1000, fits_per_trial=5)
    assert [(c.learner, c.loss) for c in chosen] == [("lgbm", 0.20), ("rf", 0.25), ("lgbm", 0.30)]
    assert "FLAML_sample_size" not in chosen[0].config
    # 2 s for 5 fits on half the rows: 0.8 s per fit on all of them
    assert chosen[0].seconds_per_full_fit == pytest.approx(0.8)


def _regression_rows(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, n), "age": rng.uniform(0, 5, n),
                          "area": rng.choice(["north", "south", "east"], n)})
    frame["price"] = 3 * np.sin(frame["size"]) + frame["age"] ** 1.5 + (frame["area"] == "north") * 2 \
        + rng.normal(0, 0.8, n)
    return frame


def _config(frame: pd.DataFrame, target: str, task: Task, metric: str) -> TrainConfig:
    features = tuple((c, "DOUBLE" if pd.api.types.is_numeric_dtype(frame[c]) else "VARCHAR") for c in frame.columns
                     if c != target)
    return TrainConfig(table=TableRef("lab", "t"), target=target, target_sql_type="DOUBLE" if task is Task.REGRESSION
                       else "VARCHAR", task=task, features=features, metric=metric, time_budget_s=2, ensemble=False)


def _blended_bundle(frame: pd.DataFrame, config: TrainConfig, tmp_path: Path, validation: str = "cv") -> ModelBundle:
    """A bundle from a real (short) search whose model is then replaced by a blend of real learners."""
    rows = training_rows(frame, config)
    bundle = fit_bundle(rows, config, tmp_path / "log.jsonl").bundle
    x = bundle.model_input(rows)
    y_original = rows[config.target]
    y = (np.asarray(bundle.label_transformer.transform(y_original)) if bundle.label_transformer is not None
         else y_original.to_numpy())
    result = blend(LEARNERS, bundle.flaml_task, x, y, y_original, CANDIDATES, config.task, config.metric,
                   deadline=time.monotonic() + 60, seed=0, folds=3, validation=validation, split_ratio=0.1,
                   time_ordered=False, fit_kwargs={}, judge_gain=False)  # the blend's workings, not its worth
    assert result is not None, "blending three different learners on noisy data should beat any one of them"
    better = (result.score >= result.best_single_score if METRICS[config.metric].greater_is_better
              else result.score <= result.best_single_score)
    assert better, "the blend starts from the best single model, so it can only improve on it"
    bundle.estimator, bundle.best_estimator, bundle.recipe = result.ensemble, "ensemble", result.recipe
    return bundle


@pytest.mark.parametrize("validation", ["cv", "holdout"])
def test_a_blends_recipe_fits_the_same_model_again(validation: str, tmp_path: Path) -> None:
    """What reproduce.py relies on: the recorded members, weights and rows (every row after cross-validation,
    the split's training rows after a holdout split) refitted without a search predict as the blend does."""
    frame = _regression_rows(seed=4)
    config = _config(frame, "price", Task.REGRESSION, "r2")
    bundle = _blended_bundle(frame, config, tmp_path, validation)
    assert {m.rows for m in bundle.recipe} == {ALL_ROWS if validation == "cv" else SPLIT_ROWS}
    assert [m.weight for m in bundle.recipe] == pytest.approx(list(bundle.estimator.weights))
    rows = training_rows(frame, config)
    again = refit(to_model_frame(prepare_features(rows, bundle.features)), rows["price"], config, bundle.recipe)
    np.testing.assert_allclose(again._trained_estimator.predict(bundle.model_input(frame)), bundle.predict(frame))


def test_a_regression_blend_predicts_the_weighted_average_and_is_explained_exactly(tmp_path: Path) -> None:
    frame = _regression_rows()
    bundle = _blended_bundle(frame, _config(frame, "price", Task.REGRESSION, "r2"), tmp_path)
    ensemble = bundle.estimator
    assert isinstance(ensemble, WeightedEnsemble) and len(ensemble.members) >= 2
    assert ensemble.weights.sum() == pytest.approx(1.0)
    model_input = bundle.model_input(frame)
    by_hand = sum(w * m.predict(model_input) for m, w in zip(ensemble.members, ensemble.weights, strict=True))
    np.testing.assert_allclose(bundle.predict(frame), by_hand)
    explanation = explain_rows(bundle, frame.head(40))
    assert list(explanation.values.columns) == ["size", "age", "area"]
    # exact: contributions plus the base value add up to each prediction
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               bundle.predict(frame.head(40)), rtol=1e-6, atol=1e-6)
    restored = ModelBundle.from_verified_bytes(raw := bundle.to_bytes(), hashlib.sha256(raw).hexdigest())
    np.testing.assert_allclose(restored.predict(frame), bundle.predict(frame))


def test_a_classification_blend_gives_probabilities_and_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "shop": rng.choice(["x", "y"], n)})
    score = frame["a"] + 0.5 * frame["b"] ** 2 + rng.normal(0, 0.7, n)
    frame["tier"] = np.where(score > 1, "gold", np.where(score > 0, "silver", "bronze"))
    bundle = _blended_bundle(frame, _config(frame, "tier", Task.MULTICLASS, "log_loss"), tmp_path)
    proba = bundle.predict_proba(frame)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels = bundle.predict(frame)
    assert set(labels) <= {"bronze", "gold", "silver"}
    assert list(labels) == [bundle.classes[i] for i in proba.argmax(axis=1)]
    explanation = explain_rows(bundle, frame.head(5), background=frame)
    assert explanation.values.shape == (5, 3) and explanation.method.startswith("exact")
    # exact in the predicted class's probability
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, proba[:5].max(axis=1),
                               atol=1e-6)


def test_a_yes_no_blend_is_explained_exactly_in_its_own_probability(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 600
    # a text column too: LightGBM splits on its categories, which its own TreeSHAP follows
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["p", "q", "r"], n)})
    frame["status"] = np.where(frame["a"] + 0.5 * frame["b"] ** 2 + rng.normal(0, 0.7, n) > 1, "bad", "good")
    config = dataclasses.replace(_config(frame, "status", Task.BINARY, "roc_auc"), positive_class="bad")
    # whether a search ends in a blend depends on the data and the clock: the blend is built from real learners
    rows_all = training_rows(frame, config)
    bundle = fit_bundle(rows_all, config, tmp_path / "log.jsonl").bundle
    x, y = bundle.model_input(rows_all), np.asarray(bundle.label_transformer.transform(rows_all["status"]))
    members = []
    for candidate in CANDIDATES:
        member = LEARNERS[candidate.learner](task=bundle.flaml_task, n_jobs=1, **candidate.config)
        member.fit(x, y)
        members.append(member)
    bundle.estimator = WeightedEnsemble(members, [0.5, 0.3, 0.2], [c.learner for c in CANDIDATES], True)
    assert bundle.outcome_of_interest == "bad" and bundle.positive_index == 0  # explained: the first class
    rows = frame.head(60)
    explanation = explain_rows(bundle, rows, background=frame)
    assert explanation.output == "probability" and explanation.method.startswith("exact SHAP of each blended")
    # values plus the base value add up to the blend's own probability of 'bad', row by row
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values,
                               bundle.positive_probability(rows), atol=1e-6)


def test_no_blend_when_the_time_is_already_up() -> None:
    frame = _regression_rows(200)
    x = pd.DataFrame({"size": frame["size"], "age": frame["age"]})
    result = blend(LEARNERS, "regression", x, frame["price"].to_numpy(), frame["price"], CANDIDATES, Task.REGRESSION,
                   "r2", deadline=time.monotonic() - 1, seed=0, folds=3, validation="cv", split_ratio=0.1,
                   time_ordered=False, fit_kwargs={})
    assert result is None


def test_no_blend_without_the_searchs_best_model() -> None:
    """On a busy machine the best model's refits may not fit the time left while cheaper ones do: a blend of
    those alone once replaced an lgbm of ROC AUC 0.93 by a blend of linear models at 0.82."""
    frame = _regression_rows(200)
    x = pd.DataFrame({"size": frame["size"], "age": frame["age"]})
    costly_best = [dataclasses.replace(CANDIDATES[0], seconds_per_full_fit=3600.0), *CANDIDATES[1:]]
    kwargs = {"deadline": time.monotonic() + 60, "seed": 0, "folds": 3, "validation": "cv", "split_ratio": 0.1,
              "time_ordered": False, "fit_kwargs": {}}
    assert blend(LEARNERS, "regression", x, frame["price"].to_numpy(), frame["price"], costly_best, Task.REGRESSION,
                 "r2", **kwargs) is None
    with_best = blend(LEARNERS, "regression", x, frame["price"].to_numpy(), frame["price"], CANDIDATES,
                      Task.REGRESSION, "r2", **kwargs)
    assert with_best is not None and "lgbm" in with_best.ensemble.names


def test_runs_recorded_before_blending_rerun_as_single_models() -> None:
    frame = _regression_rows(50)
    data = _config(frame, "price", Task.REGRESSION, "r2").to_dict()
    assert TrainConfig.from_dict(data).ensemble is False
    data.pop("ensemble")
    assert TrainConfig.from_dict(data).ensemble is False
    data["ensemble"] = True
    assert TrainConfig.from_dict(data).ensemble is True


def test_a_blend_deploys_as_a_sql_function_that_agrees_with_it(empty_workspace: Workspace, tmp_path: Path) -> None:
    """Whether a given search ends in a blend depends on the data and the clock, so the blend is built
    directly and recorded as a model version; deployment and scoring are the real ones."""
    frame = _regression_rows(800, seed=5)
    table = put_table(empty_workspace, "house prices", frame)
    config = _config(frame, "price", Task.REGRESSION, "r2")
    bundle = _blended_bundle(frame, config, tmp_path)
    content = bundle.to_bytes()
    version = ModelVersion(
        model_id="mblend", run_id="rblend", created_at=now(), name="price blend", table=table, target="price",
        task=Task.REGRESSION, metric="r2", best_estimator="ensemble", features=bundle.features,
        metrics=VersionMetrics(), leaderboard=[LeaderboardEntry("ensemble", 0.9, bundle.estimator.describe())],
        importance=[],
        versions=bundle.versions, sha256=hashlib.sha256(content).hexdigest())
    empty_workspace.registry.add_model_version(version, {"bundle": content})
    functions = deploy(empty_workspace.warehouse, empty_workspace.registry, "mblend", "price_blend")
    from_sql = empty_workspace.warehouse.query(
        f'SELECT {functions.predict}("size", "age", "area") AS p FROM "lab"."house prices"')["p"].to_numpy()
    direct = load_bundle(empty_workspace.registry, "mblend").predict(
        empty_workspace.warehouse.read_columns(table, version.feature_names))
    np.testing.assert_allclose(from_sql, direct, rtol=1e-9)
    np.testing.assert_allclose(direct, bundle.predict(frame), rtol=1e-9)


def test_a_blend_must_beat_the_best_single_model_by_more_than_noise() -> None:
    from backend.training.ensemble import clearly_better

    rng = np.random.default_rng(5)
    truth = pd.Series(rng.normal(size=3000))
    single = truth.to_numpy() + rng.normal(0, 1.0, 3000)
    assert not clearly_better(single.copy(), single, truth, "r2", Task.REGRESSION, [], None, 0)  # a tie
    nudged = single + rng.normal(0, 1e-4, 3000)  # different, by nothing that matters
    assert not clearly_better(nudged, single, truth, "r2", Task.REGRESSION, [], None, 0)
    better = 0.5 * single + 0.5 * (truth.to_numpy() + rng.normal(0, 1.0, 3000))  # averages independent errors
    assert clearly_better(better, single, truth, "r2", Task.REGRESSION, [], None, 0)
