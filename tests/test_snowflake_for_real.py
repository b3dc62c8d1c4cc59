"""What a real Snowflake account does differently from its emulators, checked offline: whole error texts,
the stage before anything is registered on it, TIMESTAMP_NTZ, literal LIMITs, catalog queries filtered by
schema, event numbers two writers cannot share, and the permanent registration path."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from snowflake.connector.errors import ProgrammingError

from backend.registry import next_event_seq
from backend.registry_migrations import migrations
from backend.warehouse.snowflake_session import snowflake_reason, use_secrets
from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

ROOT = Path(__file__).resolve().parents[1]
# What Snowflake sends for a missing table: the reason is on the second line.
TWO_LINES = "SQL compilation error:\nObject 'DB.SALES.ORDERS' does not exist or not authorized."


@pytest.fixture
def secret_password() -> Iterator[str]:
    use_secrets(lambda: {"user": "ana", "password": "hunter2-secret"})
    yield "hunter2-secret"
    use_secrets(lambda: None)


def test_snowflake_s_whole_message_is_kept_on_one_line_with_secrets_blanked(secret_password: str) -> None:
    error = ProgrammingError(f"{TWO_LINES}\nlogin with {secret_password} refused", errno=2003, sqlstate="02000")
    reason = snowflake_reason(error)
    assert "SQL compilation error: Object 'DB.SALES.ORDERS' does not exist or not authorized." in reason
    assert secret_password not in reason and "***" in reason and "\n" not in reason
    assert snowflake_reason(ProgrammingError("x" * 5000)).endswith("…")


def _page_that_reads_a_missing_table() -> None:
    from snowflake.connector.errors import ProgrammingError

    from backend.warehouse.snowflake_session import snowflake_errors
    from components.feedback import user_errors

    with user_errors("read the table"), snowflake_errors():
        raise ProgrammingError("SQL compilation error:\nObject 'DB.SALES.ORDERS' does not exist or not authorized.",
                               errno=2003, sqlstate="02000")


def test_a_multi_line_snowflake_error_reaches_the_page_whole() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page_that_reads_a_missing_table).run()
    assert not at.exception
    (shown,) = [e.value for e in at.error]
    shown = shown.replace("\\", "")  # markdown escapes
    assert shown.startswith("Snowflake refused the request: ")
    assert "SQL compilation error: Object 'DB.SALES.ORDERS' does not exist or not authorized." in shown


def test_every_migration_writes_timestamp_ntz_on_snowflake_and_creates_the_stage_first() -> None:
    steps = migrations(lambda name: f"DB.FLURRY.{name}", SnowflakeWarehouse.binary_type,
                       SnowflakeWarehouse.timestamp_type, ['CREATE STAGE IF NOT EXISTS "DB"."FLURRY"."MODELS"'])
    statements = [s for step in steps for s in step]
    assert not [s for s in statements if re.search(r"\bTIMESTAMP\b(?!_)", s)]
    assert sum("TIMESTAMP_NTZ" in s for s in statements) >= 7
    assert any(s.startswith("CREATE STAGE IF NOT EXISTS") for s in statements)


def test_limits_are_literals_never_bound_values() -> None:
    """Snowflake documents LIMIT's argument as a constant and some drivers refuse `LIMIT ?`."""
    from backend.identifiers import limit_clause

    sources = [p for p in (ROOT / "backend").rglob("*.py") if "__pycache__" not in p.parts]
    bound = [f"{p.name}:{n}" for p in sources for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"LIMIT\s+\?", line, re.IGNORECASE)]
    assert not bound
    assert limit_clause(200) == " LIMIT 200"
    with pytest.raises(ValueError):
        limit_clause(-1)
    with pytest.raises(ValueError):
        limit_clause("5; DROP TABLE x")  # type: ignore[arg-type]


def test_event_numbers_from_many_writers_at_once_never_collide() -> None:
    numbers: list[int] = []

    def writer() -> None:
        numbers.extend(next_event_seq() for _ in range(2000))

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(numbers)) == len(numbers) == 8000
    assert max(numbers) < 2**63  # a BIGINT


def test_permanent_registrations_use_the_stage_the_migrations_create() -> None:
    """Snowpark's local testing refuses permanent procedures ("not currently supported"), so the permanent
    path is checked by what it names: its stage_location is on the stage that migration 4 creates, which
    every workspace runs before it registers anything (the session-scoped registration is tested in
    test_snowflake_workspace)."""
    from snowflake.snowpark import Session

    from backend.snowflake_procedure import procedure_stage, register_procedure
    from backend.warehouse.snowflake_deploy import stage_name

    warehouse = SnowflakeWarehouse.__new__(SnowflakeWarehouse)
    warehouse.database = "FLURRY_WS"
    assert warehouse.metadata_objects_sql("FLURRY") == [f"CREATE STAGE IF NOT EXISTS {stage_name('FLURRY_WS')}"]
    assert procedure_stage("FLURRY_WS").startswith(f"@{stage_name('FLURRY_WS')}/")
    session = Session.builder.config("local_testing", True).create()
    try:
        with pytest.raises(NotImplementedError, match="permanent"):
            register_procedure(session, "FLURRY_WS", permanent=True)
    finally:
        session.close()


def test_the_container_runtime_s_own_session_comes_from_its_service_token(tmp_path: Path) -> None:
    from backend.warehouse.snowflake_session import container_parameters

    token = tmp_path / "token"
    environ = {"SNOWFLAKE_ACCOUNT": "xy12345", "SNOWFLAKE_HOST": "xy12345.snowflakecomputing.com",
               "SNOWFLAKE_DATABASE": "SALES_DB", "SNOWFLAKE_SCHEMA": "PUBLIC"}
    assert container_parameters(environ, token) is None  # no mounted token: not in a container
    token.write_text("service-token-value\n", encoding="utf-8")
    assert container_parameters(environ, token) == {
        "account": "xy12345", "host": "xy12345.snowflakecomputing.com", "authenticator": "oauth",
        "token": "service-token-value", "database": "SALES_DB", "schema": "PUBLIC"}
    assert container_parameters({"SNOWFLAKE_HOST": "h"}, token) is None


def test_an_app_in_the_container_runtime_is_hosted_and_fenced_in_like_the_warehouse_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the container runtime the configured warehouse is the account itself (no environment to set), and
    the owner's-rights app refuses to open before flurry.toml allows schemas, without connecting first."""
    from backend.config import warehouse_config
    from backend.errors import ConfigurationError
    from backend.warehouse import snowflake_session
    from backend.warehouse.snowflake_session import ACTIVE
    from backend.workspace import open_workspace

    token = tmp_path / "token"
    token.write_text("service-token-value", encoding="utf-8")
    monkeypatch.setattr(snowflake_session, "SPCS_TOKEN_FILE", token)
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy12345")
    monkeypatch.setenv("SNOWFLAKE_HOST", "127.0.0.1")
    monkeypatch.delenv("FLURRY_WAREHOUSE", raising=False)
    config = warehouse_config()
    assert (config.kind, config.location) == ("snowflake", ACTIVE)
    with pytest.raises(ConfigurationError, match="no schemas are allowed yet"):
        open_workspace(config, allowed_schemas="")


def test_the_smoke_script_names_each_pinned_package_an_account_does_not_offer() -> None:
    """What `scripts.snowflake_smoke` checks first against INFORMATION_SCHEMA.PACKAGES (it cannot run here)."""
    from backend.warehouse.snowflake_packages import channel_pins, missing_from_channel, offered_packages_sql

    pins = channel_pins(ROOT / "environment.yml")
    assert pins["python"] == "3.11" and "flaml" not in pins and pins["pandas"].startswith("2.")
    everything = [(name, version) for name, version in pins.items() if name != "python"]
    assert missing_from_channel(pins, everything) == []
    older = [(n, "0.1" if n == "lightgbm" else v) for n, v in everything if n != "shap"]
    assert missing_from_channel(pins, older) == [f"lightgbm=={pins['lightgbm']}", f"shap=={pins['shap']}"]
    sql, params = offered_packages_sql(["pandas", "shap"])
    assert params == ["pandas", "shap"] and "IN (?, ?)" in sql and "runtime_version = '3.11'" in sql
    import sqlglot

    assert sqlglot.parse_one(sql, read="snowflake").key == "select"


def test_a_task_snowflake_will_not_resume_is_reported_suspended_with_the_grant_that_would_resume_it() -> None:
    """The words Deploy shows when ALTER TASK … RESUME is refused (fakesnow has no Tasks, so the refusal
    itself only happens in an account)."""
    from backend.warehouse.snowflake_deploy import suspended_task, task_sql

    _, resume = task_sql("DB", "flurry_churn_rescore", "WH", "daily", "SELECT 1")
    refusal = snowflake_reason(ProgrammingError("SQL access control error:\nInsufficient privileges to operate on "
                                                "task 'FLURRY_CHURN_RESCORE'", errno=3001, sqlstate="42501"))
    scheduled = suspended_task("flurry_churn_rescore", "SYSADMIN", refusal, resume)
    assert not scheduled.resumed and scheduled.task == "flurry_churn_rescore"
    reason = scheduled.reason or ""
    assert "stays suspended" in reason and "Insufficient privileges to operate on task" in reason
    assert 'GRANT EXECUTE TASK ON ACCOUNT TO ROLE "SYSADMIN"' in reason
    assert f"`{resume}`" in reason and resume == 'ALTER TASK "DB"."FLURRY"."flurry_churn_rescore" RESUME'



def test_a_model_part_binds_under_snowflakes_one_megabyte_and_a_read_under_the_apps_32() -> None:
    """Each artifact part is one bound INSERT, sent as hex text (twice its bytes): under the 1 MB Snowflake
    recommends for a statement's bound data; a read of PARTS_PER_READ parts stays under a hosted app's 32 MB."""
    from backend.registry import ARTIFACT_PART_BYTES, PARTS_PER_READ, artifact_parts

    assert 2 * ARTIFACT_PART_BYTES < 1_000_000
    assert ARTIFACT_PART_BYTES * PARTS_PER_READ < 32_000_000
    assert [len(p) for p in artifact_parts(b"x" * (ARTIFACT_PART_BYTES * 2 + 5))] == [ARTIFACT_PART_BYTES] * 2 + [5]
