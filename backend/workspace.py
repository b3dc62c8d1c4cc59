"""A workspace: one open warehouse with Flurry's registry, jobs and deployments ready to use.

Opening one migrates the FLURRY schema, seeds the demo tables (embedded warehouse only), restores deployed
SQL functions on this connection and settles runs left RUNNING by a previous app process.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from backend.checks import (
    LEAKAGE_SAMPLE_ROWS,
    MIN_CLASS_ROWS,
    Finding,
    column_findings,
    leakage_findings,
    near_duplicate_findings,
    target_findings,
)
from backend.config import (
    WarehouseConfig,
    allowed_schemas_setting,
    data_dir,
    max_concurrent_jobs,
    training_location,
    training_warehouse,
)
from backend.demo_data import seed_demo_tables
from backend.deploy import restore_deployments
from backend.deployed_model import load_bundle
from backend.errors import (
    ConfigurationError,
    DeploymentError,
    InvalidTargetError,
    TableNotFoundError,
    TrainingFailedError,
)
from backend.evaluation.rows import RowExplanation, edited_row, explain_row
from backend.forecast_workflow import InWarehouseScheduler, schedule_forecast
from backend.model_catalog import Catalog
from backend.model_health import refuse_broken_deployments
from backend.profiling import TableProfile, column_stats
from backend.reasons import explain_function_name
from backend.registry import Registry
from backend.scoring_jobs import ScoringJobs
from backend.task_detection import (
    MAX_CLASSES,
    FeatureChoice,
    TargetSummary,
    Task,
    suggest_features,
    summarize_target,
)
from backend.training.config import TrainConfig, rows_cap
from backend.training.jobs import JobManager
from backend.warehouse import open_warehouse
from backend.warehouse.allow_list import AllowList, guard
from backend.warehouse.base import ScheduledScoring, TableRef, Warehouse, column_kind
from backend.warehouse.snowflake_session import ACTIVE

if TYPE_CHECKING:  # imported where used: APScheduler is for local workers, not for the app hosted in Snowflake
    from backend.schedules import Schedules
    from backend.supervisor import Supervisor

logger = logging.getLogger(__name__)

# Counting exact duplicate rows hashes every column of every row; past this size it is skipped (and said so).
DUPLICATE_CHECK_MAX_ROWS = 5_000_000
# How often the supervisor re-checks deployed models' artifacts against their checksums, looks for batch
# scores to run, and reads the stored schedules (a schedule made in this process is read at once).
INTEGRITY_CHECK_EVERY_S = 60.0
SCORING_CHECK_EVERY_S = 1.0
SCHEDULE_SYNC_EVERY_S = 30.0
# Columns the model does not use kept beside the holdout rows (keys to find a row by, segments to judge by).
MAX_EXTRA_COLUMNS = 10


@dataclass(frozen=True)
class OutcomeChoices:
    values: list[str]  # smaller class first
    rows: list[int]

    @property
    def default(self) -> str | None:
        return self.values[0] if self.values else None


@dataclass
class Workspace:
    config: WarehouseConfig
    warehouse: Warehouse
    registry: Registry
    jobs: JobManager
    supervisor: Supervisor | None = None  # advances local training jobs with no page open

    scoring: ScoringJobs | None = None  # batch scores as jobs (set by open_workspace)
    allow: AllowList | None = None  # the schemas this app may use (None: all)
    forecast_scheduler: InWarehouseScheduler | None = None  # Snowflake Tasks re-forecasting (set by open_workspace)

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.registry)

    @property
    def schedules(self) -> Schedules:
        """Scheduled batch scores on the embedded warehouse (Snowflake schedules are Tasks)."""
        from backend.schedules import Schedules

        assert self.scoring is not None
        return Schedules(self.warehouse, self.registry, self.scoring)

    def target_summary(self, table: TableRef, target: str, profile: TableProfile | None = None
                       ) -> tuple[TargetSummary, list[FeatureChoice]]:
        """Detect the task for `target` and suggest features, from `profile` when the caller already has it.
        Raises EmptyTableError / InvalidTargetError / TableNotFoundError."""
        columns = self.warehouse.describe(table)
        by_name = {c.name: c for c in columns}
        if target not in by_name:
            raise TableNotFoundError(f"The table {table} has no column {target!r} any more.",
                                     hint="Pick the target again.")
        profile = profile or self.warehouse.profile(table)
        stats = column_stats(profile)
        summary = summarize_target(by_name[target], stats, profile.rows)
        return summary, suggest_features(columns, stats, profile.rows, target)

    def checks(self, table: TableRef, target: str, task: Task, features: list[str],
               profile: TableProfile | None = None) -> list[Finding]:
        """Every data check for predicting `target` from `features` (see backend.checks)."""
        profile = profile or self.warehouse.profile(table)
        counts = None
        if task.is_classification:
            counts = self.warehouse.value_counts(table, target, limit=MAX_CLASSES + 1)
        duplicates = self.warehouse.duplicate_rows(table) if profile.rows <= DUPLICATE_CHECK_MAX_ROWS else None
        sample = self.warehouse.sample(table, [*features, target], LEAKAGE_SAMPLE_ROWS)
        return [*target_findings(profile, target, task, counts, duplicates),
                *leakage_findings(sample, target, task, features),
                *near_duplicate_findings(sample, features),
                *column_findings(profile, target)]

    def outcome_choices(self, table: TableRef, target: str) -> OutcomeChoices:
        """The two values of a yes/no target as text, with their row counts, the smaller first (the default
        outcome of interest: the event users look for is usually the rarer one)."""
        counts = self.warehouse.value_counts(table, target, limit=MAX_CLASSES + 1)
        pairs = sorted(((str(v), int(n)) for v, n in zip(counts["value"], counts["count"], strict=True)),
                       key=lambda pair: (pair[1], pair[0]))
        return OutcomeChoices([v for v, _ in pairs], [n for _, n in pairs])

    def rare_classes(self, table: TableRef, target: str) -> list[str]:
        """Target values with too few rows to learn or validate; their rows are left out of training.
        Raises InvalidTargetError when fewer than two classes would remain."""
        counts = self.warehouse.value_counts(table, target, limit=MAX_CLASSES + 1)
        rare = [str(v) for v, n in zip(counts["value"], counts["count"], strict=True) if n < MIN_CLASS_ROWS]
        if len(counts) - len(rare) < 2:
            raise InvalidTargetError(
                f"{target!r} has fewer than two classes with at least {MIN_CLASS_ROWS} rows, so there is nothing "
                "a model could learn to tell apart.", hint="Pick another target, or add rows to the small classes.")
        return rare

    def train_config(self, table: TableRef, target: str, task: Task, features: list[str], metric: str,
                     time_budget_s: int, *, casts: tuple[str, ...] = (), deduplicate: bool = False,
                     date_casts: tuple[str, ...] = (),
                     **advanced: Any) -> TrainConfig:
        """A training config for the table as it is now. Raises TableNotFoundError when the table or a chosen
        column has gone, InvalidTrainingOptionError for options out of range, InvalidTargetError when the
        classes cannot be learned. `advanced` takes TrainConfig's expert options (estimators, validation,
        cv_folds, seed, class_weight)."""
        types = {c.name: c.sql_type for c in self.warehouse.describe(table)}
        missing = [c for c in [target, *features] if c not in types]
        if missing:
            raise TableNotFoundError(
                f"The table {table} no longer has the column(s) {', '.join(map(repr, missing))}.",
                hint="The table changed since you picked it; go back to the Target step.")
        # not beside a distinct-rows sample: a key column would make every row distinct
        extra = () if deduplicate else tuple(c for c in types if c not in features and c != target
                                             and column_kind(types[c]) != "other")[:MAX_EXTRA_COLUMNS]
        config = TrainConfig(table=table, target=target, target_sql_type=types[target], task=task,
                             features=tuple((f, types[f]) for f in features), metric=metric,
                             time_budget_s=int(time_budget_s), casts=tuple(c for c in casts if c in features),
                             date_casts=tuple(c for c in date_casts if c in features),
                             deduplicate=deduplicate, max_rows=rows_cap(len(features) + 1 + len(extra)),
                             extra_columns=extra, **advanced)
        config.validate()
        if task.is_classification:
            config = replace(config, drop_classes=tuple(self.rare_classes(table, target)))
        if config.positive_class is not None and config.positive_class not in self.outcome_choices(table, target).values:
            raise InvalidTargetError(f"{target!r} has no value {config.positive_class!r} any more.",
                                     hint="Choose the outcome of interest again on the Target step.")
        return config

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a finished run, its model and the SQL functions deployed from it; return those names.
        Raises TrainingFailedError for a run still queued or training (cancel it first)."""
        if not self.registry.get_run(run_id).state.is_final:
            raise TrainingFailedError("This run is still training.", hint="Cancel it first, then delete it.")
        version = self.registry.model_for_run(run_id)
        if version is not None and version.model_key is not None:
            production = self.catalog.production(version.model_key)
            if production is not None and production.model_id == version.model_id:
                raise DeploymentError(f"{version.label} of {version.name} is in production.",
                                      hint="Promote another version (or roll back) on the Deploy step first.")
        functions = self.registry.delete_run(run_id)
        for name in functions:
            for companion in (name, f"{name}_proba", explain_function_name(name)):
                self.warehouse.drop_function(companion)
        return functions

    def holdout_frame(self, model_id: str) -> pd.DataFrame:
        """The stored holdout rows (the first HOLDOUT_SAMPLE_ROWS of the holdout, all exported columns)."""
        version = self.registry.get_model_version(model_id)
        content = self.registry.get_artifact(version.model_id, "holdout")
        return pd.read_parquet(io.BytesIO(content))

    def explain_holdout_row(self, model_id: str, position: int, edits: dict[str, Any] | None = None
                            ) -> RowExplanation:
        """Prediction and SHAP explanation of one stored holdout row, with `edits` applied to its inputs
        (what-if). Raises InvalidTargetError for a position out of range or an edit the model cannot take."""
        frame = self.holdout_frame(model_id)
        if not 0 <= position < len(frame):
            raise InvalidTargetError(f"There is no holdout row {position}; the stored rows are 0 to {len(frame) - 1}.")
        bundle = load_bundle(self.registry, model_id)
        row = frame.iloc[[position]]
        if edits:
            row = edited_row(bundle, row, edits)
        return explain_row(bundle, row, frame)

    def schedule_forecast(self, deployment: str, source: TableRef, output: TableRef, schedule: str, *,
                          append: bool) -> ScheduledScoring:
        """Re-forecast `deployment` into `output` on a schedule the warehouse itself runs (forecast_workflow)."""
        return schedule_forecast(self.warehouse, self.registry, deployment, source, output, schedule, append=append,
                                 scheduler=self.forecast_scheduler)

    def output_schema(self, purpose: str, source: TableRef | None = None) -> str:
        """The schema the wizard offers to write into for `purpose` ("scores", "forecasts", "uploads"): named as the
        warehouse folds a plain name (SCORES on Snowflake, where a lower-case name would be a quoted one nobody
        types), and one the allow-list lets the app use."""
        preferred = self.plain_name(purpose)
        source_schema = source.schema if source is not None else None
        return self.allow.output_schema(preferred, source_schema) if self.allow is not None else preferred

    def plain_name(self, name: str) -> str:
        """A name Flurry proposes, as the warehouse folds unquoted names: upper case on Snowflake (so `SELECT *
        FROM scores.churn_scored` finds it), as written on DuckDB."""
        return name.upper() if self.config.kind == "snowflake" else name

    def start_supervisor(self) -> None:
        """Supervise a workspace opened without (what `open_workspace(supervise=True)` does at once)."""
        if self.supervisor is None or not self.supervisor.running:
            _supervise(self)

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.warehouse.close()


def open_workspace(config: WarehouseConfig, *, seed_demo: bool = True, allowed_schemas: str | None = None,
                   supervise: bool = False) -> Workspace:
    """Open and prepare a workspace. `allowed_schemas` defaults to the configured allow-list. With `supervise`
    (the app does this), a Supervisor collects and starts local training runs in the background; without it,
    reading a run's progress advances it. Raises WarehouseLockedError / ConfigurationError."""
    allow = allowed_schemas if allowed_schemas is not None else allowed_schemas_setting()
    hosted = config.kind == "snowflake" and config.location == ACTIVE
    if hosted and not allow.strip():
        # hosted in the account, the app runs with its owner's rights: viewers must be fenced in first
        raise ConfigurationError(
            "This app runs inside Snowflake with its owner's rights, and no schemas are allowed yet.",
            hint="List the schemas viewers may use in flurry.toml ([access] allowed_schemas = [\"SALES\", "
                 "\"DEMO_*\"]) and deploy again.")
    if hosted and training_location(config.kind) == "local":
        # the warehouse runtime reads 32 MB per query and has no room for a worker beside the app
        raise ConfigurationError("An app hosted in Snowflake trains on the warehouse, not beside the app.",
                                 hint="Remove `where = \"local\"` from [training] in flurry.toml and deploy again.")
    raw = open_warehouse(config)
    registry = Registry(raw)
    registry.migrate()
    if seed_demo and raw.capabilities.local_worker:
        created = seed_demo_tables(raw, registry)
        if created:
            logger.info("seeded demo tables: %s", ", ".join(map(str, created)))
    # Everything past this point (pages, jobs, scoring) sees only the allowed schemas.
    warehouse = guard(raw, AllowList.parse(allow))
    jobs_root = _jobs_root_for(config)
    in_warehouse = config.kind == "snowflake" and training_location(config.kind) == "warehouse"
    forecast_scheduler: InWarehouseScheduler | None = None
    if config.kind == "snowflake":
        # imported for a Snowflake workspace only: the embedded default starts without loading Snowpark
        from backend.procedure_jobs import ProcedureJobManager
        from backend.snowflake_procedure import schedule_forecast_task

        forecast_scheduler = schedule_forecast_task
    if in_warehouse:
        jobs: JobManager = ProcedureJobManager(warehouse, registry, jobs_root, max_concurrent=max_concurrent_jobs(),
                                               training_warehouse=training_warehouse())
    else:
        jobs = JobManager(warehouse, registry, jobs_root, max_concurrent=max_concurrent_jobs())
    jobs.recover()
    Catalog(registry).backfill()
    restore_deployments(warehouse, registry)
    scoring = ScoringJobs(warehouse, registry)
    if raw.capabilities.local_worker:  # this process owns the database file: nothing else can be scoring
        scoring.recover()
        for table in raw.drop_staging_tables():
            logger.info("dropped %s, left by a score or forecast that was stopped while writing", table)
    workspace = Workspace(config=config, warehouse=warehouse, registry=registry, jobs=jobs, scoring=scoring,
                          forecast_scheduler=forecast_scheduler, allow=AllowList.parse(allow))
    # Only where this process owns the warehouse (the embedded file): on Snowflake the procedure records its own
    # result and Tasks run schedules, and a tick every second would queue behind the pages' own queries
    if supervise and raw.capabilities.local_worker and not in_warehouse:
        _supervise(workspace)
    return workspace


def _supervise(ws: Workspace) -> None:
    """Start the workspace's supervisor: training jobs, batch scores, schedules and artifact checks."""
    from backend.supervisor import Supervisor

    assert ws.scoring is not None
    supervisor = Supervisor(ws.jobs)
    refusing: set[str] = set()
    supervisor.every(INTEGRITY_CHECK_EVERY_S, lambda: refuse_broken_deployments(ws.warehouse, ws.registry, refusing),
                     "flurry.integrity")
    supervisor.every(SCORING_CHECK_EVERY_S, ws.scoring.advance, "flurry.scoring")
    if not ws.warehouse.capabilities.staged_functions:  # Snowflake re-scores with Tasks
        supervisor.every(SCHEDULE_SYNC_EVERY_S, lambda: ws.schedules.sync(supervisor.scheduler), "flurry.schedules")
    supervisor.start()
    ws.supervisor = supervisor


def _jobs_root_for(config: WarehouseConfig) -> Path:
    if config.kind != "duckdb":
        return data_dir() / "jobs"
    # Beside the database file, so a temporary warehouse keeps its temporary job files with it.
    db = Path(config.location)
    return db.with_name(db.name + ".jobs")
