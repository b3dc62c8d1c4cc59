"""Drift reports kept in the warehouse: one per batch score, computed there right after it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from backend.deploy import ScoringResult
from backend.monitoring import DriftReport, drift_report
from backend.registry import Registry, now
from backend.warehouse.base import TableRef, Warehouse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredDrift:
    scoring_id: str
    model_id: str
    computed_at: datetime
    table: TableRef
    report: DriftReport


def record_drift(warehouse: Warehouse, registry: Registry, scoring_id: str, model_id: str,
                 result: ScoringResult) -> StoredDrift | None:
    """Measure the rows one score wrote against the version's baseline and store the report (None when the
    version has no baseline: trained before monitoring existed)."""
    version = registry.get_model_version(model_id)
    if version.baseline is None:
        return None
    where = None
    if result.scored_at_column and result.scored_at is not None:  # a history table: this run's rows only
        where = (f'"{result.scored_at_column}" = ?', [result.scored_at.to_pydatetime()])
    # the prediction's baseline: a yes/no model's probability of the outcome, else the predicted class or value
    column = result.probability_column if version.task == "binary" and result.probability_column else \
        result.prediction_column
    report = drift_report(warehouse, result.table, version.baseline, column, where=where)
    stamp = now()
    registry.wh.execute(f"INSERT INTO {registry.t('drift_reports')} VALUES (?, ?, ?, ?, ?, ?)",
                        [scoring_id, model_id, stamp, result.table.schema, result.table.name,
                         json.dumps(report.to_dict())])
    return StoredDrift(scoring_id, model_id, stamp, result.table, report)


def drift_history(registry: Registry, model_id: str, limit: int = 50) -> list[StoredDrift]:
    """The model version's drift reports, newest first."""
    frame = registry._query(f"SELECT * FROM {registry.t('drift_reports')} WHERE model_id = ? ORDER BY computed_at "
                            f"DESC LIMIT {int(limit)}", [model_id])
    return [StoredDrift(str(r.scoring_id), str(r.model_id), r.computed_at, TableRef(r.scored_schema, r.scored_table),
                        DriftReport.from_dict(json.loads(r.report_json))) for r in frame.itertuples()]
