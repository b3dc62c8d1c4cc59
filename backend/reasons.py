"""Reasons in words: a prediction's largest SHAP contributions as sentences, e.g.
"tenure = 2 raised the chance of 'Yes' by 21 points", for the `flurry_explain_…` SQL function and the
Evaluate page alike (the same explanation, the same sentences).

Contributions in log-odds (boosted trees) are turned into points of probability as the change this one
contribution makes to the chance: p against the chance with the contribution taken out of the margin.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import ExplanationRefusedError
from backend.explain import explain_rows
from backend.model_bundle import ModelBundle

logger = logging.getLogger(__name__)

TOP_REASONS = 3
EXPLAIN_PREFIX = "flurry_explain_"
PREDICT_PREFIX = "flurry_predict_"


def explain_function_name(predict_function: str) -> str:
    """`flurry_predict_churn` → `flurry_explain_churn`; any other name gets `_explain` appended."""
    if predict_function.startswith(PREDICT_PREFIX):
        return EXPLAIN_PREFIX + predict_function[len(PREDICT_PREFIX):]
    return f"{predict_function}_explain"


def points_of_chance(contribution: float, probability: float, output: str) -> float:
    """How many percentage points one contribution moves the chance of the explained class."""
    if output == "probability":
        return 100.0 * contribution
    p = min(max(probability, 1e-12), 1 - 1e-12)
    odds_against = (1 - p) / p  # the other classes' share of the softmax, relative to this class's
    without = 1.0 / (1.0 + odds_against * math.exp(min(contribution, 700.0)))
    return 100.0 * (p - without)


def value_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4g}"
    if isinstance(value, datetime | date | pd.Timestamp):
        return str(value)[:19]
    return repr(str(value)[:60])


def _points_text(points: float) -> str:
    size = abs(points)
    if size < 0.5:
        return "under 1 point"
    return "1 point" if round(size) == 1 else f"{size:.0f} points"


def reason_sentences(contributions: dict[str, float], values: dict[str, Any], *, output: str,
                     probability: float | None, explained: Any, target: str, top: int = TOP_REASONS) -> list[str]:
    """The `top` largest contributions, largest first, each as a sentence (contributions of exactly zero are
    no reason)."""
    order = sorted((name for name in contributions if contributions[name] != 0.0),
                   key=lambda name: abs(contributions[name]), reverse=True)[:top]
    sentences = []
    for name in order:
        contribution = contributions[name]
        direction = "raised" if contribution > 0 else "lowered"
        if probability is None:  # regression: in the target's own units
            amount = f"{abs(contribution):,.4g}"
            sentences.append(f"{name} = {value_text(values.get(name))} {direction} the predicted {target} by {amount}")
        else:
            points = points_of_chance(contribution, probability, output)
            sentences.append(f"{name} = {value_text(values.get(name))} {direction} the chance of "
                             f"{str(explained)!r} by {_points_text(points)}")
    return sentences


@dataclass(frozen=True)
class ExplainedRow:
    prediction: Any
    probability: float | None
    reasons: list[str]


def explain_batch(bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame | None, target: str
                  ) -> list[ExplainedRow]:
    """Prediction, probability and top reasons of every row of `frame` (the model's input columns)."""
    if not len(frame):
        return []
    frame = frame.reset_index(drop=True)
    predictions = bundle.predict(frame)
    probabilities = bundle.output_probability(frame) if bundle.is_classification else None
    values = pd.DataFrame(0.0, index=frame.index, columns=bundle.feature_names)
    explained: list[Any] = [None] * len(frame)
    output = "value"
    remaining = frame
    while len(remaining):  # a sample-based explainer takes a few rows per call: every row gets its reasons
        try:
            explanation = explain_rows(bundle, remaining, background=background if background is not None else frame)
        except ExplanationRefusedError as exc:  # no reasons rather than wrong ones, and the query still answers
            logger.warning("reasons withheld for %d rows: %s", len(remaining), exc.message)
            return [ExplainedRow(_plain(predictions[i]), None if probabilities is None else float(probabilities[i]),
                                 []) for i in range(len(frame))]
        done = explanation.values.index
        values.loc[done, :] = explanation.values.to_numpy()
        for position, index in enumerate(done):
            explained[index] = explanation.explained_class[position] if explanation.explained_class else None
        output = explanation.output
        remaining = remaining.drop(index=done)
    rows = []
    records = frame.to_dict(orient="records")
    names = list(values.columns)
    for i, (record, contributions) in enumerate(zip(records, values.to_numpy().tolist(), strict=True)):
        probability = None if probabilities is None else float(probabilities[i])
        # binary: the probability column is the outcome of interest's, which is also what SHAP explains
        reasons = reason_sentences(dict(zip(names, contributions, strict=True)), record, output=output,
                                   probability=probability, explained=explained[i], target=target)
        rows.append(ExplainedRow(_plain(predictions[i]), probability, reasons))
    return rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
