"""SHAP explanations in terms of the table's original columns.

Tree models use SHAP's exact TreeExplainer on the model's own input; blends the weighted sum of their members'
exact values in the blend's own output; anything else falls back to model-agnostic Kernel SHAP over the
original columns (text encoded as category codes), on a bounded sample that the explanation states.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.model_bundle import ModelBundle, prepare_features
from backend.weighted_ensemble import WeightedEnsemble

logger = logging.getLogger(__name__)

BACKGROUND_ROWS = 100
# Sample-based SHAP calls the model once per row explained with evaluations × background rows (at least
# 2·features + 1 evaluations per row; ~50 ms per call for a blend). Global importance is estimated from a
# sample of rows as well, so the rows explained and the evaluations per row are fitted to this many
# predictions (a few seconds for a blend of models here).
SAMPLED_MAX_ROWS = 50
SAMPLED_MIN_ROWS = 10
SAMPLED_PREDICTIONS = 100_000
SAMPLED_MAX_EVALS = 500


def sampling_plan(rows: int, features: int, background: int) -> tuple[int, int]:
    """How many of `rows` to explain and how many evaluations each gets, within SAMPLED_PREDICTIONS."""
    min_evals = 2 * features + 1
    explained = max(SAMPLED_MIN_ROWS, min(SAMPLED_MAX_ROWS, SAMPLED_PREDICTIONS // (min_evals * background)))
    explained = min(rows, explained)
    evals = max(min_evals, min(SAMPLED_MAX_EVALS, SAMPLED_PREDICTIONS // (max(1, explained) * background)))
    return explained, evals


@dataclass(frozen=True)
class Explanation:
    """Per-row contributions (rows × original columns) toward the explained output, plus its base value.

    For classification the explained output is the probability (or margin) of each row's predicted class;
    for binary models it is the outcome of interest. `output` names that scale ("log-odds", "probability",
    "value") and `method` how the values were found.
    """

    values: pd.DataFrame
    base_values: np.ndarray
    explained_class: list[object] | None
    output: str = "value"
    method: str = "exact TreeSHAP"


def _select_class(values: np.ndarray, base: np.ndarray, class_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(values.shape[0])
    return values[rows, :, class_index], base[rows, class_index] if base.ndim == 2 else base[class_index]


def _class_indices(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    if bundle.is_binary:
        return np.full(len(frame), bundle.positive_index)
    return np.asarray(bundle.predict_proba(frame)).argmax(axis=1)


def _tree_output(estimator: object) -> str:
    """The scale TreeExplainer explains a classifier on: sklearn's forests average probabilities, boosting
    models add log-odds."""
    name = type(getattr(estimator, "estimator", estimator)).__name__
    return "probability" if "Forest" in name or "ExtraTrees" in name else "log-odds"


_EXPLAINERS: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()
_EXPLAINERS_LOCK = threading.Lock()


def _tree_explainer(model: object) -> Any:
    """One TreeExplainer per fitted model (building it parses every tree: most of explaining one row)."""
    import shap

    with _EXPLAINERS_LOCK:
        try:
            return _EXPLAINERS[model]
        except (KeyError, TypeError):
            explainer = shap.TreeExplainer(model)
            with contextlib.suppress(TypeError):  # not weak-referenceable: built each time
                _EXPLAINERS[model] = explainer
            return explainer


def _tree_shap(estimator: object, model_input: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Exact TreeExplainer values of one fitted FLAML estimator: values, base values, its input columns."""

    learner_input = estimator._preprocess(model_input)  # type: ignore[attr-defined]
    explainer = _tree_explainer(estimator.estimator)  # type: ignore[attr-defined]
    raw = explainer.shap_values(learner_input)
    if isinstance(raw, list):
        raw = np.stack(raw, axis=-1)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    return np.asarray(raw, dtype=float), base, [str(c) for c in learner_input.columns]


def _blend_explanation(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame | None) -> Explanation:
    """A blend's SHAP values are the weighted sum of its members' (Shapley values are linear in the model), once
    every member explains the blend's own output: the predicted value for regression; for a yes/no model the
    probability of the outcome of interest, which boosting members give only through interventional TreeSHAP
    against background rows (exact with respect to them). Values plus base value add up to the blend's output.
    Multiclass blends are explained sample-based."""
    ensemble = bundle.estimator
    if bundle.is_classification and not bundle.is_binary:
        raise TypeError("multiclass blends are explained model-agnostically")
    model_input = bundle.model_input(frame)
    reference = None
    if bundle.is_classification:
        rows = frame if background is None else background
        reference = bundle.model_input(rows.sample(min(len(rows), BACKGROUND_ROWS), random_state=0))
    total = pd.DataFrame(0.0, index=frame.index, columns=bundle.feature_names)
    base_total = 0.0
    for member, weight in zip(ensemble.members, ensemble.weights, strict=True):
        if reference is None:
            values, base, columns = _tree_shap(member, model_input)
            base_value = float(base[-1])
        else:
            values, base_value, columns = _tree_shap_probability(member, model_input, reference)
            if bundle.positive_index == 0:  # explained: the last class's probability; the other's is 1 − it
                values, base_value = -values, 1.0 - base_value
        total += weight * _fold_to_originals(bundle, values, columns, frame.index)
        base_total += weight * base_value
    if reference is None:
        return Explanation(total, np.full(len(frame), base_total), None, "value", "weighted sum of exact TreeSHAP")
    return Explanation(total, np.full(len(frame), base_total), [bundle.outcome_of_interest] * len(frame),
                       "probability", f"weighted sum of members' interventional TreeSHAP ({len(reference)} "
                                      "background rows)")


def _tree_shap_probability(estimator: object, model_input: pd.DataFrame, reference: pd.DataFrame
                           ) -> tuple[np.ndarray, float, list[str]]:
    """A binary tree model's SHAP values for the probability of its last class (interventional TreeSHAP)."""
    import shap

    learner_input = estimator._preprocess(model_input)  # type: ignore[attr-defined]
    explainer = shap.TreeExplainer(estimator.estimator, data=estimator._preprocess(reference),  # type: ignore[attr-defined]
                                   model_output="probability", feature_perturbation="interventional")
    raw = explainer.shap_values(learner_input, check_additivity=False)
    values = np.asarray(raw[-1] if isinstance(raw, list) else raw, dtype=float)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    if values.ndim == 3:  # one slice per class (sklearn forests)
        values = values[:, :, -1]
    return values, float(base[-1]), [str(c) for c in learner_input.columns]


def _tree_explanation(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame | None = None
                      ) -> Explanation:
    if isinstance(bundle.estimator, WeightedEnsemble):
        return _blend_explanation(bundle, frame, background)
    values, base, columns = _tree_shap(bundle.estimator, bundle.model_input(frame))
    explained: list[object] | None = None
    output = _tree_output(bundle.estimator) if bundle.is_classification else "value"
    if values.ndim == 3:
        idx = _class_indices(bundle, frame)
        values, base_rows = _select_class(values, base, idx)
        explained = [bundle.classes[i] for i in idx]
    else:
        base_rows = np.full(len(frame), base[-1])
        if bundle.is_classification:
            # one output: the margin of the last class; the other class's is its negative
            if bundle.is_binary and bundle.positive_index == 0:
                values, base_rows = -values, -base_rows
            explained = [bundle.outcome_of_interest if bundle.is_binary else bundle.classes[-1]] * len(frame)
    return Explanation(_fold_to_originals(bundle, values, columns, frame.index), base_rows, explained, output)


def _fold_to_originals(bundle: ModelBundle, values: np.ndarray, columns: list[str], index: pd.Index) -> pd.DataFrame:
    folded = pd.DataFrame(0.0, index=index, columns=bundle.feature_names)
    for j, col in enumerate(columns):
        original = bundle.original_name(col)
        if original is not None:
            folded[original] += values[:, j]
    return folded


def _sampled_explanation(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame) -> Explanation:
    import shap

    names = bundle.feature_names
    sampled_rows, evals = sampling_plan(len(frame), len(names), min(len(background), BACKGROUND_ROWS))
    if len(frame) > sampled_rows:
        frame = frame.sample(sampled_rows, random_state=0)
    prepared_bg = prepare_features(background, bundle.features)
    prepared = prepare_features(frame, bundle.features)
    categories = {c: pd.Index(prepared_bg[c].dropna().unique().tolist() + prepared[c].dropna().unique().tolist()).unique()
                  for c in names if prepared[c].dtype == object}

    def encode(df: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in names:
            if c in categories:
                cols.append(pd.Categorical(df[c], categories=categories[c]).codes.astype(float))
            elif np.issubdtype(df[c].dtype, np.datetime64):
                cols.append(df[c].astype("int64").astype(float))
            else:
                cols.append(df[c].to_numpy(dtype=float))
        return np.column_stack(cols)

    def decode(matrix: np.ndarray) -> pd.DataFrame:
        out = {}
        for j, c in enumerate(names):
            if c in categories:
                codes = matrix[:, j].astype(int)
                labels = np.asarray(categories[c], dtype=object)[np.clip(codes, 0, None)]  # a copy: safe to write
                labels[codes < 0] = None
                out[c] = labels
            elif np.issubdtype(prepared[c].dtype, np.datetime64):
                out[c] = pd.to_datetime(matrix[:, j].astype("int64"))
            else:
                out[c] = matrix[:, j]
        return pd.DataFrame(out)

    idx = _class_indices(bundle, frame) if bundle.is_classification else None

    def model_output(matrix: np.ndarray) -> np.ndarray:
        decoded = decode(matrix)
        if bundle.is_classification:
            return bundle.predict_proba(decoded)
        return bundle.predict(decoded)

    # Kernel SHAP rather than shap's permutation explainer: the same sampling budget, but no numba, whose
    # just-in-time compilation of shap's maskers cost 10–15 s in every fresh process (each training worker)
    explainer = shap.KernelExplainer(model_output, encode(prepared_bg))
    raw = explainer.shap_values(encode(prepared), nsamples=evals, silent=True, l1_reg=False)
    values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw, dtype=float)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    explained: list[object] | None = None
    if values.ndim == 3 and idx is not None:
        values, base = _select_class(values, np.tile(base, (len(frame), 1)), idx)
        explained = [bundle.classes[i] for i in idx]
    return Explanation(pd.DataFrame(values, index=frame.index, columns=names), np.atleast_1d(base), explained,
                       "probability" if bundle.is_classification else "value",
                       f"sample-based (Kernel SHAP, {len(frame)} rows, {evals} samples each)")


def explain_rows(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame | None = None) -> Explanation:
    """SHAP values for `frame`'s rows in terms of the bundle's original feature columns.

    Non-tree models are explained on a sample of at most SAMPLED_MAX_ROWS rows (the result's index says which).
    """
    try:
        return _tree_explanation(bundle, frame, background)
    except Exception as exc:
        logger.info("TreeExplainer unavailable for %s (%s); using sample-based Kernel SHAP", bundle.best_estimator, exc)
    bg = frame if background is None else background
    return _sampled_explanation(bundle, frame, bg.sample(min(len(bg), BACKGROUND_ROWS), random_state=0))


def global_importance(explanation: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP value per column, largest first (columns: feature, importance)."""
    importance = explanation.values.abs().mean(axis=0).sort_values(ascending=False)
    return pd.DataFrame({"feature": importance.index, "importance": importance.to_numpy()})
