"""A forecast version from training to its table: the table holds the model's own forecast, a re-forecast
starts after the newest history, a schedule writes it with nobody watching, bad choices are refused with the
column named, and the dashboard compares forecasts with what happened."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidTargetError, InvalidTrainingOptionError
from backend.forecast_outcomes import forecast_outcome
from backend.forecast_workflow import (
    deploy_forecast,
    forecast_config,
    forecast_frame,
    load_forecast_bundle,
    preview,
    write_forecast,
)
from backend.forecasting.backtest import MAX_FOLDS
from backend.forecasting.report import ForecastReport
from backend.forecasting.series import SeriesSpec
from backend.registry import RunState
from backend.scoring_jobs import OutputMode, ScoringState
from backend.training.dispatch import train_run
from backend.training.jobs import record_model_version
from backend.training.results import result_summary
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import put_table


def daily_visits(days: int = 150, end_cut: int = 0) -> pd.DataFrame:
    """Two sites' daily visits with a weekly rhythm; `end_cut` days of the newest history held back."""
    rng = np.random.default_rng(5)
    when = pd.date_range("2024-01-01", periods=days, freq="D")
    rows = []
    for site, level in (("Site A", 120.0), ("Site B", 30.0)):
        weekly = 1 + 0.4 * (when.dayofweek >= 5)
        rows.append(pd.DataFrame({"Day": when, "Site": site, "Visits": level * weekly + rng.normal(0, 2, days)}))
    frame = pd.concat(rows, ignore_index=True)
    return frame[frame["Day"] < when[-1] - pd.Timedelta(days=end_cut - 1)] if end_cut else frame


SPEC = SeriesSpec("Day", "Visits", ("Site",), horizon=7)


def trained(ws: Workspace, table: TableRef, tmp_path: Path) -> str:
    """A forecast version of `table`, trained in this process as the worker would (budget 2 s)."""
    config = forecast_config(ws.warehouse, table, SPEC, "mase", 2)
    run_id = ws.registry.create_run(table=table, target=config.target, task=config.task.value, metric=config.metric,
                                    time_budget=config.time_budget_s, config=config.to_dict(), job_dir=str(tmp_path))
    ws.registry.set_run_state(run_id, RunState.RUNNING)
    frame = ws.warehouse.read_columns(table, list(config.exported_columns))
    result = train_run(frame, config, tmp_path / "trials.jsonl")
    bundle = result.bundle.to_bytes()
    summary = json.loads(json.dumps(result_summary(result, bundle)))  # as it travels: JSON
    return record_model_version(ws.registry, run_id, config, summary, bundle, result.holdout_parquet)


@pytest.fixture
def forecast_version(empty_workspace: Workspace, tmp_path: Path) -> tuple[Workspace, TableRef, str]:
    table = put_table(empty_workspace, "daily visits", daily_visits(end_cut=14))
    return empty_workspace, table, trained(empty_workspace, table, tmp_path)


def test_the_forecast_table_holds_the_models_own_forecast_and_moves_on_with_new_history(
        forecast_version: tuple[Workspace, TableRef, str]) -> None:
    ws, table, model_id = forecast_version
    version = ws.registry.get_model_version(model_id)
    report = ForecastReport.of(version.metrics)
    assert version.task == "forecast" and report is not None and report.series == 2
    assert report.frequency_words == "daily (one row per day)" and len(report.by_fold) == MAX_FOLDS  # few series: more folds
    assert version.metrics.scores["mase"].baseline == pytest.approx(report.scores["mase"]["seasonal_naive"])

    name = deploy_forecast(ws.registry, model_id)
    output = TableRef("forecasts", "visits ahead")
    written = write_forecast(ws.warehouse, ws.registry, name, table, output)
    assert written.rows == 14
    stored = ws.warehouse.read_columns(output, ["Site", "Day", "forecast", "lower_80", "upper_95", "model_version"])
    own = load_forecast_bundle(ws.registry, model_id).forecast_rows(ws.warehouse.read_columns(table, ["Day", "Site",
                                                                                                     "Visits"]))
    merged = own.merge(stored, on=["Site", "Day"], suffixes=("", "_table"))
    assert len(merged) == 14 and set(stored["model_version"]) == {version.label}
    np.testing.assert_allclose(merged["forecast_table"], merged["forecast"])
    np.testing.assert_allclose(merged["lower_80_table"], merged["lower_80"])
    assert (stored.groupby("Site")["Day"].min() == pd.Timestamp(daily_visits(end_cut=14)["Day"].max())
            + pd.Timedelta(days=1)).all()

    # a week of new history arrives: the next forecast starts after it, without training again
    ws.warehouse.write_table(table, daily_visits(end_cut=7), replace=True)
    again = forecast_frame(ws.warehouse, ws.registry, model_id)
    assert again["Day"].min() == pd.Timestamp(daily_visits(end_cut=7)["Day"].max()) + pd.Timedelta(days=1)

    # the dashboard: the first forecast's days now have actuals, so its error is known
    write_forecast(ws.warehouse, ws.registry, name, table, output, append=True)
    outcome = forecast_outcome(ws.warehouse, ws.registry, model_id)
    assert outcome.table == output and len(outcome.errors) == 1
    assert outcome.errors["periods"].iloc[0] == 14 and 0 < outcome.errors["error_pct"].iloc[0] < 30


def test_a_schedule_re_forecasts_through_the_scoring_jobs(forecast_version: tuple[Workspace, TableRef, str]) -> None:
    ws, table, model_id = forecast_version
    name = deploy_forecast(ws.registry, model_id)
    output = TableRef("forecasts", "nightly")
    schedule = ws.schedules.create(name, table, output, OutputMode.REPLACE, cron="0 6 * * *")
    scoring_id = ws.schedules.fire(schedule.schedule_id)  # what the supervisor's scheduler calls at 06:00
    assert scoring_id is not None
    deadline = time.monotonic() + 60
    while not ws.scoring.get(scoring_id).state.is_final and time.monotonic() < deadline:
        time.sleep(0.2)  # the scoring thread the fire started writes it
    run = ws.scoring.get(scoring_id)
    assert run.state is ScoringState.SUCCEEDED, run.message
    assert run.message == f"Wrote the forecast into {output}: 14 rows, 2 series × 7 periods ahead."
    assert ws.warehouse.row_count(output) == 14
    assert name not in {d.function_name for d in ws.registry.function_deployments()}  # no SQL function to restore


def test_bad_forecast_choices_name_the_column_and_store_nothing(empty_workspace: Workspace) -> None:
    ws = empty_workspace
    frame = daily_visits(60).assign(Note="x", Flag=True)
    table = put_table(ws, "visits", frame)
    with pytest.raises(InvalidTargetError, match="'Site' is not a number"):
        forecast_config(ws.warehouse, table, SeriesSpec("Day", "Site"), "mase", 10)
    with pytest.raises(InvalidTargetError, match="'Note' is not"):
        forecast_config(ws.warehouse, table, SeriesSpec("Day", "Visits", known_columns=("Note",)), "mase", 10)
    with pytest.raises(InvalidTargetError, match="needs at least") as long:
        preview(ws.warehouse, table, SeriesSpec("Day", "Visits", ("Site",), horizon=40))
    assert "fewer days ahead" in long.value.hint
    with pytest.raises(InvalidTrainingOptionError, match="horizon"):
        forecast_config(ws.warehouse, table, SeriesSpec("Day", "Visits", horizon=0), "mase", 10)
    nulls = put_table(ws, "empty visits", frame.assign(Visits=np.nan))
    with pytest.raises(InvalidTargetError, match="Every value of 'Visits' is missing"):
        preview(ws.warehouse, nulls, SeriesSpec("Day", "Visits", ("Site",)))
    assert ws.registry.list_runs() == [] and ws.registry.list_deployments() == []


def test_forecast_names_never_meet_and_flurrys_schema_is_refused(forecast_version: tuple[Workspace, TableRef, str]
                                                                 ) -> None:
    from dataclasses import replace

    from backend.errors import DeploymentError
    from backend.forecast_workflow import forecast_name

    ws, table, model_id = forecast_version
    version = ws.registry.get_model_version(model_id)
    twins = [replace(version, table=TableRef(schema, name)) for schema, name in
             (("staging", "daily visits"), ("prod", "daily visits"), ("lab", "daily visits by site north"),
              ("lab", "daily visits by site south"))]
    assert len({forecast_name(v) for v in twins}) == 4
    name = deploy_forecast(ws.registry, model_id)
    from backend.deploy import deploy
    from backend.errors import InvalidIdentifierError

    with pytest.raises(InvalidIdentifierError, match="forecast's deployment"):
        deploy(ws.warehouse, ws.registry, model_id, name)  # a SQL function never takes a forecast's name
    with pytest.raises(DeploymentError, match="own records"):
        write_forecast(ws.warehouse, ws.registry, name, table, TableRef("FLURRY", "runs"))
    # the embedded warehouse has no scheduler of its own: the remedy is the embedded one
    with pytest.raises(DeploymentError, match="no scheduler of its own"):
        ws.schedule_forecast(name, table, TableRef(table.schema, "visits forecast"), "daily", append=False)


def test_a_warehouse_scheduled_re_forecast_reaches_only_allowed_tables(
        forecast_version: tuple[Workspace, TableRef, str]) -> None:
    """What a Snowflake Task would be asked to do, through the workspace: the tables it names pass the
    schema allow-list first (a scheduler stands in for the Task: fakesnow cannot host the procedure)."""
    from dataclasses import replace

    from backend.warehouse.allow_list import AllowList, NotAllowedError, guard

    ws, table, model_id = forecast_version
    name = deploy_forecast(ws.registry, model_id)
    asked: list[tuple[str, TableRef, TableRef]] = []

    def scheduler(warehouse: object, deployment: str, source: TableRef, output: TableRef, schedule: str, *,
                  append: bool) -> object:
        asked.append((deployment, source, output))
        return "scheduled"

    fenced = replace(ws, warehouse=guard(ws.warehouse, AllowList.parse(table.schema)), forecast_scheduler=scheduler)
    output = TableRef(table.schema, "visits forecast")
    assert fenced.schedule_forecast(name, table, output, "daily", append=True) == "scheduled"
    assert asked == [(name, table, output)]
    with pytest.raises(NotAllowedError, match="elsewhere"):
        fenced.schedule_forecast(name, table, TableRef("elsewhere", "visits forecast"), "daily", append=True)
    assert len(asked) == 1  # refused before the scheduler was asked


def test_a_forecast_is_suggested_for_series_not_for_a_yes_no_target_with_a_date(empty_workspace: Workspace) -> None:
    from backend.forecast_workflow import suggests_forecast, time_columns
    from backend.task_detection import Task

    ws = empty_workspace
    visits = put_table(ws, "visits", daily_visits(60))
    rng = np.random.default_rng(0)
    churn = put_table(ws, "churn", pd.DataFrame({
        "signup": pd.date_range("2023-01-01", periods=400, freq="D"), "plan": rng.choice(["a", "b"], 400),
        "tenure": rng.integers(1, 60, 400), "spend": rng.normal(50, 10, 400), "churned": rng.integers(0, 2, 400)}))
    assert suggests_forecast(ws.warehouse.profile(visits), "Visits", time_columns(ws.warehouse, visits),
                             Task.REGRESSION)
    assert not suggests_forecast(ws.warehouse.profile(churn), "churned", time_columns(ws.warehouse, churn),
                                 Task.BINARY)
    assert not suggests_forecast(ws.warehouse.profile(churn), "spend", time_columns(ws.warehouse, churn),
                                 Task.REGRESSION)  # one row per signup date in a wide table: examples, not a series
