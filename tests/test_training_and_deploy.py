"""The whole backend path on real DuckDB, real FLAML fits (small budgets) and real SHAP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.deploy import default_function_name, deploy, score_table
from backend.deployed_model import load_bundle
from backend.errors import (
    ArtifactIntegrityError,
    DeploymentError,
    InvalidTargetError,
    InvalidTrainingOptionError,
    TableNotFoundError,
)
from backend.identifiers import quote_ident
from backend.registry import RunState
from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.jobs import RunProgress
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from components.training_view import rows_sentence
from tests.conftest import make_workspace, put_table, train_and_wait, wait_for

PENGUINS = TableRef("demo", "penguins")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Workspace, RunProgress]]:
    path = tmp_path_factory.mktemp("trained") / "w.duckdb"
    ws = make_workspace(path)
    progress = train_and_wait(ws, PENGUINS, "species")
    yield path, ws, progress
    ws.close()


def sql_call(function: str, features: list[str], table: TableRef) -> str:
    args = ", ".join(quote_ident(f) for f in features)
    return f"SELECT {function}({args}) AS p FROM {quote_ident(table.schema)}.{quote_ident(table.name)}"


def test_training_persists_run_events_and_a_verified_model_version(trained) -> None:
    _, ws, progress = trained
    assert progress.run.state is RunState.SUCCEEDED
    assert len(progress.trials) > 0 and progress.trials[-1].elapsed > 0
    assert progress.best_per_estimator()
    version = ws.registry.get_model_version(progress.model_id)
    assert version.task == Task.MULTICLASS.value and version.best_estimator
    accuracy = version.metrics.scores["accuracy"]
    assert accuracy.model is not None and accuracy.baseline is not None and accuracy.baseline < accuracy.model <= 1.0
    assert accuracy.model > 0.5 and version.metrics.train_rows and version.metrics.holdout_rows
    assert {row["feature"] for row in version.importance} <= set(version.feature_names)
    assert version.importance[0]["importance"] > 0
    assert {"python", "flaml", "lightgbm", "scikit-learn"} <= set(version.versions)
    states = [e.payload["state"] for e in ws.registry.events(progress.run.run_id, "state")]
    assert states == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert not Path(progress.run.job_dir).exists(), "job files are cleaned up"


def test_sql_function_returns_exactly_what_predict_returns(trained) -> None:
    _, ws, progress = trained
    version = ws.registry.get_model_version(progress.model_id)
    functions = deploy(ws.warehouse, ws.registry, version.model_id, "flurry_predict_penguin_species")
    from_sql = ws.warehouse.query(sql_call(functions.predict, version.feature_names, PENGUINS))["p"].to_numpy()
    bundle = load_bundle(ws.registry, version.model_id)
    direct = bundle.predict(ws.warehouse.read_columns(PENGUINS, version.feature_names))
    assert len(from_sql) == 344
    assert list(from_sql) == list(direct)
    proba = ws.warehouse.query(sql_call(functions.probability, version.feature_names, PENGUINS))["p"].to_numpy()
    expected = bundle.predict_proba(ws.warehouse.read_columns(PENGUINS, version.feature_names)).max(axis=1)
    np.testing.assert_allclose(proba, expected)


def test_a_model_stored_before_its_parts_were_records_reads_and_predicts_the_same(trained) -> None:
    """Bundles pickled with their features as dicts (one of them without its kind) and versions whose metrics
    and leaderboard were stored as plain JSON read back as the records, and predict alike."""
    import pickle
    from dataclasses import replace

    from backend.version_records import VersionMetrics, leaderboard_from_dicts

    _, ws, progress = trained
    bundle = load_bundle(ws.registry, progress.model_id)
    legacy = [f.to_dict() for f in bundle.features]
    del legacy[0]["kind"]  # the oldest bundles kept only name and SQL type
    old = pickle.loads(pickle.dumps(replace(bundle, features=legacy)))  # unpickling converts: the old files' path
    assert old.features == bundle.features
    rows = ws.warehouse.read_columns(PENGUINS, bundle.feature_names)
    assert list(old.predict(rows)) == list(bundle.predict(rows))
    version = ws.registry.get_model_version(progress.model_id)
    assert VersionMetrics.from_dict(version.metrics.to_dict()) == version.metrics
    assert version.metrics.train_rows and version.metrics.holdout_rows and version.metrics.headline is not None
    assert leaderboard_from_dicts([e.to_dict() for e in version.leaderboard]) == version.leaderboard
    stored = {name: {"model": s.model, "baseline": s.baseline} for name, s in version.metrics.scores.items()}
    assert VersionMetrics.from_dict(stored).scores == version.metrics.scores  # no row counts: recorded earlier
    assert VersionMetrics.from_dict(stored).train_rows is None


def test_the_fast_input_transform_is_flamls_own_on_missing_and_unseen_values(trained) -> None:
    """Scoring skips FLAML's per-call transform overhead (backend.fast_transform); the frame it builds must be
    FLAML's to the dtype and category, with missing numbers, missing text and text never seen in training."""
    from backend import fast_transform
    from backend.model_bundle import prepare_features, to_model_frame

    _, ws, progress = trained
    bundle = load_bundle(ws.registry, progress.model_id)
    rows = ws.warehouse.read_columns(PENGUINS, bundle.feature_names)
    text = [f.name for f in bundle.features if f.kind == "text"]
    numbers = [f.name for f in bundle.features if f.kind == "numeric"]
    assert text and numbers
    odd = rows.copy()
    odd.loc[odd.index[::3], numbers[0]] = np.nan
    odd.loc[odd.index[1::4], text[0]] = None
    odd.loc[odd.index[2::5], text[0]] = "an island no penguin came from"
    prepared = to_model_frame(prepare_features(odd, bundle.features))
    assert fast_transform.supported(bundle.transformer)
    pd.testing.assert_frame_equal(fast_transform.fast_transform(bundle.transformer, prepared),
                                  bundle.transformer.transform(prepared))
    assert fast_transform.matches_flaml(bundle.transformer, prepared)
    np.testing.assert_allclose(bundle.estimator.predict_proba(bundle.model_input(odd)),
                               bundle.estimator.predict_proba(bundle.transformer.transform(prepared)))


def test_batch_scoring_writes_a_table_and_refuses_to_clobber(trained) -> None:
    _, ws, progress = trained
    version = ws.registry.get_model_version(progress.model_id)
    deploy(ws.warehouse, ws.registry, version.model_id, "flurry_predict_penguin_species")
    out = TableRef("scores", "penguins scored")  # a name with a space, quoted everywhere
    result = score_table(ws.warehouse, ws.registry, "flurry_predict_penguin_species", PENGUINS, out)
    assert result.rows == 344
    scored = ws.warehouse.preview(out, 1000)
    bundle = load_bundle(ws.registry, version.model_id)
    assert list(scored["prediction"]) == list(bundle.predict(scored))
    assert scored["probability"].between(0, 1).all()
    with pytest.raises(DeploymentError, match="already exists"):
        score_table(ws.warehouse, ws.registry, "flurry_predict_penguin_species", PENGUINS, out)
    with pytest.raises(DeploymentError, match="cannot overwrite the table being scored"):
        score_table(ws.warehouse, ws.registry, "flurry_predict_penguin_species", PENGUINS, PENGUINS, overwrite=True)


def test_failed_scoring_leaves_the_previous_output_intact(trained) -> None:
    _, ws, progress = trained
    deploy(ws.warehouse, ws.registry, progress.model_id, "flurry_predict_penguin_species")
    out = TableRef("scores", "kept")
    score_table(ws.warehouse, ws.registry, "flurry_predict_penguin_species", PENGUINS, out)
    broken = put_table(ws, "no_features", pd.DataFrame({"island": ["Dream"], "other": [1]}))
    with pytest.raises(DeploymentError, match="lacks the model's input"):
        score_table(ws.warehouse, ws.registry, "flurry_predict_penguin_species", broken, out, overwrite=True)
    assert ws.warehouse.row_count(out) == 344


def test_models_and_functions_survive_a_restart(trained) -> None:
    path, ws, progress = trained
    deploy(ws.warehouse, ws.registry, progress.model_id, "flurry_predict_penguin_species")
    features = ws.registry.get_model_version(progress.model_id).feature_names
    before = ws.warehouse.query(sql_call("flurry_predict_penguin_species", features, PENGUINS))["p"].tolist()
    ws.close()
    reopened = make_workspace(path)
    try:
        assert reopened.registry.get_run(progress.run.run_id).state is RunState.SUCCEEDED
        assert reopened.registry.get_model_version(progress.model_id).model_id == progress.model_id
        after = reopened.warehouse.query(sql_call("flurry_predict_penguin_species", features, PENGUINS))["p"].tolist()
        assert after == before
    finally:
        reopened.close()
        # hand the module fixture a live connection again
        trained_ws = make_workspace(path)
        ws.warehouse = trained_ws.warehouse
        ws.registry = trained_ws.registry
        ws.jobs = trained_ws.jobs


def test_a_tampered_model_artifact_is_never_loaded(trained) -> None:
    _, ws, progress = trained
    ws.warehouse.execute(
        'UPDATE "FLURRY".artifacts SET content = ? WHERE model_id = ? AND name = ?',
        [b"not a model", progress.model_id, "bundle"])
    with pytest.raises(ArtifactIntegrityError):
        load_bundle(ws.registry, progress.model_id)


def test_a_model_stored_in_parts_loads_only_whole_and_unaltered(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts are stored in parts (Snowflake's BINARY holds 8 MB); small parts here make a model span many."""
    from backend import registry as registry_module

    monkeypatch.setattr(registry_module, "ARTIFACT_PART_BYTES", 4096)
    ws = make_workspace(tmp_path / "parts.duckdb")
    try:
        progress = train_and_wait(ws, PENGUINS, "species", budget=2)
        parts = 'SELECT count(*) AS n FROM "FLURRY".artifacts WHERE model_id = ? AND name = ?'
        stored = int(ws.warehouse.query(parts, [progress.model_id, "bundle"])["n"].iloc[0])
        assert stored > 2
        frame = ws.warehouse.read_columns(PENGUINS, load_bundle(ws.registry, progress.model_id).feature_names, limit=50)
        expected = load_bundle(ws.registry, progress.model_id).predict(frame)
        # written before parts existed: one row, no part number
        whole = ws.registry.get_artifact(progress.model_id, "bundle")
        ws.warehouse.execute('DELETE FROM "FLURRY".artifacts WHERE model_id = ? AND name = ?', [progress.model_id, "bundle"])
        ws.warehouse.execute('INSERT INTO "FLURRY".artifacts (model_id, name, sha256, size_bytes, content, created_at) '
                             "VALUES (?, ?, ?, ?, ?, now())",
                             [progress.model_id, "bundle", registry_module.sha256_bytes(whole), len(whole), whole])
        assert list(load_bundle(ws.registry, progress.model_id).predict(frame)) == list(expected)
        # a part gone or altered: never loaded
        ws.warehouse.execute('DELETE FROM "FLURRY".artifacts WHERE model_id = ? AND name = ?', [progress.model_id, "bundle"])
        for part, piece in enumerate(registry_module.artifact_parts(whole)):
            if part != 1:
                ws.warehouse.execute(
                    'INSERT INTO "FLURRY".artifacts (model_id, name, sha256, size_bytes, content, created_at, part) '
                    "VALUES (?, ?, ?, ?, ?, now(), ?)",
                    [progress.model_id, "bundle", registry_module.sha256_bytes(whole), len(whole), piece, part])
        with pytest.raises(ArtifactIntegrityError):
            ws.registry.get_artifact(progress.model_id, "bundle")
    finally:
        ws.close()


def test_regression_with_text_columns(workspace: Workspace) -> None:
    progress = train_and_wait(workspace, TableRef("demo", "diamond_prices"), "price")
    version = workspace.registry.get_model_version(progress.model_id)
    assert (version.metrics.model_score("r2") or 0) > 0.8
    name = default_function_name(version)
    deploy(workspace.warehouse, workspace.registry, version.model_id, name)
    table = TableRef("demo", "diamond_prices")
    head = workspace.warehouse.query(sql_call(name, version.feature_names, table) + " LIMIT 500")["p"].to_numpy()
    direct = load_bundle(workspace.registry, version.model_id).predict(
        workspace.warehouse.read_columns(table, version.feature_names, limit=500))
    np.testing.assert_allclose(head, direct, rtol=1e-9)  # forests sum trees across threads: last-bit noise


def test_rows_without_a_target_are_dropped_and_counted(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "colour": rng.choice(["red", "blue"], 200), "y": np.where(x > 0, "up", "down")})
    frame.loc[:24, "y"] = None
    table = put_table(empty_workspace, "partly_labelled", frame)
    progress = train_and_wait(empty_workspace, table, "y", budget=2)
    assert (progress.run.rows_used, progress.run.rows_dropped) == (175, 25)
    assert progress.left_out is not None and progress.left_out.missing_target == 25
    assert rows_sentence(progress.run, progress.left_out) == "Training on 175 rows; 25 rows left out: 25 with no value of y."


def test_every_reason_a_row_is_left_out_is_said_with_its_count(empty_workspace: Workspace) -> None:
    """Duplicates the user chose to drop are not "no target value, or a class too small to learn"."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=300)
    labels = np.where(x > 0, "up", "down").astype(object)
    labels[:3] = "glitch"
    labels[3:13] = None
    frame = pd.DataFrame({"x": x, "y": labels})
    frame = pd.concat([frame, frame.iloc[20:60]], ignore_index=True)  # 40 exact copies of labelled rows
    table = put_table(empty_workspace, "messy", frame)
    config = empty_workspace.train_config(table, "y", Task.BINARY, ["x"], "roc_auc", 2, deduplicate=True)
    assert config.drop_classes == ("glitch",)
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    left = progress.left_out
    assert left is not None and (left.missing_target, left.excluded_classes, left.duplicates) == (10, 3, 40)
    assert rows_sentence(progress.run, left) == (
        "Training on 287 rows; 53 rows left out: 10 with no value of y; 3 of the classes you left out as too rare "
        "to learn; 40 exact duplicates, as you chose to train on distinct rows.")


def test_budget_out_of_range_is_refused_before_any_run(workspace: Workspace) -> None:
    for budget in (0, 1, 100_000):
        with pytest.raises(InvalidTrainingOptionError, match="between"):
            workspace.train_config(PENGUINS, "species", Task.MULTICLASS, ["island"], "log_loss", budget)
    assert workspace.registry.list_runs() == []


def test_a_dropped_table_is_reported_not_crashed(workspace: Workspace) -> None:
    table = put_table(workspace, "short_lived", pd.DataFrame({"a": [1, 2, 3] * 10, "b": ["x", "y", "z"] * 10}))
    config = workspace.train_config(table, "b", Task.MULTICLASS, ["a"], "log_loss", 5)
    workspace.warehouse.drop_table(table)
    with pytest.raises(TableNotFoundError, match="does not exist"):
        workspace.jobs.start(config)
    with pytest.raises(TableNotFoundError):
        workspace.target_summary(table, "b")
    assert workspace.registry.list_runs() == []


def test_too_few_labelled_rows_fail_the_run_with_a_reason(empty_workspace: Workspace) -> None:
    frame = pd.DataFrame({"x": range(30), "y": [float(i) for i in range(8)] + [None] * 22})
    table = put_table(empty_workspace, "sparse", frame)
    config = empty_workspace.train_config(table, "y", Task.REGRESSION, ["x"], "r2", 5)
    with pytest.raises(InvalidTargetError, match="Only 8 rows"):
        empty_workspace.jobs.start(config)
    (run,) = empty_workspace.registry.list_runs()
    assert run.state is RunState.FAILED and "Only 8 rows" in run.message
    assert empty_workspace.registry.list_model_versions() == []


def test_classes_too_small_to_learn_are_refused_or_left_out(empty_workspace: Workspace) -> None:
    frame = pd.DataFrame({"x": range(30), "y": ["a", "b"] + [None] * 28})
    table = put_table(empty_workspace, "two_singletons", frame)
    with pytest.raises(InvalidTargetError, match="fewer than two classes"):
        empty_workspace.train_config(table, "y", Task.BINARY, ["x"], "roc_auc", 5)
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    labels = np.where(x > 0, "up", "down").astype(object)
    labels[:3] = "glitch"
    table = put_table(empty_workspace, "with_rare", pd.DataFrame({"x": x, "y": labels}))
    config = empty_workspace.train_config(table, "y", Task.MULTICLASS, ["x"], "log_loss", 2)
    assert config.drop_classes == ("glitch",)
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    assert (progress.run.rows_used, progress.run.rows_eligible) == (297, 297)
    bundle = load_bundle(empty_workspace.registry, progress.model_id)
    assert bundle.classes == ["down", "up"]


def test_hostile_column_names_and_a_linear_model_explained_exactly(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(7)
    n = 300
    signal = rng.normal(size=n)
    frame = pd.DataFrame({
        'weird "quoted": name': signal,
        "order": rng.choice(["a", "b", "c"], n),
        "Größe, in cm": rng.normal(size=n),
        "select": np.where(signal + rng.normal(scale=0.3, size=n) > 0, "yes", "no"),
    })
    table = put_table(empty_workspace, "Hostile Table", frame)
    features = ['weird "quoted": name', "order", "Größe, in cm"]
    config = empty_workspace.train_config(table, "select", Task.BINARY, features, "roc_auc", 3)
    config = TrainConfig(**{**config.__dict__, "estimators": ("lrl1",)})
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    version = empty_workspace.registry.get_model_version(progress.model_id)
    assert version.best_estimator == "lrl1"
    top = version.importance[0]
    assert top["feature"] == 'weird "quoted": name' and top["importance"] > 0
    assert version.report is not None and version.report.shap is not None
    assert version.report.shap.method == "exact linear SHAP"
    assert version.report is not None and version.report.shap is not None
    assert version.report.shap.method == "exact linear SHAP"
    deploy(empty_workspace.warehouse, empty_workspace.registry, version.model_id, "flurry_predict_hostile")
    from_sql = empty_workspace.warehouse.query(sql_call("flurry_predict_hostile", features, table))["p"].tolist()
    direct = load_bundle(empty_workspace.registry, version.model_id).predict(
        empty_workspace.warehouse.read_columns(table, features))
    assert from_sql == list(direct)


def test_a_boolean_target(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    table = put_table(empty_workspace, "bools", pd.DataFrame({"x": x, "big": x > 0.2}))
    progress = train_and_wait(empty_workspace, table, "big", budget=2)
    name = "flurry_predict_bools"
    deploy(empty_workspace.warehouse, empty_workspace.registry, progress.model_id, name)
    from_sql = empty_workspace.warehouse.query(sql_call(name, ["x"], table))["p"].tolist()
    direct = load_bundle(empty_workspace.registry, progress.model_id).predict(
        empty_workspace.warehouse.read_columns(table, ["x"]))
    assert from_sql == list(direct) and set(from_sql) == {True, False}


def test_date_and_number_as_text_features_end_to_end(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(8)
    n = 400
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    amount = rng.normal(100, 30, n)
    frame = pd.DataFrame({
        "signup_day": day.date,  # a DATE column in the warehouse
        "seen_at": day + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "amount_text": [f"{a:.2f}" if i % 25 else "n/a" for i, a in enumerate(amount)],
        "spend": amount * 3 + (day.month.to_numpy() * 10) + rng.normal(0, 5, n),
    })
    table = put_table(empty_workspace, "dated", frame)
    features = ["signup_day", "seen_at", "amount_text"]
    config = empty_workspace.train_config(table, "spend", Task.REGRESSION, features, "r2", 3, casts=("amount_text",))
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    version = empty_workspace.registry.get_model_version(progress.model_id)
    assert {row["feature"] for row in version.importance} <= set(features)
    assert dict((r["feature"], r["importance"]) for r in version.importance)["amount_text"] > 0
    deploy(empty_workspace.warehouse, empty_workspace.registry, version.model_id, "flurry_predict_spend")
    from_sql = empty_workspace.warehouse.query(sql_call("flurry_predict_spend", features, table))["p"].to_numpy()
    direct = load_bundle(empty_workspace.registry, version.model_id).predict(
        empty_workspace.warehouse.read_columns(table, features))
    np.testing.assert_allclose(from_sql, direct, rtol=1e-9)  # forests sum trees across threads: last-bit noise


def test_time_ordered_validation_judges_on_the_latest_rows(empty_workspace: Workspace) -> None:
    rng = np.random.default_rng(9)
    n = 400
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.permutation(n), unit="D")  # shuffled in the table
    x = rng.normal(size=n)
    table = put_table(empty_workspace, "timed", pd.DataFrame({"day": day, "x": x, "y": x * 3 + rng.normal(size=n)}))
    config = empty_workspace.train_config(table, "y", Task.REGRESSION, ["x"], "r2", 2, time_column="day",
                                          validation="holdout", split_ratio=0.2)
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.run.state is RunState.SUCCEEDED, progress.run.message
    holdout = empty_workspace.holdout_frame(progress.model_id)
    assert len(holdout) == 80 and holdout["day"].min() > pd.Timestamp("2024-01-01") + pd.Timedelta(days=n * 0.8 - 2)
    assert load_bundle(empty_workspace.registry, progress.model_id).feature_names == ["x"]


def test_catboost_is_offered_exactly_when_it_is_installed(workspace: Workspace) -> None:
    import importlib.util

    from backend.training.config import available_estimators

    installed = importlib.util.find_spec("catboost") is not None
    assert ("catboost" in available_estimators()) is installed
    if installed:
        config = workspace.train_config(PENGUINS, "species", Task.MULTICLASS, ["island", "bill_length_mm"],
                                        "log_loss", 5, estimators=("catboost",))
        assert config.estimators == ("catboost",)
    else:
        with pytest.raises(InvalidTrainingOptionError, match="catboost is not installed"):
            workspace.train_config(PENGUINS, "species", Task.MULTICLASS, ["island"], "log_loss", 5,
                                   estimators=("catboost",))
