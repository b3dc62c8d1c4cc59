"""The embedded DuckDB warehouse: one database file, opened by the app process only.

DuckDB lets one process hold a database file; even a read-only open from another process fails while the
app holds it. So training workers get their data as Parquet files, and this adapter says clearly when
the file is held elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import duckdb.func
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backend.errors import ConfigurationError, EmptyTableError, UploadError, WarehouseLockedError
from backend.identifiers import qualified, quote_ident
from backend.profiling import TableProfile
from backend.warehouse.base import (
    METADATA_SCHEMA,
    STAGING_PREFIX,
    Capabilities,
    ColumnInfo,
    PythonFunctionHost,
    SampleInfo,
    SampleSpec,
    ScalarFunction,
    TableRef,
    TableSummary,
)
from backend.warehouse.common_sql import DRAW, DRAW_MODULUS, CommonSqlWarehouse
from backend.warehouse.duckdb_profile import profile_columns

logger = logging.getLogger(__name__)

_HIDDEN_SCHEMAS = (METADATA_SCHEMA, "information_schema", "pg_catalog")


def _select_expr(column: ColumnInfo) -> str:
    """Select expression that hands the model plain floats for DECIMAL/HUGEINT columns."""
    upper = column.sql_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC", "HUGEINT", "UHUGEINT")):
        return f"CAST({quote_ident(column.name)} AS DOUBLE) AS {quote_ident(column.name)}"
    return quote_ident(column.name)


def _memory_setting(text: str) -> str:
    """A size such as "2GB" or "512 MB", checked to be only digits and a unit (it is written into a SET)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(text)
    return f"{match.group(1)}{match.group(2).upper().replace('IB', 'iB')}"


# Staging tables being written by this process, whichever of its workspaces writes them: a second workspace
# opened on the same file (another allow-list, a cleared cache) must not drop them as leftovers.
_STAGING_IN_USE: set[str] = set()


class DuckDBWarehouse(CommonSqlWarehouse, PythonFunctionHost):
    kind = "duckdb"
    capabilities = Capabilities(python_udfs=True, local_worker=True)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseLockedError(
                    f"The database file {self.path} is in use by another program (DuckDB allows one at a time).",
                    hint="Close the other Flurry window or command that uses it, or set FLURRY_WAREHOUSE to another file.",
                ) from exc
            raise
        self._con.execute("SET enable_progress_bar = false")  # it would print into the app's console
        limit = os.environ.get("FLURRY_DUCKDB_MEMORY", "").strip()
        if limit:  # DuckDB keeps scanned blocks up to 80% of RAM by default; a smaller app can ask for less
            try:
                self._con.execute(f"SET memory_limit = '{_memory_setting(limit)}'")
            except (duckdb.Error, ValueError) as exc:
                raise ConfigurationError(f"FLURRY_DUCKDB_MEMORY={limit!r} is not a memory size DuckDB accepts.",
                                         hint="Use a size such as 2GB or 512MB.") from exc
        # Every name is qualified with the catalog: a file called flurry.duckdb is a catalog "flurry",
        # which DuckDB would otherwise confuse with the schema "FLURRY".
        self.catalog = str(self._con.execute("SELECT current_database()").fetchall()[0][0])
        self._local = threading.local()
        self._registered: set[str] = set()
        self._lock = threading.RLock()

    def qualify(self, table: TableRef) -> str:
        return f"{quote_ident(self.catalog)}.{qualified(table.schema, table.name)}"

    @property
    def identity(self) -> str:
        return f"duckdb:{self.path.resolve()}"

    # --- raw SQL ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        active = getattr(self._local, "cursor", None)
        if active is not None:
            yield active
            return
        cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with self._cursor() as cur:
            cur.execute(sql, params or [])

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self._cursor() as cur:
            return cur.execute(sql, params or []).fetch_df()

    def update(self, sql: str, params: list[Any] | None = None) -> int:
        with self._cursor() as cur:
            changed = cur.execute(sql, params or []).fetchone()  # DuckDB answers an UPDATE with its count
            return int(changed[0]) if changed else 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "cursor", None) is not None:
            yield  # nested: the outer transaction commits
            return
        cursor = self._con.cursor()
        self._local.cursor = cursor
        try:
            cursor.execute("BEGIN TRANSACTION")
            yield
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cursor.execute("ROLLBACK")
            raise
        finally:
            self._local.cursor = None
            cursor.close()

    # --- catalog ---------------------------------------------------------------------------------
    def list_schemas(self) -> list[str]:
        frame = self.query(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1"
        )
        return [s for s in frame["table_schema"].tolist() if s not in _HIDDEN_SCHEMAS]

    def list_tables(self, schema: str) -> list[str]:
        frame = self.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = ? ORDER BY 1",
            [schema],
        )
        return frame["table_name"].tolist()

    def table_summaries(self, schemas: list[str] | None = None) -> list[TableSummary]:
        frame = self.query(
            "SELECT schema_name, table_name, 'table' AS kind, estimated_size AS n_rows, column_count "
            "FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal "
            "UNION ALL SELECT schema_name, view_name, 'view', NULL, column_count FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2")
        return [TableSummary(schema=r.schema_name, name=r.table_name, kind=r.kind,
                             rows=None if pd.isna(r.n_rows) else int(r.n_rows),
                             columns=None if pd.isna(r.column_count) else int(r.column_count))
                for r in frame.itertuples()
                if r.schema_name not in _HIDDEN_SCHEMAS and (schemas is None or r.schema_name in schemas)]

    def table_size_bytes(self, table: TableRef) -> int | None:
        if not self._has_rowid(table):
            return None  # a view stores nothing
        # Blocks the table's persistent segments occupy × the block size: metadata only, no data scan.
        frame = self.query(
            "SELECT count(DISTINCT block_id) * (SELECT block_size FROM pragma_database_size()) AS n "
            "FROM pragma_storage_info(?) WHERE persistent AND block_id >= 0",
            [f"{qualified(table.schema, table.name)}"])
        value = frame["n"].iloc[0]
        return None if pd.isna(value) else int(value)

    def table_exists(self, table: TableRef) -> bool:
        frame = self.query(
            "SELECT count(*) AS n FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
            [table.schema, table.name],
        )
        return int(frame["n"].iloc[0]) > 0


    def describe(self, table: TableRef) -> list[ColumnInfo]:
        self._require(table)
        frame = self.query(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [table.schema, table.name],
        )
        return [
            ColumnInfo(name=r.column_name, sql_type=r.data_type, nullable=r.is_nullable == "YES")
            for r in frame.itertuples()
        ]

    # --- profile / read --------------------------------------------------------------------------
    def _read(self, table: TableRef, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        try:
            return self.query(sql, params)
        except duckdb.CatalogException as exc:
            self._require(table)  # raises TableNotFoundError when the table went away
            raise exc

    def profile(self, table: TableRef) -> TableProfile:
        columns = self.describe(table)
        return profile_columns(columns, self.qualify(table), lambda sql, params: self._read(table, sql, params))

    def _preview_query(self, table: TableRef, sql: str, params: list[Any]) -> pd.DataFrame:
        return self._read(table, sql, params)

    def _projection(self, table: TableRef, columns: list[str]) -> str:
        by_name = self._columns_named(table, columns)
        return ", ".join(_select_expr(by_name[c]) for c in columns)

    def sample(self, table: TableRef, columns: list[str], rows: int, *, seed: int = 0) -> pd.DataFrame:
        # Sample size and seed are validated ints; DuckDB cannot bind them in a SAMPLE clause.
        return self._read(table, f"SELECT {self._projection(table, columns)} FROM {self.qualify(table)} "
                                 f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})")

    def _exclusion(self, target: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
        return f" AND NOT list_contains(?::VARCHAR[], CAST({target} AS VARCHAR))", [list(values)]

    def _rows_with_draw(self, spec: SampleSpec, where: str) -> str:
        # rowid's hash on a table (cheap); the content's hash after DISTINCT or on a view (which has no rowid)
        projection, source = self._projection(spec.table, list(spec.columns)), self.qualify(spec.table)
        if spec.distinct or not self._has_rowid(spec.table):
            content = ", ".join(quote_ident(c) for c in spec.columns)
            return (f"SELECT *, hash(({content}), ?) % {DRAW_MODULUS} AS {DRAW} FROM "
                    f"(SELECT {'DISTINCT ' if spec.distinct else ''}{projection} FROM {source} {where})")
        return f"SELECT {projection}, hash(rowid, ?) % {DRAW_MODULUS} AS {DRAW} FROM {source} {where}"

    def export_training_sample(self, spec: SampleSpec, destination: Path) -> SampleInfo:
        sql, params, eligible, sampled = self.training_sample_sql(spec)
        written = 0
        with self._cursor() as cur:
            reader = cur.sql(sql, params=params).to_arrow_reader(100_000)
            with pq.ParquetWriter(destination, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    written += batch.num_rows
        return SampleInfo(rows_written=written, rows_eligible=eligible, sampled=sampled)

    def _has_rowid(self, table: TableRef) -> bool:
        frame = self.query("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                           "AND table_schema = ? AND table_name = ?", [table.schema, table.name])
        return not frame.empty and frame["table_type"].iloc[0] == "BASE TABLE"

    def scan_batches(self, table: TableRef, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        sql = f"SELECT {self._projection(table, columns)} FROM {self.qualify(table)}"
        cursor = self._con.cursor()
        try:
            reader = cursor.sql(sql).to_arrow_reader(batch_rows)
            yield from reader
        finally:
            cursor.close()

    # --- write -----------------------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.catalog)}.{quote_ident(schema)}")

    def write_table(self, table: TableRef, frame: pd.DataFrame, *, replace: bool = False) -> None:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        if replace:
            self.replace_table_from_batches(table, iter(arrow.to_batches()))
            return
        with self._lock, self._cursor() as cur:
            cur.register("__flurry_frame", arrow)
            try:
                cur.execute(f"CREATE TABLE {self.qualify(table)} AS SELECT * FROM __flurry_frame")
            finally:
                cur.unregister("__flurry_frame")

    def replace_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        return self._swap_in_batches(table, batches, append=False)

    def append_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        return self._swap_in_batches(table, batches, append=True)

    def _swap_in_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch], *, append: bool) -> int:
        """Stage every batch first; only then, in one transaction, replace `table` by the staging table or
        (append) add its rows to `table`, matching columns by name. A failure or a stop while staging leaves
        `table` as it was."""
        staging = TableRef(table.schema, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        target, staged = self.qualify(table), self.qualify(staging)
        written = 0
        cursor = self._con.cursor()
        _STAGING_IN_USE.add(staging.name)
        try:
            for batch in batches:
                view = pa.Table.from_batches([batch])
                cursor.register("__flurry_batch", view)
                if written == 0:
                    cursor.execute(f"CREATE TABLE {staged} AS SELECT * FROM __flurry_batch")
                else:
                    cursor.execute(f"INSERT INTO {staged} SELECT * FROM __flurry_batch")
                cursor.unregister("__flurry_batch")
                written += batch.num_rows
            if written == 0:
                raise EmptyTableError(f"There are no rows to write into {table}.",
                                      hint="Check that the source table has rows.")
            with self._lock:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    if append and self.table_exists(table):
                        cursor.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {staged}")
                        cursor.execute(f"DROP TABLE {staged}")
                    else:
                        cursor.execute(f"DROP TABLE IF EXISTS {target}")
                        cursor.execute(f"ALTER TABLE {staged} RENAME TO {quote_ident(table.name)}")
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cursor.execute(f"DROP TABLE IF EXISTS {staged}")
            raise
        finally:
            _STAGING_IN_USE.discard(staging.name)
            cursor.close()
        return written

    def staging_in_use(self) -> set[str]:
        return set(_STAGING_IN_USE)

    def create_table_from_file(self, table: TableRef, path: Path, fmt: str, *, delimiter: str | None = None) -> int:
        if fmt == "csv":
            # No BOOLEAN among the guessed types: DuckDB reads "Yes"/"No" as true/false, and the user's own labels
            # ("Yes") must be the ones their model predicts.
            reader = ("read_csv(?, delim = ?, header = true, strict_mode = true, auto_type_candidates = "
                      "['BIGINT', 'DOUBLE', 'TIME', 'DATE', 'TIMESTAMP', 'VARCHAR'])")
            params = [str(path), delimiter or ","]
        else:
            reader, params = "read_parquet(?)", [str(path)]
        self.ensure_schema(table.schema)
        try:
            with self._cursor() as cur:  # the relation's own Arrow: a DB-API result would copy every row once more
                arrow = cur.sql(f"SELECT * FROM {reader}", params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise UploadError(f"The file could not be read as {fmt.upper()}: {_file_reason(exc, path)}",
                              hint="Check that it has one header row and the same number of fields on every line."
                              if fmt == "csv" else "Check that it is a valid Parquet file.") from exc
        assert arrow is not None  # only a statement without a result set (not a SELECT) gives none
        if arrow.num_rows == 0:
            raise UploadError("The file has a header but no rows.", hint="Upload a file with data rows.")
        return self.replace_table_from_batches(table, iter(arrow.to_batches(max_chunksize=100_000)))

    def drop_table(self, table: TableRef) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.qualify(table)}")

    # --- functions -------------------------------------------------------------------------------
    def register_function(
        self, name: str, handler: ScalarFunction, parameter_types: list[str], return_type: str
    ) -> None:
        # DuckDB reads the arity from the handler's signature, so give varargs handlers an explicit one.
        handler_with_arity = functools.wraps(handler)(lambda *args: handler(*args))
        handler_with_arity.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(parameter_types))]
        )
        with self._lock:
            if name in self._registered:
                self._con.remove_function(name)
                self._registered.discard(name)
            self._con.create_function(
                name,
                handler_with_arity,
                [duckdb.sqltype(t) for t in parameter_types],
                duckdb.sqltype(return_type),
                type=duckdb.func.ARROW,
                null_handling=duckdb.func.SPECIAL,  # models handle missing features themselves
                side_effects=False,
            )
            self._registered.add(name)

    def drop_function(self, name: str) -> None:
        with self._lock:
            if name in self._registered:
                self._con.remove_function(name)
                self._registered.discard(name)

    def function_exists(self, name: str) -> bool:
        frame = self.query("SELECT count(*) AS n FROM duckdb_functions() WHERE function_name = ?", [name])
        return int(frame["n"].iloc[0]) > 0

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()


def _file_reason(exc: duckdb.Error, path: Path) -> str:
    """DuckDB's reason a file could not be read, in the user's terms: no engine error class, no temporary path."""
    reason = re.sub(r"^[A-Za-z ]*Error:\s*", "", str(exc).split("\n")[0]).replace(str(path), "the file")
    if "sniffing file" in reason:  # the CSV sniffer found no consistent layout
        return "its lines do not all have the same number of fields, or a quote is opened and never closed."
    return reason
