"""Exact SHAP values of one fitted learner on its own input, by the learner's own algorithm where it has one.

Every learner Flurry trains by default has an exact path, registered here by the fitted model's type:
- LightGBM and XGBoost: their own TreeSHAP (`pred_contrib` / `pred_contribs`), which follows LightGBM's
  categorical splits where shap's interventional explainer cannot;
- scikit-learn's forests: shap's path-dependent TreeExplainer (exact for the trees' own probabilities);
- linear models (logistic regression, SGD): coefficient × (value − the background's mean value), the exact
  interventional SHAP value of a linear function, on the margin.

Classifiers whose values are margins carry a link: the function from margins to class probabilities that the
learner's own `predict_proba` applies, so a blend can carry them onto the probability scale (backend.explain).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

Link = Callable[[np.ndarray], np.ndarray]  # margins (rows × margins) → class probabilities (rows × classes)


@dataclass(frozen=True)
class Contributions:
    """A learner's exact SHAP values: `values` rows × input columns × outputs, `base` rows × outputs.

    The outputs are one margin per class (one for a yes/no model: the last class's), or class probabilities
    when `link` is None and `scale` is "probability", or the predicted value for regression."""

    values: np.ndarray
    base: np.ndarray
    columns: list[str]
    scale: str  # "log-odds", "margin", "probability" or "value"
    link: Link | None = None


def _binary(probability_of_last: Callable[[np.ndarray], np.ndarray]) -> Link:
    def link(margins: np.ndarray) -> np.ndarray:
        p = probability_of_last(margins[:, 0])
        return np.column_stack([1.0 - p, p])
    return link


def _softmax(margins: np.ndarray) -> np.ndarray:
    return np.asarray(softmax(margins, axis=1))


def _one_vs_rest(margins: np.ndarray) -> np.ndarray:
    """scikit-learn's `_predict_proba_lr` for several classes: each class's sigmoid, normalised."""
    p = expit(margins)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def _huber(margins: np.ndarray) -> np.ndarray:
    return np.asarray((np.clip(margins, -1.0, 1.0) + 1.0) / 2.0)


def _huber_one_vs_rest(margins: np.ndarray) -> np.ndarray:
    """scikit-learn's SGDClassifier.predict_proba for modified Huber loss and several classes."""
    p = _huber(margins)
    total = p.sum(axis=1, keepdims=True)
    empty = total[:, 0] == 0
    p[empty] = 1.0
    total[empty] = p.shape[1]
    return np.asarray(p / total)


def _as_outputs(values: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """Learner output reshaped to rows × columns × outputs."""
    if values.ndim == 2:
        return values.reshape(n_rows, n_columns, 1)
    return values


def _lightgbm(model: Any, learner_input: pd.DataFrame, background: pd.DataFrame) -> Contributions:
    raw = np.asarray(model.predict(learner_input, pred_contrib=True), dtype=float)
    width = learner_input.shape[1] + 1
    outputs = raw.shape[1] // width
    per_output = raw.reshape(len(learner_input), outputs, width)  # LightGBM: one block per class
    values, base = np.transpose(per_output[:, :, :-1], (0, 2, 1)), per_output[:, :, -1]
    if not hasattr(model, "classes_"):
        return Contributions(values, base, list(map(str, learner_input.columns)), "value")
    link = _binary(expit) if outputs == 1 else _softmax
    return Contributions(values, base, list(map(str, learner_input.columns)), "log-odds", link)


def _xgboost(model: Any, learner_input: pd.DataFrame, background: pd.DataFrame) -> Contributions:
    import xgboost as xgb

    booster = model.get_booster()
    matrix = xgb.DMatrix(learner_input, missing=np.nan)
    raw = np.asarray(booster.predict(matrix, pred_contribs=True,
                                     iteration_range=model._get_iteration_range(None)), dtype=float)
    if raw.ndim == 2:
        raw = raw[:, None, :]  # one output: rows × 1 × (columns + bias)
    values, base = np.transpose(raw[:, :, :-1], (0, 2, 1)), raw[:, :, -1]
    columns = list(map(str, learner_input.columns))
    if not hasattr(model, "classes_"):
        return Contributions(values, base, columns, "value")
    link = _binary(expit) if raw.shape[1] == 1 else _softmax
    return Contributions(values, base, columns, "log-odds", link)


def _forest(model: Any, learner_input: pd.DataFrame, background: pd.DataFrame) -> Contributions:
    explainer = _tree_explainer(model)
    raw = explainer.shap_values(learner_input, check_additivity=False)
    values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw, dtype=float)
    values = _as_outputs(np.asarray(values, dtype=float), len(learner_input), learner_input.shape[1])
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    base = np.tile(expected, (len(learner_input), 1))
    scale = "probability" if hasattr(model, "classes_") else "value"
    return Contributions(values, base, list(map(str, learner_input.columns)), scale)


_EXPLAINERS: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()
_EXPLAINERS_LOCK = threading.Lock()


def _tree_explainer(model: object) -> Any:
    """One TreeExplainer per fitted forest (building it parses every tree: most of explaining one row)."""
    import shap

    with _EXPLAINERS_LOCK:
        try:
            return _EXPLAINERS[model]
        except (KeyError, TypeError):
            explainer = shap.TreeExplainer(model)
            with contextlib.suppress(TypeError):  # not weak-referenceable: built each time
                _EXPLAINERS[model] = explainer
            return explainer


def _linear(model: Any, learner_input: Any, background: Any) -> Contributions:
    x = np.asarray(learner_input, dtype=float)
    mean = np.asarray(background, dtype=float).mean(axis=0)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=float))  # outputs × columns
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    values = (x - mean)[:, :, None] * coef.T[None, :, :]
    base = np.tile(intercept + coef @ mean, (len(x), 1))
    columns = [str(c) for c in learner_input.columns] if isinstance(learner_input, pd.DataFrame) else []
    if not hasattr(model, "classes_"):
        return Contributions(values, base, columns, "value")
    return Contributions(values, base, columns, *_linear_link(model, coef.shape[0]))


def _linear_link(model: Any, outputs: int) -> tuple[str, Link]:
    """The scale and link of a linear classifier's margins, as its own `predict_proba` applies them."""
    if getattr(model, "loss", "log_loss") == "modified_huber":
        return "margin", _binary(lambda m: _huber(m)) if outputs == 1 else _huber_one_vs_rest
    if outputs == 1:
        return "log-odds", _binary(expit)
    # LogisticRegression is multinomial (softmax) for several classes with every solver FLAML uses; SGD is
    # one-vs-rest, whose margins are not a softmax's log-odds ("margin": explained in probability instead)
    multinomial = type(model).__name__ == "LogisticRegression" and getattr(model, "multi_class", "auto") != "ovr"
    return ("log-odds", _softmax) if multinomial else ("margin", _one_vs_rest)


Explainer = Callable[[Any, Any, Any], Contributions]


def _registry() -> list[tuple[type, Explainer]]:
    """Fitted model types and their exact path; optional libraries only when installed."""
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor

    entries: list[tuple[type, Explainer]] = [
        (RandomForestClassifier, _forest), (RandomForestRegressor, _forest), (ExtraTreesClassifier, _forest),
        (ExtraTreesRegressor, _forest), (LogisticRegression, _linear), (SGDClassifier, _linear),
        (SGDRegressor, _linear)]
    try:
        import lightgbm

        entries.append((lightgbm.LGBMModel, _lightgbm))
    except ImportError:  # pragma: no cover - lightgbm is a dependency; kept optional for the SQL functions' sandbox
        pass
    try:
        import xgboost

        entries.append((xgboost.XGBModel, _xgboost))
    except ImportError:  # pragma: no cover
        pass
    return entries


def needs_background(estimator: Any) -> bool:
    """Whether the learner's exact path reads background rows (linear models do: their mean input)."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor

    return isinstance(getattr(estimator, "estimator", estimator), LogisticRegression | SGDClassifier | SGDRegressor)


class NoExactPath(TypeError):
    """The learner has no exact SHAP path here (the caller falls back to sampling, and says so)."""


def learner_contributions(estimator: Any, model_input: pd.DataFrame, background_input: pd.DataFrame | None
                          ) -> Contributions:
    """Exact SHAP values of one fitted FLAML estimator for `model_input` (the bundle's transformed input), on
    the learner's own input columns after the estimator's preprocessing. `background_input` (same form) gives
    the reference a linear model is explained against (needed only where `needs_background`). Raises NoExactPath
    for a learner without one."""
    model = getattr(estimator, "estimator", estimator)
    for kind, explain in _registry():
        if isinstance(model, kind):
            learner_input = estimator._preprocess(model_input)
            background = estimator._preprocess(background_input) if background_input is not None else None
            contributions = explain(model, learner_input, background)
            if not contributions.columns:  # a preprocessing that returns an array keeps the input's columns
                contributions = Contributions(contributions.values, contributions.base,
                                              list(map(str, model_input.columns)), contributions.scale,
                                              contributions.link)
            return contributions
    raise NoExactPath(f"no exact SHAP path for {type(model).__name__}")
