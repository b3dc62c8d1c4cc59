"""Realised quality: did the predictions come true? The user names a table where actual outcomes arrive, its
join key and its outcome column; Flurry joins it to the scored table in the warehouse, per scoring run, and
reports the realised metric beside the holdout figure. Only the aggregates leave the warehouse. Metric names
are those of Snowflake's model monitors (ACCURACY, PRECISION, RECALL, F1_SCORE, MAE, RMSE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.errors import DeploymentError
from backend.identifiers import quote_ident
from backend.registry import Registry, next_event_seq, now
from backend.warehouse.base import TableRef, Warehouse


@dataclass(frozen=True)
class OutcomeSource:
    model_key: str
    table: TableRef
    key_column: str
    outcome_column: str
    set_at: datetime


@dataclass(frozen=True)
class RealisedQuality:
    scored_at: datetime  # the scoring run (its rows' scored_at)
    matched: int  # scored rows whose outcome has arrived
    metrics: dict[str, float]


def set_outcome_source(warehouse: Warehouse, registry: Registry, model_key: str, table: TableRef, key_column: str,
                       outcome_column: str) -> OutcomeSource:
    """Record where a model's actual outcomes arrive. Raises TableNotFoundError / DeploymentError for a table
    or column that is not there."""
    columns = {c.name for c in warehouse.describe(table)}
    missing = [c for c in (key_column, outcome_column) if c not in columns]
    if missing:
        raise DeploymentError(f"The table {table} has no column {missing[0]!r}.",
                              hint="Pick the column that identifies a row and the one holding what happened.")
    if key_column == outcome_column:
        raise DeploymentError("The key and the outcome must be two different columns.")
    registry.wh.execute(f"INSERT INTO {registry.t('outcome_sources')} VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [model_key, next_event_seq(), table.schema, table.name, key_column, outcome_column, now()])
    source = outcome_source(registry, model_key)
    assert source is not None
    return source


def outcome_source(registry: Registry, model_key: str) -> OutcomeSource | None:
    frame = registry._query(f"SELECT * FROM {registry.t('outcome_sources')} WHERE model_key = ? ORDER BY seq DESC "
                            "LIMIT 1", [model_key])
    if frame.empty:
        return None
    row = frame.iloc[0]
    return OutcomeSource(model_key, TableRef(row["source_schema"], row["source_table"]), str(row["key_column"]),
                         str(row["outcome_column"]), row["set_at"])


def realised_quality(warehouse: Warehouse, scored: TableRef, source: OutcomeSource, *, task: str,
                     prediction_column: str, scored_at_column: str, positive: Any = None) -> list[RealisedQuality]:
    """Per scoring run in `scored`, the metric its predictions reached on the outcomes that have arrived."""
    scored_columns = {c.name for c in warehouse.describe(scored)}
    if source.key_column not in scored_columns:
        raise DeploymentError(f"The scored table {scored} has no column {source.key_column!r} to match outcomes by.",
                              hint="Score a table that carries the key column (it is copied into the scores).")
    s, o = "s", "o"
    predicted = f"{s}.{quote_ident(prediction_column)}"
    actual = f"{o}.{quote_ident(source.outcome_column)}"
    params: list[Any] = []
    if task == "regression":
        measures = [f"avg(abs(CAST({predicted} AS DOUBLE) - CAST({actual} AS DOUBLE))) AS mae",
                    f"sqrt(avg(power(CAST({predicted} AS DOUBLE) - CAST({actual} AS DOUBLE), 2))) AS rmse"]
    else:
        same = f"CAST({predicted} AS VARCHAR) = CAST({actual} AS VARCHAR)"
        measures = [f"avg(CASE WHEN {same} THEN 1.0 ELSE 0.0 END) AS accuracy"]
        if task == "binary" and positive is not None:
            is_pos_pred, is_pos_true = f"CAST({predicted} AS VARCHAR) = ?", f"CAST({actual} AS VARCHAR) = ?"
            measures += [f"count_if({is_pos_pred} AND {is_pos_true}) AS tp",
                         f"count_if({is_pos_pred} AND NOT ({is_pos_true})) AS fp",
                         f"count_if(NOT ({is_pos_pred}) AND {is_pos_true}) AS fn"]
            params += [str(positive)] * 6
    run = f"{s}.{quote_ident(scored_at_column)}"
    statement = (f"SELECT {run} AS scored_at, count(*) AS matched, {', '.join(measures)} "
                 f"FROM {warehouse.qualify(scored)} {s} JOIN {warehouse.qualify(source.table)} {o} "
                 f"ON CAST({s}.{quote_ident(source.key_column)} AS VARCHAR) = "
                 f"CAST({o}.{quote_ident(source.key_column)} AS VARCHAR) "
                 f"WHERE {actual} IS NOT NULL GROUP BY {run} ORDER BY {run}")
    frame = warehouse.query(statement, params)
    frame.columns = [str(c).lower() for c in frame.columns]
    return [RealisedQuality(row["scored_at"], int(row["matched"]), _metrics(task, row)) for _, row in frame.iterrows()]


def _metrics(task: str, row: Any) -> dict[str, float]:
    if task == "regression":
        return {"MAE": float(row["mae"]), "RMSE": float(row["rmse"])}
    metrics = {"ACCURACY": float(row["accuracy"])}
    if "tp" in row:
        tp, fp, fn = float(row["tp"]), float(row["fp"]), float(row["fn"])
        precision = tp / (tp + fp) if tp + fp else math.nan
        recall = tp / (tp + fn) if tp + fn else math.nan
        metrics |= {"PRECISION": precision, "RECALL": recall,
                    "F1_SCORE": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else math.nan}
    return metrics
