"""Every public operation of the warehouse port and of the deployment targets, run on both warehouses.

The operations are enumerated from the interfaces themselves (`Warehouse`, `DeploymentTarget`): an operation
added to either without a run here fails `test_every_operation_is_exercised`, and an adapter that answers one
with NotImplementedError fails the run. Snowflake runs through a real Snowpark session against fakesnow's
server. Where only the emulator falls short, the operation is marked xfail(strict=True) with the emulator's own
error type, so the gap is named and a gap that closes is noticed:
- fakesnow cannot PUT files, so Snowpark's pandas writes (create_dataframe → write_pandas) fail there; the same
  writes run in Snowpark's local testing mode in test_snowflake_adapter.py;
- fakesnow cannot call Python UDFs or create Tasks, so the Snowflake target's score and schedule statements are
  parsed as Snowflake SQL in test_snowflake_hosting.py instead; local testing cannot register permanent UDFs.
Optional operations an adapter opts into (PythonFunctionHost, StagedModelHost) are run where they are offered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from backend.deployment_targets import DeploymentTarget, ScoringPlan, target_for
from backend.warehouse.base import SampleSpec, TableRef, Warehouse

SCHEMA = "PORT LAB"
TABLE = TableRef(SCHEMA, "orders")
ROWS = [(i, ["north", "south"][i % 2], float(i % 9), "yes" if i % 3 == 0 else "no") for i in range(120)]


def _load(wh: Warehouse) -> None:
    wh.ensure_schema(SCHEMA)
    wh.execute(f'CREATE TABLE {wh.qualify(TABLE)} ("id" INT, "region" VARCHAR, "amount" DOUBLE, "churned" VARCHAR)')
    wh.execute(f"INSERT INTO {wh.qualify(TABLE)} VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(ROWS)),
               [v for row in ROWS for v in row])


@pytest.fixture(scope="module", params=["duckdb", "snowflake"])
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Warehouse]]:
    """One loaded warehouse per adapter for the module: each operation below leaves the table as the others
    need it (they write tables of their own)."""
    if request.param == "duckdb":
        from backend.warehouse.duckdb_warehouse import DuckDBWarehouse

        wh: Warehouse = DuckDBWarehouse(tmp_path_factory.mktemp("port") / "port.duckdb")
    else:
        from backend.warehouse.snowflake_session import open_session
        from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

        database = f"PORT_{uuid.uuid4().hex[:8].upper()}"
        session = open_session("unused", secrets=dict(request.getfixturevalue("fakesnow_server"), database=database,
                                                      schema="PUBLIC"))
        session.sql(f"CREATE DATABASE IF NOT EXISTS {database}").collect()
        wh = SnowflakeWarehouse(session, database, top_values=False)
    _load(wh)
    wh.ensure_schema("FLURRY")
    yield request.param, wh
    if request.param == "duckdb":
        wh.close()


def _batches(rows: int = 3) -> Iterator[pa.RecordBatch]:
    return iter(pa.Table.from_pandas(pd.DataFrame({"a": range(rows), "b": ["x"] * rows})).to_batches())


def _csv(tmp: Path) -> Path:
    path = tmp / "upload.csv"
    path.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    return path


# Each operation of the port, run with small arguments, and what its answer must be. `tmp` is a folder.
Check = Callable[[Warehouse, Path], None]
SPEC = SampleSpec(table=TABLE, columns=("region", "amount", "churned"), target="churned", max_rows=50)
WAREHOUSE_OPERATIONS: dict[str, Check] = {
    "metadata_objects_sql": lambda wh, _: _is(list, wh.metadata_objects_sql("FLURRY")),
    "identity": lambda wh, _: _true(isinstance(wh.identity, str) and wh.identity),
    "qualify": lambda wh, _: _true(wh.qualify(TABLE).count('"') >= 4),
    "execute": lambda wh, _: wh.execute(f"UPDATE {wh.qualify(TABLE)} SET \"amount\" = \"amount\" WHERE \"id\" = ?",
                                        [1]),
    "query": lambda wh, _: _true(len(wh.query(f'SELECT * FROM {wh.qualify(TABLE)} WHERE "id" < ?', [5])) == 5),
    "update": lambda wh, _: _true(wh.update(f'UPDATE {wh.qualify(TABLE)} SET "amount" = 1 WHERE "id" < ?', [4]) == 4),
    "transaction": lambda wh, _: _in_transaction(wh),
    "list_schemas": lambda wh, _: _true(SCHEMA in wh.list_schemas()),
    "list_tables": lambda wh, _: _true("orders" in wh.list_tables(SCHEMA)),
    "table_summaries": lambda wh, _: _true(any(t.name == "orders" for t in wh.table_summaries([SCHEMA]))),
    "table_size_bytes": lambda wh, _: _true(wh.table_size_bytes(TABLE) is None or wh.table_size_bytes(TABLE) >= 0),
    "table_exists": lambda wh, _: _true(wh.table_exists(TABLE) and not wh.table_exists(TableRef(SCHEMA, "none"))),
    "describe": lambda wh, _: _true([c.name for c in wh.describe(TABLE)] == ["id", "region", "amount", "churned"]),
    "row_count": lambda wh, _: _true(wh.row_count(TABLE) == len(ROWS)),
    "column_stats": lambda wh, _: _true(len(wh.column_stats(TABLE)) == 4),
    "profile": lambda wh, _: _true(wh.profile(TABLE).rows == len(ROWS)),
    "preview": lambda wh, _: _true(len(wh.preview(TABLE, 7)) == 7),
    "read_columns": lambda wh, _: _true(list(wh.read_columns(TABLE, ["region"], limit=3).columns) == ["region"]),
    "sample": lambda wh, _: _true(0 < len(wh.sample(TABLE, ["amount"], 30, seed=1)) <= 30),
    "value_counts": lambda wh, _: _true(len(wh.value_counts(TABLE, "region", limit=5)) == 2),
    "duplicate_rows": lambda wh, _: _true(wh.duplicate_rows(TABLE) == 0),
    "target_gaps": lambda wh, _: _true(wh.target_gaps(TABLE, "churned", ("yes",)) == (0, 40)),
    "export_training_sample": lambda wh, tmp: _exported(wh.export_training_sample(SPEC, tmp / "s.parquet")),
    "scan_batches": lambda wh, _: _true(sum(b.num_rows for b in wh.scan_batches(TABLE, ["id"], 50)) == len(ROWS)),
    "aggregate_distribution": lambda wh, _: _true(len(wh.aggregate_distribution(TABLE, "amount", bins=5)) > 0),
    "ensure_schema": lambda wh, _: (wh.ensure_schema("PORT OUT"), wh.ensure_schema("PORT OUT"),  # twice: no error
                                    wh.execute(f'CREATE TABLE {wh.qualify(TableRef("PORT OUT", "t"))} ("a" INT)'),
                                    _true(wh.table_exists(TableRef("PORT OUT", "t")))),
    "write_table": lambda wh, _: (wh.write_table(TableRef(SCHEMA, "w"), pd.DataFrame({"a": [1, 2]})),
                                  _true(wh.row_count(TableRef(SCHEMA, "w")) == 2)),
    "replace_table_from_batches": lambda wh, _: _true(wh.replace_table_from_batches(TableRef(SCHEMA, "r"),
                                                                                    _batches()) == 3),
    "append_table_from_batches": lambda wh, _: _true(wh.append_table_from_batches(TableRef(SCHEMA, "p"),
                                                                                  _batches()) == 3),
    "create_table_from_file": lambda wh, tmp: _true(wh.create_table_from_file(TableRef(SCHEMA, "f"), _csv(tmp),
                                                                              "csv") == 2),
    "drop_table": lambda wh, _: (wh.execute(f'CREATE TABLE {wh.qualify(TableRef(SCHEMA, "gone"))} ("a" INT)'),
                                 wh.drop_table(TableRef(SCHEMA, "gone")),
                                 _true(not wh.table_exists(TableRef(SCHEMA, "gone")))),
    "staging_in_use": lambda wh, _: _is(set, wh.staging_in_use()),
    "drop_staging_tables": lambda wh, _: _is(list, wh.drop_staging_tables()),
    "function_exists": lambda wh, _: _true(wh.function_exists("flurry_no_such_function") is False),
    "drop_function": lambda wh, _: wh.drop_function("flurry_no_such_function"),
    "connection_details": lambda wh, _: _true(all(len(pair) == 2 for pair in wh.connection_details())),
    "app_address": lambda wh, _: _true(wh.app_address(("DB", "APP", "FLURRY")) is None
                                       or wh.app_address(("DB", "APP", "FLURRY")).startswith("https://")),
    "close": lambda wh, _: None,  # run last, by the fixture's teardown and by every test's end
}
# Operations whose Snowflake path needs what fakesnow lacks, with why and the error fakesnow answers with.
FAKESNOW_GAPS = {
    **dict.fromkeys(("write_table", "replace_table_from_batches", "append_table_from_batches", "create_table_from_file"),
                    "fakesnow cannot PUT (Snowpark's pandas writes: its server answers without a 'command'); the "
                    "writes run in Snowpark's local testing in test_snowflake_adapter.py"),
    **dict.fromkeys(("function_exists", "drop_function"),
                    "fakesnow has no INFORMATION_SCHEMA.FUNCTIONS; the overload drops are tested on their SQL in "
                    "test_snowflake_hosting.py"),
}


def _true(value: Any) -> None:
    assert value


def _is(kind: type, value: Any) -> None:
    assert isinstance(value, kind)


def _exported(info: Any) -> None:
    assert info.rows_eligible == len(ROWS) and info.sampled and 0 < info.rows_written < len(ROWS)


def _in_transaction(wh: Warehouse) -> None:
    with wh.transaction():
        wh.execute(f'UPDATE {wh.qualify(TABLE)} SET "amount" = ? WHERE "id" = ?', [5.0, 2])
    assert float(wh.query(f'SELECT "amount" FROM {wh.qualify(TABLE)} WHERE "id" = ?', [2]).iloc[0, 0]) == 5.0


def _public(interface: type) -> set[str]:
    return {name for name, value in vars(interface).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def test_every_operation_is_exercised() -> None:
    """The lists here are the interfaces' own: a new operation needs a run on both warehouses before it lands."""
    assert set(WAREHOUSE_OPERATIONS) == _public(Warehouse)
    assert set(TARGET_OPERATIONS) == _public(DeploymentTarget)


@pytest.mark.parametrize("operation", sorted(WAREHOUSE_OPERATIONS))
def test_each_warehouse_operation_runs_on_both_warehouses(operation: str, port: tuple[str, Warehouse],
                                                          tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kind, wh = port
    if kind == "snowflake" and operation in FAKESNOW_GAPS:
        from backend.errors import WarehouseQueryError

        request.applymarker(pytest.mark.xfail(strict=True, raises=(KeyError, WarehouseQueryError),
                                              reason=FAKESNOW_GAPS[operation]))
    try:
        WAREHOUSE_OPERATIONS[operation](wh, tmp_path)
    except NotImplementedError:  # an adapter that leaves an operation of the port undone fails here
        pytest.fail(f"{kind} does not implement {operation}")


# --- deployment targets -------------------------------------------------------------------------------------
TARGET_OPERATIONS = ("create", "restore", "refuse", "score", "schedule")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, bytes]]:
    """One small model, trained once on the embedded warehouse, to deploy on both."""
    from tests.conftest import make_workspace, put_table, train_and_wait

    ws = make_workspace(tmp_path_factory.mktemp("trained") / "t.duckdb", seed_demo=False)
    try:
        table = put_table(ws, "orders", pd.DataFrame(ROWS, columns=["id", "region", "amount", "churned"]))
        model_id = train_and_wait(ws, table, "churned", budget=2, features=["region", "amount"]).model_id
        version = ws.registry.get_model_version(model_id)
        return version, {name: ws.registry.get_artifact(model_id, name) for name in ("bundle", "holdout")}
    finally:
        ws.close()


def _plan(registry: Any, model_id: str, function: str, wh: Warehouse) -> ScoringPlan:
    from backend.deployed_model import load_bundle

    return ScoringPlan(function, load_bundle(registry, model_id), "v1", TABLE, TableRef("PORT OUT", "scored"),
                       [c.name for c in wh.describe(TABLE)], "prediction", "probability", "model_version",
                       "scored_at")


def _refusing(wh: Warehouse, function: str) -> None:
    with pytest.raises(Exception, match="the port test refused it"):  # the engine's error, carrying the reason
        wh.query(f'SELECT {function}("region", "amount") AS "p" FROM {wh.qualify(TABLE)} LIMIT 1')


# What each target operation must do; a Snowflake gap is named in TARGET_GAPS with fakesnow's own error.
TargetCheck = Callable[[DeploymentTarget, Any, str, Warehouse], None]
TARGET_CHECKS: dict[str, TargetCheck] = {
    "create": lambda target, registry, model_id, wh: _true(
        target.create(registry, model_id, "flurry_port_orders").predict == "flurry_port_orders"),
    "restore": lambda target, registry, model_id, wh: _is(list, target.restore(registry)),
    "refuse": lambda target, registry, model_id, wh: (
        target.refuse(registry, "flurry_port_refused", model_id, "the port test refused it."),
        wh.capabilities.staged_functions or _refusing(wh, "flurry_port_refused")),
    "score": lambda target, registry, model_id, wh: (
        target.create(registry, model_id, "flurry_port_scores"),
        _true(target.score(_plan(registry, model_id, "flurry_port_scores", wh)).rows == len(ROWS))),
    "schedule": lambda target, registry, model_id, wh: _true(
        target.schedule(_plan(registry, model_id, "flurry_port_orders", wh), "daily").task),
}
TARGET_GAPS = {
    "create": "fakesnow cannot PUT the model file onto the stage; the UDFs' registration runs in Snowpark's local "
              "testing (test_snowflake_workspace.py, test_snowflake_hosting.py)",
    "score": "the score needs the model's UDFs, which fakesnow cannot host; its statements are parsed as "
             "Snowflake SQL in test_snowflake_hosting.py and run as SQL in test_snowflake_adapter.py",
    "schedule": "fakesnow cannot CREATE TASK; the statements are parsed as Snowflake SQL in test_snowflake_hosting.py",
}


@pytest.mark.parametrize("operation", TARGET_OPERATIONS)
def test_each_deployment_target_operation_runs_on_both_warehouses(
        operation: str, port: tuple[str, Warehouse], trained: tuple[Any, dict[str, bytes]],
        request: pytest.FixtureRequest) -> None:
    """The embedded target runs every operation but one for real; `schedule` there is refused in words (the
    app's own scheduler serves it: backend.schedules), never left unimplemented."""
    from backend.errors import DeploymentError, WarehouseQueryError
    from backend.registry import Registry

    kind, wh = port
    registry = Registry(wh)
    registry.migrate()
    version, artifacts = trained
    if registry.model_for_run(version.run_id) is None:
        registry.add_model_version(version, artifacts)
    if kind == "snowflake" and operation in TARGET_GAPS:
        from snowflake.connector.errors import ProgrammingError

        request.applymarker(pytest.mark.xfail(strict=True, raises=(ProgrammingError, WarehouseQueryError),
                                              reason=TARGET_GAPS[operation]))
    target = target_for(wh)
    try:
        if kind == "duckdb" and operation == "schedule":
            with pytest.raises(DeploymentError, match="no scheduler of its own"):
                TARGET_CHECKS[operation](target, registry, version.model_id, wh)
            return
        TARGET_CHECKS[operation](target, registry, version.model_id, wh)
    except NotImplementedError:
        pytest.fail(f"the {kind} target does not implement {operation}")
