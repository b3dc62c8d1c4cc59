"""SHAP explanations in terms of the table's original columns, checked before anyone sees them.

Every learner Flurry trains by default is explained exactly (backend.contributions). A single model keeps its
own scale: the log-odds of a boosted or linear classifier, a forest's probability, the predicted value. A blend
averages its members' probabilities, so each member's values are carried onto the probability of the explained
class first (a margin's values scaled along the link from the base value to the row's own margin, which keeps
their sum exact), then weighted by the member's share. Kernel SHAP, a sampled estimate, is used only for a
learner with no exact path, on a bounded sample that the explanation states.

Whatever the path, `explain_rows` refuses values that do not add up to the model's own output for every row, or
that exceed what the output can move (ExplanationRefusedError): a wrong explanation is worse than none.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.contributions import Contributions, NoExactPath, learner_contributions, needs_background
from backend.errors import ExplanationRefusedError
from backend.model_bundle import ModelBundle, prepare_features
from backend.weighted_ensemble import WeightedEnsemble

logger = logging.getLogger(__name__)

BACKGROUND_ROWS = 100
# A linear model is explained against its background's mean input: a larger sample costs nothing.
LINEAR_BACKGROUND_ROWS = 5000
# Sample-based SHAP calls the model once per row explained with evaluations × background rows (at least
# 2·features + 1 evaluations per row; ~50 ms per call for a blend). Global importance is estimated from a
# sample of rows as well, so the rows explained and the evaluations per row are fitted to this many
# predictions (a few seconds for a blend of models here).
SAMPLED_MAX_ROWS = 50
SAMPLED_MIN_ROWS = 10
SAMPLED_PREDICTIONS = 100_000
SAMPLED_MAX_EVALS = 500
# How closely values plus the base value must reproduce the model's output: a probability absolutely, other
# scales relative to the size of the terms summed. Wide enough for single-precision sums, far too narrow for a
# missing column or a sampled estimate that went astray.
SUM_TOLERANCE = 1e-4
# Values on an unbounded scale may not exceed this many times the spread of the model's outputs.
RANGE_FACTOR = 20.0
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)


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
    for binary models it is the outcome of interest. `output` names that scale ("log-odds", "margin",
    "probability", "value") and `method` how the values were found.
    """

    values: pd.DataFrame
    base_values: np.ndarray
    explained_class: list[object] | None
    output: str = "value"
    method: str = "exact TreeSHAP"


def _explained_classes(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """Per row, the index of the class whose output is explained: the outcome of interest, or the predicted."""
    if bundle.is_binary:
        return np.full(len(frame), bundle.positive_index)
    return np.asarray(bundle.predict_proba(frame)).argmax(axis=1)


def _class_output(c: Contributions, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A classifier's values and base for class `k[row]` on its own scale (one margin: the last class's, so the
    first class's is its negative)."""
    rows = np.arange(c.values.shape[0])
    if c.values.shape[2] == 1:
        sign = np.where(k == 0, -1.0, 1.0) if c.link is not None else np.ones(len(k))
        return c.values[:, :, 0] * sign[:, None], c.base[:, 0] * sign
    return c.values[rows, :, k], c.base[rows, k]


def _carried(c: Contributions, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and base on the probability of class `k[row]`.

    Margins are carried along the link from the base margin to the row's own margin (integrated gradients of
    the link, exact in sum): with one margin that is each value times the link's secant slope; with several, the
    link's Jacobian averaged over the path by Gauss–Legendre quadrature, its small remainder spread in
    proportion."""
    if c.link is None:
        return _class_output(c, k)
    rows = np.arange(c.values.shape[0])
    link = c.link
    total = c.values.sum(axis=1)
    start, end = link(c.base)[rows, k], link(c.base + total)[rows, k]
    if c.values.shape[2] == 1:
        step = total[:, 0]
        h = 1e-6
        slope_at_base = (link(c.base + h)[rows, k] - link(c.base - h)[rows, k]) / (2 * h)
        moved = np.abs(step) > 1e-9
        slope = np.where(moved, (end - start) / np.where(moved, step, 1.0), slope_at_base)
        return c.values[:, :, 0] * slope[:, None], start
    carried = np.zeros(c.values.shape[:2])
    h = 1e-6
    for node, weight in zip((_NODES + 1) / 2, _WEIGHTS / 2, strict=True):
        point = c.base + node * total
        jacobian = np.empty_like(point)
        for j in range(point.shape[1]):
            up, down = point.copy(), point.copy()
            up[:, j] += h
            down[:, j] -= h
            jacobian[:, j] = (link(up)[rows, k] - link(down)[rows, k]) / (2 * h)
        carried += weight * np.einsum("nfk,nk->nf", c.values, jacobian)
    remainder = (end - start) - carried.sum(axis=1)
    size = np.abs(carried).sum(axis=1, keepdims=True)
    share = np.divide(np.abs(carried), size, out=np.full_like(carried, 1.0 / carried.shape[1]), where=size > 0)
    return carried + remainder[:, None] * share, start


def _fold_to_originals(bundle: ModelBundle, values: np.ndarray, columns: list[str], index: pd.Index) -> pd.DataFrame:
    folded = pd.DataFrame(0.0, index=index, columns=bundle.feature_names)
    for j, col in enumerate(columns):
        original = bundle.original_name(col)
        if original is not None:
            folded[original] += values[:, j]
    return folded


@dataclass(frozen=True)
class _Checked:
    """An explanation with what it must reproduce: the model's own output per row, and the bound on a value."""

    explanation: Explanation
    expected: np.ndarray
    bound: float


def _member_check(bundle: ModelBundle, c: Contributions, member: object, model_input: pd.DataFrame) -> None:
    """A margin's values must reproduce the learner's own probabilities through its link."""
    if c.link is None or not bundle.is_classification:
        return
    rebuilt = c.link(c.base + c.values.sum(axis=1))
    own = np.asarray(member.predict_proba(model_input))  # type: ignore[attr-defined]
    gap = float(np.max(np.abs(rebuilt - own))) if own.size else 0.0
    if not gap <= SUM_TOLERANCE:
        raise ExplanationRefusedError(
            f"The explanation of a {type(getattr(member, 'estimator', member)).__name__} did not reproduce its "
            f"probabilities (off by up to {gap:.2g}); it was not kept.")


def _spread_bound(outputs: np.ndarray, floor: float) -> float:
    spread = float(np.ptp(outputs)) if outputs.size else 0.0
    return RANGE_FACTOR * max(spread, floor)


def _exact(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame) -> _Checked:
    ensemble = bundle.estimator if isinstance(bundle.estimator, WeightedEnsemble) else None
    members = list(ensemble.members) if ensemble is not None else [bundle.estimator]
    weights = [float(w) for w in ensemble.weights] if ensemble is not None else [1.0]
    model_input = bundle.model_input(frame)
    # only a linear member reads background rows: trees need none (every what-if and SQL batch would pay for it)
    reference = (bundle.model_input(background.sample(min(len(background), LINEAR_BACKGROUND_ROWS), random_state=0))
                 if any(needs_background(m) for m in members) else None)
    parts = []
    for member in members:
        c = learner_contributions(member, model_input, reference)
        _member_check(bundle, c, member, model_input)
        parts.append(c)
    k = _explained_classes(bundle, frame) if bundle.is_classification else np.zeros(len(frame), dtype=int)
    explained = [bundle.classes[i] for i in k] if bundle.is_classification else None
    if ensemble is None and parts[0].scale == "margin":
        # a margin that is not a logistic's log-odds (modified Huber, one-vs-rest) reads as no chance in words:
        # explained in the probability its own link gives instead
        c = parts[0]
        values, base = _carried(c, k)
        output, method = "probability", _single_method(members[0]) + ", its margin carried to probability"
    elif ensemble is None:
        c = parts[0]
        values, base = _class_output(c, k)
        output = c.scale
        method = _single_method(members[0])
    else:
        values = np.zeros((len(frame), len(bundle.feature_names)))
        base = np.zeros(len(frame))
        carried_any = False
        for weight, c in zip(weights, parts, strict=True):
            if bundle.is_classification:
                member_values, member_base = _carried(c, k)
                carried_any |= c.link is not None
            else:
                member_values, member_base = c.values[:, :, 0], c.base[:, 0]
            values += weight * _fold_to_originals(bundle, member_values, c.columns, frame.index).to_numpy()
            base += weight * member_base
        output = "probability" if bundle.is_classification else "value"
        method = "exact SHAP of each blended model, weighted by its share"
        if carried_any:
            method += ", log-odds carried to probability"
        frame_values = pd.DataFrame(values, index=frame.index, columns=bundle.feature_names)
        return _Checked(Explanation(frame_values, base, explained, output, method),
                        _expected(bundle, frame, k, output), _bound(bundle, output, background, values, base))
    folded = _fold_to_originals(bundle, values, c.columns, frame.index)
    expected = (base + values.sum(axis=1)) if output in ("log-odds", "margin") else _expected(bundle, frame, k, output)
    return _Checked(Explanation(folded, base, explained, output, method), expected,
                    _bound(bundle, output, background, values, base))


def _family(model: object) -> str:
    return type(getattr(model, "estimator", model)).__name__


def _single_method(model: object) -> str:
    name = _family(model)
    if name.startswith("LGBM"):
        return "exact TreeSHAP, LightGBM's own"
    if name.startswith("XGB"):
        return "exact TreeSHAP, XGBoost's own"
    if "Forest" in name or "ExtraTrees" in name:
        return "exact TreeSHAP"
    return "exact linear SHAP"


def _expected(bundle: ModelBundle, frame: pd.DataFrame, k: np.ndarray, output: str) -> np.ndarray:
    """The model's own output per row on the explained scale (computed apart from the explanation)."""
    if output == "probability":
        return np.asarray(bundle.predict_proba(frame))[np.arange(len(frame)), k]
    return np.asarray(bundle.estimator.predict(bundle.model_input(frame)), dtype=float).ravel()


def _bound(bundle: ModelBundle, output: str, background: pd.DataFrame, values: np.ndarray, base: np.ndarray) -> float:
    """The largest value an explanation may hold: a probability moves by at most 1; other scales by at most
    RANGE_FACTOR times the spread of the model's outputs (over background rows, and the rows explained)."""
    if output == "probability":
        return 1.0 + SUM_TOLERANCE
    outputs = np.concatenate([base + values.sum(axis=1), base])
    sample = background.sample(min(len(background), BACKGROUND_ROWS), random_state=0)
    if output == "log-odds" and bundle.is_classification:
        # the model's own log-odds over background rows: the same bound for a row alone as in a batch
        proba = np.clip(np.asarray(bundle.predict_proba(sample), dtype=float), 1e-12, 1 - 1e-12)
        outputs = np.concatenate([outputs, np.log(proba / (1 - proba)).ravel()])
    if output == "value":
        outputs = np.concatenate([outputs, np.asarray(bundle.predict(sample), dtype=float)])
        return _spread_bound(outputs, 1e-9)
    return _spread_bound(outputs, 1.0)


def check_explanation(checked: _Checked) -> Explanation:
    """The explanation, once its values plus base value reproduce the model's output for every row and none
    exceeds the output's range. Raises ExplanationRefusedError otherwise."""
    explanation = checked.explanation
    values = explanation.values.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ExplanationRefusedError("The explanation held values that are not numbers; it was not kept.")
    base = np.broadcast_to(np.asarray(explanation.base_values, dtype=float), (len(values),))
    total = values.sum(axis=1) + base
    # relative to the size of the terms summed: XGBoost adds its values in single precision
    scale = 1.0 if explanation.output == "probability" else np.maximum(1.0, np.abs(values).sum(axis=1) + np.abs(base))
    gap = float(np.max(np.abs(total - checked.expected) / scale)) if len(total) else 0.0
    if not gap <= SUM_TOLERANCE:
        raise ExplanationRefusedError(
            f"The explanation's values did not add up to the model's {explanation.output} (off by up to {gap:.2g}); "
            "they were not kept.")
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest > checked.bound:
        raise ExplanationRefusedError(
            f"One explanation value ({largest:.3g}) exceeds what the model's {explanation.output} can move "
            f"({checked.bound:.3g}); the values were not kept.")
    return explanation


def _sampled(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame) -> _Checked:
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
                codes = np.rint(matrix[:, j]).astype(int)
                labels = np.asarray(categories[c], dtype=object)[np.clip(codes, 0, len(categories[c]) - 1)]
                labels[codes < 0] = None
                out[c] = labels
            elif np.issubdtype(prepared[c].dtype, np.datetime64):
                out[c] = pd.to_datetime(matrix[:, j].astype("int64"))
            else:
                out[c] = matrix[:, j]
        return pd.DataFrame(out)

    k = _explained_classes(bundle, frame) if bundle.is_classification else np.zeros(len(frame), dtype=int)

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
    expected_value = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    rows = np.arange(len(frame))
    if values.ndim == 3:
        values, base = values[rows, :, k], expected_value[k]
    else:
        base = np.full(len(frame), expected_value[0])
    explained = [bundle.classes[i] for i in k] if bundle.is_classification else None
    output = "probability" if bundle.is_classification else "value"
    explanation = Explanation(pd.DataFrame(values, index=frame.index, columns=names), base, explained, output,
                              f"Kernel SHAP, a sampled estimate: {len(frame)} rows, {evals} samples each")
    return _Checked(explanation, _expected(bundle, frame, k, output), _bound(bundle, output, background, values, base))


def explain_rows(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame | None = None) -> Explanation:
    """SHAP values for `frame`'s rows in terms of the bundle's original feature columns, checked.

    A learner with no exact path is explained by sampling, on at most SAMPLED_MAX_ROWS rows (the result's index
    says which). Raises ExplanationRefusedError when the values fail the check."""
    rows = frame if background is None else background
    try:
        checked = _exact(bundle, frame, rows)
    except NoExactPath as exc:
        logger.info("no exact SHAP path for %s (%s); using Kernel SHAP", bundle.best_estimator, exc)
        checked = _sampled(bundle, frame, rows.sample(min(len(rows), BACKGROUND_ROWS), random_state=0))
    return check_explanation(checked)


EXPLAIN_CHUNK_ROWS = 100


def explain_in_chunks(bundle: ModelBundle, rows: pd.DataFrame, background: pd.DataFrame,
                       deadline: float | None) -> Explanation:
    """`explain_rows` of `rows`, a chunk at a time, stopping before a chunk that would not end by `deadline`
    (the first chunk always runs)."""
    parts: list[Explanation] = []
    for start in range(0, len(rows), EXPLAIN_CHUNK_ROWS):
        began = time.monotonic()
        part = explain_rows(bundle, rows.iloc[start:start + EXPLAIN_CHUNK_ROWS], background=background)
        parts.append(part)
        if part.method.startswith("Kernel"):  # a sampled estimate bounds its own rows: one call is the plan
            break
        if deadline is not None and time.monotonic() + (time.monotonic() - began) > deadline:
            break
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    classes = None if first.explained_class is None else [c for p in parts for c in (p.explained_class or [])]
    return Explanation(pd.concat([p.values for p in parts]), np.concatenate([p.base_values for p in parts]),
                       classes, first.output, first.method)



def global_importance(explanation: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP value per column, largest first (columns: feature, importance)."""
    importance = explanation.values.abs().mean(axis=0).sort_values(ascending=False)
    return pd.DataFrame({"feature": importance.index, "importance": importance.to_numpy()})
