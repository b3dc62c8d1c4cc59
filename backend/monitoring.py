"""Drift, computed in the warehouse against a baseline kept with the model version.

At training, each input column and the prediction get a baseline from the training sample: 10 quantile
bins plus a missing bin (numbers), or the 20 most frequent values plus "other" and "missing" (text). After
each batch score one SQL statement counts the scored rows into the same bins (only those counts leave the
warehouse) and Flurry compares: POPULATION_STABILITY_INDEX and JENSEN_SHANNON per column and for the
prediction — Snowflake model monitors' names for them — plus DIFFERENCE_OF_MEANS, volume and missing shares.
Bands: PSI below 0.1 stable, 0.1–0.25 watch, above 0.25 alert.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backend.identifiers import quote_ident
from backend.warehouse.base import TableRef, Warehouse

NUMBER_BINS = 10
TOP_VALUES = 20
SMOOTHING = 1e-4  # a share of zero on either side would make PSI infinite
PSI_WATCH, PSI_ALERT = 0.1, 0.25
MISSING, OTHER = "missing", "other"


def _text(value: Any) -> str:
    """A value as the warehouse's CAST(… AS VARCHAR) writes it (booleans in lower case)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ColumnBaseline:
    column: str
    kind: str  # "numeric" or "text"
    edges: list[float] = field(default_factory=list)  # numeric: bin k holds edges[k-1] <= x < edges[k]
    values: list[str] = field(default_factory=list)  # text: the most frequent values, as text
    shares: list[float] = field(default_factory=list)  # one per bin, then "other" (text), then "missing"
    mean: float | None = None
    rows: int = 0

    @property
    def labels(self) -> list[str]:
        if self.kind == "numeric":
            cuts = [f"{e:,.4g}" for e in self.edges]
            inner = [f"{a} – {b}" for a, b in itertools.pairwise(cuts)]
            return [*([f"below {cuts[0]}", *inner, f"{cuts[-1]} and above"] if cuts else ["all"]), MISSING]
        return [*self.values, OTHER, MISSING]


@dataclass(frozen=True)
class MonitoringBaseline:
    columns: list[ColumnBaseline]
    prediction: ColumnBaseline | None  # yes/no: the probability of the outcome; else the predicted value or class
    rows: int
    prediction_rows: str  # what the prediction's baseline was computed on, in words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> MonitoringBaseline:
        prediction = data.get("prediction")
        return MonitoringBaseline([ColumnBaseline(**c) for c in data["columns"]],
                                  ColumnBaseline(**prediction) if prediction else None, int(data["rows"]),
                                  str(data.get("prediction_rows", "")))

    def column(self, name: str) -> ColumnBaseline | None:
        return next((c for c in self.columns if c.column == name), None)


def column_baseline(name: str, values: pd.Series) -> ColumnBaseline | None:
    """The bins and shares of one column; None for a column that cannot be binned (dates, lists)."""
    n = len(values)
    if n == 0 or pd.api.types.is_datetime64_any_dtype(values):
        return None
    missing = values.isna()
    present = values[~missing]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = present.astype(float)
        edges = sorted({float(q) for q in np.quantile(numbers, np.linspace(0, 1, NUMBER_BINS + 1)[1:-1])}) if len(numbers) else []
        which = np.searchsorted(np.asarray(edges), numbers.to_numpy(), side="right")
        counts = np.bincount(which, minlength=len(edges) + 1).astype(float)
        shares = [*(counts / n).tolist(), float(missing.mean())]
        return ColumnBaseline(name, "numeric", edges=edges, shares=shares,
                              mean=float(numbers.mean()) if len(numbers) else None, rows=n)
    try:
        text = present.map(_text)
    except TypeError:
        return None
    top = text.value_counts().head(TOP_VALUES)
    shares = [*(top.to_numpy() / n).tolist(), float((~text.isin(top.index)).sum() / n), float(missing.mean())]
    return ColumnBaseline(name, "text", values=[str(v) for v in top.index], shares=shares, rows=n)


def baseline_of(frame: pd.DataFrame, features: list[str], prediction: pd.Series | None,
                prediction_rows: str) -> MonitoringBaseline:
    columns = [b for name in features if (b := column_baseline(name, frame[name])) is not None]
    predicted = column_baseline("prediction", prediction.reset_index(drop=True)) if prediction is not None else None
    return MonitoringBaseline(columns, predicted, len(frame), prediction_rows)


# --- counting in the warehouse ---------------------------------------------------------------------------
def _aggregates(column: str, baseline: ColumnBaseline) -> tuple[list[str], list[Any]]:
    """SELECT expressions (and their bound values) whose results give the column's bin counts."""
    c = quote_ident(column)
    expressions = [f"count_if({c} IS NULL)"]
    params: list[float | str] = []
    if baseline.kind == "numeric":
        for edge in baseline.edges:  # cumulative: rows below each edge
            expressions.append(f"count_if({c} < ?)")
            params.append(float(edge))
        expressions.append(f"avg(CAST({c} AS DOUBLE))")
    else:
        for value in baseline.values:
            expressions.append(f"count_if(CAST({c} AS VARCHAR) = ?)")
            params.append(value)
    return expressions, params


def _shares(baseline: ColumnBaseline, results: list[Any], rows: int) -> tuple[list[float], float | None]:
    missing = int(results[0] or 0)
    if baseline.kind == "numeric":
        below = [int(v or 0) for v in results[1:1 + len(baseline.edges)]]
        present = rows - missing
        counts = np.diff([0, *below, present])
        mean = results[1 + len(baseline.edges)]
        return [*(counts / max(rows, 1)).tolist(), missing / max(rows, 1)], (float(mean) if mean is not None else None)
    matched = [int(v or 0) for v in results[1:1 + len(baseline.values)]]
    other = rows - missing - sum(matched)
    return [*(np.asarray(matched) / max(rows, 1)).tolist(), other / max(rows, 1), missing / max(rows, 1)], None


def psi(actual: list[float], expected: list[float]) -> float:
    a = np.clip(np.asarray(actual, dtype=float), SMOOTHING, None)
    e = np.clip(np.asarray(expected, dtype=float), SMOOTHING, None)
    a, e = a / a.sum(), e / e.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(actual: list[float], expected: list[float]) -> float:
    """Jensen–Shannon distance (base 2, between 0 and 1)."""
    from scipy.spatial.distance import jensenshannon

    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if a.sum() <= 0 or e.sum() <= 0:
        return 0.0
    return float(jensenshannon(a, e, base=2))


def band(value: float) -> str:
    return "alert" if value > PSI_ALERT else "watch" if value >= PSI_WATCH else "stable"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    psi: float  # POPULATION_STABILITY_INDEX
    jensen_shannon: float  # JENSEN_SHANNON
    band: str
    labels: list[str]
    shares: list[float]
    baseline_shares: list[float]
    mean: float | None = None
    baseline_mean: float | None = None

    @property
    def difference_of_means(self) -> float | None:  # DIFFERENCE_OF_MEANS
        return None if self.mean is None or self.baseline_mean is None else self.mean - self.baseline_mean

    @property
    def missing_share(self) -> float:
        return self.shares[-1]

    @property
    def biggest_move(self) -> tuple[str, float, float]:
        """The bin whose share moved most: (label, share now, share at training)."""
        i = int(np.argmax(np.abs(np.asarray(self.shares) - np.asarray(self.baseline_shares))))
        return self.labels[i], self.shares[i], self.baseline_shares[i]


@dataclass(frozen=True)
class DriftReport:
    rows: int
    baseline_rows: int
    columns: list[ColumnDrift]
    prediction: ColumnDrift | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DriftReport:
        prediction = data.get("prediction")
        return DriftReport(int(data["rows"]), int(data["baseline_rows"]), [ColumnDrift(**c) for c in data["columns"]],
                           ColumnDrift(**prediction) if prediction else None)


def drift_report(warehouse: Warehouse, table: TableRef, baseline: MonitoringBaseline,
                 prediction_column: str | None, *, where: tuple[str, list[Any]] | None = None) -> DriftReport:
    """Count `table`'s rows (those matching `where`, e.g. one scoring run's) into the baseline's bins in one
    statement, and compare."""
    present = {c.name for c in warehouse.describe(table)}
    pairs = [(c.column, c) for c in baseline.columns if c.column in present]
    if baseline.prediction is not None and prediction_column in present:
        pairs.append((prediction_column, baseline.prediction))
    expressions, params, spans = ["count(*)"], [], []
    for column, column_baseline_ in pairs:
        sql, values = _aggregates(column, column_baseline_)
        spans.append((len(expressions), len(sql)))
        expressions += sql
        params += values
    statement = f"SELECT {', '.join(expressions)} FROM {warehouse.qualify(table)}"
    if where is not None:
        statement += f" WHERE {where[0]}"
        params += where[1]
    row = warehouse.query(statement, params).iloc[0].tolist()
    rows = int(row[0] or 0)
    drifts = []
    for (_, column_baseline_), (start, width) in zip(pairs, spans, strict=True):
        shares, mean = _shares(column_baseline_, row[start:start + width], rows)
        value = psi(shares, column_baseline_.shares)
        drifts.append(ColumnDrift(column_baseline_.column, value, jensen_shannon(shares, column_baseline_.shares),
                                  band(value), column_baseline_.labels, shares, column_baseline_.shares, mean,
                                  column_baseline_.mean))
    is_prediction = baseline.prediction is not None and prediction_column in present
    return DriftReport(rows, baseline.rows, drifts[:-1] if is_prediction else drifts,
                       drifts[-1] if is_prediction else None)


# --- in words --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftAlert:
    column: str
    band: str  # "watch" or "alert"
    importance_rank: int | None  # 1 = the model's strongest driver; None: the prediction itself
    text: str


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def drift_alerts(report: DriftReport, importance_order: list[str]) -> list[DriftAlert]:
    """Columns (and the prediction) that moved, in words, ranked by what matters: the prediction first, then
    moved inputs by how strongly the model relies on them."""
    rank = {name: i + 1 for i, name in enumerate(importance_order)}
    alerts = []
    for drift in [*([report.prediction] if report.prediction else []), *report.columns]:
        if drift.band == "stable":
            continue
        label, now_share, then_share = drift.biggest_move
        moved = f"now has {now_share:.0%} {label!r} against {then_share:.0%} in training"
        if drift.column == "prediction" and drift is report.prediction:
            text = f"The predictions have moved: {moved} (PSI {drift.psi:.2f})."
            alerts.append(DriftAlert(drift.column, drift.band, None, text))
            continue
        place = rank.get(drift.column)
        role = ("the model's strongest driver has moved" if place == 1 else
                f"its {_ordinal(place)} strongest input" if place else "an input the model barely uses")
        alerts.append(DriftAlert(drift.column, drift.band, place,
                                 f"{drift.column!r} {moved}: {role} (PSI {drift.psi:.2f})."))
    return sorted(alerts, key=lambda a: (a.importance_rank is not None, a.importance_rank or 0,
                                         a.band != "alert"))
