"""The fitted blend a model bundle keeps: a weighted average of fitted FLAML estimators with the estimator
surface the bundle calls. Scoring needs only this (backend.training.ensemble chooses the members and weights).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from backend.learner_names import short_name


class WeightedEnsemble:
    """A weighted average of fitted FLAML estimators, with the estimator surface the model bundle calls."""

    def __init__(self, members: list[Any], weights: list[float], names: list[str], is_classification: bool):
        self.members = members
        self.weights = np.asarray(weights, dtype=float)
        self.names = names
        self.is_classification = is_classification

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return sum(w * np.asarray(m.predict_proba(frame)) for m, w in zip(self.members, self.weights, strict=True))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.is_classification:
            return np.asarray(self.members[0].classes_)[self.predict_proba(frame).argmax(axis=1)]
        return sum(w * np.asarray(m.predict(frame), dtype=float) for m, w in zip(self.members, self.weights, strict=True))

    def describe(self) -> str:
        """E.g. "LightGBM 55% · XGBoost 25% · random forest 20%" (a family's configurations added together)."""
        shares: Counter[str] = Counter()
        for name, weight in zip(self.names, self.weights, strict=True):
            shares[short_name(name)] += weight
        return " · ".join(f"{name} {share:.0%}" for name, share in shares.most_common())
