"""The unchanged wizard pages on the Snowflake adapter (AppTest against fakesnow's server): connection from
Streamlit's `[connections.snowflake]` secrets, the allow-list, and Data → Target → Train → Evaluate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.warehouse.snowflake_session import open_session, use_secrets
from tests.apptest_steps import goto, texts, wait_for_model


@pytest.fixture
def snowflake_app(fakesnow_server: dict, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[dict]:
    # the sidebar's embedded choice gets a warehouse file of its own: a second workspace on the file another
    # test deployed functions into would collide with them in this process's DuckDB catalog
    monkeypatch.setenv("FLURRY_DATA_DIR", str(tmp_path))
    params = dict(fakesnow_server, database="FLURRY_APP", schema="PUBLIC")
    setup = open_session("unused", secrets=params)
    setup.sql("CREATE DATABASE IF NOT EXISTS FLURRY_APP").collect()
    for schema in ("SALES", "HR"):
        setup.sql(f'CREATE SCHEMA IF NOT EXISTS FLURRY_APP."{schema}"').collect()
    setup.sql('CREATE OR REPLACE TABLE FLURRY_APP."SALES"."Renewals" ("seats" INT, "region" VARCHAR, '
              '"usage hours" DOUBLE, "renewed" BOOLEAN)').collect()
    setup.sql('CREATE OR REPLACE TABLE FLURRY_APP."HR"."pay" ("id" INT)').collect()
    rows: list[object] = []
    for i in range(240):
        seats, usage = 1 + (i * 13) % 50, round(((i * 7) % 23) * 1.5 + i / 100, 2)
        rows += [seats, ["emea", "amer", "apac"][i % 3], usage, (seats + usage > 30) != (i % 9 == 0)]
    setup.sql('INSERT INTO FLURRY_APP."SALES"."Renewals" VALUES ' + ", ".join(["(?, ?, ?, ?)"] * 240),
              params=rows).collect()
    monkeypatch.setenv("FLURRY_WAREHOUSE", "snowflake://from-secrets")
    monkeypatch.setenv("FLURRY_ALLOWED_SCHEMAS", "SALES")
    monkeypatch.setenv("FLURRY_TRAINING", "local")  # fakesnow cannot host the training procedure
    yield {"connections": {"snowflake": dict(params, flurry_top_values="false")}}
    use_secrets(lambda: None)


@pytest.mark.floor
def test_the_wizard_runs_unchanged_on_snowflake(snowflake_app: dict) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.apptest_steps import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.secrets["connections"] = snowflake_app["connections"]
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    sidebar = " ".join(str(c.value) for c in at.sidebar.caption).replace("\\_", "_")  # markdown-escaped
    assert "Account · fakesnow" in sidebar and "Database · FLURRY_APP" in sidebar
    assert "snow" not in sidebar.replace("fakesnow", "")  # fakesnow's password is "snow"

    assert at.selectbox(key="data.schema").options == ["SALES"]  # HR is outside the allow-list
    at.selectbox(key="data.table").set_value("Renewals").run()
    assert not at.exception and not at.error, texts(at, "error")
    goto(at, "pages/target.py")
    at.selectbox(key="target.column").set_value("renewed").run()
    assert not at.exception and not at.error, texts(at, "error")
    goto(at, "pages/train.py")
    at.number_input(key="train.budget").set_value(3)
    at.button(key="train.start").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    wait_for_model(at, 120)
    goto(at, "pages/evaluate.py")
    assert not at.exception and not at.error, texts(at, "error")
    assert any("ROC AUC" in str(m.label) for m in at.metric)


@pytest.mark.floor
def test_the_sidebar_switches_this_session_between_the_embedded_warehouse_and_snowflake(
        snowflake_app: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from backend.config import SECRETS_CONNECTION, WarehouseConfig, embedded_config
    from tests.apptest_steps import ROOT

    monkeypatch.delenv("FLURRY_WAREHOUSE")  # nothing configured: the embedded default, Snowflake on offer
    monkeypatch.setenv("FLURRY_ALLOWED_SCHEMAS", "SALES,demo")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.secrets["connections"] = snowflake_app["connections"]
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    picker = at.sidebar.selectbox(key="warehouse.choice")
    assert picker.options == ["Embedded (DuckDB)", "Snowflake · the app's secrets"]
    assert picker.value == embedded_config().display_name
    assert "demo" in at.selectbox(key="data.schema").options
    at.selectbox(key="data.table").set_value("customer_churn").run()
    assert "wizard.table" in at.session_state

    # AppTest (Streamlit 1.67) cannot drive a sidebar widget of an st.navigation app (set_value is ignored and
    # the sidebar is gone after a rerun; a browser keeps it), so the choice goes through the picker's own
    # session-state key, which is all the widget sets; the browser test drives the widget itself
    at.session_state["warehouse.choice"] = WarehouseConfig("snowflake", SECRETS_CONNECTION).display_name
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    # the embedded table means nothing in Snowflake: the Data step starts afresh there
    assert at.session_state["wizard.table"].schema == "SALES"
    assert at.selectbox(key="data.schema").options == ["SALES"]

    at.session_state["warehouse.choice"] = embedded_config().display_name
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    assert "demo" in at.selectbox(key="data.schema").options


def test_a_snowflake_connection_that_fails_can_be_swapped_back_in_the_sidebar(
        snowflake_app: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from backend.config import SECRETS_CONNECTION, WarehouseConfig, embedded_config
    from tests.apptest_steps import ROOT

    monkeypatch.delenv("FLURRY_WAREHOUSE")
    monkeypatch.setenv("FLURRY_ALLOWED_SCHEMAS", "SALES,demo")
    broken = dict(snowflake_app["connections"]["snowflake"], port=1, password="wrong-secret-9", login_timeout=2,
                  network_timeout=1)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.secrets["connections"] = {"snowflake": broken}
    at.run()
    at.session_state["warehouse.choice"] = WarehouseConfig("snowflake", SECRETS_CONNECTION).display_name
    at.run()
    assert not at.exception
    assert "Could not connect to Snowflake" in texts(at, "error")
    assert "wrong-secret-9" not in texts(at, "error")
    at.session_state["warehouse.choice"] = embedded_config().display_name
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    assert "demo" in at.selectbox(key="data.schema").options
