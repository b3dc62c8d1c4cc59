"""Batch scores as jobs: version and time on every row, history by appending, a stop or a failure mid-score
that leaves the old output intact, schedules fired by the supervisor with no page open, and the command line
scorer, which refuses plainly while the app holds the database file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend import deployment_targets
from backend.errors import DeploymentError
from backend.model_bundle import ModelBundle
from backend.monitoring_store import drift_history
from backend.promotion import promote
from backend.schedules import PRESETS, validate_cron
from backend.scoring_jobs import OutputMode, ScoringState
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import make_workspace, put_table, wait_for

ROOT = Path(__file__).resolve().parents[1]
ROWS = 400
SOURCE = TableRef("lab", "people")


WEIRD = 'plan """ \\ name'  # would end a docstring or escape a quote if pasted into generated code


def _deployed(ws: Workspace) -> str:
    rng = np.random.default_rng(2)
    x = rng.normal(size=ROWS)
    put_table(ws, "people", pd.DataFrame({"id": [f"P{i:04d}" for i in range(ROWS)], "x": x, "z": rng.normal(size=ROWS),
                                          WEIRD: rng.choice(["a", "b"], ROWS),
                                          "y": np.where(x + rng.normal(0, 0.7, ROWS) > 0, "up", "down")}))
    config = ws.train_config(SOURCE, "y", Task.BINARY, ["x", "z", WEIRD], "roc_auc", 2, ensemble=False,
                             estimators=("lgbm",))
    progress = wait_for(ws, ws.jobs.start(config))
    return promote(ws.warehouse, ws.registry, progress.model_id).production.predict


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, Path]]:
    path = tmp_path_factory.mktemp("scoring") / "s.duckdb"
    ws = make_workspace(path, seed_demo=False)
    ws.warehouse.ensure_schema("lab")
    yield ws, _deployed(ws), path
    ws.close()


def _score(ws: Workspace, function: str, output: TableRef, mode: OutputMode):  # type: ignore[no-untyped-def]
    assert ws.scoring is not None
    return ws.scoring.run(ws.scoring.request(function, SOURCE, output, mode))


def test_each_row_carries_its_version_and_time_and_appending_keeps_history(scored) -> None:
    ws, function, _ = scored
    out = TableRef("lab", "history")
    first = _score(ws, function, out, OutputMode.NEW)
    assert first.state is ScoringState.SUCCEEDED and first.rows_done == first.rows_total == ROWS
    frame = ws.warehouse.preview(out, 1000)
    assert set(frame["model_version"]) == {"v1"} and frame["scored_at"].notna().all()
    # measured in the warehouse right after: the training table itself has not drifted
    (drift,) = drift_history(ws.registry, ws.catalog.production(ws.catalog.models()[0].key).model_id)
    assert drift.scoring_id == first.scoring_id and drift.report.rows == ROWS
    assert {d.column for d in drift.report.columns} == {"x", "z", WEIRD} and drift.report.prediction is not None
    assert all(d.band == "stable" for d in [*drift.report.columns, drift.report.prediction])
    with pytest.raises(DeploymentError, match="already exists"):
        ws.scoring.request(function, SOURCE, out, OutputMode.NEW)
    time.sleep(0.01)
    assert _score(ws, function, out, OutputMode.APPEND).state is ScoringState.SUCCEEDED
    frame = ws.warehouse.preview(out, 1000)
    assert len(frame) == 2 * ROWS and frame["scored_at"].nunique() == 2  # two runs, side by side
    latest = drift_history(ws.registry, ws.catalog.production(ws.catalog.models()[0].key).model_id)[0]
    assert latest.report.rows == ROWS  # the appended run's rows only


def test_a_stop_or_a_failure_mid_score_leaves_the_old_output_intact(scored, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, function, _ = scored
    assert ws.scoring is not None
    out = TableRef("lab", "kept")
    assert _score(ws, function, out, OutputMode.NEW).state is ScoringState.SUCCEEDED
    before = ws.warehouse.preview(out, 1000)
    monkeypatch.setattr(deployment_targets, "SCORING_BATCH_ROWS", 100)  # four batches

    stopping = ws.scoring.request(function, SOURCE, out, OutputMode.REPLACE)
    ws.scoring.stop(stopping)  # a queued score never starts
    assert ws.scoring.get(stopping).state is ScoringState.STOPPED

    asked = ws.scoring.request(function, SOURCE, out, OutputMode.REPLACE)
    real_predict = ModelBundle.predict
    calls = {"n": 0}

    def stop_after_first(self: ModelBundle, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            ws.scoring.stop(asked)  # the user presses Stop while the first batch is scored
        return real_predict(self, frame)

    monkeypatch.setattr(ModelBundle, "predict", stop_after_first)
    stopped = ws.scoring.run(asked)
    assert stopped.state is ScoringState.STOPPED and stopped.rows_done == 100 and "as it was" in stopped.message

    def fail_third(self: ModelBundle, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk gone")
        return real_predict(self, frame)

    calls["n"] = 1
    monkeypatch.setattr(ModelBundle, "predict", fail_third)
    failed = _score(ws, function, out, OutputMode.APPEND)
    assert failed.state is ScoringState.FAILED and "disk gone" in failed.message
    after = ws.warehouse.preview(out, 1000)
    pd.testing.assert_frame_equal(before, after)
    assert not [t for t in ws.warehouse.list_tables("lab") if "staging" in t]


def test_realised_quality_is_computed_in_the_warehouse_per_scoring_run(scored) -> None:
    from backend.realised import realised_quality, set_outcome_source

    ws, function, _ = scored
    out = TableRef("lab", "realised")
    first = _score(ws, function, out, OutputMode.APPEND)
    time.sleep(0.01)
    _score(ws, function, out, OutputMode.APPEND)
    scores = ws.warehouse.preview(out, 10_000)
    rng = np.random.default_rng(5)
    arrived = scores[scores["scored_at"] == scores["scored_at"].min()].sample(150, random_state=1)[["id", "y"]]
    arrived["what happened"] = np.where(rng.random(150) < 0.2, np.where(arrived["y"] == "up", "down", "up"),
                                        arrived["y"])  # a fifth of the outcomes differ from the label
    put_table(ws, "outcomes", arrived[["id", "what happened"]].reset_index(drop=True))
    model = ws.catalog.models()[0]
    with pytest.raises(DeploymentError, match="no column"):
        set_outcome_source(ws.warehouse, ws.registry, model.key, TableRef("lab", "outcomes"), "id", "actual")
    source = set_outcome_source(ws.warehouse, ws.registry, model.key, TableRef("lab", "outcomes"), "id",
                                "what happened")
    runs = realised_quality(ws.warehouse, out, source, task="binary", prediction_column="prediction",
                            scored_at_column="scored_at", positive="up")
    assert len(runs) == 2 and runs[0].scored_at < runs[1].scored_at  # both runs scored these customers
    run = runs[0]
    joined = scores[scores["scored_at"] == scores["scored_at"].min()].merge(arrived, on="id")
    assert run.matched == 150 == len(joined) and first.state is ScoringState.SUCCEEDED
    assert run.metrics["ACCURACY"] == pytest.approx((joined["prediction"] == joined["what happened"]).mean())
    tp = ((joined["prediction"] == "up") & (joined["what happened"] == "up")).sum()
    assert run.metrics["PRECISION"] == pytest.approx(tp / (joined["prediction"] == "up").sum())
    assert run.metrics["RECALL"] == pytest.approx(tp / (joined["what happened"] == "up").sum())


def test_cron_expressions_are_checked_and_described() -> None:
    with pytest.raises(DeploymentError, match="five fields"):
        validate_cron("61 * * * *")
    assert validate_cron(" 30  7 * * 1-5 ") == "30 7 * * 1-5"
    assert set(PRESETS.values()) == {"0 * * * *", "0 6 * * *", "0 6 * * 1"}


def test_a_schedule_fires_on_time_with_no_page_open(scored) -> None:
    ws, function, _ = scored
    ws.start_supervisor()  # what the app does when it opens the warehouse
    assert ws.supervisor is not None and ws.scoring is not None
    out = TableRef("lab", "nightly")
    with pytest.raises(DeploymentError, match="again and again"):
        ws.schedules.create(function, SOURCE, out, OutputMode.NEW, every_seconds=2)
    schedule = ws.schedules.create(function, SOURCE, out, OutputMode.APPEND, every_seconds=2, actor="ana")
    assert schedule.description == "every 2 s"
    ws.schedules.sync(ws.supervisor.scheduler)  # what the supervisor does every 30 s (and the page at once)
    deadline = time.monotonic() + 60
    # nobody runs anything here: the supervisor fires the schedule, its scoring thread scores
    while time.monotonic() < deadline and len([r for r in ws.scoring.recent(schedule_id=schedule.schedule_id)
                                               if r.state is ScoringState.SUCCEEDED]) < 2:
        time.sleep(0.5)
    done = [r for r in ws.scoring.recent(schedule_id=schedule.schedule_id) if r.state is ScoringState.SUCCEEDED]
    assert len(done) >= 2 and ws.warehouse.row_count(out) >= 2 * ROWS
    ws.schedules.set_enabled(schedule.schedule_id, False)
    ws.schedules.sync(ws.supervisor.scheduler)
    assert ws.supervisor.scheduler.get_job(f"flurry.schedule.{schedule.schedule_id}") is None
    ws.supervisor.stop()


def test_the_scoring_bundle_scores_a_csv_outside_flurry(scored, tmp_path: Path) -> None:
    """Taking the model out: the bundle scores a CSV in an isolated Python outside the checkout exactly as the
    model does in Flurry (a column named to end a docstring included), and refuses a changed model file."""
    import io
    import zipfile

    from backend.deployed_model import load_bundle, probability_column
    from backend.export import scoring_bundle
    from backend.model_bundle import MODEL_LIBRARIES

    ws, _, _ = scored
    model_id = ws.catalog.production(ws.catalog.models()[0].key).model_id
    with zipfile.ZipFile(io.BytesIO(scoring_bundle(ws.registry, model_id, ws.config))) as archive:
        archive.extractall(tmp_path / "bundle")
    out = tmp_path / "bundle"
    pins = (out / "requirements.txt").read_text().split()
    bundle = load_bundle(ws.registry, model_id)
    assert {f"{name}=={bundle.versions[name]}" for name in MODEL_LIBRARIES if name in bundle.versions} <= set(pins)
    assert WEIRD in bundle.feature_names
    rows = ws.warehouse.preview(SOURCE, 1000).drop(columns=["y"])
    rows.to_csv(tmp_path / "in.csv", index=False)

    def predict(output: str) -> subprocess.CompletedProcess[str]:  # -I: no PYTHONPATH, no user site, run elsewhere
        return subprocess.run([sys.executable, "-I", str(out / "predict.py"), str(tmp_path / "in.csv"),
                               str(tmp_path / output)], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    done = predict("scored.csv")
    assert done.returncode == 0, done.stderr
    assert f"Scored {ROWS:,} rows" in done.stdout
    scored_rows = pd.read_csv(tmp_path / "scored.csv")
    assert scored_rows["prediction"].tolist() == list(bundle.predict(rows))
    assert np.allclose(scored_rows[probability_column(bundle)], bundle.output_probability(rows))
    (out / "model.pkl").write_bytes((out / "model.pkl").read_bytes() + b"!")
    refused = predict("again.csv")
    assert refused.returncode == 1 and "checksum" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "again.csv").exists()


def test_the_exported_script_reproduces_the_runs_holdout_metrics(scored, tmp_path: Path) -> None:
    """reproduce.py, in an isolated Python outside the checkout, draws the sample again from the warehouse (a copy
    of the app's file: the app holds the original), refits the recorded configuration and prints the holdout
    metrics Flurry recorded; it says plainly when the warehouse is held, and never shows a traceback."""
    import io
    import re
    import zipfile

    from backend.export import scoring_bundle

    ws, _, path = scored
    model_id = ws.catalog.production(ws.catalog.models()[0].key).model_id
    with zipfile.ZipFile(io.BytesIO(scoring_bundle(ws.registry, model_id, ws.config))) as archive:
        archive.extractall(tmp_path / "bundle")
    script = tmp_path / "bundle" / "reproduce.py"
    assert str(path) in script.read_text()  # the warehouse the run read is the default
    ws.warehouse.execute("CHECKPOINT")
    # copied by another process: closing any descriptor of the file in this one would drop DuckDB's POSIX lock
    subprocess.run(["cp", str(path), str(tmp_path / "copy.duckdb")], check=True)

    def reproduce(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-I", str(script), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)

    done = reproduce("--warehouse", f"duckdb:///{tmp_path / 'copy.duckdb'}")
    assert done.returncode == 0, done.stderr
    recorded = ws.registry.get_model_version(model_id).metrics
    printed = dict(re.findall(r"^(ROC AUC|Accuracy|Log loss|F1): ([0-9.]+)", done.stdout, re.MULTILINE))
    assert set(printed) == {"ROC AUC", "Accuracy", "Log loss", "F1"}, done.stdout
    for label, name in (("ROC AUC", "roc_auc"), ("Accuracy", "accuracy"), ("Log loss", "log_loss"), ("F1", "f1")):
        assert abs(float(printed[label]) - (recorded.model_score(name) or 0.0)) <= 0.01, (label, done.stdout)
    assert "has changed since the run" not in done.stdout
    held = reproduce()  # the app's own file, which the app holds
    assert held.returncode == 2 and "in use by another program" in held.stderr and "Traceback" not in held.stderr


def test_the_command_line_scores_and_refuses_while_the_app_holds_the_file(scored) -> None:
    ws, function, path = scored
    env = {**os.environ, "FLURRY_WAREHOUSE": f"duckdb:///{path}", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "backend.score", "--function", function, "--source", "lab.people",
               "--output", "lab.from_cron", "--replace"]
    held = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert held.returncode == 2 and "in use by another program" in held.stderr and "Traceback" not in held.stderr
    ws.close()  # the app stops: now the command may open the file
    reopened = None
    try:
        free = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert free.returncode == 0, free.stderr
        assert f"Scored {ROWS:,} rows into lab.from_cron" in free.stdout
        reopened = make_workspace(path, seed_demo=False)
        assert reopened.warehouse.row_count(TableRef("lab", "from_cron")) == ROWS
    finally:
        if reopened is not None:
            reopened.close()


def test_values_in_generated_code_are_python_literals_of_themselves() -> None:
    """JSON's null/true/false and a bare nan are not Python: a regression model's bundle once said
    `PROBABILITY_COLUMN = null`. Every value, however named, evaluates back to itself."""
    import ast
    import math

    from backend.export import python_literal

    value = {"column": WEIRD, "none": None, "flags": [True, False], "n": 3, "x": 0.1, "nested": {"'\n\"": ["é", "\x00"]}}
    assert ast.literal_eval(python_literal(value)) == value
    assert math.isnan(eval(python_literal(float("nan"))))
    with pytest.raises(TypeError):
        python_literal(object())
