"""A useless or damaged model cannot be put to work by one careless click (AppTest, real training and DuckDB):
deploying a model its report calls useless asks first and repeats why; its threshold advice and drivers say
what they are worth; Experiments calls it useless; once its only version's file is damaged, nothing says it
serves, scoring is off, and the remedy names no version that does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.evaluation import summary as words
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from tests.conftest import make_workspace, wait_for

ROWS = 3000  # a holdout of 600 rows: pure noise stays far below the useless line (ROC AUC 0.6)


@pytest.fixture(scope="module")
def useless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    path = tmp_path_factory.mktemp("guards") / "g.duckdb"
    ws = make_workspace(path, seed_demo=False)
    rng = np.random.default_rng(8)
    table = TableRef("lab", "coin_flips")
    ws.warehouse.ensure_schema("lab")
    ws.warehouse.write_table(table, pd.DataFrame({"a": rng.normal(size=ROWS), "b": rng.normal(size=ROWS),
                                                  "flip": rng.choice(["heads", "tails"], ROWS, p=[0.3, 0.7])}))
    config = ws.train_config(table, "flip", Task.BINARY, ["a", "b"], "roc_auc", 2, ensemble=False,
                             estimators=("lgbm",))
    progress = wait_for(ws, ws.jobs.start(config))
    assert progress.model_id, progress.run.message
    report = ws.registry.get_model_version(progress.model_id).report
    assert report is not None and words.is_useless(report)
    ws.close()
    yield path, progress.model_id


def test_a_useless_model_asks_before_it_deploys_and_says_what_it_is_worth(useless, monkeypatch: pytest.MonkeyPatch
                                                                          ) -> None:
    from components import backend_calls
    from tests.apptest_steps import damage_and_reopen, goto, new_app, texts

    path, model_id = useless
    monkeypatch.setenv("FLURRY_WAREHOUSE", f"duckdb:///{path}")
    at = new_app()
    at.session_state["wizard.model_id"] = model_id
    goto(at, "pages/evaluate.py")
    assert words.USELESS_THRESHOLD in texts(at, "warning") and words.USELESS_DRIVERS in texts(at, "warning")

    goto(at, "pages/experiments.py")
    table = next(d.value for d in at.dataframe if "health" in d.value.columns)
    assert table["health"].tolist() == ["useless"]

    goto(at, "pages/deploy.py")
    at.button(key="deploy.deploy").click().run()  # one click deploys nothing: it asks, and says why
    assert "barely better than the naive baseline" in texts(at, "warning") and "Deploy it anyway?" in texts(at, "warning")
    assert "Deployed" not in texts(at, "success")
    assert not backend_calls.workspace().warehouse.function_exists("flurry_predict_coin_flips_flip")
    at.button(key="deploy.confirm_useless").click().run()
    assert "Deployed" in texts(at, "success"), texts(at, "error")
    assert backend_calls.workspace().warehouse.function_exists("flurry_predict_coin_flips_flip")
    assert at.button(key="deploy.score") is not None  # a working model in production can score

    # its only version's file damaged behind the app's back
    at = damage_and_reopen(path, model_id)
    goto(at, "pages/deploy.py")
    errors = texts(at, "error")
    assert "is broken" in errors and "checksum" in errors
    assert "no earlier version to roll back to" in errors and "Roll back to" not in errors
    assert "serves it" not in texts(at, "success")  # no green "in production" beside the red "broken"
    assert "Scoring, schedules and the SQL example are off" in texts(at, "info")
    assert not [b for b in at.button if b.key == "deploy.score"]


def test_a_run_that_failed_unexpectedly_shows_a_sentence_and_keeps_its_traceback_folded_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Snowflake procedure leaves for an unexpected failure (its message and a traceback event), as the
    Train step shows it: the sentence in the error, the traceback only under the administrator's details."""
    from backend.registry import RunState
    from backend.training.runner import TRACEBACK_EVENT
    from tests.apptest_steps import goto, new_app, texts

    path = tmp_path / "failed.duckdb"
    ws = make_workspace(path)
    table = TableRef("demo", "penguins")
    config = ws.train_config(table, "species", Task.MULTICLASS, ["island"], "log_loss", 2)
    run_id = ws.registry.create_run(table=table, target="species", task="multiclass", metric="log_loss",
                                    time_budget=2, config=config.to_dict(), job_dir="snowflake-procedure")
    ws.registry.set_run_state(run_id, RunState.FAILED, message="Training failed in Snowflake: KeyError: 'target'")
    ws.registry.add_events(run_id, TRACEBACK_EVENT, [{"traceback": "Traceback (most recent call last):\n  KeyError"}])
    ws.close()
    monkeypatch.setenv("FLURRY_WAREHOUSE", f"duckdb:///{path}")
    at = new_app()
    at.selectbox(key="data.table").set_value("penguins").run()
    goto(at, "pages/target.py")
    at.selectbox(key="target.column").set_value("species").run()
    at.session_state["wizard.run_id"] = run_id
    goto(at, "pages/train.py")
    assert not at.exception
    assert "Training failed in Snowflake: KeyError" in texts(at, "error").replace("\\", "")
    assert "Traceback" not in texts(at, "error")
    (details,) = [e for e in at.expander if e.label == "Technical details (for your administrator)"]
    assert "Traceback (most recent call last)" in details.code[0].value
