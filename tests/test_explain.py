"""Exact explanations: every learner Flurry trains by default, and blends of them, on a table with traps (numbers
stored as text beside words, unicode names, an HTML payload, a date, free text), explained so that values plus
the base value give the model's own output for every row, with no value beyond what that output can move."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from flaml.automl.model import (
    ExtraTreesEstimator,
    LGBMEstimator,
    LRL1Classifier,
    LRL2Classifier,
    RandomForestEstimator,
    SGDEstimator,
    XGBoostLimitDepthEstimator,
    XGBoostSklearnEstimator,
)

from backend.errors import ExplanationRefusedError
from backend.explain import Explanation, _Checked, check_explanation, explain_rows, global_importance
from backend.model_bundle import ModelBundle
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.fit import fit_bundle, training_rows
from backend.warehouse.base import TableRef
from backend.weighted_ensemble import WeightedEnsemble

PAYLOAD = "<script>alert('x')</script>"
# FLAML's default families with small configurations (the test judges the explanation, not the model)
LEARNERS: dict[str, tuple[type, dict[str, Any]]] = {
    "lgbm": (LGBMEstimator, {"n_estimators": 40, "num_leaves": 8}),
    "xgboost": (XGBoostSklearnEstimator, {"n_estimators": 30, "max_leaves": 8}),
    "xgb_limitdepth": (XGBoostLimitDepthEstimator, {"n_estimators": 30, "max_depth": 4}),
    "rf": (RandomForestEstimator, {"n_estimators": 12, "max_leaves": 64}),
    "extra_tree": (ExtraTreesEstimator, {"n_estimators": 12, "max_leaves": 64}),
    "sgd": (SGDEstimator, {}),
    "sgd_huber": (SGDEstimator, {"loss": "modified_huber"}),
    "lrl1": (LRL1Classifier, {}),
    "lrl2": (LRL2Classifier, {}),
}
LINEAR_CLASSIFIERS = ("lrl1", "lrl2", "sgd_huber")


def trap_table(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n),
        "Région": rng.choice(["Île-de-France", "Nord", "Süd", PAYLOAD], n),
        "mixed_col": rng.choice(["1", "2.5", "n/a", "x", None], n),
        "signup": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        "comment": [f"note {i % 170} about the order" for i in range(n)],
        "visits": rng.poisson(3, n).astype(float),
    })
    frame.loc[rng.random(n) < 0.05, "amount"] = np.nan
    signal = (np.log1p(frame["amount"].fillna(100)) - 4.3) * 1.5 + (frame["Région"] == "Nord") \
        + 0.3 * frame["visits"] + (frame["signup"].dt.month > 6) * 0.8 + rng.normal(0, 0.8, n)
    frame["churned"] = np.where(signal > 1.4, "yes", "no")
    frame["tier"] = np.where(signal > 2.2, "gold", np.where(signal > 0.8, "silver", "bronze"))
    frame["spend"] = signal * 100 + 400
    return frame


TASKS = {"churned": (Task.BINARY, "roc_auc"), "tier": (Task.MULTICLASS, "log_loss"), "spend": (Task.REGRESSION, "r2")}


def _config(target: str) -> TrainConfig:
    task, metric = TASKS[target]
    features = (("amount", "DOUBLE"), ("Région", "VARCHAR"), ("mixed_col", "VARCHAR"), ("signup", "TIMESTAMP"),
                ("comment", "VARCHAR"), ("visits", "DOUBLE"))
    return TrainConfig(table=TableRef("lab", "traps"), target=target,
                       target_sql_type="DOUBLE" if task is Task.REGRESSION else "VARCHAR", task=task,
                       features=features, metric=metric, time_budget_s=2, estimators=("lgbm",), ensemble=False)


@pytest.fixture(scope="module")
def shells(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ModelBundle, pd.DataFrame]]:
    """Per target, a bundle from a real 2-second search (its FLAML transform and labels) and its rows."""
    frame = trap_table()
    out = {}
    for target in TASKS:
        rows = training_rows(frame, _config(target))
        bundle = fit_bundle(rows, _config(target), tmp_path_factory.mktemp(target) / "log.jsonl").bundle
        out[target] = (bundle, rows)
    return out


def _fitted(bundle: ModelBundle, rows: pd.DataFrame, name: str) -> Any:
    learner_class, config = LEARNERS[name]
    x = bundle.model_input(rows)
    y_original = rows[bundle.target]
    y = (np.asarray(bundle.label_transformer.transform(y_original)) if bundle.label_transformer is not None
         else y_original.to_numpy())
    learner = learner_class(task=bundle.flaml_task, n_jobs=1, **config)
    learner.fit(x, y)
    return learner


def _with(bundle: ModelBundle, estimator: Any, name: str) -> ModelBundle:
    copy = bundle.with_threshold(bundle.threshold)
    copy.estimator, copy.best_estimator = estimator, name
    return copy


def _own_output(bundle: ModelBundle, rows: pd.DataFrame, explanation: Explanation) -> np.ndarray:
    """The model's output on the explanation's scale, computed by the model itself."""
    if explanation.output == "value":
        return bundle.predict(rows)
    proba = bundle.predict_proba(rows)
    explained = np.asarray([bundle.classes.index(c) for c in explanation.explained_class or []])
    chosen = proba[np.arange(len(rows)), explained]
    if explanation.output == "probability":
        return chosen
    # a margin: the learner's own raw output (one column for yes/no models: the last class's)
    model = bundle.estimator.estimator
    learner_input = bundle.estimator._preprocess(bundle.model_input(rows))
    if hasattr(model, "decision_function"):
        margin = model.decision_function(learner_input)
    elif hasattr(model, "get_booster"):
        margin = model.predict(learner_input, output_margin=True)
    else:
        margin = model.predict(learner_input, raw_score=True)
    margin = np.asarray(margin, dtype=float)
    if margin.ndim == 1:
        return np.where(explained == 0, -margin, margin)
    return margin[np.arange(len(rows)), explained]


def _assert_exact(bundle: ModelBundle, rows: pd.DataFrame, explanation: Explanation) -> None:
    assert "Kernel" not in explanation.method and explanation.method.startswith("exact")
    assert list(explanation.values.columns) == bundle.feature_names
    assert len(explanation.values) == len(rows)  # every row, none sampled
    total = explanation.values.sum(axis=1).to_numpy() + explanation.base_values
    np.testing.assert_allclose(total, _own_output(bundle, rows, explanation), atol=1e-4, rtol=1e-5)
    if explanation.output == "probability":
        assert explanation.values.abs().to_numpy().max() <= 1.0


@pytest.mark.parametrize("name", [n for n in LEARNERS if n not in LINEAR_CLASSIFIERS] + list(LINEAR_CLASSIFIERS))
@pytest.mark.parametrize("target", list(TASKS))
def test_every_default_learner_is_explained_exactly_in_its_own_output(shells: dict, target: str, name: str) -> None:
    bundle, rows = shells[target]
    if name in LINEAR_CLASSIFIERS and not bundle.is_classification:
        pytest.skip("a classifier only")
    model = _with(bundle, _fitted(bundle, rows, name), name)
    explained = rows.head(300)
    explanation = explain_rows(model, explained, background=rows)
    _assert_exact(model, explained, explanation)
    if name == "sgd_huber" or (name == "sgd" and target == "tier"):
        # a margin that is not a logistic's log-odds is explained in the probability its link gives, so the
        # reasons' "points of chance" are the probability's own
        assert explanation.output == "probability" and "carried to probability" in explanation.method
    if name in ("lgbm", "xgboost"):
        # the date's parts (year, month, …) and the text columns fold back onto the table's own columns
        importance = global_importance(explanation).set_index("feature")["importance"]
        assert importance["signup"] > 0 and importance["Région"] > 0


@pytest.mark.parametrize("target", list(TASKS))
def test_a_blend_of_every_family_is_explained_exactly_in_its_own_probability(shells: dict, target: str) -> None:
    """The blend Flurry builds averages its members' probabilities: boosted and linear members' log-odds are
    carried onto the probability, forests' are probabilities already; the weighted values add up to the blend."""
    bundle, rows = shells[target]
    names = ["lgbm", "xgboost", "rf", "extra_tree", "sgd"] + (["lrl1", "sgd_huber"] if bundle.is_classification else [])
    members = [_fitted(bundle, rows, name) for name in names]
    weights = np.random.default_rng(1).dirichlet(np.ones(len(members)))
    blend = _with(bundle, WeightedEnsemble(members, list(weights), names, bundle.is_classification), "ensemble")
    explained = rows.head(400)
    explanation = explain_rows(blend, explained, background=rows)
    _assert_exact(blend, explained, explanation)
    assert explanation.output == ("probability" if bundle.is_classification else "value")
    # the HTML payload is one of four regions with no effect of its own: it must not lead the explanation
    top = global_importance(explanation)["feature"].iloc[0]
    assert top in {"amount", "Région", "visits", "signup"}


def test_one_row_is_explained_as_the_whole_holdout_explains_it(shells: dict) -> None:
    bundle, rows = shells["churned"]
    blend = _with(bundle, WeightedEnsemble([_fitted(bundle, rows, "lgbm"), _fitted(bundle, rows, "rf")], [0.6, 0.4],
                                           ["lgbm", "rf"], True), "ensemble")
    many = explain_rows(blend, rows.head(50), background=rows)
    one = explain_rows(blend, rows.iloc[[7]], background=rows)
    np.testing.assert_allclose(one.values.to_numpy()[0], many.values.to_numpy()[7], atol=1e-9)


def test_values_that_do_not_add_up_or_explode_are_refused() -> None:
    index = pd.RangeIndex(3)
    values = pd.DataFrame({"a": [0.1, 0.2, -0.1], "b": [0.0, 0.1, 0.05]}, index=index)
    good = Explanation(values, np.full(3, 0.3), ["yes"] * 3, "probability", "exact")
    expected = values.sum(axis=1).to_numpy() + 0.3
    assert check_explanation(_Checked(good, expected, 1.0)) is good
    with pytest.raises(ExplanationRefusedError, match="did not add up"):
        check_explanation(_Checked(good, expected + 0.05, 1.0))
    exploded = Explanation(pd.DataFrame({"a": [6e12, 0.2, -0.1], "b": [-6e12, 0.1, 0.05]}, index=index),
                           np.full(3, 0.3), ["yes"] * 3, "probability", "sampled")
    with pytest.raises(ExplanationRefusedError, match="exceeds what the model's probability can move"):
        check_explanation(_Checked(exploded, np.array([0.3, 0.6, 0.25]), 1.0))  # adds up, but explodes
    with pytest.raises(ExplanationRefusedError, match="not numbers"):
        check_explanation(_Checked(Explanation(values * np.nan, np.full(3, 0.3), None, "value"), expected, 1.0))



@pytest.mark.parametrize(("demo_name", "target", "task", "metric"), [
    ("customer_churn", "churn", Task.BINARY, "roc_auc"),
    ("diamond_prices", "price", Task.REGRESSION, "r2"),
])
def test_the_demo_tables_blends_are_explained_exactly_on_a_thousand_rows(tmp_path_factory: pytest.TempPathFactory,
                                                                         demo_name: str, target: str, task: Task,
                                                                         metric: str) -> None:
    """The flagship demo: a blend of boosted trees, a forest and (yes/no) a linear model over its text columns."""
    from backend.demo_data import DEMO_TABLES, load_demo_frame

    demo = next(d for d in DEMO_TABLES if d.name == demo_name)
    frame = load_demo_frame(demo).sample(4000, random_state=0)
    features = tuple((c, "DOUBLE" if pd.api.types.is_numeric_dtype(frame[c]) else "VARCHAR")
                     for c in frame.columns if c not in (target, demo.id_column))
    config = TrainConfig(table=TableRef("demo", demo_name), target=target,
                         target_sql_type="DOUBLE" if task is Task.REGRESSION else "VARCHAR", task=task,
                         features=features, metric=metric, time_budget_s=2, estimators=("lgbm",), ensemble=False)
    rows = training_rows(frame, config)
    bundle = fit_bundle(rows, config, tmp_path_factory.mktemp(demo_name) / "log.jsonl").bundle
    names = ["lgbm", "xgboost", "rf"] + (["lrl2"] if task is Task.BINARY else [])
    members = [_fitted(bundle, rows, name) for name in names]
    blend = _with(bundle, WeightedEnsemble(members, [1 / len(names)] * len(names), names, bundle.is_classification),
                  "ensemble")
    explained = rows.head(1000)
    explanation = explain_rows(blend, explained, background=rows)
    _assert_exact(blend, explained, explanation)
