"""Decision thresholds for binary models: the table of outcomes per cut-off, and the cut-offs worth choosing.

A row is flagged (predicted to be the outcome of interest) when its probability is at least the threshold.
The table is built on validation rows (out-of-fold where the run has folds), never the holdout, which stays
the honest judge; the same cut-offs are then counted on the holdout for the Evaluate page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

# Evenly spaced cut-offs, joined by quantiles of the validation probabilities so a rare outcome (whose
# probabilities all sit below 0.05) still gets fine steps where its best threshold lies.
GRID_STEPS = 101
QUANTILE_STEPS = 101
DEFAULT_RULE = 0.5
SMOOTHING = 8  # cut-offs on each side averaged into the F1 the default threshold maximises


@dataclass(frozen=True)
class ThresholdTable:
    """Outcome counts and rates per cut-off, as Snowflake's SHOW_THRESHOLD_METRICS gives them."""

    thresholds: list[float]
    tp: list[int]
    fp: list[int]
    tn: list[int]
    fn: list[int]

    @property
    def rows(self) -> int:
        return self.tp[0] + self.fp[0] + self.tn[0] + self.fn[0] if self.thresholds else 0

    def at(self, threshold: float) -> ThresholdRow:
        """The row of the largest cut-off not above `threshold` (flagging p ≥ cut-off), or the first."""
        index = int(np.searchsorted(np.asarray(self.thresholds), threshold + 1e-12, side="right")) - 1
        return self.row(max(0, index))

    def row(self, index: int) -> ThresholdRow:
        return ThresholdRow(self.thresholds[index], self.tp[index], self.fp[index], self.tn[index], self.fn[index])

    def all_rows(self) -> list[ThresholdRow]:
        return [self.row(i) for i in range(len(self.thresholds))]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ThresholdTable:
        return ThresholdTable(**data)


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def rows(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def flagged(self) -> int:
        return self.tp + self.fp

    @property
    def precision(self) -> float:
        return self.tp / self.flagged if self.flagged else float("nan")

    @property
    def recall(self) -> float:
        positives = self.tp + self.fn
        return self.tp / positives if positives else float("nan")

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.rows if self.rows else float("nan")

    @property
    def share_flagged(self) -> float:
        return self.flagged / self.rows if self.rows else float("nan")

    @property
    def false_positive_rate(self) -> float:
        negatives = self.fp + self.tn
        return self.fp / negatives if negatives else float("nan")


def cutoff_grid(probabilities: np.ndarray) -> list[float]:
    """At least GRID_STEPS cut-offs in [0, 1]: an even grid plus quantiles of `probabilities`, rounded to four
    places so they read cleanly and repeat across runs."""
    even = np.linspace(0.0, 1.0, GRID_STEPS)
    quantiles = np.quantile(probabilities, np.linspace(0.0, 1.0, QUANTILE_STEPS)) if len(probabilities) else []
    return sorted({round(float(v), 4) for v in (*even, *quantiles)})


def threshold_table(is_positive: np.ndarray, probability: np.ndarray, cutoffs: list[float]) -> ThresholdTable:
    """Counts of each outcome at each cut-off, for rows whose truth is `is_positive` (bool) and whose
    probability of the outcome of interest is `probability`."""
    truth = np.asarray(is_positive, dtype=bool)
    p = np.asarray(probability, dtype=float)
    order = np.sort(p[truth])
    order_negative = np.sort(p[~truth])
    cuts = np.asarray(cutoffs, dtype=float)
    # rows flagged at cut-off c: p >= c, i.e. those from the first index where sorted p reaches c
    tp = len(order) - np.searchsorted(order, cuts, side="left")
    fp = len(order_negative) - np.searchsorted(order_negative, cuts, side="left")
    return ThresholdTable(thresholds=[float(c) for c in cuts], tp=[int(v) for v in tp], fp=[int(v) for v in fp],
                          tn=[int(len(order_negative) - v) for v in fp], fn=[int(len(order) - v) for v in tp])


def best_f1_threshold(table: ThresholdTable) -> float:
    """The cut-off with the highest F1 (H2O's default choice), F1 read as its average over the SMOOTHING
    neighbouring cut-offs on each side: on validation rows with few positives the single highest F1 is often
    a spike of noise, and a cut-off in the middle of a high stretch holds up better on new rows (measured on
    the threshold benchmark). Among ties, the middle one."""
    scores = np.array([row.f1 for row in table.all_rows()])
    window = np.ones(2 * SMOOTHING + 1)
    smoothed = np.convolve(scores, window, mode="same") / np.convolve(np.ones_like(scores), window, mode="same")
    best = np.flatnonzero(smoothed >= smoothed.max() - 1e-12)
    return table.thresholds[int(best[len(best) // 2])]


@dataclass(frozen=True)
class Payoff:
    """What each outcome is worth to the user, in their own units (money, hours): a correct catch earns
    `catch_value`, a false alarm costs `false_alarm_cost`, a miss costs `miss_cost`; correct passes are 0."""

    catch_value: float
    false_alarm_cost: float
    miss_cost: float

    def value(self, row: ThresholdRow) -> float:
        return row.tp * self.catch_value - row.fp * self.false_alarm_cost - row.fn * self.miss_cost


def value_curve(table: ThresholdTable, payoff: Payoff) -> list[float]:
    """The total value of acting on the model's flags at each cut-off."""
    return [payoff.value(row) for row in table.all_rows()]


def best_value_threshold(table: ThresholdTable, payoff: Payoff) -> float:
    """The cut-off that maximises the total value (ties: the highest, which flags the fewest rows)."""
    values = np.asarray(value_curve(table, payoff))
    best = np.flatnonzero(values >= values.max() - 1e-9)
    return table.thresholds[int(best[-1])]


@dataclass(frozen=True)
class DecisionThreshold:
    """The threshold in force for a model version, with when and how it was chosen."""

    threshold: float
    chosen_at: datetime
    how: str  # "max_f1" (at training), "manual", "value", "legacy" (trained before thresholds existed) or
    # "unvalidated" (no validation predictions could be made)
    detail: dict[str, Any]

    @property
    def description(self) -> str:
        if self.how == "max_f1":
            return f"{self.threshold:.4g}, the cut-off with the best F1 on validation rows (chosen at training)"
        if self.how == "value":
            payoff = self.detail
            return (f"{self.threshold:.4g}, the cut-off with the most value on validation rows (a catch worth "
                    f"{payoff.get('catch_value')}, a false alarm costing {payoff.get('false_alarm_cost')}, a miss "
                    f"costing {payoff.get('miss_cost')})")
        if self.how == "manual":
            return f"{self.threshold:.4g}, set by hand"
        if self.how == "unvalidated":
            return f"{self.threshold:.4g}: no validation predictions could be made at training, so it keeps 0.5"
        return f"{self.threshold:.4g}: this model was trained before Flurry chose thresholds, so it keeps 0.5"
