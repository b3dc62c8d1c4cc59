"""SHAP through Flurry against SHAP called raw on the same model and rows.

A LightGBM model on a generated 40,000-row × 30-column table (26 numbers, 4 categories, a yes/no target).
Flurry's path (backend.explain: the model's preprocessing, LightGBM's own exact TreeSHAP, contributions folded
back to the table's columns, the sum checked against the model's output) on 10,000 rows, against a raw
`shap.TreeExplainer(...).shap_values` on the same rows already transformed. Then a blend of LightGBM, XGBoost
and a random forest on all 30 columns (text ones included), explained in its own probability (each member's
exact values carried onto the probability, weighted, checked), against the sum of the members' own exact
SHAP called raw (LightGBM's `pred_contrib`, XGBoost's `pred_contribs`, shap's TreeExplainer for the forest) on
the same 2,000 rows.
Keys: ratio_vs_raw (≤ 1.2), one_row_ms (≤ 100), what_if_ms (≤ 300), blend_ratio_vs_members (≤ 1.3),
blend_one_row_ms, blend_what_if_ms.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backend.evaluation.rows import edited_row, explain_row
from backend.explain import BACKGROUND_ROWS, explain_rows
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.ensemble import Candidate, WeightedEnsemble, blend
from backend.training.fit import fit_bundle, training_rows
from backend.warehouse.base import TableRef

ROWS, COLUMNS, EXPLAINED, BLEND_EXPLAINED = 40_000, 30, 10_000, 2_000


def table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(ROWS, COLUMNS - 4))
    frame = pd.DataFrame(numbers, columns=[f"n{i}" for i in range(COLUMNS - 4)])
    for i in range(4):
        frame[f"c{i}"] = rng.choice([f"v{k}" for k in range(6)], ROWS)
    signal = numbers[:, 0] + 0.5 * numbers[:, 1] * numbers[:, 2] + (frame["c0"] == "v1") + rng.normal(0, 1, ROWS)
    frame["outcome"] = np.where(signal > 1.5, "yes", "no")
    return frame


def _median_ms(action, repeats: int = 15) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> dict[str, float]:
    import shap

    frame = table()
    features = tuple((c, "VARCHAR" if c.startswith("c") else "DOUBLE") for c in frame.columns if c != "outcome")
    config = TrainConfig(table=TableRef("bench", "explain"), target="outcome", target_sql_type="VARCHAR",
                         task=Task.BINARY, features=features, metric="roc_auc", time_budget_s=20,
                         estimators=("lgbm",), ensemble=False)
    rows = training_rows(frame, config)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = fit_bundle(rows, config, Path(tmp) / "log.jsonl").bundle
    sample = rows.sample(EXPLAINED, random_state=1)
    learner_input = bundle.estimator._preprocess(bundle.model_input(sample))
    raw_s = _timed(lambda: shap.TreeExplainer(bundle.estimator.estimator).shap_values(learner_input))
    flurry_s = _timed(lambda: explain_rows(bundle, sample))
    one = sample.head(1)
    background = rows.sample(BACKGROUND_ROWS, random_state=2)
    one_row_ms = _median_ms(lambda: explain_rows(bundle, one))
    what_if_ms = _median_ms(lambda: explain_row(bundle, edited_row(bundle, one, {"n0": 2.5, "c0": "v1"}), background))

    # a blend of three families on all the table's columns
    x = bundle.model_input(rows)
    y = np.asarray(bundle.label_transformer.transform(rows["outcome"]))
    from flaml.automl.model import LGBMEstimator, RandomForestEstimator, XGBoostSklearnEstimator

    learners = {"lgbm": LGBMEstimator, "xgboost": XGBoostSklearnEstimator, "rf": RandomForestEstimator}
    candidates = [Candidate("lgbm", {"n_estimators": 100, "num_leaves": 31}, 0.1, 1.0),
                  Candidate("xgboost", {"n_estimators": 100, "max_leaves": 31}, 0.2, 1.0),
                  Candidate("rf", {"n_estimators": 60, "max_features": 0.5}, 0.3, 1.0)]
    result = blend(learners, bundle.flaml_task, x, y, rows["outcome"], candidates, Task.BINARY, "roc_auc",
                   deadline=time.monotonic() + 600, seed=0, folds=3, validation="holdout", split_ratio=0.2,
                   time_ordered=False, fit_kwargs={})
    if result is None:  # the selection kept one model: blend all three equally instead
        raise SystemExit("no blend formed")
    blended = bundle.with_threshold(bundle.threshold)
    blended.estimator = result.ensemble
    ensemble: WeightedEnsemble = result.ensemble
    blend_rows = sample.head(BLEND_EXPLAINED)
    model_input = blended.model_input(blend_rows)

    def members_raw() -> None:
        import xgboost

        for member in ensemble.members:
            model, learner_input = member.estimator, member._preprocess(model_input)
            if hasattr(model, "booster_"):
                model.predict(learner_input, pred_contrib=True)
            elif hasattr(model, "get_booster"):
                model.get_booster().predict(xgboost.DMatrix(learner_input), pred_contribs=True)
            else:
                shap.TreeExplainer(model).shap_values(learner_input, check_additivity=False)

    members_s = _timed(members_raw)
    blend_s = _timed(lambda: explain_rows(blended, blend_rows, background=background))
    blend_one_ms = _median_ms(lambda: explain_rows(blended, one, background=background), repeats=7)
    blend_what_if_ms = _median_ms(lambda: explain_row(blended, edited_row(blended, one, {"n0": 2.5}), background),
                                  repeats=7)
    return {"ratio_vs_raw": flurry_s / raw_s, "one_row_ms": one_row_ms, "what_if_ms": what_if_ms,
            "blend_ratio_vs_members": blend_s / members_s, "blend_one_row_ms": blend_one_ms,
            "blend_what_if_ms": blend_what_if_ms, "flurry_s": flurry_s, "raw_s": raw_s,
            "blend_members": float(len(ensemble.members))}


if __name__ == "__main__":
    print(json.dumps(main()))
