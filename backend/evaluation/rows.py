"""One row explained, and what-if: the prediction, probability and SHAP waterfall of a holdout row, found by
position or by a column's value, with any of its inputs edited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidTargetError
from backend.explain import explain_rows
from backend.model_bundle import ModelBundle
from backend.reasons import reason_sentences


@dataclass(frozen=True)
class RowExplanation:
    prediction: Any
    probability: float | None  # binary: of the outcome of interest; multiclass: of the predicted class
    base_value: float
    contributions: dict[str, float]  # per original column, on the scale `output` names
    values: dict[str, Any]  # the row's inputs
    output: str  # "log-odds", "probability" or "value"
    method: str
    explained_class: Any = None

    def reasons(self, target: str) -> list[str]:
        """The top contributions in words: what `flurry_explain_…` returns for the same row."""
        return reason_sentences(self.contributions, self.values, output=self.output, probability=self.probability,
                                explained=self.explained_class, target=target)


def explain_row(bundle: ModelBundle, row: pd.DataFrame, background: pd.DataFrame) -> RowExplanation:
    """Predict and explain the single row in `row` (a one-row frame with the model's input columns)."""
    if len(row) != 1:
        raise ValueError("explain_row takes exactly one row")
    explanation = explain_rows(bundle, row, background=background)
    prediction = bundle.predict(row)[0]
    probability = float(bundle.output_probability(row)[0]) if bundle.is_classification else None
    values = {name: _plain(row[name].iloc[0]) for name in bundle.feature_names}
    contributions = {name: float(v) for name, v in explanation.values.iloc[0].items()}
    explained = explanation.explained_class[0] if explanation.explained_class else None
    return RowExplanation(_plain(prediction), probability, float(np.atleast_1d(explanation.base_values)[0]),
                          contributions, values, explanation.output, explanation.method, _plain(explained))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def find_rows(frame: pd.DataFrame, column: str, value: str) -> list[int]:
    """Positions of the rows whose `column` reads as `value` (compared as text, trimmed, case-insensitive).
    Raises InvalidTargetError for a column the rows lack."""
    if column not in frame.columns:
        raise InvalidTargetError(f"The holdout rows have no column {column!r}.", hint="Pick a column from the list.")
    wanted = value.strip().casefold()
    text = frame[column].astype(str).str.strip().str.casefold()
    return [int(i) for i in np.flatnonzero((text == wanted).to_numpy())]


def edited_row(bundle: ModelBundle, row: pd.DataFrame, edits: dict[str, Any]) -> pd.DataFrame:
    """`row` with some inputs replaced (what-if); edits to columns the model does not use are refused."""
    unknown = set(edits) - set(bundle.feature_names)
    if unknown:
        raise InvalidTargetError(f"The model does not use {', '.join(sorted(map(repr, unknown)))}.",
                                 hint="Edit the model's own input columns.")
    changed = row.copy()
    for name, value in edits.items():
        changed[name] = pd.Series([value], index=changed.index, dtype=object if isinstance(value, str) else None)
    return changed
