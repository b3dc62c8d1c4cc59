"""The Snowflake adapter, offline: SQL paths against fakesnow's server (Snowflake SQL run by DuckDB through a
real Snowpark session), writes in Snowpark's local testing mode, SQL fakesnow cannot run parsed by sqlglot.

Gaps, explicit: fakesnow has no APPROX_TOP_K, no ALTER TABLE … SWAP WITH and no INFORMATION_SCHEMA.FUNCTIONS
and cannot PUT files (so no write_pandas); local testing mode runs no SQL at all. Those statements are parsed
with sqlglot's Snowflake dialect instead, and run for real only by scripts/snowflake_smoke.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from backend.errors import ConfigurationError, TableNotFoundError
from backend.warehouse.base import SampleSpec, TableRef, is_integer_type
from backend.warehouse.snowflake_profile import first_pass_sql, profile_columns, second_pass_sql
from backend.warehouse.snowflake_session import ACTIVE, identity, open_session, redact
from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

ROOT = Path(__file__).resolve().parents[1]

ODD = TableRef("Sales Data", 'orders "2024"')


@pytest.fixture(scope="module")
def server(fakesnow_server: dict) -> dict:
    return dict(fakesnow_server, database="FLURRY_TEST", schema="PUBLIC")


@pytest.fixture(scope="module")
def warehouse(server: dict) -> Iterator[SnowflakeWarehouse]:
    session = open_session("unused", secrets=server)
    session.sql("CREATE DATABASE IF NOT EXISTS FLURRY_TEST").collect()
    wh = SnowflakeWarehouse(session)
    wh.ensure_schema(ODD.schema)
    wh.ensure_schema("FLURRY")
    wh.execute(f'CREATE TABLE {wh.qualify(ODD)} ("order id" INT, "Region" VARCHAR, "amount" NUMBER(10,2), '
               f'"amount_text" VARCHAR, "placed" TIMESTAMP_NTZ, "churned" VARCHAR)')
    rows = []
    for i in range(600):
        rows += [i, ["north", "south", "east"][i % 3], (i % 50) + 0.25, str(i % 7) if i % 10 else "n/a",
                 f"2024-01-{1 + i % 28:02d} 10:00:00", "yes" if i % 6 == 0 else "no"]
    values = ", ".join("(?, ?, ?, ?, ?, ?)" for _ in range(600))
    wh.execute(f"INSERT INTO {wh.qualify(ODD)} VALUES {values}", rows)
    wh.execute(f'CREATE TABLE {wh.qualify(TableRef("FLURRY", "probe"))} (x INT)')
    yield wh


def test_catalog_lists_user_tables_with_estimates_and_hides_metadata(warehouse: SnowflakeWarehouse) -> None:
    assert ODD.schema in warehouse.list_schemas()
    assert "FLURRY" not in warehouse.list_schemas() and "INFORMATION_SCHEMA" not in warehouse.list_schemas()
    assert warehouse.list_tables(ODD.schema) == [ODD.name]
    summary = next(t for t in warehouse.table_summaries() if (t.schema, t.name) == (ODD.schema, ODD.name))
    assert (summary.kind, summary.rows, summary.columns) == ("table", 600, 6)
    assert warehouse.table_exists(ODD) and not warehouse.table_exists(TableRef(ODD.schema, "nope"))


def test_describe_keeps_exact_names_and_tells_integers_from_decimals(warehouse: SnowflakeWarehouse) -> None:
    columns = {c.name: c for c in warehouse.describe(ODD)}
    assert list(columns) == ["order id", "Region", "amount", "amount_text", "placed", "churned"]
    assert is_integer_type(columns["order id"].sql_type) and not is_integer_type(columns["amount"].sql_type)
    assert columns["amount"].kind == "numeric" and columns["placed"].kind == "datetime"
    assert columns["Region"].kind == "text"
    with pytest.raises(TableNotFoundError, match="does not exist"):
        warehouse.describe(TableRef(ODD.schema, "gone"))


def test_reads_are_quoted_bound_and_typed(warehouse: SnowflakeWarehouse) -> None:
    assert warehouse.row_count(ODD) == 600
    assert len(warehouse.preview(ODD, 7)) == 7
    frame = warehouse.read_columns(ODD, ["amount", "Region"], limit=5)
    assert list(frame.columns) == ["amount", "Region"] and frame["amount"].dtype == float
    counts = warehouse.value_counts(ODD, "Region", limit=2)
    assert list(counts.columns) == ["value", "count"] and counts["count"].tolist() == [200, 200]
    assert warehouse.duplicate_rows(ODD) == 0
    hostile = "x'); DROP TABLE t; --"
    assert warehouse.list_tables(hostile) == []  # a value: bound, never spliced into the SQL


def test_profile_pushes_down_counts_ranges_histograms_and_numbers_in_text(warehouse: SnowflakeWarehouse) -> None:
    # APPROX_TOP_K is the one aggregate fakesnow lacks: top values are left out here (parsed below instead)
    profile = profile_columns(warehouse.describe(ODD), warehouse.qualify(ODD), warehouse.query, top_values=False)
    by_name = {c.name: c for c in profile.columns}
    assert profile.rows == 600
    assert by_name["order id"].distinct == 600 and by_name["Region"].distinct == 3
    assert by_name["amount"].minimum == pytest.approx(0.25) and by_name["amount"].maximum == pytest.approx(49.25)
    assert sum(rows for _, _, rows in by_name["amount"].histogram) == 600
    assert len(by_name["amount"].histogram) == 20
    assert by_name["amount_text"].numeric_text == 540  # every row but the "n/a" tenth
    assert sum(rows for _, _, rows in by_name["placed"].histogram) == 600


def test_profile_sql_with_top_values_is_valid_snowflake(warehouse: SnowflakeWarehouse) -> None:
    columns = warehouse.describe(ODD)
    sql = first_pass_sql(columns, warehouse.qualify(ODD), exact=True)
    parsed = sqlglot.parse_one(sql, read="snowflake")
    assert "APPROX_TOP_K" in parsed.sql(dialect="snowflake")
    first = pd.Series({"n_rows": 600, "top_1": '[["north", 200], ["south", 200]]', "lo_0": 0.0, "hi_0": 599.0})
    second, params, _, tops = second_pass_sql(columns[:2], first, warehouse.qualify(ODD))
    assert tops == {1: ["north", "south"]}
    assert second is not None and second.count("?") == len(params) == 4
    sqlglot.parse_one(second, read="snowflake")


def test_training_sample_is_stratified_deterministic_and_streams_to_parquet(
        warehouse: SnowflakeWarehouse, tmp_path: Path) -> None:
    spec = SampleSpec(table=ODD, columns=("Region", "amount", "churned"), target="churned", max_rows=300, seed=3)
    first = warehouse.export_training_sample(spec, tmp_path / "a.parquet")
    again = warehouse.export_training_sample(spec, tmp_path / "b.parquet")
    assert first.sampled and first.rows_eligible == 600
    rows = pq.read_table(tmp_path / "a.parquet").to_pandas()
    assert len(rows) == first.rows_written and 200 < len(rows) < 400  # a hash draw of about half the rows
    assert rows.equals(pq.read_table(tmp_path / "b.parquet").to_pandas()) and again.rows_written == first.rows_written
    other_seed = warehouse.export_training_sample(SampleSpec(**{**spec.__dict__, "seed": 4}), tmp_path / "s.parquet")
    assert not pq.read_table(tmp_path / "s.parquet").to_pandas().equals(rows) and other_seed.sampled
    stratified = SampleSpec(**{**spec.__dict__, "stratify": True})
    warehouse.export_training_sample(stratified, tmp_path / "st.parquet")
    # the small class (1 row in 6) keeps every row: each class keeps at least a floor of rows
    assert (pq.read_table(tmp_path / "st.parquet").to_pandas()["churned"] == "yes").sum() == 100
    excluded = SampleSpec(table=ODD, columns=("Region", "churned"), target="churned", max_rows=1000,
                          exclude_target_values=("yes",))
    info = warehouse.export_training_sample(excluded, tmp_path / "c.parquet")
    assert (info.rows_eligible, info.sampled) == (500, False)


def test_replacing_a_table_is_one_statement_that_keeps_its_readers_grants(warehouse: SnowflakeWarehouse) -> None:
    """A first write renames the staged rows into place; a replace is one CREATE OR REPLACE … COPY GRANTS AS
    SELECT (SWAP WITH would swap the grants away from the table's readers), and the staging table goes."""
    new = TableRef(ODD.schema, "fresh")
    staging = TableRef(ODD.schema, "__flurry_staging_x")
    warehouse.execute(f'CREATE TABLE {warehouse.qualify(staging)} ("a" INT)')
    warehouse.execute(f'INSERT INTO {warehouse.qualify(staging)} VALUES (?), (?)', [1, 2])
    warehouse._swap_in(staging, new)  # no table yet: a rename
    assert warehouse.table_exists(new) and not warehouse.table_exists(staging)
    warehouse.execute(f'CREATE TABLE {warehouse.qualify(staging)} ("a" INT)')
    warehouse.execute(f'INSERT INTO {warehouse.qualify(staging)} VALUES (?), (?), (?)', [7, 8, 9])
    warehouse._swap_in(staging, new)  # replaced in place
    assert warehouse.query(f'SELECT "a" FROM {warehouse.qualify(new)} ORDER BY "a"')["a"].tolist() == [7, 8, 9]
    assert not warehouse.table_exists(staging)
    from backend.warehouse import snowflake_deploy as sd

    statement = sd.replace_sql(warehouse.qualify(new), f"SELECT * FROM {warehouse.qualify(staging)}")
    assert " COPY GRANTS AS SELECT * FROM " in statement
    assert sqlglot.parse_one(statement, read="snowflake").sql(dialect="snowflake").startswith("CREATE OR REPLACE")
    warehouse.drop_table(new)
    assert not warehouse.table_exists(new)


def test_writes_go_through_snowpark_save_as_table() -> None:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    wh = SnowflakeWarehouse(session, database="DB")
    frame = pd.DataFrame({"a b": [1, 2, 3], "c": ["x", None, "z"]})
    batches = iter(pa.Table.from_pandas(frame).to_batches(max_chunksize=2))
    staged = TableRef("S", "staged rows")
    assert wh._stage_batches(staged, batches) == 3
    back = session.table(['"DB"', '"S"', '"staged rows"']).to_pandas()
    assert back["a b"].tolist() == [1, 2, 3] and back["c"].tolist()[0] == "x"
    session.close()


def test_appending_batches_adds_rows_by_column_name_and_leaves_no_staging_table() -> None:
    """A scheduled re-forecast appends to the table the first one wrote (it raised NotImplementedError)."""
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    wh = SnowflakeWarehouse(session, database="DB")
    table = TableRef("S", "forecast history")
    first = pa.Table.from_pandas(pd.DataFrame({"day": ["2024-01-01"], "units": [3.0]}), preserve_index=False)
    second = pa.Table.from_pandas(pd.DataFrame({"units": [4.0, 5.0], "day": ["2024-01-02", "2024-01-03"]}),
                                  preserve_index=False)
    assert wh.append_table_from_batches(table, iter(first.to_batches())) == 1  # created when missing
    assert wh.append_table_from_batches(table, iter(second.to_batches(max_chunksize=1))) == 2
    back = session.table(['"DB"', '"S"', '"forecast history"']).to_pandas()
    assert back["day"].tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert back["units"].tolist() == [3.0, 4.0, 5.0]
    left = [t for t in session._conn.entity_registry.table_registry if "FLURRY_STAGING" in t.upper()]
    assert left == []
    session.close()


def test_a_scores_stamps_read_the_version_served_when_it_runs(warehouse: SnowflakeWarehouse) -> None:
    """A re-scoring Task stamps each row with the version its function serves at that run (promotions move it),
    and a one-off score with the time Flurry took, whatever the label or time holds."""
    from backend.warehouse import snowflake_deploy as sd

    meta = f'"{warehouse.database}"."FLURRY"'
    warehouse.execute(f'CREATE TABLE {meta}."deployments" (function_name VARCHAR, model_id VARCHAR)')
    warehouse.execute(f'CREATE TABLE {meta}."model_versions" (model_id VARCHAR, version_number INTEGER)')
    warehouse.execute(f'INSERT INTO {meta}."model_versions" VALUES (?, ?), (?, ?)', ["m1", 1, "m2", 2])
    warehouse.execute(f'INSERT INTO {meta}."deployments" VALUES (?, ?)', ["flurry_churn", "m1"])
    served = sd.served_version_sql(warehouse.database, "flurry_churn")
    stamp = pd.Timestamp("2026-12-08 01:02:03.456789")
    label = sd.sql_string("it's v2 \\ ok")
    probe = f'SELECT {served} AS "v", {label} AS "label", {sd.timestamp_sql(stamp)} AS "t"'
    first = warehouse.query(probe).iloc[0]
    assert (first["v"], first["label"], pd.Timestamp(first["t"])) == ("v1", "it's v2 \\ ok", stamp)
    warehouse.execute(f'UPDATE {meta}."deployments" SET model_id = ? WHERE function_name = ?', ["m2", "flurry_churn"])
    assert warehouse.query(probe).iloc[0]["v"] == "v2"  # promoted: the next run says so


def test_a_failed_connection_never_shows_the_password(server: dict) -> None:
    secret = "hunter2-very-secret"
    bad = dict(server, port=1, password=secret, login_timeout=2, network_timeout=1)
    with pytest.raises(ConfigurationError) as caught:
        open_session("unused", secrets=bad)
    assert secret not in str(caught.value) and secret not in (caught.value.hint or "")
    assert "Could not connect to Snowflake" in str(caught.value)
    assert redact(f"user=x password={secret}", {"password": secret}) == "user=x password=***"


def test_identity_shows_where_not_how(warehouse: SnowflakeWarehouse, server: dict) -> None:
    shown = dict(identity(warehouse._session).lines())
    # (fakesnow's server shares one current database between sessions, so only its account is stable here)
    assert shown["Account"] == server["account"] and shown["Database"] not in ("", "none")
    assert set(shown) == {"Account", "Role", "Warehouse", "Database", "Schema"}
    assert server["password"] not in shown.values() and server["user"] not in shown.values()


def test_outside_snowflake_there_is_no_active_session_to_borrow() -> None:
    from snowflake.snowpark import Session

    from backend.config import warehouse_config
    from backend.warehouse.snowflake_session import active_session

    local = Session.builder.config("local_testing", True).create()  # a session, but not Snowflake's own
    try:
        assert active_session() is None
        with pytest.raises(ConfigurationError, match="not running inside Snowflake"):
            open_session(ACTIVE)
        import os

        if not os.environ.get("FLURRY_WAREHOUSE"):
            assert warehouse_config().kind == "duckdb"  # the embedded default, not the local-testing session
    finally:
        local.close()


def test_a_hosted_app_refuses_to_start_before_schemas_are_allowed(tmp_path: Path) -> None:
    from backend.config import WarehouseConfig, _settings_file_value
    from backend.workspace import open_workspace

    with pytest.raises(ConfigurationError, match="no schemas are allowed yet"):
        open_workspace(WarehouseConfig("snowflake", ACTIVE), allowed_schemas="")
    settings = tmp_path / "flurry.toml"
    settings.write_text('[access]\nallowed_schemas = ["SALES", "DEMO_*"]\n', encoding="utf-8")
    assert _settings_file_value("access", "allowed_schemas", settings) == "SALES,DEMO_*"
    settings.write_text("[access\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        _settings_file_value("access", "allowed_schemas", settings)
    from backend.config import SETTINGS_FILE

    assert _settings_file_value("access", "allowed_schemas", SETTINGS_FILE) == ""  # shipped empty: hosted apps wait


def test_snowflake_refusals_become_plain_messages(warehouse: SnowflakeWarehouse) -> None:
    from backend.errors import WarehouseQueryError

    with pytest.raises(WarehouseQueryError, match="Snowflake refused the request") as caught:
        warehouse.query("SELECT * FROM no_such_schema.no_such_table WHERE x = ?", ["secret-value-123"])
    assert "secret-value-123" not in str(caught.value)


def test_a_hosted_app_refuses_to_train_beside_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.config import WarehouseConfig
    from backend.workspace import open_workspace

    monkeypatch.setenv("FLURRY_TRAINING", "local")
    with pytest.raises(ConfigurationError, match="trains on the warehouse"):
        open_workspace(WarehouseConfig("snowflake", ACTIVE), allowed_schemas="SALES")


def test_the_sidebar_offers_the_embedded_warehouse_and_each_named_connection() -> None:
    from backend.config import SECRETS_CONNECTION, WarehouseConfig, embedded_config, warehouse_choices

    embedded, prod = embedded_config(), WarehouseConfig("snowflake", "prod")
    assert warehouse_choices(embedded, ["prod", "dev"], has_secrets=False) == [
        embedded, WarehouseConfig("snowflake", "dev"), prod]
    assert warehouse_choices(prod, ["prod", "dev"], has_secrets=False)[:2] == [prod, embedded]  # configured first
    # the secrets' connection wins over connections.toml, so it is offered once and alone
    assert warehouse_choices(embedded, ["prod"], has_secrets=True) == [
        embedded, WarehouseConfig("snowflake", SECRETS_CONNECTION)]
    assert warehouse_choices(prod, ["prod"], has_secrets=True) == [prod, embedded]
    hosted = WarehouseConfig("snowflake", ACTIVE)
    assert warehouse_choices(hosted, ["prod"], has_secrets=True) == [hosted]  # inside Snowflake: no choice


def test_connection_names_are_read_by_the_connector_and_nothing_else_leaves(tmp_path: Path) -> None:
    """In a fresh process: the connector reads SNOWFLAKE_HOME once, when first imported."""
    import os
    import subprocess
    import sys

    home = tmp_path / "snowflake-home"
    home.mkdir()
    (home / "connections.toml").write_text('[prod]\naccount = "acme"\npassword = "hunter2-secret"\n\n'
                                           '[dev]\naccount = "acme-dev"\n', encoding="utf-8")
    (home / "connections.toml").chmod(0o600)
    code = "from backend.warehouse.snowflake_session import connection_names; print(connection_names())"
    env = dict(os.environ, SNOWFLAKE_HOME=str(home))
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert shown.stdout.strip() == "['dev', 'prod']", shown.stderr
    assert "hunter2" not in shown.stdout + shown.stderr
    (home / "connections.toml").write_text("[prod\n", encoding="utf-8")  # unreadable: nothing on offer, no crash
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert shown.stdout.strip() == "[]", shown.stderr


def test_a_profile_refused_its_frequent_values_goes_without_them(warehouse: SnowflakeWarehouse) -> None:
    """fakesnow cannot return APPROX_TOP_K's array (as an account could refuse it for a column): the profile is
    still made, without the most frequent values, and the connection stops asking for them."""
    eager = SnowflakeWarehouse(warehouse.session, warehouse.database, top_values=True)
    profile = eager.profile(ODD)
    assert profile.rows == 600 and all(not c.top_values for c in profile.columns)
    assert eager._top_values is False


def test_a_model_monitor_watches_the_production_versions_stamped_scores_joined_to_outcomes(
        warehouse: SnowflakeWarehouse) -> None:
    """The monitor's source is a view over what Flurry writes: the rows the production version scored (by their
    model_version stamp) joined to the outcomes that arrived, a binary model's classes as 1/0 of its positive
    class, the time as TIMESTAMP_NTZ. fakesnow runs the view; CREATE MODEL MONITOR it cannot, and that refusal
    comes back as a sentence (as an account without model monitors would refuse)."""
    from backend.warehouse.snowflake_monitor import MonitorPlan, monitor_statements

    scored, outcomes = TableRef(ODD.schema, "scores m"), TableRef(ODD.schema, "outcomes m")
    warehouse.execute(f'CREATE TABLE {warehouse.qualify(scored)} ("id" INT, "prediction" VARCHAR, '
                      '"probability" DOUBLE, "model_version" VARCHAR, "scored_at" TIMESTAMP_NTZ)')
    warehouse.execute(f'INSERT INTO {warehouse.qualify(scored)} VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?), '
                      '(?, ?, ?, ?, ?), (?, ?, ?, ?, ?)',
                      [1, "yes", 0.9, "v2", "2026-12-01 10:00:00", 2, "no", 0.2, "v2", "2026-12-01 10:00:00",
                       3, "yes", 0.7, "v1", "2026-11-01 10:00:00", 4, "no", 0.4, "v2", "2026-12-01 10:00:00"])
    warehouse.execute(f'CREATE TABLE {warehouse.qualify(outcomes)} ("id" INT, "churned" VARCHAR)')
    warehouse.execute(f'INSERT INTO {warehouse.qualify(outcomes)} VALUES (?, ?), (?, ?), (?, ?)',
                      [1, "yes", 2, "yes", 3, "no"])  # row 4's outcome has not arrived
    plan = MonitorPlan(model="FLURRY_PREDICT_CHURN", version="V2", task="binary", scored=warehouse.qualify(scored),
                       outcomes=warehouse.qualify(outcomes), key_column="id", outcome_column="churned",
                       prediction_column="prediction", probability_column="probability", scored_at_column="scored_at",
                       version_column="model_version", version_label="v2", positive_class="yes", warehouse="WH")
    view, monitor = monitor_statements(warehouse.database, plan)
    warehouse.execute(view)
    rows = warehouse.query(f'SELECT * FROM "{warehouse.database}"."FLURRY"."FLURRY_PREDICT_CHURN_MONITORED" '
                           'ORDER BY "ID"')
    assert rows["ID"].tolist() == ["1", "2"]  # v2's rows whose outcome arrived; v1's row is another version's
    assert rows["PREDICTION"].tolist() == [1, 0] and rows["ACTUAL"].tolist() == [1, 1]
    assert rows["PROBABILITY"].tolist() == [0.9, 0.2]
    assert monitor.startswith(f'CREATE OR REPLACE MODEL MONITOR "{warehouse.database}"."FLURRY".'
                              '"FLURRY_PREDICT_CHURN_MONITOR" WITH MODEL = ')
    for clause in ("VERSION = 'V2'", "FUNCTION = 'predict'", 'WAREHOUSE = "WH"', 'TIMESTAMP_COLUMN = "SCORED_AT"',
                   "PREDICTION_CLASS_COLUMNS = ('PREDICTION') ACTUAL_CLASS_COLUMNS = ('ACTUAL')",
                   "PREDICTION_SCORE_COLUMNS = ('PROBABILITY')", "AGGREGATION_WINDOW = '1 day'"):
        assert clause in monitor
    said = warehouse.monitor_model(plan)
    assert said.startswith("Snowflake did not create the model monitor:") and "CREATE MODEL MONITOR" in said
