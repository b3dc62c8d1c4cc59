"""Decide what kind of prediction a target calls for, and which columns make sensible features."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from backend.errors import EmptyTableError, InvalidTargetError
from backend.warehouse.base import ColumnInfo, ColumnStats, column_kind, is_integer_type

# An integer target with at most this many distinct values reads as classes (ratings, grades, codes).
MAX_CLASSES_FOR_INTEGER_TARGET = 10
# Beyond this many classes a classifier is rarely what the user wants, and probabilities get thin.
MAX_CLASSES = 100


class Task(enum.StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    FORECAST = "forecast"  # future values of a number over time, per series

    @property
    def label(self) -> str:
        return {"binary": "Binary classification (two outcomes)",
                "multiclass": "Multiclass classification (several categories)",
                "regression": "Regression (a number)",
                "forecast": "Forecast (the next periods of a number over time)"}[self.value]

    @property
    def is_classification(self) -> bool:
        return self in (Task.BINARY, Task.MULTICLASS)


@dataclass(frozen=True)
class TargetSummary:
    """What Flurry learned about a candidate target column."""

    column: str
    detected_task: Task
    rows: int
    null_rows: int
    distinct: int

    @property
    def usable_rows(self) -> int:
        return self.rows - self.null_rows


@dataclass(frozen=True)
class FeatureChoice:
    name: str
    sql_type: str
    include: bool
    reason: str


def _stats_for(column: str, stats: list[ColumnStats]) -> ColumnStats:
    for s in stats:
        if s.name == column:
            return s
    raise InvalidTargetError(f"The table has no column named {column!r}.", hint="Pick another target.")


def summarize_target(column: ColumnInfo, stats: list[ColumnStats], rows: int) -> TargetSummary:
    """Detect the task for `column`. Raises EmptyTableError / InvalidTargetError when it cannot be a target."""
    if rows == 0:
        raise EmptyTableError("The table has no rows, so there is nothing to learn from.",
                              hint="Load data into it, or pick another table on the Data step.")
    s = _stats_for(column.name, stats)
    if s.non_null == 0:
        raise InvalidTargetError(f"The column {column.name!r} is empty (every value is missing).",
                                 hint="Pick a column that has values to predict.")
    if s.distinct < 2:
        raise InvalidTargetError(
            f"The column {column.name!r} has the same value in every row, so there is nothing to predict.",
            hint="Pick a column whose values vary.")
    kind = column_kind(column.sql_type)
    if kind not in ("numeric", "text", "boolean"):
        raise InvalidTargetError(
            f"The column {column.name!r} has type {column.sql_type}, which Flurry cannot predict.",
            hint="Pick a number, text or yes/no column.")
    if s.distinct == 2:
        task = Task.BINARY
    elif kind == "numeric" and not (is_integer_type(column.sql_type) and s.distinct <= MAX_CLASSES_FOR_INTEGER_TARGET):
        task = Task.REGRESSION
    else:
        task = Task.MULTICLASS
    return TargetSummary(column=column.name, detected_task=task, rows=rows, null_rows=rows - s.non_null,
                         distinct=s.distinct)


def check_task_override(summary: TargetSummary, column: ColumnInfo, task: Task) -> None:
    """Raise InvalidTargetError when the user's chosen task cannot work for this target."""
    if task is Task.FORECAST and column_kind(column.sql_type) != "numeric":
        raise InvalidTargetError(f"A forecast needs a numeric target, and {column.name!r} is {column.sql_type}.",
                                 hint="Pick a number to forecast (sales, demand, load), or a classification task.")
    if task is Task.REGRESSION and column_kind(column.sql_type) != "numeric":
        raise InvalidTargetError(f"Regression needs a numeric target, and {column.name!r} is {column.sql_type}.",
                                 hint="Choose a classification task instead.")
    if task is Task.BINARY and summary.distinct != 2:
        raise InvalidTargetError(
            f"Binary classification needs exactly two outcomes; {column.name!r} has {summary.distinct}.",
            hint="Choose multiclass classification or regression.")
    if task is Task.MULTICLASS and summary.distinct > MAX_CLASSES:
        raise InvalidTargetError(
            f"{column.name!r} has {summary.distinct:,} different values: too many to treat as categories.",
            hint="Choose regression for a number, or pick another target.")


def suggest_features(columns: list[ColumnInfo], stats: list[ColumnStats], rows: int, target: str) -> list[FeatureChoice]:
    """Every column except the target, each marked included or not with the reason shown to the user."""
    by_name = {s.name: s for s in stats}
    choices = []
    for col in columns:
        if col.name == target:
            continue
        s = by_name.get(col.name)
        kind = column_kind(col.sql_type)
        include, reason = True, ""
        if kind == "other":
            include, reason = False, f"type {col.sql_type} is not supported yet"
        elif s is not None and s.distinct <= 1:
            include, reason = False, "constant: the same value (or empty) in every row"
        elif (s is not None and rows > 1 and s.distinct == rows and s.non_null == rows
              and (kind == "text" or is_integer_type(col.sql_type))):
            include, reason = False, "ID-like: a different value in every row, so it cannot generalise"
        choices.append(FeatureChoice(name=col.name, sql_type=col.sql_type, include=include, reason=reason))
    return choices
