"""The Snowflake warehouse through Snowpark: tables stay in the account, only aggregates and samples move.

Catalog from INFORMATION_SCHEMA (metadata only), profiles and samples computed by warehouse SQL, writes
through Snowpark's `save_as_table` with a staging table swapped in atomically. Every identifier is quoted
and every value bound (`session.sql(..., params=...)`, qmark style).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backend.errors import (
    EmptyTableError,
    FlurryError,
    TableNotFoundError,
    UploadError,
    WarehouseQueryError,
)
from backend.identifiers import limit_clause, quote_ident
from backend.profiling import TableProfile
from backend.warehouse import snowflake_deploy as sd
from backend.warehouse.base import (
    METADATA_SCHEMA,
    STAGING_PREFIX,
    Capabilities,
    ColumnInfo,
    SampleInfo,
    SampleSpec,
    TableRef,
    TableSummary,
)
from backend.warehouse.common_sql import DRAW, DRAW_MODULUS, CommonSqlWarehouse
from backend.warehouse.snowflake_models import SnowflakeModelHost
from backend.warehouse.snowflake_pool import SessionPool
from backend.warehouse.snowflake_profile import profile_columns
from backend.warehouse.snowflake_session import (
    bindable,
    connection_lost,
    identity,
    snowflake_errors,
    snowflake_reason,
    snowsight_app_url,
    snowsight_location,
)

logger = logging.getLogger(__name__)

_HIDDEN_SCHEMAS = (METADATA_SCHEMA, "INFORMATION_SCHEMA")


def snowflake_type(data_type: str, scale: Any) -> str:
    """INFORMATION_SCHEMA's type with the scale that matters: NUMBER(38,0) is an integer, NUMBER(10,2) not."""
    if data_type.upper() in ("NUMBER", "DECIMAL", "NUMERIC") and scale is not None and not pd.isna(scale):
        return f"NUMBER(38,{int(scale)})"
    return data_type.upper()


class SnowflakeWarehouse(CommonSqlWarehouse, SnowflakeModelHost):
    kind = "snowflake"
    # scoring functions are permanent UDFs created from a staged artifact, not Python callables in this process
    capabilities = Capabilities(python_udfs=False, local_worker=False, staged_functions=True)
    binary_type = "BINARY"  # Snowflake has no BLOB; BINARY holds 8 MB, so the registry stores artifacts in parts
    timestamp_type = "TIMESTAMP_NTZ"

    def metadata_objects_sql(self, schema: str) -> list[str]:
        # the stage holds the procedure's and the functions' code and the deployed model files; it must exist
        # before anything is registered with stage_location on it or put there
        return [f"CREATE STAGE IF NOT EXISTS {sd.stage_name(self.database)}"]

    def __init__(self, session: Any, database: str | None = None, *, top_values: bool = True,
                 reopen: Callable[[], Any] | None = None, sessions: int = 1) -> None:
        self._reopen = reopen  # a new session of the same connection, when this one is lost (None: never)
        # `sessions` > 1 (with `reopen`): threads lease sessions of their own, up to that many (snowflake_pool)
        self._pool = SessionPool(session, reopen if sessions > 1 else None, sessions)
        # APPROX_TOP_K gives the profile's most frequent values; engines that only emulate Snowflake (the
        # offline tests' fakesnow) lack it, and the profile then goes without them
        self._top_values = top_values
        self._transactions = threading.local()  # this thread's transaction depth on its leased session
        self.database = (database or str(session.get_current_database() or "")).strip('"')
        if not self.database:
            raise TableNotFoundError("The Snowflake connection has no current database.",
                                     hint="Set `database` in the connection (connections.toml or secrets).")

    @property
    def session(self) -> Any:
        """The Snowpark session this thread holds (for the stage, procedures and registrations), else the first."""
        return self._pool.current()

    _session = session

    def session_lock(self) -> contextlib.AbstractContextManager[Any]:
        """Lease a session to this thread while its state (transaction, current warehouse) is changed or a
        sequence of statements must run on one session; `session` is that session meanwhile."""
        return self._pool.lease()

    @property
    def _transaction_depth(self) -> int:
        return int(getattr(self._transactions, "depth", 0))

    # --- identity --------------------------------------------------------------------------------
    @property
    def identity(self) -> str:
        return f"snowflake:{self.database}"

    def qualify(self, table: TableRef) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(table.schema)}.{quote_ident(table.name)}"

    @property
    def _info(self) -> str:
        return f"{quote_ident(self.database)}.INFORMATION_SCHEMA"

    def connection_details(self) -> list[tuple[str, str]]:
        return identity(self._session).lines()

    def app_address(self, app: tuple[str, str, str]) -> str | None:
        location = snowsight_location(self._session)
        return snowsight_app_url(*location, app) if location else None

    # --- raw SQL ---------------------------------------------------------------------------------
    # Every statement holds the session's lock: one Snowpark session serves every thread of the app, a
    # transaction belongs to the session, and a statement of another thread must not land inside it.
    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        bound = bindable(params)
        self._reconnecting(lambda: self._session.sql(sql, params=bound).collect(), read_only=False)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        bound = bindable(params)
        result: pd.DataFrame = self._reconnecting(lambda: self._session.sql(sql, params=bound).to_pandas(),
                                                  read_only=True)
        return result

    def update(self, sql: str, params: list[Any] | None = None) -> int:
        """Snowflake answers an UPDATE with one row, "number of rows updated" first (a DELETE: "number of rows
        deleted"). Never run again on a lost connection: it may have run."""
        bound = bindable(params)
        rows = self._reconnecting(lambda: self._session.sql(sql, params=bound).collect(), read_only=False)
        return int(rows[0][0]) if rows else 0

    def _reconnecting(self, statement: Callable[[], Any], *, read_only: bool) -> Any:
        """Run `statement` under the session's lock; when the connection is lost outside a transaction (and the
        statement cannot have run, unless it only reads), open a new session once and run it again. Raises
        WarehouseQueryError, saying so when the connection could not be made again."""
        with self._pool.lease():
            try:
                with snowflake_errors():
                    return statement()
            except WarehouseQueryError as exc:
                if self._reopen is None or self._transaction_depth or not connection_lost(exc.__cause__,
                                                                                          read_only=read_only):
                    raise
                logger.warning("The Snowflake connection was lost; opening a new session once.")
                try:
                    self._pool.replace_current(self._reopen())
                except Exception as again:
                    reason = again.message if isinstance(again, FlurryError) else snowflake_reason(again)
                    raise WarehouseQueryError(
                        f"The connection to Snowflake was lost and could not be made again: {reason}",
                        hint="Check the network and that the account is reachable, then reload the page.") from again
                with snowflake_errors():
                    return statement()

    def _batches(self, sql: str, params: list[Any] | None = None) -> Iterator[pd.DataFrame]:
        """The result of `sql` in pandas batches; the statement runs under the session's lock, the batches
        are then fetched from its result without it."""
        with self._pool.lease(), snowflake_errors():
            batches = self._session.sql(sql, params=bindable(params)).to_pandas_batches()
        return batches

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # One session serves every thread of the app, and a transaction belongs to the session: the lock
        # keeps other threads' transactions out until this one ends; nested calls join the outer one.
        with self._pool.lease():
            self._transactions.depth = self._transaction_depth + 1
            try:
                if self._transaction_depth > 1:
                    yield
                    return
                self.execute("BEGIN")
                try:
                    yield
                    self.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.execute("ROLLBACK")
                    raise
            finally:
                self._transactions.depth = self._transaction_depth - 1

    # --- catalog ---------------------------------------------------------------------------------
    def list_schemas(self) -> list[str]:
        frame = self.query(f'SELECT schema_name AS "s" FROM {self._info}.SCHEMATA ORDER BY 1')
        return [s for s in frame["s"].tolist() if s.upper() not in _HIDDEN_SCHEMAS]

    def list_tables(self, schema: str) -> list[str]:
        frame = self.query(f'SELECT table_name AS "t" FROM {self._info}.TABLES WHERE table_schema = ? ORDER BY 1',
                           [schema])
        return frame["t"].tolist()

    def table_summaries(self, schemas: list[str] | None = None) -> list[TableSummary]:
        # One query per schema, each filtered on it: an unfiltered TABLES × COLUMNS query fails with
        # "Information schema query returned too much data" on a large database.
        summaries = []
        for schema in self.list_schemas() if schemas is None else schemas:
            if schema.upper() in _HIDDEN_SCHEMAS:
                continue
            frame = self.query(
                f'SELECT t.table_name AS "t", t.table_type AS "k", t.row_count AS "r", COUNT(c.column_name) AS "c" '
                f'FROM {self._info}.TABLES t LEFT JOIN {self._info}.COLUMNS c ON c.table_schema = ? '
                f'AND c.table_name = t.table_name WHERE t.table_schema = ? GROUP BY 1, 2, 3 ORDER BY 1', [schema, schema])
            summaries += [TableSummary(schema=schema, name=r.t, kind="view" if "VIEW" in str(r.k).upper() else "table",
                                       rows=None if pd.isna(r.r) else int(r.r), columns=int(r.c))
                          for r in frame.itertuples()]
        return summaries

    def table_size_bytes(self, table: TableRef) -> int | None:
        frame = self.query(f'SELECT bytes AS "b" FROM {self._info}.TABLES WHERE table_schema = ? AND table_name = ?',
                           [table.schema, table.name])
        return None if frame.empty or pd.isna(frame["b"].iloc[0]) else int(frame["b"].iloc[0])

    def table_exists(self, table: TableRef) -> bool:
        frame = self.query(f'SELECT COUNT(*) AS "n" FROM {self._info}.TABLES WHERE table_schema = ? AND table_name = ?',
                           [table.schema, table.name])
        return int(frame["n"].iloc[0]) > 0


    def describe(self, table: TableRef) -> list[ColumnInfo]:
        self._require(table)
        frame = self.query(
            f'SELECT column_name AS "n", data_type AS "t", numeric_scale AS "s", is_nullable AS "null" '
            f'FROM {self._info}.COLUMNS WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position',
            [table.schema, table.name])
        return [ColumnInfo(name=r.n, sql_type=snowflake_type(r.t, r.s), nullable=r.null == "YES")
                for r in frame.itertuples()]

    # --- profile / read --------------------------------------------------------------------------
    def _read(self, table: TableRef, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.query(sql, params)

    def profile(self, table: TableRef) -> TableProfile:
        """The table's profile by warehouse SQL. Should the most frequent values (APPROX_TOP_K) be refused, the
        profile goes without them rather than not at all, and so do this connection's later profiles; any other
        refusal is raised again by the second try."""
        columns = self.describe(table)
        if self._top_values:
            try:
                return profile_columns(columns, self.qualify(table), self.query, top_values=True)
            except WarehouseQueryError:
                logger.warning("the profile of %s failed with its most frequent values; profiling without them", table,
                               exc_info=True)
                self._top_values = False
        return profile_columns(columns, self.qualify(table), self.query, top_values=False)

    def _shortened_text(self, ident: str, chars: int) -> str:
        return f"LEFT(TO_VARCHAR({ident}), {int(chars)})"  # TO_VARCHAR also renders VARIANT, OBJECT and BINARY

    def _projection(self, table: TableRef, columns: list[str]) -> str:
        by_name = self._columns_named(table, columns)
        parts = []
        for name in columns:
            ident = quote_ident(name)
            # NUMBER(p,s>0) arrives as Decimal objects; the model wants floats
            parts.append(f"CAST({ident} AS DOUBLE) AS {ident}" if by_name[name].sql_type.startswith("NUMBER(38,")
                         and not by_name[name].sql_type.endswith(",0)") else ident)
        return ", ".join(parts)

    def _draw(self, columns: list[str]) -> str:
        """A deterministic pseudo-random number per row from its content and the seed (bound first)."""
        return f"MOD(ABS(HASH(?, {', '.join(quote_ident(c) for c in columns)})), {DRAW_MODULUS})"

    def sample(self, table: TableRef, columns: list[str], rows: int, *, seed: int = 0) -> pd.DataFrame:
        return self.query(f"SELECT {self._projection(table, columns)} FROM {self.qualify(table)} "
                          f"ORDER BY {self._draw(columns)}{limit_clause(rows)}", [int(seed)])

    def _rows_with_draw(self, spec: SampleSpec, where: str) -> str:
        return (f"SELECT *, {self._draw(list(spec.columns))} AS {DRAW} FROM "
                f"(SELECT {'DISTINCT ' if spec.distinct else ''}{self._projection(spec.table, list(spec.columns))} "
                f"FROM {self.qualify(spec.table)} {where})")

    # Snowflake returns rows in no set order: ordered by the seeded draw (equal only for equal rows), the same
    # sample always arrives in the same order, so the same seed splits off the same holdout (reproduce.py)
    sample_order = f" ORDER BY {DRAW}"

    def export_training_sample(self, spec: SampleSpec, destination: Path) -> SampleInfo:
        sql, params, eligible, sampled = self.training_sample_sql(spec)
        written = 0
        writer: pq.ParquetWriter | None = None
        try:
            for chunk in self._batches(sql, params):
                batch = pa.Table.from_pandas(chunk, preserve_index=False)
                writer = writer or pq.ParquetWriter(destination, batch.schema)
                writer.write_table(batch.cast(writer.schema))
                written += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        return SampleInfo(rows_written=written, rows_eligible=eligible, sampled=sampled)

    def scan_batches(self, table: TableRef, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        sql = f"SELECT {self._projection(table, columns)} FROM {self.qualify(table)}"
        for chunk in self._batches(sql):
            yield from pa.Table.from_pandas(chunk, preserve_index=False).to_batches(max_chunksize=batch_rows)

    # --- write -----------------------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.database)}.{quote_ident(schema)}")

    def _with_current_schema(self) -> None:
        """Snowpark writes a pandas frame through a temporary table, stage and file format in the session's
        current schema (Session.create_dataframe → write_pandas with the current database and schema), so a
        connection without one could write nothing. Flurry's own schema then serves: every statement Flurry
        issues names its schema, and the role that made FLURRY may create there."""
        if not str(self._session.get_current_schema() or "").strip('"'):
            self.ensure_schema(METADATA_SCHEMA)
            self._session.use_schema(f"{quote_ident(self.database)}.{quote_ident(METADATA_SCHEMA)}")

    def _save(self, table: TableRef, frame: pd.DataFrame) -> None:
        with self._pool.lease():
            self._with_current_schema()
            self._session.create_dataframe(frame).write.save_as_table(self._path(table), mode="errorifexists")

    def write_table(self, table: TableRef, frame: pd.DataFrame, *, replace: bool = False) -> None:
        if replace:
            self.replace_table_from_batches(table, iter(pa.Table.from_pandas(frame, preserve_index=False).to_batches()))
            return
        self._save(table, frame)

    def replace_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        return self._write_staged(table, batches, lambda staging: self._swap_in(staging, table))

    def append_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        """The staged rows added to `table` in one INSERT … SELECT matching columns by name (Snowpark's
        save_as_table, mode="append", column_order="name"; it creates `table` when missing)."""
        def add(staging: TableRef) -> None:
            with self._pool.lease():
                self._session.table(self._path(staging)).write.save_as_table(self._path(table), mode="append",
                                                                             column_order="name")
        return self._write_staged(table, batches, add)

    def _write_staged(self, table: TableRef, batches: Iterator[pa.RecordBatch],
                      put_in_place: Callable[[TableRef], None]) -> int:
        """Stage every batch in a table of its own, then `put_in_place(staging)`; the staging table is gone
        afterwards whatever happened, and a failure while staging leaves `table` as it was. Rows written."""
        staging = TableRef(table.schema, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        try:
            written = self._stage_batches(staging, batches)
            if written == 0:
                raise EmptyTableError(f"There are no rows to write into {table}.",
                                      hint="Check that the source table has rows.")
            put_in_place(staging)
        finally:  # swapped in or renamed it is gone already; otherwise it goes now
            with contextlib.suppress(Exception), self._pool.lease():
                self._session.table(self._path(staging)).drop_table()
        return written

    def _path(self, table: TableRef) -> list[str]:
        """`table` as Snowpark's name parts, each quoted."""
        return [quote_ident(self.database), quote_ident(table.schema), quote_ident(table.name)]

    def _stage_batches(self, staging: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        written = 0
        with self._pool.lease():
            self._with_current_schema()
        for batch in batches:
            mode = "errorifexists" if written == 0 else "append"
            with self._pool.lease():
                self._session.create_dataframe(batch.to_pandas()).write.save_as_table(self._path(staging), mode=mode)
            written += batch.num_rows
        return written

    def _swap_in(self, staging: TableRef, table: TableRef) -> None:
        """Put the staged rows in place of `table` in one statement: readers see the old table or the new one,
        never neither, and keep their grants. (ALTER TABLE … SWAP WITH would be a metadata operation, but it
        swaps the grants too, so every reader of the table would lose access at each replace.)"""
        if self.table_exists(table):
            self.execute(sd.replace_sql(self.qualify(table), f"SELECT * FROM {self.qualify(staging)}"))
            self.execute(f"DROP TABLE IF EXISTS {self.qualify(staging)}")
        else:
            self.execute(f"ALTER TABLE {self.qualify(staging)} RENAME TO {self.qualify(table)}")

    def create_table_from_file(self, table: TableRef, path: Path, fmt: str, *, delimiter: str | None = None) -> int:
        from pyarrow import csv

        try:
            arrow = (csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=delimiter or ","))
                     if fmt == "csv" else pq.read_table(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise UploadError(f"The file could not be read as {fmt.upper()}: {str(exc).splitlines()[0]}",
                              hint="Check that it has one header row and the same number of fields on every line."
                              if fmt == "csv" else "Check that it is a valid Parquet file.") from exc
        if arrow.num_rows == 0:
            raise UploadError("The file has a header but no rows.", hint="Upload a file with data rows.")
        self.ensure_schema(table.schema)
        return self.replace_table_from_batches(table, iter(arrow.to_batches(max_chunksize=100_000)))

    def drop_table(self, table: TableRef) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.qualify(table)}")

    def _functions(self, name: str) -> pd.DataFrame:
        """Every overload of Flurry's function `name`: its argument signature ("s") and when it was created ("c")."""
        return self.query(f'SELECT argument_signature AS "s", created AS "c" FROM {self._info}.FUNCTIONS '
                          "WHERE function_schema = ? AND function_name = ?", [METADATA_SCHEMA, name.upper()])

    def _function_signatures(self, name: str) -> list[str]:
        return self._functions(name)["s"].tolist()

    def current_warehouse(self) -> str:
        """The session's warehouse, unquoted ("" when it has none)."""
        return str(self._session.get_current_warehouse() or "").strip('"')

    def function_exists(self, name: str) -> bool:
        return bool(self._function_signatures(name))

    def drop_function(self, name: str) -> None:
        for signature in self._function_signatures(name):
            self.execute(sd.drop_function_sql(sd.function_name(self.database, name), signature))

    def close(self) -> None:
        self._pool.close()
