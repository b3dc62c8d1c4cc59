"""Forecasting against a warehouse: what the Target step shows before training (the series as Flurry reads
them, with every finding), the run's config, and the forecast table written from a trained version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from backend.deployed_model import deployment_model
from backend.errors import DeploymentError, InvalidTargetError, TableNotFoundError
from backend.forecasting.backtest import history_needed
from backend.forecasting.bundle import FORECAST_COLUMNS, ForecastBundle
from backend.forecasting.frequency import DetectedFrequency
from backend.forecasting.series import MAX_SERIES, SERIES_KEY, SeriesFinding, SeriesSpec, prepare_series
from backend.identifiers import slugify
from backend.profiling import TableProfile
from backend.registry import ModelVersion, Registry, now
from backend.task_detection import Task
from backend.training.config import MAX_FORECAST_ROWS, TrainConfig
from backend.warehouse.base import METADATA_SCHEMA, ScheduledScoring, TableRef, Warehouse, column_kind

MODEL_VERSION_COLUMN = "model_version"
CREATED_AT_COLUMN = "created_at"
TEXT_DATE_ROWS = 50  # rows of a text column looked at to tell whether it holds dates
MIN_DATE_SHARE = 0.95
MAX_DEFAULT_HORIZON = 28
NARROW_COLUMNS = 4  # a table this narrow with a row per time reads as one series, not as examples to learn from
FORECAST_PREFIX = "flurry_forecast_"  # a forecast deployment's name (what schedules and the dashboard follow)


@dataclass(frozen=True)
class ForecastPreview:
    """The table's rows read as series, as training will read them."""

    frequency: DetectedFrequency
    series: int
    periods: int  # the longest series' history
    findings: list[SeriesFinding]
    left_out: list[str]


def time_columns(warehouse: Warehouse, table: TableRef) -> list[str]:
    """Columns a forecast can be ordered by: dates and timestamps, then text columns whose first rows read as
    dates (a time column stored as text)."""
    columns = warehouse.describe(table)
    dated = [c.name for c in columns if c.kind == "datetime"]
    text = [c for c in columns if c.kind == "text"]
    if text:
        head = warehouse.preview(table, TEXT_DATE_ROWS, text)  # at most the preview's columns
        for column in (c for c in text if c.name in head.columns):
            values = head[column.name].dropna().astype(str)
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            if len(values) and parsed.notna().mean() >= MIN_DATE_SHARE and not values.str.fullmatch(r"\d+").all():
                dated.append(column.name)
    return dated


def suggests_forecast(profile: TableProfile, target: str, dated: list[str], detected: Task) -> bool:
    """Whether the rows look like a time series of a number: the target reads as a regression, and a date
    column with at least a dozen distinct times holds about one row per time (one series) or per time and
    value of a text column (a panel: a row per store and day); one row per time only in a narrow table (a
    wide one with a row per date is more likely examples to learn from, e.g. houses and their sale dates)."""
    if detected is not Task.REGRESSION:
        return False
    series_sizes = [c.distinct for c in profile.columns if c.kind == "text" and 2 <= c.distinct <= MAX_SERIES]
    for name in dated:
        column = next((c for c in profile.columns if c.name == name), None)
        if column is None or column.kind != "datetime" or column.distinct < 12:
            continue
        per_time = profile.rows / column.distinct
        narrow = len(profile.columns) <= NARROW_COLUMNS  # one series: a time, a value and little else
        if (per_time <= 1.5 and narrow) or any(per_time / 1.5 <= size <= per_time * 1.5 for size in series_sizes):
            return True
    return False


def default_series_columns(profile: TableProfile, target: str, time_column: str) -> tuple[str, ...]:
    """Text columns that look like series ids: a few distinct values, each with a history of a dozen rows or
    more (a region, a store), never the target or the time."""
    return tuple(c.name for c in profile.columns
                 if c.kind == "text" and c.name not in (target, time_column)
                 and 2 <= c.distinct <= min(MAX_SERIES, profile.rows // 12))[:1]


def default_horizon(found: ForecastPreview) -> int:
    """A season ahead (a year of months, a week of days; at most MAX_DEFAULT_HORIZON), shortened until the
    longest series can be backtested on it; at least one period."""
    season = found.frequency.frequency.season_length
    horizon = min(max(3, season), MAX_DEFAULT_HORIZON) if season > 1 else 3
    while horizon > 1 and history_needed(horizon, season) > found.periods:
        horizon -= 1
    return horizon


def check_size(warehouse: Warehouse, table: TableRef) -> None:
    """A forecast reads every row of its table (a sample would cut holes in the series). Raises
    InvalidTargetError past MAX_FORECAST_ROWS."""
    rows = warehouse.row_count(table)
    if rows > MAX_FORECAST_ROWS:
        raise InvalidTargetError(f"{table} has {rows:,} rows; Flurry forecasts from at most {MAX_FORECAST_ROWS:,}.",
                                 hint="Aggregate it first (e.g. daily totals per store), or forecast fewer series.")


def read_rows(warehouse: Warehouse, table: TableRef, columns: list[str]) -> pd.DataFrame:
    """Every row of `columns` (a series needs all of its rows). Raises InvalidTargetError past MAX_FORECAST_ROWS."""
    check_size(warehouse, table)
    present = {c.name for c in warehouse.describe(table)}
    missing = [c for c in columns if c not in present]
    if missing:
        raise TableNotFoundError(f"The table {table} no longer has the column(s) {', '.join(map(repr, missing))}.",
                                 hint="The table changed since you picked it; go back to the Target step.")
    return warehouse.read_columns(table, list(dict.fromkeys(columns)))


def spec_columns(spec: SeriesSpec) -> list[str]:
    return list(dict.fromkeys([spec.time_column, *spec.series_columns, *spec.known_columns, spec.target]))


def preview(warehouse: Warehouse, table: TableRef, spec: SeriesSpec) -> ForecastPreview:
    """The series as training will read them. Raises InvalidTargetError naming the column and the remedy."""
    check_columns(warehouse, table, spec)
    prepared = prepare_series(read_rows(warehouse, table, spec_columns(spec)), spec)
    sizes = prepared.history.groupby(SERIES_KEY).size()
    return ForecastPreview(prepared.frequency, len(sizes), int(sizes.max()), prepared.findings, prepared.left_out)


def check_columns(warehouse: Warehouse, table: TableRef, spec: SeriesSpec) -> None:
    """The chosen columns suit a forecast. Raises InvalidTargetError naming the column."""
    kinds = {c.name: column_kind(c.sql_type) for c in warehouse.describe(table)}
    if kinds.get(spec.target) != "numeric":
        raise InvalidTargetError(f"{spec.target!r} is not a number, so it cannot be forecast.",
                                 hint="Pick a numeric column to forecast (sales, demand, load), or another kind of "
                                      "prediction.")
    if kinds.get(spec.time_column) not in ("datetime", "text"):
        raise InvalidTargetError(f"{spec.time_column!r} holds no dates or times.", hint="Pick a date column.")
    if spec.target in spec.series_columns or spec.time_column in spec.series_columns:
        raise InvalidTargetError("The target and the time column cannot also identify series.",
                                 hint="Untick them under 'One series per'.")
    bad = [c for c in spec.known_columns if kinds.get(c) not in ("numeric", "boolean")]
    if bad:
        raise InvalidTargetError(f"Known-in-advance columns must be numbers or yes/no; {', '.join(map(repr, bad))} "
                                 "is not.", hint="Leave those columns out.")


def forecast_config(warehouse: Warehouse, table: TableRef, spec: SeriesSpec, metric: str, time_budget_s: int,
                    *, seed: int = 0) -> TrainConfig:
    """The run's config. Raises InvalidTargetError / InvalidTrainingOptionError / TableNotFoundError."""
    check_columns(warehouse, table, spec)
    check_size(warehouse, table)
    types = {c.name: c.sql_type for c in warehouse.describe(table)}
    config = TrainConfig(table=table, target=spec.target, target_sql_type=types[spec.target], task=Task.FORECAST,
                         features=tuple((c, types[c]) for c in spec.known_columns), metric=metric,
                         time_budget_s=int(time_budget_s), seed=seed, max_rows=MAX_FORECAST_ROWS,
                         time_column=spec.time_column, series_columns=spec.series_columns, horizon=spec.horizon,
                         duplicates=spec.duplicates.value, gaps=spec.gaps.value, ensemble=False)
    config.validate()
    return config


def forecast_name(version: ModelVersion) -> str:
    """The name a forecast deployment goes by (schedules and the dashboard follow it): its schema, table and
    target, with a short digest of the three so that names cut short cannot meet."""
    table = version.table
    digest = hashlib.sha256(json.dumps([table.schema, table.name, version.target]).encode()).hexdigest()[:6]
    return (f"{FORECAST_PREFIX}{slugify(table.schema, max_length=12)}_{slugify(table.name, max_length=20)}_"
            f"{slugify(version.target, max_length=20)}_{digest}")


def deploy_forecast(registry: Registry, model_id: str) -> str:
    """Make the version the one its forecast deployment writes with (a later version takes the name over);
    return that name."""
    version = registry.get_model_version(model_id)
    name = forecast_name(version)
    current = next((d for d in registry.list_deployments() if d.function_name == name), None)
    if current is not None and current.model_id != model_id:
        other = registry.get_model_version(current.model_id)
        if (other.table, other.target) != (version.table, version.target):
            raise DeploymentError(f"{name} already forecasts {other.target} from {other.table}.",
                                  hint="Rename one of the tables, or retire that forecast first.")
    load_forecast_bundle(registry, model_id)  # ArtifactIntegrityError now, not at the first forecast
    registry.upsert_deployment(name, model_id)
    return name


def load_forecast_bundle(registry: Registry, model_id: str) -> ForecastBundle:
    version = registry.get_model_version(model_id)
    if version.task != Task.FORECAST.value:
        raise DeploymentError(f"{version.label} of {version.name} is not a forecast.")
    content = registry.get_artifact(model_id, "bundle", expected_sha256=version.sha256)
    return ForecastBundle.from_verified_bytes(content, version.sha256)


@dataclass(frozen=True)
class ForecastWritten:
    table: TableRef
    rows: int
    series: int
    created_at: pd.Timestamp

    @property
    def message(self) -> str:
        ahead = self.rows // max(1, self.series)
        return (f"Wrote the forecast into {self.table}: {self.rows:,} rows, {self.series:,} series × {ahead:,} "
                "periods ahead.")


def forecast_frame(warehouse: Warehouse, registry: Registry, model_id: str,
                   source: TableRef | None = None) -> pd.DataFrame:
    """The version's forecast from the newest history in `source` (default: the table it was trained on):
    series columns, period, forecast and bounds, the version and when."""
    return _forecast(warehouse, registry, model_id, source)[0]


def _forecast(warehouse: Warehouse, registry: Registry, model_id: str,
              source: TableRef | None) -> tuple[pd.DataFrame, ForecastBundle]:
    version = registry.get_model_version(model_id)
    bundle = load_forecast_bundle(registry, model_id)
    rows = read_rows(warehouse, source or version.table, bundle.input_columns)
    forecasts = bundle.forecast_rows(rows)
    return forecasts.assign(**{MODEL_VERSION_COLUMN: version.label, CREATED_AT_COLUMN: now()}), bundle


def write_forecast(warehouse: Warehouse, registry: Registry, deployment: str, source: TableRef, output: TableRef,
                   *, append: bool = False, overwrite: bool = True) -> ForecastWritten:
    """Forecast from `source`'s newest history with the deployment's version and write it into `output`
    atomically: replaced (a failure leaves the old table whole; without `overwrite` an existing table is refused),
    or, with `append`, added to it in one transaction so earlier forecasts stay beside the new one. Refuses to
    write into Flurry's own schema."""
    if (output.schema, output.name.lower()) == (source.schema, source.name.lower()):
        raise DeploymentError("The forecast cannot overwrite the history it is made from.",
                              hint="Choose a new table name.")
    if output.schema.upper() == METADATA_SCHEMA:
        raise DeploymentError(f"Flurry keeps its own records in the {METADATA_SCHEMA} schema; forecasts go elsewhere.",
                              hint="Choose another schema.")
    model_id = deployment_model(registry, deployment)
    frame, bundle = _forecast(warehouse, registry, model_id, source)
    if frame.empty:
        raise DeploymentError(f"No series in {source} has enough history to forecast.",
                              hint="Check that the table still holds the series' recent rows.")
    if not append and not overwrite and warehouse.table_exists(output):
        raise DeploymentError(f"The table {output} already exists.",
                              hint="Choose another name, replace it, or add the new forecast to it.")
    warehouse.ensure_schema(output.schema)
    if append and warehouse.table_exists(output):
        warehouse.append_table_from_batches(output, iter(pa.Table.from_pandas(frame, preserve_index=False).to_batches()))
    else:
        warehouse.write_table(output, frame, replace=True)
    registry.record_scoring(deployment, output, len(frame), (FORECAST_COLUMNS[0], None, CREATED_AT_COLUMN))
    series_columns = list(bundle.spec.series_columns)
    series = len(frame[series_columns].drop_duplicates()) if series_columns else 1
    return ForecastWritten(output, len(frame), series, frame[CREATED_AT_COLUMN].iloc[0])


# (warehouse, deployment, source, output, schedule, append=) → the Task that re-forecasts (snowflake_procedure)
InWarehouseScheduler = Callable[..., ScheduledScoring]


def schedule_forecast(warehouse: Warehouse, registry: Registry, deployment: str, source: TableRef, output: TableRef,
                      schedule: str, *, append: bool, scheduler: InWarehouseScheduler | None) -> ScheduledScoring:
    """Re-forecast into `output` on a schedule run by the warehouse itself (`scheduler`: a Snowflake Task
    calling Flurry's procedure; None where the warehouse has none). Raises DeploymentError for an unknown
    deployment or a warehouse without a scheduler."""
    deployment_model(registry, deployment)
    if (output.schema, output.name.lower()) == (source.schema, source.name.lower()):
        raise DeploymentError("The forecast cannot overwrite the history it is made from.",
                              hint="Choose a new table name.")
    if scheduler is None:
        raise DeploymentError("This warehouse has no scheduler of its own.",
                              hint="Use the embedded scheduler (Re-forecast on a schedule).")
    # asked only so the workspace's allow-list sees both tables before the warehouse's scheduler does
    warehouse.describe(source)
    warehouse.table_exists(output)
    return scheduler(warehouse, deployment, source, output, schedule, append=append)
