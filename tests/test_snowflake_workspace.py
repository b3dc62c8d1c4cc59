"""The wizard's backend on the Snowflake adapter, offline: a workspace opened through FLURRY_WAREHOUSE's
snowflake route against fakesnow, from catalog to a trained, verified model version.

Training here runs in the local worker on a sample exported from the warehouse (the stored-procedure route
is not built yet); the registry, sampling and profile run as Snowflake SQL. fakesnow lacks APPROX_TOP_K,
so the connection turns top values off (`flurry_top_values = false`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from backend.config import WarehouseConfig
from backend.metrics import default_metric
from backend.registry import RunState
from backend.task_detection import Task
from backend.warehouse.allow_list import NotAllowedError
from backend.warehouse.base import TableRef
from backend.warehouse.snowflake_session import open_session, use_secrets
from backend.workspace import Workspace, open_workspace

CHURN = TableRef("LAB", "Churn risk")


@pytest.fixture(scope="module")
def workspace(fakesnow_server: dict) -> Iterator[Workspace]:
    params = dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC")
    setup = open_session("unused", secrets=params)
    setup.sql("CREATE DATABASE IF NOT EXISTS FLURRY_WS").collect()
    for schema in ("LAB", "HR"):
        setup.sql(f'CREATE SCHEMA IF NOT EXISTS FLURRY_WS."{schema}"').collect()
    setup.sql('CREATE TABLE FLURRY_WS."LAB"."Churn risk" ("tenure" INT, "plan" VARCHAR, "churned" VARCHAR)').collect()
    setup.sql('CREATE TABLE FLURRY_WS."HR"."salaries" ("id" INT)').collect()
    rows: list[object] = []
    for i in range(300):
        tenure = 1 + (i * 37) % 70
        rows += [tenure, ["basic", "pro"][i % 2], "yes" if tenure < 20 else "no"]
    setup.sql('INSERT INTO FLURRY_WS."LAB"."Churn risk" VALUES ' + ", ".join(["(?, ?, ?)"] * 300), params=rows).collect()
    use_secrets(lambda: dict(params, flurry_top_values="false"))
    os.environ["FLURRY_TRAINING"] = "local"  # fakesnow cannot host the training procedure
    try:
        ws = open_workspace(WarehouseConfig("snowflake", "offline"), allowed_schemas="LAB")
        yield ws
    finally:
        use_secrets(lambda: None)
        os.environ.pop("FLURRY_TRAINING", None)


def test_the_catalog_shows_only_allowed_schemas_and_never_flurrys_own(workspace: Workspace) -> None:
    assert workspace.warehouse.list_schemas() == ["LAB"]
    with pytest.raises(NotAllowedError):
        workspace.warehouse.preview(TableRef("HR", "salaries"))
    from backend.registry_migrations import migrations

    # the registry lives in FLURRY_WS.FLURRY, migrated once to the newest version
    assert workspace.registry.migrate() == len(migrations(str))


def test_a_model_trains_on_a_warehouse_sample_and_is_stored_verified(workspace: Workspace) -> None:
    summary, choices = workspace.target_summary(CHURN, "churned")
    assert summary.detected_task is Task.BINARY
    features = [c.name for c in choices if c.include]
    assert set(features) == {"tenure", "plan"}
    config = workspace.train_config(CHURN, "churned", Task.BINARY, features, default_metric(Task.BINARY), 4)
    run_id = workspace.jobs.start(config)
    deadline = time.monotonic() + 120
    while not (progress := workspace.jobs.progress(run_id)).run.state.is_final and time.monotonic() < deadline:
        time.sleep(0.5)
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    version = workspace.registry.get_model_version(progress.model_id)
    assert (version.metrics.model_score("roc_auc") or 0) > 0.9
    assert len(workspace.holdout_frame(progress.model_id)) == 60


def test_the_training_procedure_records_its_own_verified_model_version(workspace: Workspace, fakesnow_server: dict
                                                                       ) -> None:
    """The stored procedure's body, run here on a fakesnow session (fakesnow cannot host a procedure): it
    reports trials while it trains, from its own thread only, then leaves a READY model version and a
    SUCCEEDED run with no app-side collection step; the model then deploys and scores from the app."""
    import threading

    from snowflake.snowpark import Session

    from backend.deployed_model import load_bundle
    from backend.snowflake_procedure import RESULT_EVENT, job_payload, run_procedure
    from backend.training.config import TrainConfig
    from backend.warehouse import snowflake_deploy as sd
    from backend.warehouse.base import SampleSpec
    from backend.warehouse.snowflake_udf import predict_batch

    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    queried_from: set[str] = set()
    original_sql = session.sql

    def sql(*args, **kwargs):  # the real session's sql, noting which thread issued each statement
        queried_from.add(threading.current_thread().name)
        return original_sql(*args, **kwargs)

    session.sql = sql
    config = workspace.train_config(CHURN, "churned", Task.BINARY, ["tenure", "plan"], "roc_auc", 4)
    run_id = workspace.registry.create_run(table=CHURN, target="churned", task="binary", metric="roc_auc",
                                           time_budget=4, config=config.to_dict(), job_dir="snowflake")
    workspace.registry.set_run_state(run_id, RunState.RUNNING)
    spec = SampleSpec(table=CHURN, columns=config.exported_columns, target="churned", max_rows=config.max_rows,
                      stratify=True)
    payload = json.loads(job_payload(run_id, "FLURRY_WS", config, spec))
    state = run_procedure(session, json.dumps({**payload, "attempt": "a1"}))
    assert state == "SUCCEEDED" and queried_from == {threading.current_thread().name}
    run = workspace.registry.get_run(run_id)
    assert run.state is RunState.SUCCEEDED  # recorded by the procedure itself
    version = workspace.registry.model_for_run(run_id)
    assert version is not None and (version.metrics.model_score("roc_auc") or 0) > 0.9
    trials = workspace.registry.events(run_id, "trial")
    assert trials and [e.payload["trial"] for e in trials] == list(range(1, len(trials) + 1))
    (result,) = workspace.registry.events(run_id, RESULT_EVENT)
    assert result.payload["attempt"] == "a1" and result.payload["model_id"] == version.model_id
    bundle = load_bundle(workspace.registry, version.model_id)  # verified against the stored sha256
    assert bundle.versions == version.versions
    # trained in the warehouse, deployed from the app (Snowpark local testing accepts the UDFs over the staged
    # file; fakesnow cannot PUT) and scored by the UDFs' handler: one set of library versions everywhere
    content = workspace.registry.get_artifact(version.model_id, "bundle", expected_sha256=version.sha256)
    local = Session.builder.config("local_testing", True).create()
    try:
        staged = sd.stage_model(local, "FLURRY_WS", version.model_id, content, version.sha256)
        assert sd.register_model_functions(local, "FLURRY_WS", "flurry_wh_trained", bundle, staged, "VARCHAR",
                                           permanent=False) == ("flurry_wh_trained", "flurry_wh_trained_proba")
    finally:
        local.close()
    frame = workspace.warehouse.read_columns(CHURN, ["tenure", "plan"], limit=50)
    scored = predict_batch(bundle, frame.set_axis(["ARG1", "ARG2"], axis=1))
    assert scored.tolist() == list(bundle.predict(frame)) and set(scored) <= {"yes", "no"}
    # stopped early: the procedure retrains the best trial reported so far, without searching
    trials_so_far = [e.payload for e in workspace.registry.events(run_id, "trial")]
    again = workspace.registry.create_run(table=CHURN, target="churned", task="binary", metric="roc_auc",
                                          time_budget=4, config=config.to_dict(), job_dir="snowflake")
    workspace.registry.set_run_state(again, RunState.RUNNING)
    job = json.loads(job_payload(again, "FLURRY_WS", config, spec, finalize=trials_so_far))
    assert run_procedure(session, json.dumps(job)) == "SUCCEEDED"
    kept = workspace.registry.get_run(again)
    best = min(trials_so_far, key=lambda t: t["loss"])
    assert kept.state is RunState.SUCCEEDED and "Stopped early" in kept.message
    assert workspace.registry.model_for_run(again).best_estimator == best["estimator"]
    assert not workspace.registry.events(again, "trial")  # no new search
    broken = TrainConfig.from_dict({**config.to_dict(), "target": "no such column"})
    failing = workspace.registry.create_run(table=CHURN, target="churned", task="binary", metric="roc_auc",
                                            time_budget=4, config=config.to_dict(), job_dir="snowflake")
    failed = run_procedure(session, job_payload(failing, "FLURRY_WS", broken, SampleSpec(
        table=CHURN, columns=("tenure", "no such column"), target="no such column", max_rows=100)))
    assert failed == "FAILED"
    run = workspace.registry.get_run(failing)
    assert run.state is RunState.FAILED and "no longer has the column" in run.message


def test_training_in_the_warehouse_records_the_job_and_says_why_it_cannot_start_here(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored-procedure route on an engine that cannot host procedures (fakesnow): the job is recorded
    (rows counted in the warehouse, the query's fingerprint, the payload), then the run fails with the
    engine's reason instead of hanging or raising."""
    from backend.procedure_jobs import JOB_EVENT, ProcedureJobManager

    monkeypatch.setenv("FLURRY_TRAINING", "warehouse")
    jobs = ProcedureJobManager(workspace.warehouse, workspace.registry, workspace.jobs.jobs_root)
    config = workspace.train_config(CHURN, "churned", Task.BINARY, ["tenure", "plan"], "roc_auc", 5)
    run_id = jobs.start(config)
    run = workspace.registry.get_run(run_id)
    assert (run.rows_eligible, run.rows_dropped) == (300, 0)
    (fingerprint,) = workspace.registry.events(run_id, "fingerprint")
    assert fingerprint.payload["where"] == "snowflake" and len(fingerprint.payload["sample_query_sha256"]) == 64
    assert fingerprint.payload["content_hash"] is None  # gap: fakesnow has no HASH_AGG (Snowflake computes it)
    assert '"run_id"' in workspace.registry.events(run_id, JOB_EVENT)[0].payload["payload"]
    assert run.state is RunState.FAILED and run.message.startswith("Could not start training in Snowflake:")
    assert jobs.progress(run_id).run.state is RunState.FAILED


def test_snowpark_accepts_the_training_procedure_from_the_backend_package() -> None:
    """Snowpark's local testing mode registers procedures through the same client-side checks as an account
    (types, imports, packages, and a first parameter annotated as Session: the check that failed here until
    the entry point was annotated). Calling it is left out: local testing takes ~40 s to set up the call and
    cannot run the body's SQL; the body itself runs against fakesnow above."""
    from snowflake.snowpark import Session

    from backend.snowflake_procedure import procedure_name, register_procedure

    session = Session.builder.config("local_testing", True).create()
    try:
        assert register_procedure(session, "FLURRY_WS", permanent=False) == procedure_name("FLURRY_WS")
    finally:
        session.close()


def test_a_forecast_trains_in_the_procedure_and_writes_its_table_in_snowflake(workspace: Workspace,
                                                                             fakesnow_server: dict) -> None:
    """A forecast run through the stored procedure's body (on fakesnow), then its forecast table written into
    the account: the same bundle, report and table as on the embedded warehouse."""
    import numpy as np
    import pandas as pd

    from backend.forecast_workflow import deploy_forecast, forecast_config, forecast_frame
    from backend.forecasting.report import ForecastReport
    from backend.forecasting.series import SeriesSpec
    from backend.snowflake_procedure import job_payload, run_procedure
    from backend.warehouse.base import SampleSpec

    table = TableRef("LAB", "Monthly sales")
    months = pd.date_range("2019-01-01", periods=48, freq="MS")
    noise = iter(np.random.default_rng(1).normal(0, 2, 96))
    rows = [(m.date(), store, float(level + 10 * (m.month in (11, 12)) + next(noise)))
            for store, level in (("North", 100.0), ("South", 40.0)) for m in months]
    workspace.warehouse.execute(f'CREATE TABLE {workspace.warehouse.qualify(table)} ("month" DATE, "store" VARCHAR, '
                                '"sales" DOUBLE)')  # bound INSERTs: fakesnow cannot PUT (Snowpark's table writes)
    workspace.warehouse.execute(f"INSERT INTO {workspace.warehouse.qualify(table)} VALUES "
                                + ", ".join(["(?, ?, ?)"] * len(rows)), [v for row in rows for v in row])
    spec = SeriesSpec("month", "sales", ("store",), horizon=6)
    config = forecast_config(workspace.warehouse, table, spec, "mase", 3)
    run_id = workspace.registry.create_run(table=table, target="sales", task="forecast", metric="mase",
                                           time_budget=3, config=config.to_dict(), job_dir="snowflake")
    workspace.registry.set_run_state(run_id, RunState.RUNNING)
    sample = SampleSpec(table=table, columns=config.exported_columns, target="sales", max_rows=config.max_rows)
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    ended = run_procedure(session, job_payload(run_id, "FLURRY_WS", config, sample))
    assert ended == "SUCCEEDED", workspace.registry.get_run(run_id).message
    version = workspace.registry.model_for_run(run_id)
    report = ForecastReport.of(version.metrics)
    assert version.task == "forecast" and report is not None and report.series == 2
    assert [e.payload["estimator"] for e in workspace.registry.events(run_id, "trial")][:2] == ["naive",
                                                                                               "seasonal naive"]
    deploy_forecast(workspace.registry, version.model_id)
    # what write_forecast swaps in (write_table, tested with Snowpark's local testing in test_snowflake_adapter)
    stored = forecast_frame(workspace.warehouse, workspace.registry, version.model_id)
    assert len(stored) == 12 and set(stored["store"]) == {"North", "South"} and set(stored["model_version"]) == {"v1"}
    assert pd.to_datetime(stored["month"]).min() == pd.Timestamp("2023-01-01")


def _procedure_run(workspace: Workspace, budget: int) -> tuple[str, object]:
    """A run prepared as the app prepares one for the procedure (its job recorded, a Task launched), with the
    ProcedureJobManager the app would use for it."""
    from backend.procedure_jobs import LAUNCH_EVENT, ProcedureJobManager
    from backend.snowflake_procedure import JOB_EVENT, job_payload
    from backend.warehouse.base import SampleSpec

    jobs = ProcedureJobManager(workspace.warehouse, workspace.registry, workspace.jobs.jobs_root)
    config = workspace.train_config(CHURN, "churned", Task.BINARY, ["tenure", "plan"], "roc_auc", budget)
    run_id = workspace.registry.create_run(table=CHURN, target="churned", task="binary", metric="roc_auc",
                                           time_budget=budget, config=config.to_dict(), job_dir="snowflake")
    spec = SampleSpec(table=CHURN, columns=config.exported_columns, target="churned", max_rows=config.max_rows)
    workspace.registry.add_events(run_id, JOB_EVENT, [{"payload": job_payload(run_id, "FLURRY_WS", config, spec)}])
    workspace.registry.set_run_state(run_id, RunState.RUNNING)
    workspace.registry.add_events(run_id, LAUNCH_EVENT, [{"task": "t", "attempt": "a7", "warehouse": "W"}])
    return run_id, jobs


def _after_trials(workspace: Workspace, run_id: str, act) -> object:
    """Do `act` in another thread (another session, as a viewer would) once the run has reported two trials."""
    import threading

    def watch() -> None:
        deadline = time.monotonic() + 60
        while len(workspace.registry.events(run_id, "trial")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        act()

    thread = threading.Thread(target=watch, name="viewer")
    thread.start()
    return thread


def test_a_run_started_by_its_task_stops_at_the_users_word_and_keeps_its_best_in_the_same_call(
        workspace: Workspace, fakesnow_server: dict) -> None:
    """The Task's call names only the run: the procedure reads the job from the registry, beats as it goes, and
    reads the stop request a viewer leaves: asked to keep the best, it ends the search and refits the best
    trial so far itself, with no second call launched."""
    from backend.procedure_jobs import LAUNCH_EVENT
    from backend.snowflake_procedure import procedure_entry, training_job
    from backend.training.jobs import STOPPED_EARLY_NOTE, STOPPING_NOTE
    from backend.training.run_signals import HEARTBEAT_EVENT

    run_id, jobs = _procedure_run(workspace, budget=60)
    seen: list[str] = []
    viewer = _after_trials(workspace, run_id, lambda: (jobs.cancel(run_id, keep_best=True),
                                                       seen.append(workspace.registry.get_run(run_id).message)))
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    assert procedure_entry(session, training_job("FLURRY_WS", run_id, "a7")) == "SUCCEEDED"
    viewer.join()
    assert seen == [STOPPING_NOTE]  # what the Train step said while the procedure wound down
    run = workspace.registry.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.message == STOPPED_EARLY_NOTE
    phases = [e.payload["phase"] for e in workspace.registry.events(run_id, HEARTBEAT_EVENT)]
    assert phases[:2] == ["reading the training rows", "searching"]
    assert phases[-2:] == ["keeping the best model so far", "saving the model"]
    trials = [e.payload for e in workspace.registry.events(run_id, "trial")]
    best = min(trials, key=lambda t: t["loss"])
    assert workspace.registry.model_for_run(run_id).best_estimator == best["estimator"]
    assert len(workspace.registry.events(run_id, LAUNCH_EVENT)) == 1  # no second call


def test_cancel_ends_the_run_at_once_says_a_refused_cancel_and_the_procedure_keeps_nothing(
        workspace: Workspace, fakesnow_server: dict) -> None:
    """Stop and discard: the run is CANCELLED when the user asks; cancelling the Task's call is refused here
    (fakesnow has no SYSTEM$USER_TASK_CANCEL_ONGOING_EXECUTIONS, as a role without OPERATE would be refused),
    which the run's message says rather than swallowing; the procedure reads the ended run at its next
    iteration and stops without recording a model."""
    from backend.snowflake_procedure import procedure_entry, training_job

    run_id, jobs = _procedure_run(workspace, budget=60)
    viewer = _after_trials(workspace, run_id, lambda: jobs.cancel(run_id))
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    assert procedure_entry(session, training_job("FLURRY_WS", run_id, "a7")) == "CANCELLED"
    viewer.join()
    run = workspace.registry.get_run(run_id)
    assert run.state is RunState.CANCELLED and workspace.registry.model_for_run(run_id) is None
    assert run.message.startswith("Cancelled by the user. Snowflake refused to cancel the training query at once")
    assert "stops by itself at its next search iteration" in run.message


def test_a_procedure_run_is_alive_while_it_beats_and_failed_once_it_went_quiet(workspace: Workspace) -> None:
    """Liveness from the run's own words in the registry: recent news means working; silence past the limit
    ends the run FAILED with how long it was quiet (and the Task's reason where its history gives one)."""
    from backend.training.run_signals import HEARTBEAT_EVENT, QUIET_LIMIT_S, quiet_limit_s

    run_id, jobs = _procedure_run(workspace, budget=30)
    run = workspace.registry.get_run(run_id)
    assert jobs.runner.working(run) and jobs.runner.outcome(run) is None
    jobs.runner.quiet_limit_s = 0.0  # as if the last word were older than the limit
    outcome = jobs.runner.outcome(run)
    assert outcome is not None and outcome.message.startswith(
        "The training in Snowflake stopped without reporting a result (0 minutes without a word from it)")
    jobs.sync(run_id)
    assert workspace.registry.get_run(run_id).state is RunState.FAILED
    workspace.registry.add_events(run_id, HEARTBEAT_EVENT, [{"phase": "searching"}])  # a late word changes nothing
    assert workspace.registry.get_run(run_id).state is RunState.FAILED
    assert quiet_limit_s(30) == QUIET_LIMIT_S and quiet_limit_s(7200) == 7200


def test_a_runs_task_is_created_with_its_budget_and_names_only_the_run() -> None:
    """The statements a launch issues: the run's own Task on the training warehouse, its timeout the budget and
    an hour (within Snowflake's one-day cap), then EXECUTE TASK; its call's argument round-trips to the run."""
    import base64

    from backend.snowflake_procedure import TRAINING_JOB, training_job
    from backend.warehouse.snowflake_deploy import run_task_name, run_task_sql

    task = run_task_name("My DB", "r0123abcdef")
    assert task == '"My DB"."FLURRY"."FLURRY_RUN_R0123ABCDEF"'
    create, execute = run_task_sql(task, 'Train "WH"', 600, "CALL x('y')")
    assert create == (f'CREATE OR REPLACE TASK {task} WAREHOUSE = "Train ""WH""" USER_TASK_TIMEOUT_MS = 4200000 '
                      "AS CALL x('y')")
    assert execute == f"EXECUTE TASK {task}"
    assert "USER_TASK_TIMEOUT_MS = 86400000 " in run_task_sql(task, "W", 10**6, "CALL x()")[0]
    argument = training_job("My DB", "r0123abcdef", "a1")
    assert argument.startswith(TRAINING_JOB) and "'" not in argument
    assert json.loads(base64.b64decode(argument[len(TRAINING_JOB):])) == {
        "database": "My DB", "run_id": "r0123abcdef", "attempt": "a1"}


def test_snowflake_output_names_are_upper_case_and_inside_the_allow_list(workspace: Workspace) -> None:
    """On Snowflake a proposed name is upper case (an unquoted `scores` is SCORES there) and the default schema
    one the allow-list lets the app write: here only LAB is allowed, so scores go beside the source."""
    assert workspace.plain_name("churn_scored") == "CHURN_SCORED"
    assert workspace.output_schema("scores", CHURN) == "LAB"
    assert workspace.output_schema("uploads") == "LAB"


def test_an_unexpected_failure_in_the_procedure_leaves_its_traceback_in_the_log_and_on_the_run(
        workspace: Workspace, fakesnow_server: dict, caplog: pytest.LogCaptureFixture) -> None:
    """Not a refusal Flurry words itself (those are the message): the run says what failed in one sentence, and
    the traceback goes to Python logging (the account's event table) and to the run, for the Train step's
    technical details."""
    import logging

    from backend.snowflake_procedure import procedure_entry, training_job

    run_id, jobs = _procedure_run(workspace, budget=10)
    job = json.loads(workspace.registry.events(run_id, "job")[-1].payload["payload"])
    del job["spec"]["target"]  # a job an older or damaged app recorded
    workspace.registry.add_events(run_id, "job", [{"payload": json.dumps(job)}])
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    with caplog.at_level(logging.ERROR, logger="backend.snowflake_procedure"):
        assert procedure_entry(session, training_job("FLURRY_WS", run_id, "a9")) == "FAILED"
    assert any(r.exc_info and run_id in r.getMessage() for r in caplog.records)
    progress = jobs.progress(run_id)
    assert progress.run.state is RunState.FAILED and progress.run.message.startswith("Training failed in Snowflake: "
                                                                                     "KeyError")
    assert progress.failure_details is not None and "Traceback" in progress.failure_details
