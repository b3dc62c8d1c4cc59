"""Named models and versions: numbering, promote and roll back changing what SQL returns, and a tampered
artifact shown as broken with functions that refuse."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.errors import ArtifactIntegrityError, DeploymentError
from backend.identifiers import quote_ident
from backend.model_catalog import Stage
from backend.model_health import refuse_broken_deployments, version_health
from backend.promotion import promote, rollback
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import make_workspace, wait_for

ROWS = 400


def _signal_table(ws: Workspace, flipped: bool) -> TableRef:
    """y is 'up' where x > 0 (or, flipped, where x < 0): two versions that disagree on every row."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=ROWS)
    up = (x < 0) if flipped else (x > 0)
    table = TableRef("lab", "signal")
    ws.warehouse.write_table(table, pd.DataFrame({"x": x, "noise": rng.normal(size=ROWS),
                                                  "y": np.where(up, "up", "down")}), replace=True)
    return table


def _train(ws: Workspace, table: TableRef, target: str = "y") -> str:
    config = ws.train_config(table, target, Task.BINARY, ["x", "noise"], "roc_auc", 2, ensemble=False,
                             estimators=("lgbm",))
    progress = wait_for(ws, ws.jobs.start(config))
    assert progress.model_id, progress.run.message
    return progress.model_id


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, str, Path]]:
    """One warehouse for the whole module, its tests in order: numbering, promote and roll back, the Deploy
    step in the app (which ends by damaging v2's file), then what a damaged version does."""
    path = tmp_path_factory.mktemp("versions") / "v.duckdb"
    ws = make_workspace(path, seed_demo=False)
    ws.warehouse.ensure_schema("lab")
    first = _train(ws, _signal_table(ws, flipped=False))
    second = _train(ws, _signal_table(ws, flipped=True))
    yield ws, first, second, path
    ws.close()


def _label_at(ws: Workspace, function: str, x: float) -> str:
    frame = ws.warehouse.query(f"SELECT {quote_ident(function)}(?, 0.0) AS label", [x])
    return str(frame["label"].iloc[0])


def test_runs_on_the_same_table_and_target_are_numbered_versions_of_one_model(versions) -> None:
    ws, first, second, _ = versions
    model = ws.catalog.model_of(first)
    assert ws.catalog.model_of(second).key == model.key == "signal_y"
    assert [(v.number, v.model_id, v.stage) for v in ws.catalog.versions(model.key)] == [
        (2, second, Stage.CANDIDATE), (1, first, Stage.CANDIDATE)]
    assert model.function_name == "flurry_predict_signal_y" and model.version_function(2) == "flurry_predict_signal_y_v2"
    ws.catalog.rename(model.key, "  market   direction ")
    assert ws.catalog.model(model.key).name == "market direction"


def test_promote_and_roll_back_change_what_the_sql_function_returns(versions) -> None:
    ws, first, second, _ = versions
    key = ws.catalog.model_of(first).key
    function = ws.catalog.model(key).function_name
    promote(ws.warehouse, ws.registry, first, actor="ana")
    assert _label_at(ws, function, 2.0) == "up"
    promoted = promote(ws.warehouse, ws.registry, second, actor="ben")
    assert promoted.production.predict == function and promoted.version.stage is Stage.PRODUCTION
    assert _label_at(ws, function, 2.0) == "down"  # the same query, the new version's answer
    assert _label_at(ws, "flurry_predict_signal_y_v1", 2.0) == "up"  # the old one stays callable by name
    stages = {v.number: v.stage for v in ws.catalog.versions(key)}
    assert stages == {2: Stage.PRODUCTION, 1: Stage.ARCHIVED}
    back = rollback(ws.warehouse, ws.registry, key, actor="ana")
    assert back.version.model_id == first and _label_at(ws, function, 2.0) == "up"
    history = ws.catalog.history(key)
    assert [(c.number, c.stage, c.actor) for c in history[:3]] == [
        (1, Stage.PRODUCTION, "ana"), (2, Stage.ARCHIVED, "ana"), (2, Stage.PRODUCTION, "ben")]
    assert "rolled back from v2 to v1" in history[0].note
    with pytest.raises(DeploymentError, match="in production"):
        ws.catalog.archive(first, "ana")


@pytest.mark.floor
def test_the_deploy_step_promotes_rolls_back_and_shows_a_broken_version(versions,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.apptest_steps import damage_and_reopen, goto, new_app, texts

    ws, _, second, path = versions
    ws.warehouse.execute("CHECKPOINT")
    app_file = path.with_name("app.duckdb")  # the app gets its own copy: one Flurry per database file
    shutil.copy(path, app_file)
    monkeypatch.setenv("FLURRY_WAREHOUSE", f"duckdb:///{app_file}")
    at = new_app()
    at.session_state["wizard.model_id"] = second
    goto(at, "pages/deploy.py")
    assert "serves v1 now" in texts(at, "caption").replace("\\", "")
    at.button(key="deploy.deploy").click().run()  # "Promote v2 to production…" asks first
    assert "instead of v1" in texts(at, "warning")
    at.button(key="deploy.confirm").click().run()
    assert "now serves v2" in texts(at, "success"), texts(at, "error")
    at.button(key="deploy.rollback").click().run()
    at.button(key="deploy.confirm_rollback").click().run()
    assert "now serves v1" in texts(at, "success"), texts(at, "error")

    # damage v2's stored file behind the app's back (the same database, from this process)
    at = damage_and_reopen(app_file, second)
    for page in ("pages/deploy.py", "pages/experiments.py"):
        goto(at, page)
        assert "is broken" in texts(at, "error") and "checksum" in texts(at, "error"), (page, texts(at, "error"))
    at.query_params["model"] = second
    goto(at, "pages/dashboard.py")
    assert "is broken" in texts(at, "error") and "owner can retrain it" in texts(at, "error")


def test_a_tampered_artifact_is_broken_and_its_functions_refuse(versions) -> None:
    ws, first, second, path = versions
    function = "flurry_predict_signal_y_v2"  # v2's own function, made when it was promoted
    ws.warehouse.execute(f"UPDATE {ws.registry.t('artifacts')} SET content = ? WHERE model_id = ? AND name = 'bundle'",
                         [b"not the model", second])
    health = version_health(ws.registry, second)
    assert not health.ok and "checksum" in health.reason and "Roll back" in health.remedy
    assert version_health(ws.registry, first).ok
    with pytest.raises(ArtifactIntegrityError):
        promote(ws.warehouse, ws.registry, second)
    # while the app runs, the supervisor's check replaces the functions
    assert refuse_broken_deployments(ws.warehouse, ws.registry, set()) == [function]
    with pytest.raises(Exception, match="does not match its checksum"):
        ws.warehouse.query(f"SELECT {quote_ident(function)}(1.0, 0.0)")
    assert _label_at(ws, "flurry_predict_signal_y", 2.0) == "up"  # production (v1) serves on
    ws.close()
    reopened = make_workspace(path, seed_demo=False)  # after a restart, too
    try:
        with pytest.raises(Exception, match="Roll back to an earlier version"):
            reopened.warehouse.query(f"SELECT {quote_ident(function)}(1.0, 0.0)")
        assert _label_at(reopened, "flurry_predict_signal_y", 2.0) == "up"
    finally:
        reopened.close()
