"""The wizard driven headlessly with Streamlit's AppTest, by widget keys, on a real temporary warehouse."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from backend.config import WarehouseConfig
from tests.apptest_steps import PAGES, ROOT, choose, goto, new_app, score_and_wait, start_training, texts, wait_for_model
from tests.conftest import FAST_BUDGET_S, make_workspace, put_table


@pytest.mark.floor
@pytest.mark.usefixtures("warehouse_file")
@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_on_a_fresh_warehouse(page: str) -> None:
    at = goto(new_app(), page)
    assert at.title, f"{page} drew no title"
    assert not at.error, texts(at, "error")


@pytest.mark.floor
@pytest.mark.usefixtures("warehouse_file")
def test_every_streamlit_call_exists_in_the_streamlit_running_the_tests() -> None:
    """`make test` runs this file under the warehouse runtime's Streamlit too: a keyword argument that only a
    newer Streamlit has (st.page_link's query_params, st.metric's delta_arrow) is caught here, on every page,
    not only where a test happens to draw it."""
    import ast
    import inspect

    from streamlit.delta_generator import DeltaGenerator

    unknown = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "components").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            on_st = isinstance(node.func.value, ast.Name) and node.func.value.id == "st"
            command = getattr(st if on_st else DeltaGenerator, node.func.attr, None)
            if command is None:
                if on_st:
                    unknown.append(f"{path.name}:{node.lineno} st.{node.func.attr}")
                continue
            try:
                parameters = inspect.signature(command).parameters
            except (TypeError, ValueError):
                continue
            if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                continue
            unknown += [f"{path.name}:{node.lineno} {node.func.attr}({k.arg}=)" for k in node.keywords
                        if k.arg and k.arg not in parameters]
    assert not unknown, f"not in Streamlit {st.__version__}: {unknown}"


@pytest.mark.floor
def test_main_path_from_table_to_dashboard() -> None:
    at = new_app()
    assert "demo" in at.selectbox(key="data.schema").options
    at.selectbox(key="data.table").set_value("penguins").run()
    assert "344" in texts(at, "metric")
    assert "—" not in texts(at, "metric")  # a size the warehouse does not report is left out, not a dash

    goto(at, "pages/target.py")
    at.selectbox(key="target.column").set_value("species").run()
    assert not at.exception and not at.error, texts(at, "error")
    assert at.radio(key="target.task").value.value == "multiclass"
    assert "penguin_id" not in at.session_state["wizard.features"]
    assert "island" in at.session_state["wizard.features"]

    start_training(at, FAST_BUDGET_S)
    assert not at.exception and not at.error, texts(at, "error")
    wait_for_model(at, 90)
    at.run()
    assert "Training finished" in texts(at, "success")
    assert len(at.dataframe) >= 1  # the leaderboard
    # the headline is the chosen model's score on the holdout, not the search's validation score
    assert "Log loss on the holdout" in [m.label for m in at.metric]
    board = next(d.value for d in at.dataframe if "model" in d.value.columns)
    assert "Log loss on the holdout" in board.columns and board["chosen"].sum() == 1

    goto(at, "pages/evaluate.py")
    labels = [m.label for m in at.metric]
    assert "Accuracy" in labels and "Predicted" in labels
    at.number_input(key="evaluate.row").set_value(3).run()
    assert not at.exception
    # drivers from every holdout row (penguins' holdout is under 1,000 rows), explained exactly
    captions = texts(at, "caption").replace("\\", "")  # markdown escapes in the drawn text
    assert "How the SHAP values were found: exact" in captions and "from all " in captions

    goto(at, "pages/deploy.py")
    at.button(key="deploy.deploy").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    assert "Deployed" in texts(at, "success")
    score_and_wait(at)
    assert not at.exception and not at.error, texts(at, "error")
    assert "Scored 344 rows" in texts(at, "success")

    model_id = at.session_state["wizard.model_id"]
    at.button(key="deploy.open_dashboard").click().run()  # works on the warehouse runtime's Streamlit too
    assert not at.exception and not at.error, texts(at, "error")
    assert "344 rows scored" in texts(at, "caption")
    assert model_id in at.query_params["model"]  # the address bar is the shareable link (a str, or a list on 1.51)
    # the table it learned from, scored: measured in the warehouse against the training baseline, nothing moved
    assert "no input and no prediction has moved" in texts(at, "success")
    assert "is in production" in texts(at, "success")
    drift = next(d.value for d in at.dataframe if "band" in d.value.columns)
    assert {"population stability (PSI)", "distribution distance (Jensen–Shannon)"} <= set(drift.columns)
    assert not drift.isna().any().any() and "None" not in drift.astype(str).to_numpy().ravel().tolist()


@pytest.mark.floor
def test_bad_inputs_get_plain_messages(warehouse_file: Path) -> None:
    ws = make_workspace(warehouse_file)
    put_table(ws, "flat", pd.DataFrame({"x": range(20), "same": ["only"] * 20, "nothing": [None] * 20}))
    put_table(ws, "no_rows", pd.DataFrame({"x": pd.Series([], dtype=float), "y": pd.Series([], dtype=str)}))
    ws.close()

    at = new_app()
    choose(at, "lab", "flat", "same")
    assert "same value in every row" in texts(at, "error")
    at.selectbox(key="target.column").set_value("nothing").run()
    assert "empty" in texts(at, "error")

    goto(at, "pages/data.py")
    at.selectbox(key="data.table").set_value("no_rows").run()
    assert "no rows" in texts(at, "warning")
    goto(at, "pages/target.py")
    at.selectbox(key="target.column").set_value("y").run()
    assert "no rows" in texts(at, "error")
    assert not at.exception


def test_a_table_of_long_documents_previews_cut_short(warehouse_file: Path) -> None:
    ws = make_workspace(warehouse_file)
    put_table(ws, "tickets", pd.DataFrame({"body": ["word " * 20_000, "short"], "priority": [1, 2]}))
    ws.close()
    at = new_app()
    choose(at, "lab", "tickets")
    assert not at.exception and not at.error, texts(at, "error")
    (preview,) = [d.value for d in at.dataframe if "body" in d.value.columns]
    assert preview["body"].str.len().max() == 500 and preview["priority"].tolist() == [1, 2]
    assert "cut short here" in texts(at, "caption")


def test_budget_out_of_range_and_dropped_table(warehouse_file: Path) -> None:
    ws = make_workspace(warehouse_file)
    rng = np.random.default_rng(0)
    put_table(ws, "brief", pd.DataFrame({"x": rng.integers(0, 9, 40), "y": rng.choice(["a", "b"], 40)}))
    ws.close()
    at = new_app()
    choose(at, "lab", "brief", "y")
    start_training(at, 100_000)
    assert "between" in texts(at, "error")

    from components.backend_calls import _workspace_for

    _workspace_for(WarehouseConfig("duckdb", str(warehouse_file))).warehouse.execute('DROP TABLE "lab"."brief"')
    at.number_input(key="train.budget").set_value(10)
    at.button(key="train.start").click().run()
    assert "does not exist" in texts(at, "error")
    assert not at.exception


@pytest.mark.floor
def test_checks_propose_remedies_that_reach_training(warehouse_file: Path) -> None:
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    label = np.where(x + rng.normal(scale=0.7, size=n) > 0, "yes", "no")
    frame = pd.DataFrame({
        "x": x, "label": label,
        "label_copy": np.where(label == "yes", "Y", "N"),
        "amount_text": [str(i % 97) if i % 30 else "n/a" for i in range(n)],
    })
    ws = make_workspace(warehouse_file)
    put_table(ws, "traps", pd.concat([frame, frame.head(20)], ignore_index=True))
    ws.close()

    at = new_app()
    choose(at, "lab", "traps", "label")
    assert not at.exception and not at.error, texts(at, "error")
    assert at.session_state["wizard.features"] == ["x", "amount_text"]
    assert at.session_state["wizard.casts"] == ["amount_text"]
    assert at.session_state["wizard.deduplicate"] is True
    captions = texts(at, "caption").replace("\\", "")  # markdown escapes removed
    assert "label_copy" in captions and "20 rows are exact copies" in captions

    leak_button = next(b for b in at.button if b.label == "Use it anyway")
    leak_button.click().run()
    assert "label_copy" in at.session_state["wizard.features"]
    next(b for b in at.button if b.label == "Leave it out").click().run()
    assert "label_copy" not in at.session_state["wizard.features"]

    start_training(at, 2)
    assert not at.exception and not at.error, texts(at, "error")
    from components.backend_calls import _workspace_for

    ws = _workspace_for(WarehouseConfig("duckdb", str(warehouse_file)))
    (run,) = ws.registry.list_runs()
    assert run.config["casts"] == ["amount_text"] and run.config["deduplicate"] is True
    ws.jobs.cancel(run.run_id)


def test_train_proposes_what_the_target_step_would_when_its_run_was_cut_short(warehouse_file: Path) -> None:
    """A target switched and Train clicked at once: the Target step's run that proposes the task, the outcome
    and the features is interrupted, and the Train step proposes the same ones rather than sending the user back."""
    ws = make_workspace(warehouse_file)
    put_table(ws, "rare_class", pd.DataFrame({"x": np.arange(50.0), "label": ["yes"] * 48 + ["no"] * 2}))
    ws.close()
    at = new_app()
    choose(at, "demo", "credit_default", "Status")
    proposed = {k: at.session_state[k] for k in ("wizard.task", "wizard.positive", "wizard.features", "wizard.casts")}
    for key in ("wizard.task", "wizard.positive", "wizard.features", "wizard.casts", "wizard.deduplicate"):
        del at.session_state[key]  # as choosing the target does, before the Target step's run proposes them

    goto(at, "pages/train.py")
    assert not at.exception and not at.error, texts(at, "error")
    assert "Finish the Target step" not in texts(at, "info")
    assert {k: at.session_state[k] for k in proposed} == proposed
    assert at.button(key="train.start")

    goto(at, "pages/data.py")
    choose(at, "lab", "rare_class")
    at.session_state["wizard.target"] = "label"  # chosen, and nothing else yet
    goto(at, "pages/train.py")
    assert not at.exception
    for _ in range(2):  # and on the next rerun of the page too
        assert "cannot train on 'label'" in texts(at, "error") and "Target step" in texts(at, "error")
        assert not [b for b in at.button if b.key == "train.start"]
        at.run()
        assert not at.exception


def test_search_and_allow_list_on_the_data_step(warehouse_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = make_workspace(warehouse_file)
    put_table(ws, "pen_pals", pd.DataFrame({"a": [1, 2]}))
    ws.close()
    at = new_app()
    at.text_input(key="data.search").input("pen").run()
    assert at.selectbox(key="data.schema").options == ["demo", "lab"]
    at.selectbox(key="data.schema").set_value("demo").run()
    assert at.selectbox(key="data.table").options == ["penguins"]
    at.text_input(key="data.search").input("nothing like this").run()
    assert "No table matches" in texts(at, "info")

    monkeypatch.setenv("FLURRY_ALLOWED_SCHEMAS", "lab")
    at = new_app()
    assert at.selectbox(key="data.schema").options == ["lab"]


def test_hostile_names_through_the_whole_wizard(warehouse_file: Path) -> None:
    rng = np.random.default_rng(3)
    n = 300
    signal = rng.normal(size=n)
    frame = pd.DataFrame({
        'Order "Total"': signal * 10 + 50,
        "select": rng.choice(["a", "b", "c"], n),
        "Größe, cm": rng.normal(170, 10, n),
        "Will Buy?": np.where(signal + rng.normal(scale=0.5, size=n) > 0, "yes", "no"),
    })
    ws = make_workspace(warehouse_file)
    put_table(ws, "Tricky Table", frame, schema="Weird Schema")
    ws.close()

    at = new_app()
    choose(at, "Weird Schema", "Tricky Table", "Will Buy?")
    assert not at.error, texts(at, "error")
    assert at.session_state["wizard.features"] == ['Order "Total"', "select", "Größe, cm"]
    start_training(at, 2)
    wait_for_model(at, 90)
    assert not at.exception and not at.error, texts(at, "error")
    goto(at, "pages/evaluate.py")
    assert not at.error, texts(at, "error")
    goto(at, "pages/deploy.py")
    at.button(key="deploy.deploy").click().run()
    score_and_wait(at)
    assert not at.error, texts(at, "error")
    assert "Scored 300 rows" in texts(at, "success")


@pytest.mark.floor
def test_advanced_options_experiments_compare_and_delete(warehouse_file: Path) -> None:
    at = new_app()
    choose(at, "demo", "penguins", "species")
    goto(at, "pages/train.py")
    at.number_input(key="train.budget").set_value(2)
    at.multiselect(key="train.estimators").set_value(["lgbm", "rf"])
    at.radio(key="train.validation").set_value("holdout")
    at.number_input(key="train.seed").set_value(42)
    at.checkbox(key="train.class_weight").check()
    at.checkbox(key="train.ensemble").uncheck()
    at.button(key="train.start").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    wait_for_model(at, 90)
    from components.backend_calls import _workspace_for

    ws = _workspace_for(WarehouseConfig("duckdb", str(warehouse_file)))
    (run,) = ws.registry.list_runs()
    assert (run.config["estimators"], run.config["validation"], run.config["seed"], run.config["class_weight"],
            run.config["ensemble"]) == (["lgbm", "rf"], "holdout", 42, "balanced", False)
    assert ws.registry.get_model_version(at.session_state["wizard.model_id"]).best_estimator in ("lgbm", "rf")

    goto(at, "pages/experiments.py")
    assert len(at.dataframe) == 2  # the runs, and the comparison
    assert at.button(key="experiments.delete").disabled
    at.checkbox(key="experiments.confirm").check().run()
    at.button(key="experiments.delete").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    assert "No model has been trained yet." in texts(at, "info")
    assert ws.registry.list_runs() == []


def test_stop_and_keep_the_best_model_from_the_train_step(warehouse_file: Path) -> None:
    at = new_app()
    choose(at, "demo", "diamond_prices", "price")
    start_training(at, 300)
    assert not at.exception and not at.error, texts(at, "error")
    deadline = time.monotonic() + 60
    while "Trials done" not in [m.label for m in at.metric] or at.metric[0].value == "0":
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(1)
        at.run()
    at.button(key="train.stop_keep").click().run()
    wait_for_model(at, 120)
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    assert "Stopped early" in texts(at, "success")


def test_two_sessions_see_the_same_run(warehouse_file: Path) -> None:
    first = new_app()
    choose(first, "demo", "penguins", "species")
    start_training(first, 4)

    second = new_app()  # another browser tab, its own session
    assert "Training on penguins" in texts(second, "caption").replace("\\", "")
    goto(second, "pages/experiments.py")
    assert second.dataframe[0].value["state"].tolist() == ["RUNNING"]

    wait_for_model(first, 90)
    second.run()
    assert second.dataframe[0].value["state"].tolist() == ["SUCCEEDED"]
    assert not first.exception and not second.exception


@pytest.mark.floor
def test_outcome_of_interest_threshold_and_what_if(warehouse_file: Path) -> None:
    at = new_app()
    choose(at, "demo", "credit_default", "Status")
    assert not at.exception and not at.error, texts(at, "error")
    assert at.radio(key="target.positive").value == "bad"  # the rarer value is proposed
    start_training(at, FAST_BUDGET_S)
    wait_for_model(at, 90)
    model_id = at.session_state["wizard.model_id"]

    goto(at, "pages/evaluate.py")
    assert not at.exception and not at.error, texts(at, "error")
    assert any("When to flag a row as 'bad'" in s.value for s in at.subheader)
    assert "Of every 100 rows it flags" in texts(at, "markdown")
    flagged_before = next(m.value for m in at.metric if m.label == "Flagged")
    slider = at.select_slider(key=f"evaluate.{model_id}.threshold")
    higher = next(v for v in slider.options if float(v) >= 0.9)
    slider.set_value(float(higher)).run()
    assert not at.exception
    assert next(m.value for m in at.metric if m.label == "Flagged") != flagged_before
    at.button(key="evaluate.save_threshold").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    from components.backend_calls import _workspace_for

    current = _workspace_for(WarehouseConfig("duckdb", str(warehouse_file))).registry.threshold(model_id)
    assert current is not None and current.how == "manual" and current.threshold == pytest.approx(float(higher))

    number = next(n for n in at.number_input if n.key and n.key.startswith(f"evaluate.{model_id}.0.edit"))
    number.set_value((number.value or 0) * 10 + 1000)
    next(b for b in at.button if b.label == "Update").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    assert any(m.label.startswith("Predicted (what-if)") for m in at.metric)
    at.button(key="evaluate.card.prepare").click().run()  # the card is written only when asked for
    assert not at.exception and not at.error, texts(at, "error")
    assert not [b for b in at.button if b.key == "evaluate.card.prepare"]


def test_a_model_no_better_than_guessing_is_called_so_before_anyone_deploys(warehouse_file: Path) -> None:
    rng = np.random.default_rng(11)
    ws = make_workspace(warehouse_file)
    put_table(ws, "coin flips", pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600),
                                              "heads": rng.choice(["yes", "no"], 600)}))
    ws.close()
    at = new_app()
    choose(at, "lab", "coin flips", "heads")
    start_training(at, 2)
    wait_for_model(at, 90)
    at.run()
    assert "Training finished" not in texts(at, "success")  # no green banner
    assert "barely better than the naive baseline" in texts(at, "error")
    goto(at, "pages/evaluate.py")
    assert "barely better than the naive baseline" in texts(at, "error")
    goto(at, "pages/deploy.py")
    assert "barely better than the naive baseline" in texts(at, "error")


@pytest.mark.floor
@pytest.mark.usefixtures("warehouse_file")
def test_viewer_mode_shows_dashboards_and_no_wizard_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLURRY_VIEWER", "1")
    at = new_app()
    assert at.title[0].value == "Model dashboard"
    assert not [b for b in at.button if b.key and b.key.startswith(("deploy.", "train.", "data."))]
    try:  # the navigation holds the dashboards only
        at.switch_page("pages/deploy.py").run()
    except ValueError as exc:  # newer AppTest knows only the navigation's pages
        assert "pages/dashboard.py']" in str(exc)
    else:  # Streamlit 1.51's runs what the navigation resolves: not the Deploy step
        assert not at.exception and not [b for b in at.button if b.key == "deploy.deploy"]
        assert "Model dashboard" in " ".join(str(t.value) for t in at.title) or "dashboards only" in texts(at, "error")
    for page in ("data", "target", "train", "evaluate", "deploy", "experiments"):  # and run on their own, they refuse
        alone = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=60)
        alone.session_state["shell.ran"] = True
        alone.run()
        assert not alone.exception, alone.exception
        assert "dashboards only" in texts(alone, "error"), page
        assert not alone.button and not alone.selectbox and not alone.text_input
