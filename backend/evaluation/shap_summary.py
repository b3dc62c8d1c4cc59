"""The stored SHAP summary of a model: global importance, beeswarm and dependence data, and each column's
direction in words, from explanations of a sample of holdout rows."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd

from backend.evaluation.report import FeatureEffect, ShapSummary
from backend.explain import Explanation

TOP_FEATURES = 12


def _toward(bundle: Any) -> str:
    if bundle.is_binary:
        return f"toward {str(bundle.outcome_of_interest)!r}"
    if bundle.is_classification:
        return "toward the predicted class"
    return f"toward a higher {bundle.target}"


def _away(bundle: Any) -> str:
    if bundle.is_binary:
        other = bundle.classes[1 - bundle.positive_index]
        return f"toward {str(other)!r}"
    if bundle.is_classification:
        return "away from the predicted class"
    return f"toward a lower {bundle.target}"


def direction_words(feature: str, values: pd.Series, shap: np.ndarray, bundle: Any) -> str:
    """How a column moves predictions, in words: "higher tenure pushes toward 'No'" for numbers (from the
    rank correlation of value and SHAP value), "contract = 'Month-to-month' pushes toward 'Yes' most" for
    categories."""
    present = values.dropna()
    dates = pd.api.types.is_datetime64_any_dtype(values) or (  # Arrow's DATE arrives as datetime.date objects
        values.dtype == object and len(present) > 0 and all(isinstance(v, datetime.date) for v in present))
    if dates:  # a date's effect reads along time ("later signup_date …"), not one day at a time
        stamps = pd.to_datetime(values, errors="coerce")
        values = pd.Series(stamps.astype("int64").where(stamps.notna()), index=values.index, dtype=float)
    numeric = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and numeric.nunique() > 2:
        known = numeric.notna().to_numpy()
        if known.sum() < 3 or np.std(shap[known]) == 0:
            return f"{feature} has little consistent effect"
        rho = pd.Series(numeric[known].to_numpy()).corr(pd.Series(shap[known]), method="spearman")
        if not np.isfinite(rho) or abs(rho) < 0.2:
            return f"{feature} matters, but not in one direction (its effect depends on other columns)"
        return f"{'later' if dates else 'higher'} {feature} pushes {_toward(bundle) if rho > 0 else _away(bundle)}"
    means = pd.Series(shap).groupby(values.astype(str).fillna("(missing)").to_numpy()).mean()
    if means.empty:
        return f"{feature} has little consistent effect"
    top = means.idxmax()
    return f"{feature} = {top!r} pushes {_toward(bundle)} most"


def _plain_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def shap_summary(bundle: Any, explanation: Explanation, rows: pd.DataFrame) -> ShapSummary:
    """Summarise `explanation` of `rows` (the sampled holdout rows it explains, by index)."""
    values = explanation.values
    rows = rows.loc[values.index]
    importance = values.abs().mean(axis=0).sort_values(ascending=False)
    kinds = {f.name: f.kind for f in getattr(bundle, "features", [])}
    effects = []
    for feature in importance.index[:TOP_FEATURES]:
        shap = values[feature].to_numpy(dtype=float)
        column = rows[feature]
        if kinds.get(str(feature)) == "datetime" and not pd.api.types.is_datetime64_any_dtype(column):
            column = pd.to_datetime(column, errors="coerce", format="mixed")  # text the model reads as dates
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        effects.append(FeatureEffect(str(feature), float(importance[feature]),
                                     direction_words(str(feature), column, shap, bundle),
                                     [float(v) for v in shap], [_plain_value(v) for v in column.tolist()], numeric))
    if bundle.is_binary:
        explained = f"the {explanation.output} of {str(bundle.outcome_of_interest)!r}"
    elif bundle.is_classification:
        explained = f"the {explanation.output} of each row's predicted class"
    else:
        explained = f"the predicted {bundle.target}"
    base = float(np.mean(explanation.base_values)) if len(explanation.base_values) else 0.0
    return ShapSummary(explanation.method, explained, len(values), base, effects)
