"""The registry's records — runs and their states, model versions, notes, deployments, run events — and how a
stored row becomes one. Plain data: the Registry (backend.registry) reads and writes them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.evaluation.report import HoldoutReport
from backend.monitoring import MonitoringBaseline
from backend.task_detection import Task
from backend.version_records import (
    Feature,
    LeaderboardEntry,
    VersionMetrics,
    features_from_dicts,
    leaderboard_from_dicts,
)
from backend.warehouse.base import TableRef


class RunState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"

    @property
    def is_final(self) -> bool:
        return self not in TRANSITIONS

    def may_become(self, state: RunState) -> bool:
        return state in TRANSITIONS.get(self, frozenset())


# Every move a run can make, in one place. A run starts QUEUED; a stopped search that refits its best trial
# goes RUNNING → RUNNING; final states move nowhere, so a late outcome (a worker collected after its run was
# cancelled, a procedure reporting after the app gave up on it) can never overwrite the one recorded.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED}),
    RunState.RUNNING: frozenset({RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED,
                                 RunState.INTERRUPTED}),
}


@dataclass(frozen=True)
class Run:
    run_id: str
    state: RunState
    table: TableRef
    target: str
    task: Task
    metric: str
    time_budget: int
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    worker_pid: int | None
    job_dir: str
    message: str
    rows_used: int | None
    rows_dropped: int | None
    rows_eligible: int | None = None


@dataclass(frozen=True)
class ModelVersion:
    model_id: str
    run_id: str
    created_at: datetime
    name: str
    table: TableRef
    target: str
    task: Task
    metric: str
    best_estimator: str
    features: list[Feature]
    metrics: VersionMetrics
    leaderboard: list[LeaderboardEntry]
    importance: list[dict[str, Any]]
    versions: dict[str, str]
    sha256: str
    report: HoldoutReport | None = None  # None: trained before Flurry kept holdout reports
    baseline: MonitoringBaseline | None = None  # what drift is measured against (None: trained before it existed)
    model_key: str | None = None  # the named model it is a version of (model_catalog), once numbered
    number: int | None = None  # its version number within that model

    @property
    def label(self) -> str:
        """"v3", or the id of a version not numbered yet."""
        return f"v{self.number}" if self.number is not None else self.model_id

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def has_threshold(self) -> bool:
        """Whether the version's labels come from a chosen decision threshold (binary, trained with one)."""
        return self.report is not None and self.report.default_threshold is not None


@dataclass(frozen=True)
class ModelNotes:
    """What a model is meant for and not meant for, in its owner's words (the model card)."""

    intended_use: str
    out_of_scope: str
    written_at: datetime | None


@dataclass(frozen=True)
class Deployment:
    function_name: str
    model_id: str
    created_at: datetime
    scored_table: TableRef | None
    scored_at: datetime | None
    scored_rows: int | None
    prediction_column: str | None = None  # None: scored before the names were recorded
    probability_column: str | None = None
    scored_at_column: str | None = None


@dataclass(frozen=True)
class RunEvent:
    seq: int
    at: datetime
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


def none_if_na(value: Any) -> Any:
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def run_from_row(row: Any) -> Run:
    pid = none_if_na(row["worker_pid"])
    used, dropped = none_if_na(row["rows_used"]), none_if_na(row["rows_dropped"])
    return Run(
        run_id=row["run_id"], state=RunState(row["state"]), table=TableRef(row["source_schema"], row["source_table"]),
        target=row["target"], task=Task(row["task"]), metric=row["metric"], time_budget=int(row["time_budget"]),
        config=json.loads(row["config_json"]), created_at=row["created_at"], updated_at=row["updated_at"],
        worker_pid=int(pid) if pid is not None else None, job_dir=row["job_dir"], message=row["message"] or "",
        rows_used=int(used) if used is not None else None, rows_dropped=int(dropped) if dropped is not None else None,
        rows_eligible=_int_or_none(row.get("rows_eligible")),
    )


def _int_or_none(value: Any) -> int | None:
    value = none_if_na(value)
    return None if value is None else int(value)


def version_from_row(row: Any) -> ModelVersion:
    return ModelVersion(
        model_id=row["model_id"], run_id=row["run_id"], created_at=row["created_at"], name=row["name"],
        table=TableRef(row["source_schema"], row["source_table"]), target=row["target"], task=Task(row["task"]),
        metric=row["metric"], best_estimator=row["best_estimator"],
        features=features_from_dicts(json.loads(row["features_json"])),
        metrics=VersionMetrics.from_dict(json.loads(row["metrics_json"])),
        leaderboard=leaderboard_from_dicts(json.loads(row["leaderboard_json"])),
        importance=json.loads(row["importance_json"]), versions=json.loads(row["versions_json"]),
        sha256=row["sha256"], report=_report_or_none(row.get("report_json")),
        baseline=MonitoringBaseline.from_dict(json.loads(b)) if (b := none_if_na(row.get("baseline_json"))) else None,
        model_key=none_if_na(row.get("model_key")),
        number=int(number) if (number := none_if_na(row.get("version_number"))) is not None else None,
    )


def _report_or_none(value: Any) -> HoldoutReport | None:
    value = none_if_na(value)
    return HoldoutReport.from_dict(json.loads(value)) if value else None


def deployment_from_row(row: Any) -> Deployment:
    schema, name = none_if_na(row["scored_schema"]), none_if_na(row["scored_table"])
    rows = none_if_na(row["scored_rows"])
    return Deployment(
        function_name=row["function_name"], model_id=row["model_id"], created_at=row["created_at"],
        scored_table=TableRef(schema, name) if schema and name else None,
        scored_at=none_if_na(row["scored_at"]), scored_rows=int(rows) if rows is not None else None,
        prediction_column=none_if_na(row.get("prediction_column")),
        probability_column=none_if_na(row.get("probability_column")),
        scored_at_column=none_if_na(row.get("scored_at_column")),
    )
