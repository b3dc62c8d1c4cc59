"""Concurrency: several users at once on one warehouse — two collecting new versions of the same model, one
promoting and rolling back, one browsing and scoring through the SQL function — on real threads against the
real embedded warehouse. No duplicate or missing version numbers, no lost promotion, what SQL serves is what
the catalog says is in production, and nobody sees an error.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from playwright.sync_api import Page

from backend.deploy import MODEL_VERSION_COLUMN, score_table
from backend.deployed_model import load_bundle
from backend.errors import DeploymentError
from backend.model_catalog import Catalog, Stage
from backend.promotion import promote, rollback
from backend.registry import RunState, now
from backend.task_detection import Task
from backend.training.dispatch import train_run
from backend.training.jobs import record_model_version
from backend.training.results import result_summary
from backend.warehouse.base import TableRef
from tests.conftest import FAST_BUDGET_S, make_workspace, put_table, train_and_wait
from tests.reliability.conftest import Observed

NEW_VERSIONS = 6  # per collecting user


def test_users_at_once_never_share_a_version_number_or_lose_a_promotion(tmp_path: Path, observed: Observed) -> None:
    ws = make_workspace(tmp_path / "busy.duckdb", seed_demo=False)
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    table = put_table(ws, "signal", pd.DataFrame({"x": x, "noise": rng.normal(size=400),
                                                  "y": np.where(x > 0, "up", "down")}))
    config = ws.train_config(table, "y", Task.BINARY, ["x", "noise"], "roc_auc", 2, ensemble=False,
                             estimators=("lgbm",))
    result = train_run(ws.warehouse.read_columns(table, list(config.exported_columns)), config,
                       tmp_path / "trials.jsonl")  # one fit, in this process; every version below reuses it
    bundle = result.bundle.to_bytes()
    summary = json.loads(json.dumps(result_summary(result, bundle)))

    def collect_one() -> str:
        """What the supervisor does when a worker finishes: the run recorded, its version written."""
        run_id = ws.registry.create_run(table=table, target="y", task="binary", metric="roc_auc", time_budget=2,
                                        config=config.to_dict(), job_dir=str(tmp_path))
        ws.registry.set_run_state(run_id, RunState.RUNNING)
        return record_model_version(ws.registry, run_id, config, summary, bundle, result.holdout_parquet)

    first = collect_one()
    key = Catalog(ws.registry).model_of(first).key
    promote(ws.warehouse, ws.registry, first)
    function = Catalog(ws.registry).model_of(first).function_name
    promoted: list[str] = [first]
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def user(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait()
                work()
            except BaseException as exc:  # every user's error is the test's failure
                failures.append(exc)
        return run

    def collector() -> None:
        for _ in range(NEW_VERSIONS):
            collect_one()

    def promoter() -> None:
        chance = random.Random(3)
        for _ in range(8):
            versions = Catalog(ws.registry).versions(key)
            if chance.random() < 0.3 and len(promoted) > 1:
                with contextlib.suppress(DeploymentError):  # nothing earlier to go back to: said, nothing changed
                    promoted.append(rollback(ws.warehouse, ws.registry, key).version.model_id)
            else:
                promoted.append(promote(ws.warehouse, ws.registry, chance.choice(versions).model_id).version.model_id)

    def browser() -> None:
        for round_ in range(6):
            Catalog(ws.registry).models()
            ws.registry.list_model_versions()
            ws.warehouse.profile(table)
            scored = score_table(ws.warehouse, ws.registry, function, table, TableRef("lab", f"scores_{round_}"))
            assert scored.rows == 400

    threads = [threading.Thread(target=user(work)) for work in (collector, collector, promoter, browser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    observed.tracebacks(len(failures))
    assert failures == [] and not any(t.is_alive() for t in threads)

    versions = Catalog(ws.registry).versions(key)
    assert sorted(v.number for v in versions) == list(range(1, 2 * NEW_VERSIONS + 2))  # none shared, none skipped
    production = Catalog(ws.registry).production(key)
    assert production is not None and production.model_id == promoted[-1]  # the last promotion stands
    assert [v.model_id for v in versions if v.stage is Stage.PRODUCTION] == [promoted[-1]]
    score_table(ws.warehouse, ws.registry, function, table, TableRef("lab", "scores_after"))
    served = ws.warehouse.read_columns(TableRef("lab", "scores_after"), [MODEL_VERSION_COLUMN])[MODEL_VERSION_COLUMN]
    assert set(served) == {production.label}  # SQL serves what the catalog says is in production
    history = Catalog(ws.registry).history(key)  # newest first
    assert [c.model_id for c in reversed(history) if c.stage is Stage.PRODUCTION] == promoted  # none lost
    ws.close()


def test_four_browser_sessions_browse_train_promote_and_deploy_at_once(tmp_path: Path, observed: Observed) -> None:
    """The same, as people, and the main paths of the wizard with them: four sessions of one real server in
    headless Chromium. Three train (a third version of a model, a first of another, a forecast), one promotes
    v2 while they do; then a classifier is deployed and scores its table, and the forecast is written. No session
    sees another's choices, and the warehouse holds every version once, the promotion, the scores and the
    forecast."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser import _chromium_or_skip, _launch, _pick, _serve, screenshot_on_failure

    _chromium_or_skip()
    db = tmp_path / "four.duckdb"
    ws = make_workspace(db)
    penguins = TableRef("demo", "penguins")
    first, second = (train_and_wait(ws, penguins, "species").model_id for _ in range(2))
    promote(ws.warehouse, ws.registry, first)
    ws.close()

    def choose(page: Page, table: str, target: str | None = None) -> None:
        page.goto(url)
        page.get_by_text("Pick the data to learn from").wait_for()
        _pick(page, "Table", table)
        page.get_by_text(f"Table · demo.{table}", exact=True).wait_for()
        page.get_by_role("link", name="2 · Target").click()
        page.get_by_text("What should the model predict?").wait_for()
        if target is not None:
            _pick(page, "Column to predict", target)
            page.get_by_text(f"Table · demo.{table} → predicting {target}").wait_for()  # the sidebar follows

    def start_training(page: Page, ready: str = "Columns the model may use") -> None:
        page.get_by_text(ready).wait_for()
        page.get_by_role("link", name="3 · Train").click()
        budget = page.get_by_role("spinbutton", name="Time budget (seconds)")
        budget.fill(str(FAST_BUDGET_S))
        budget.press("Enter")
        page.get_by_role("button", name="Start training").click()

    for server in _serve(tmp_path, db):
        url = server.url
        with sync_playwright() as p:
            browser = _launch(p)
            browsing, training, other, promoting = (browser.new_context(viewport={"width": 1400, "height": 1000})
                                                    .new_page() for _ in range(4))
            for page in (browsing, training, other, promoting):
                page.set_default_timeout(45_000)
            with screenshot_on_failure(training, "four-sessions-training.png"):
                choose(training, "penguins", "species")
                training.get_by_text("Multiclass classification (several categories) · detected").wait_for()
                start_training(training)
            with screenshot_on_failure(other, "four-sessions-other.png"):
                choose(other, "credit_default", "Status")
                start_training(other)
            with screenshot_on_failure(browsing, "four-sessions-browsing.png"):
                choose(browsing, "tourism_nights")
                browsing.get_by_role("link", name="Experiments").click()
                browsing.get_by_text("Table · demo.tourism_nights", exact=True).wait_for()
                browsing.get_by_role("link", name="2 · Target").click()
                _pick(browsing, "Column to predict", "visitor_nights_m")
                browsing.get_by_text("suggested: the rows look like a time series").wait_for()
                browsing.get_by_text("quarterly (one row per quarter, on the 1st)").wait_for()
                # the forecast setup ends its page early (st.stop): the sidebar names the new target all the same
                browsing.get_by_text("Table · demo.tourism_nights → predicting visitor_nights_m").wait_for()
                start_training(browsing, ready="Next: train")
            with screenshot_on_failure(promoting, "four-sessions-promoting.png"):
                promoting.goto(f"{url}/deploy")
                promoting.locator('[data-testid="stSelectbox"]').filter(has_text="Model").first.click()
                promoting.get_by_role("option").filter(has_text=second).click()
                promoting.get_by_role("button", name="Promote v2 to production…").click()
                promoting.get_by_role("button", name="Yes, promote v2").click()
                promoting.get_by_text("v2 is in production").first.wait_for()
            with screenshot_on_failure(other, "four-sessions-other.png"):
                other.get_by_text("Training finished").wait_for(timeout=180_000)
                other.get_by_role("link", name="5 · Deploy").click()
                other.get_by_role("button", name="Deploy as a SQL function").click()
                other.get_by_text("Deployed.").wait_for(timeout=60_000)
                # the shareable link is absolute: a colleague can open it as it is
                other.get_by_text(re.compile(r"Shareable link: http://127\.0\.0\.1:\d+/dashboard\?model=")).wait_for()
                other.get_by_role("button", name="Score the table").click()
                other.get_by_text(re.compile(r"Scored [0-9,]+ rows")).wait_for(timeout=60_000)
            with screenshot_on_failure(training, "four-sessions-training.png"):
                training.get_by_text("Training finished").wait_for(timeout=180_000)
                training.get_by_role("link", name="5 · Deploy").click()
                training.get_by_role("button", name="Promote v3 to production…").wait_for()
                training.get_by_text("serves v2 now").wait_for()  # the other session's promotion, not lost
            with screenshot_on_failure(browsing, "four-sessions-browsing.png"):
                browsing.get_by_text("Flurry forecasts by").wait_for(timeout=180_000)
                browsing.get_by_role("link", name="4 · Evaluate & explain").click()
                browsing.get_by_text("History and forecast").wait_for()
                browsing.get_by_role("link", name="5 · Deploy").click()
                browsing.get_by_role("button", name="Forecast with v1").click()
                browsing.get_by_role("button", name="Write the forecast").click()
                browsing.get_by_text("Wrote the forecast into forecasts.tourism_nights_forecast: 80 rows").wait_for(
                    timeout=60_000)
            for page, words in ((browsing, "Table · demo.tourism_nights → predicting visitor_nights_m"),
                                (training, "Table · demo.penguins → predicting species"),
                                (other, "Table · demo.credit_default → predicting Status")):
                assert page.locator('[data-testid="stSidebar"]').get_by_text(words).count() == 1  # no crossing
            browser.close()
        server.stop()  # the app holds the DuckDB file
        observed.tracebacks((tmp_path / "server.log").read_text(encoding="utf-8").count("Traceback"))

    ws = make_workspace(db)
    try:
        catalog = Catalog(ws.registry)
        species = catalog.model_of(first).key
        assert sorted(v.number for v in catalog.versions(species)) == [1, 2, 3]
        production = catalog.production(species)
        assert production is not None and production.model_id == second
        (credit,) = [m for m in catalog.models() if m.key != species and m.target == "Status"]
        credit_production = catalog.production(credit.key)
        assert credit_production is not None and credit_production.number == 1
        scored = ws.warehouse.preview(TableRef("scores", "credit_default_scored"), 10_000)
        served = load_bundle(ws.registry, credit_production.model_id).predict(scored)
        assert len(scored) > 0 and list(scored["prediction"]) == list(served)  # the scores are the model's own
        forecast = ws.warehouse.read_columns(TableRef("forecasts", "tourism_nights_forecast"), ["region", "forecast"])
        assert len(forecast) == 80 and forecast["region"].nunique() == 20
    finally:
        ws.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text(encoding="utf-8")


PROCESS_VERSIONS = 8  # per process


def test_two_app_processes_on_one_snowflake_account_never_share_a_version_number(fakesnow_server: dict,
                                                                                  tmp_path: Path,
                                                                                  observed: Observed) -> None:
    """Two processes (on Snowflake each training procedure records its own version, beside the app) number
    versions of one model at the same moment: a process's own lock cannot keep them apart, the warehouse's must.
    Numbers 1..n, each once."""
    import hashlib
    import os
    import subprocess
    import sys

    from backend.registry import Registry
    from backend.registry_records import ModelVersion
    from backend.version_records import VersionMetrics
    from backend.warehouse.snowflake_session import open_session
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    server = dict(fakesnow_server, database="NUMBERS", schema="PUBLIC")
    setup = open_session("unused", secrets=server)
    setup.sql("CREATE DATABASE IF NOT EXISTS NUMBERS").collect()
    registry = Registry(SnowflakeWarehouse(setup, "NUMBERS"))
    registry.migrate()
    content = b"a model file"
    ids = [f"m{i:02d}" for i in range(1 + 2 * PROCESS_VERSIONS)]
    for model_id in ids:
        registry.add_model_version(ModelVersion(
            model_id=model_id, run_id=f"r{model_id}", created_at=now(), name="y from signal",
            table=TableRef("LAB", "signal"), target="y", task=Task.BINARY, metric="roc_auc", best_estimator="lgbm",
            features=[], metrics=VersionMetrics(), leaderboard=[], importance=[], versions={},
            sha256=hashlib.sha256(content).hexdigest()), {"bundle": content})
    Catalog(registry).assign(registry.get_model_version(ids[0]))  # the model exists: v1

    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-m", "tests.reliability.number_versions", json.dumps(server),
                                   str(go), *part], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
                 for part in (ids[1::2], ids[2::2])]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()  # both connected: they number at the same moment
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    given = sorted(n for out, _ in outputs for n in json.loads(out.strip().splitlines()[-1]))
    stored = sorted(v.number for v in Catalog(registry).versions(Catalog(registry).model_of(ids[0]).key))
    for _ in given:
        observed.case()
    assert given == list(range(2, 2 + 2 * PROCESS_VERSIONS))
    assert stored == list(range(1, 2 + 2 * PROCESS_VERSIONS))
