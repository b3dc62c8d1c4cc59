"""The wizard's backend on the Snowflake adapter, offline: a workspace opened through FLURRY_WAREHOUSE's
snowflake route against fakesnow, from catalog to a trained, verified model version.

Training here runs in the local worker on a sample exported from the warehouse (the stored-procedure route
is not built yet); the registry, sampling and profile run as Snowflake SQL. fakesnow lacks APPROX_TOP_K,
so the connection turns top values off (`flurry_top_values = false`).
"""

from __future__ import annotations

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
    from backend.registry import migrations

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
    assert version.metrics["roc_auc"]["model"] > 0.9
    assert len(workspace.holdout_frame(progress.model_id)) == 60


def test_the_training_procedure_reports_trials_and_a_verified_result(workspace: Workspace, fakesnow_server: dict,
                                                                     tmp_path) -> None:
    """The stored procedure's body, run here on a fakesnow session (no procedure is created: fakesnow cannot
    host one). Files it would put on the stage go to a local directory instead; the stage itself is
    exercised only by scripts/snowflake_smoke.py."""
    import hashlib

    from backend.training.config import TrainConfig
    from backend.warehouse.base import SampleSpec
    from backend.warehouse.snowflake_training import RESULT_EVENT, job_payload, run_procedure

    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_WS", schema="PUBLIC"))
    config = workspace.train_config(CHURN, "churned", Task.BINARY, ["tenure", "plan"], "roc_auc", 4)
    run_id = workspace.registry.create_run(table=CHURN, target="churned", task="binary", metric="roc_auc",
                                           time_budget=4, config=config.to_dict(), job_dir="snowflake")
    spec = SampleSpec(table=CHURN, columns=config.exported_columns, target="churned", max_rows=config.max_rows,
                      stratify=True)
    written: dict[str, bytes] = {}
    state = run_procedure(session, job_payload(run_id, "FLURRY_WS", config, spec),
                          put_file=lambda path, content: written.__setitem__(path.rsplit("/", 1)[-1], content))
    assert state == "SUCCEEDED"
    trials = workspace.registry.events(run_id, "trial")
    assert trials and [e.payload["trial"] for e in trials] == list(range(1, len(trials) + 1))
    (result,) = workspace.registry.events(run_id, RESULT_EVENT)
    assert result.payload["metrics"]["roc_auc"]["model"] > 0.9
    assert {name: hashlib.sha256(content).hexdigest() for name, content in written.items()} == result.payload["sha256"]
    # stopped early: the procedure retrains the best trial reported so far, without searching
    trials = [e.payload for e in workspace.registry.events(run_id, "trial")]
    state = run_procedure(session, job_payload(run_id, "FLURRY_WS", config, spec, finalize=trials),
                          put_file=lambda path, content: written.__setitem__(path.rsplit("/", 1)[-1], content))
    kept = workspace.registry.events(run_id, RESULT_EVENT)[-1].payload
    best = min(trials, key=lambda t: t["loss"])
    assert state == "SUCCEEDED" and kept["best_estimator"] == best["estimator"]
    assert len(workspace.registry.events(run_id, "trial")) == len(trials)  # no new search
    broken = TrainConfig.from_dict({**config.to_dict(), "target": "no such column"})
    failed = run_procedure(session, job_payload(run_id, "FLURRY_WS", broken, SampleSpec(
        table=CHURN, columns=("tenure", "no such column"), target="no such column", max_rows=100)), put_file=None)
    assert failed == "FAILED"
    assert "no longer has the column" in workspace.registry.events(run_id, RESULT_EVENT)[-1].payload["message"]


def test_training_in_the_warehouse_records_the_job_and_says_why_it_cannot_start_here(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored-procedure route on an engine that cannot host procedures (fakesnow): the job is recorded
    (rows counted in the warehouse, the query's fingerprint, the payload), then the run fails with the
    engine's reason instead of hanging or raising."""
    from backend.training.procedure_jobs import JOB_EVENT, ProcedureJobManager

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

    from backend.warehouse.snowflake_training import procedure_name, register_procedure

    session = Session.builder.config("local_testing", True).create()
    try:
        assert register_procedure(session, "FLURRY_WS", permanent=False) == procedure_name("FLURRY_WS")
    finally:
        session.close()
