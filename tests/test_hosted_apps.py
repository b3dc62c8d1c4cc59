"""The wizard as Snowflake hosts it, in both Streamlit-in-Snowflake runtimes (AppTest against fakesnow's server).

- Warehouse runtime: the app is handed its session (Snowpark's one active session, whose current database and
  schema are the app's own), no FLURRY_* variable is set, the home directory cannot be written and only the
  temporary directory can; settings come from the deployed flurry.toml.
- Container runtime: no active session; the app opens its own from the service's token and the SNOWFLAKE_*
  environment, one cached workspace serves every viewer, and viewers' threads lease sessions of their own
  (backend.warehouse.snowflake_pool): two viewers work at once.

Training in the procedure cannot run on fakesnow: starting a run must end in a sentence, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_steps import ROOT, goto, texts

UNWRITABLE = "/proc/flurry-home"  # no one, root included, may make a folder here
DATABASE, APP_SCHEMA = "FLURRY_HOSTED", "APP"


def _account(server: dict) -> None:
    """The account the app is deployed into: its own schema, and SALES with a table to learn from."""
    from snowflake.snowpark import Session

    setup = Session.builder.configs(dict(server, database=DATABASE, schema="PUBLIC")).create()
    try:
        setup.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}").collect()
        for schema in (APP_SCHEMA, "SALES"):
            setup.sql(f'CREATE SCHEMA IF NOT EXISTS {DATABASE}."{schema}"').collect()
        # numbers only: fakesnow answers APPROX_TOP_K (the profile's frequent values of text) with an HTTP 500,
        # which the container runtime's connection (no network timeout of fakesnow's) would retry for minutes
        setup.sql(f'CREATE OR REPLACE TABLE {DATABASE}."SALES"."RENEWALS" ("SEATS" INT, "USAGE" DOUBLE, '
                  '"RENEWED" INT)').collect()
        rows: list[object] = []
        for i in range(200):
            seats, usage = 1 + (i * 13) % 50, float((i * 7) % 23)
            rows += [seats, usage, int((seats + usage > 30) != (i % 9 == 0))]
        setup.sql(f'INSERT INTO {DATABASE}."SALES"."RENEWALS" VALUES ' + ", ".join(["(?, ?, ?)"] * 200),
                  params=rows).collect()
    finally:
        with contextlib.suppress(Exception):  # fakesnow lacks SYSTEM$CANCEL_ALL_QUERIES, which closing runs
            setup.close()


def _hosted_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What every hosted app has: no FLURRY_* variable, a home it cannot write, a temporary directory it can, and
    the flurry.toml deployed with it (the allow-list a hosted app requires)."""
    import streamlit as st

    from backend import config
    from backend.warehouse.snowflake_session import use_secrets

    for name in [n for n in os.environ if n.startswith("FLURRY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", UNWRITABLE)
    monkeypatch.setenv("XDG_DATA_HOME", UNWRITABLE)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    settings = tmp_path / "flurry.toml"
    settings.write_text('[access]\nallowed_schemas = ["SALES"]\n[app]\nname = "FLURRY_HOSTED.APP.FLURRY"\n',
                        encoding="utf-8")
    monkeypatch.setattr(config, "SETTINGS_FILE", settings)
    use_secrets(lambda: None)
    st.cache_resource.clear()  # a workspace another test opened is not this app's
    st.cache_data.clear()
    return temporary


@pytest.fixture
def warehouse_runtime(fakesnow_server: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import snowflake.snowpark.session as snowpark_session
    from snowflake.snowpark import Session

    _account(fakesnow_server)
    temporary = _hosted_files(tmp_path, monkeypatch)
    # the one active session Streamlit in Snowflake gives the app: the app's own database and schema current
    monkeypatch.setattr(snowpark_session, "_active_sessions", set())
    session = Session.builder.configs(dict(fakesnow_server, database=DATABASE, schema=APP_SCHEMA)).create()
    assert snowpark_session._active_sessions == {session}
    yield temporary
    _stop_supervisors()
    with contextlib.suppress(Exception):  # fakesnow lacks SYSTEM$CANCEL_ALL_QUERIES, which closing runs
        session.close()


@pytest.fixture
def container_runtime(fakesnow_server: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import snowflake.snowpark.session as snowpark_session

    from backend.warehouse import snowflake_session

    _account(fakesnow_server)
    temporary = _hosted_files(tmp_path, monkeypatch)
    monkeypatch.setattr(snowpark_session, "_active_sessions", set())  # the container runtime hands none over
    token = tmp_path / "token"
    token.write_text("service-oauth-token\n", encoding="utf-8")
    monkeypatch.setattr(snowflake_session, "SPCS_TOKEN_FILE", token)
    for name, value in (("SNOWFLAKE_ACCOUNT", fakesnow_server["account"]), ("SNOWFLAKE_HOST", fakesnow_server["host"]),
                        ("SNOWFLAKE_PORT", str(fakesnow_server["port"])),
                        ("SNOWFLAKE_PROTOCOL", fakesnow_server["protocol"]),
                        ("SNOWFLAKE_DATABASE", DATABASE), ("SNOWFLAKE_SCHEMA", APP_SCHEMA)):
        monkeypatch.setenv(name, value)
    yield temporary
    _stop_supervisors()


def _stop_supervisors() -> None:
    import streamlit as st

    st.cache_resource.clear()


def _open(at_timeout: int = 90) -> AppTest:

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=at_timeout)
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    return at


def _data_and_target(at: AppTest) -> None:
    assert at.selectbox(key="data.schema").options == ["SALES"]  # APP and PUBLIC are outside the allow-list
    at.selectbox(key="data.table").set_value("RENEWALS").run()
    assert not at.exception and not at.error, texts(at, "error")
    goto(at, "pages/target.py")
    at.selectbox(key="target.column").set_value("RENEWED").run()
    assert not at.exception and not at.error, texts(at, "error")


@pytest.mark.floor  # also on Streamlit 1.51, the warehouse runtime's
def test_the_warehouse_runtime_opens_the_wizard_keeping_files_in_the_temporary_directory(
        warehouse_runtime: Path) -> None:
    at = _open()
    sidebar = " ".join(str(c.value) for c in at.sidebar.caption).replace("\\_", "_")
    assert f"Database · {DATABASE}" in sidebar
    _data_and_target(at)
    goto(at, "pages/train.py")
    at.number_input(key="train.budget").set_value(3)
    at.button(key="train.start").click().run()
    assert not at.exception, texts(at, "error")  # the procedure cannot run here: said, not raised
    assert "Could not start training in Snowflake" in texts(at, "error").replace("\\", ""), texts(at, "error")
    for page in ("pages/evaluate.py", "pages/deploy.py", "pages/dashboard.py"):
        goto(at, page)
        assert not at.exception, (page, texts(at, "error"))
    assert (warehouse_runtime / "flurry").is_dir()  # the only place it could write
    assert not Path(UNWRITABLE).exists()


def test_the_container_runtime_serves_two_viewers_at_once_on_one_shared_session(container_runtime: Path) -> None:
    failures: list[str] = []

    def viewer() -> None:
        try:
            at = _open()
            sidebar = " ".join(str(c.value) for c in at.sidebar.caption).replace("\\_", "_")
            assert f"Database · {DATABASE}" in sidebar, sidebar
            _data_and_target(at)
        except BaseException as exc:  # reported below, with the viewer's own words
            failures.append(f"{type(exc).__name__}: {exc}")

    viewers = [threading.Thread(target=viewer, name=f"viewer {i}") for i in range(2)]
    for thread in viewers:
        thread.start()
    for thread in viewers:
        thread.join(timeout=300)
    assert failures == []
    import snowflake.snowpark.session as snowpark_session

    from backend.warehouse import SESSIONS_PER_PROCESS

    # the app's own sessions, opened from the service token: viewers' threads lease them, never more than that
    assert 1 <= len(snowpark_session._active_sessions) <= SESSIONS_PER_PROCESS
