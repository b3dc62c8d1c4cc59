"""Driving the wizard headlessly with Streamlit's AppTest, by widget keys: the steps every AppTest suite shares."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/data.py", "pages/target.py", "pages/train.py", "pages/evaluate.py", "pages/deploy.py",
         "pages/dashboard.py", "pages/experiments.py"]


def new_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def choose(at: AppTest, schema: str, table: str, target: str | None = None) -> AppTest:
    """Pick a table on the Data step and, when given, the target on the Target step."""
    at.selectbox(key="data.schema").set_value(schema).run()
    at.selectbox(key="data.table").set_value(table).run()
    if target is not None:
        goto(at, "pages/target.py")
        at.selectbox(key="target.column").set_value(target).run()
    return at


def start_training(at: AppTest, budget: int) -> AppTest:
    """On the Train step: set the budget and press Start."""
    goto(at, "pages/train.py")
    at.number_input(key="train.budget").set_value(budget)
    at.button(key="train.start").click().run()
    return at


def wait_for_model(at: AppTest, timeout: float = 90) -> None:
    """Rerun the Train step until its run has produced a model (as the page's fragment would)."""
    deadline = time.monotonic() + timeout
    while "wizard.model_id" not in at.session_state and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception, at.exception
    assert "wizard.model_id" in at.session_state, "training did not finish"


def score_and_wait(at: AppTest, timeout: float = 90) -> None:
    """Press Score on the Deploy step, then rerun until the supervisor has scored the table (as the page's
    fragment does every second)."""
    at.button(key="deploy.score").click().run()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(w in texts(at, "success") + texts(at, "error") + texts(at, "warning")
                                                  for w in ("Scored", "Scoring failed", "stopped")):
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception


def texts(at: AppTest, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def damage_and_reopen(database: Path, model_id: str) -> AppTest:
    """Damage a version's stored model file behind the app's back (the same database, from this process), then
    open the app again as a viewer would once the health check's cache has expired, on that version."""
    import duckdb

    from components import backend_calls

    with duckdb.connect(str(database)) as con:
        con.execute('UPDATE "flurry"."artifacts" SET content = ? WHERE model_id = ? AND name = \'bundle\'',
                    [b"tampered", model_id])
    backend_calls._health.clear()  # as if its 15 s had passed
    at = new_app()
    at.session_state["wizard.model_id"] = model_id
    return at
