"""Column profiles computed in the warehouse: only aggregates come back to the app."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

HISTOGRAM_BINS = 20
TOP_VALUES = 5
# Below this many rows exact distinct counts are cheap, and they matter: "a different value in every row"
# (an ID) cannot be told from HyperLogLog's ±2% estimate.
EXACT_DISTINCT_MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class ColumnStats:
    """Aggregates computed in the warehouse for one column."""

    name: str
    non_null: int
    distinct: int


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column. `distinct` is approximate (HyperLogLog) on large tables."""

    name: str
    sql_type: str
    kind: str
    rows: int
    non_null: int
    distinct: int
    minimum: float | str | None = None
    maximum: float | str | None = None
    mean: float | None = None
    std: float | None = None
    top_values: list[tuple[str, int]] = field(default_factory=list)
    histogram: list[tuple[float, float, int]] = field(default_factory=list)  # (low, high, rows)
    numeric_text: int = 0  # text values that read as numbers (mixed-type columns)
    date_text: int = 0  # text values that read as dates or times (and not as numbers)

    @property
    def nulls(self) -> int:
        return self.rows - self.non_null

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def top_share(self) -> float:
        """Share of non-null rows holding the most frequent value (0 when unknown)."""
        if not self.top_values or not self.non_null:
            return 0.0
        return self.top_values[0][1] / self.non_null


@dataclass(frozen=True)
class TableProfile:
    rows: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def present(row: Any, key: str) -> Any:
    """`row[key]`, or None when the warehouse returned no value (NULL, NA or NaN)."""
    value = row.get(key)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def equal_width_edges(low: float, high: float, bins: int = HISTOGRAM_BINS) -> list[float]:
    """Upper bin edges for a histogram over [low, high] (the last edge is `high`)."""
    if not high > low:
        return [high]
    width = (high - low) / bins
    return [low + width * (i + 1) for i in range(bins - 1)] + [high]


def histogram_from_counts(low: float, edges: list[float], counts: dict[float, int]) -> list[tuple[float, float, int]]:
    """Turn a warehouse's {upper edge: rows} map into (low, high, rows) bins in order."""
    bins, previous = [], low
    for edge in edges:
        bins.append((previous, edge, int(counts.get(edge, 0))))
        previous = edge
    return bins


def column_stats(profile: TableProfile) -> list[ColumnStats]:
    """Non-null and distinct counts per column, as task detection reads them (from the one profile)."""
    return [ColumnStats(name=c.name, non_null=c.non_null, distinct=c.distinct) for c in profile.columns]
