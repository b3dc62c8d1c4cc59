"""The warehouse port: one abstract interface that every adapter implements.

Pages and the engine only talk to this interface, so a Snowpark adapter can slot in beside DuckDB.
Every identifier is quoted by the adapter; every value is bound.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from backend.errors import TableNotFoundError
from backend.identifiers import limit_clause, quote_ident
from backend.profiling import ColumnStats, TableProfile, column_stats

METADATA_SCHEMA = "FLURRY"


@dataclass(frozen=True)
class TableRef:
    """A table in the warehouse, by schema and name (case kept exactly)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    sql_type: str
    nullable: bool = True

    @property
    def kind(self) -> str:
        """A coarse kind: 'numeric', 'boolean', 'text', 'datetime' or 'other'."""
        return column_kind(self.sql_type)


@dataclass(frozen=True)
class ScoreColumns:
    """The columns a score adds to its source's: the prediction, the probability (classifiers), and the model
    version that scored each row and when (`version_label` is what the first holds for a one-off score)."""

    prediction: str
    probability: str
    version: str
    time: str
    version_label: str


@dataclass(frozen=True)
class ScheduledScoring:
    """A re-scoring schedule as created: `resumed` False means it exists but is suspended, and `reason` says
    why and what would resume it (e.g. the EXECUTE TASK privilege the role lacks)."""

    task: str
    resumed: bool
    reason: str | None = None


@dataclass(frozen=True)
class TableSummary:
    """A catalog entry for browsing: rows as the catalog estimates them (no scan)."""

    schema: str
    name: str
    kind: str  # "table" or "view"
    rows: int | None
    columns: int | None


@dataclass(frozen=True)
class SampleSpec:
    """Which rows a training export takes: non-null target (unless `unlabelled`), at most `max_rows`, drawn in
    the warehouse."""

    table: TableRef
    columns: tuple[str, ...]
    target: str
    max_rows: int
    seed: int = 0
    stratify: bool = False  # keep each class's share (classification)
    distinct: bool = False  # drop exact duplicate rows first
    exclude_target_values: tuple[str, ...] = ()  # e.g. classes too small to learn
    unlabelled: bool = False  # keep rows without a target too (a forecast's periods to come, with known columns)


# Scores and forecasts are written to a table of this prefix first, then swapped in (or appended) at once.
STAGING_PREFIX = "__flurry_staging_"


# Rows kept of each class in a stratified sample even when its proportional share is smaller.
STRATIFIED_FLOOR = 1000


def stratified_quota(class_rows: int, fraction: float) -> int:
    """Rows to keep of a class: its proportional share, but at least STRATIFIED_FLOOR (or all it has), so
    small classes stay learnable."""
    return min(int(class_rows), max(round(class_rows * fraction), STRATIFIED_FLOOR))


@dataclass(frozen=True)
class SampleInfo:
    """What a training export wrote: rows written, out of rows eligible (non-null target, after exclusions)."""

    rows_written: int
    rows_eligible: int
    sampled: bool = False


@dataclass(frozen=True)
class LeftOut:
    """The rows of a table a training run does not learn from, by reason (each row counted once)."""

    missing_target: int = 0
    excluded_classes: int = 0  # rows of target values the user left out as too rare to learn
    duplicates: int = 0  # exact copies of another row, when the user chose to train on distinct rows

    @property
    def total(self) -> int:
        return self.missing_target + self.excluded_classes + self.duplicates

    def to_dict(self) -> dict[str, int]:
        return {"missing_target": self.missing_target, "excluded_classes": self.excluded_classes,
                "duplicates": self.duplicates}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LeftOut:
        return LeftOut(int(data.get("missing_target", 0)), int(data.get("excluded_classes", 0)),
                       int(data.get("duplicates", 0)))

    @staticmethod
    def of(total: int, eligible: int, missing_target: int, excluded_classes: int, deduplicated: bool) -> LeftOut:
        """The breakdown of `total − eligible`: with distinct rows asked for, what is neither missing its target
        nor excluded was a duplicate (the only other way a labelled row is not eligible). Anything else stays
        unexplained, and the breakdown then does not add up to the rows left out."""
        rest = max(0, total - eligible - missing_target - excluded_classes)
        return LeftOut(missing_target, excluded_classes, rest if deduplicated else 0)


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do; callers check flags, never the adapter's class."""

    python_udfs: bool  # scoring functions are Python callables registered on the app's connection
    local_worker: bool
    staged_functions: bool = False  # scoring functions are permanent UDFs created from a staged model file


_NUMERIC_PREFIXES = (
    "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC", "NUMBER",
)


def column_kind(sql_type: str) -> str:
    upper = sql_type.upper().strip()
    # nested values (BIGINT[], STRUCT(…), MAP(…)) and INTERVAL (which starts like INT) are neither numbers nor text
    if upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION", "INTERVAL")):
        return "other"
    if upper.startswith("BOOL"):
        return "boolean"
    if upper.startswith(_NUMERIC_PREFIXES):
        return "numeric"
    if upper.startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "ENUM")):
        return "text"
    if upper.startswith(("DATE", "TIMESTAMP")):  # not TIME: a time of day is no point in time (and will not cast)
        return "datetime"
    return "other"


def is_integer_type(sql_type: str) -> bool:
    upper = sql_type.upper().replace(" ", "")
    if re.fullmatch(r"(NUMBER|DECIMAL|NUMERIC)\(\d+,0\)", upper):
        return True  # Snowflake's integers are NUMBER(38,0)
    return upper.startswith(("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "U")) and "INTERVAL" not in upper


ScalarFunction = Callable[..., pa.Array]

PREVIEW_MAX_COLUMNS = 200
PREVIEW_CELL_CHARS = 500


class Warehouse(abc.ABC):
    """Abstract warehouse. Implementations: `DuckDBWarehouse` (embedded default)."""

    kind: str
    capabilities: Capabilities
    binary_type: str = "BLOB"  # the SQL type Flurry's registry stores bytes in
    # the SQL type of Flurry's timestamps (UTC wall times without a zone); Snowflake's bare TIMESTAMP follows
    # the account's TIMESTAMP_TYPE_MAPPING, so it names TIMESTAMP_NTZ
    timestamp_type: str = "TIMESTAMP"

    def metadata_objects_sql(self, schema: str) -> list[str]:
        """Statements creating the warehouse's own objects in Flurry's metadata schema besides its tables
        (e.g. Snowflake's stage for model files); run by the registry's migrations, idempotent."""
        return []

    # --- identity -------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """A hashable, credential-free identity for this connection (usable as a cache key)."""

    @abc.abstractmethod
    def qualify(self, table: TableRef) -> str:
        """The table's fully qualified, quoted name in this warehouse's SQL."""

    # --- raw SQL with bound values (for Flurry's own metadata and adapter internals) ---------------
    @abc.abstractmethod
    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run one statement with bound parameters."""

    @abc.abstractmethod
    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run one query with bound parameters and return its rows."""

    @abc.abstractmethod
    def update(self, sql: str, params: list[Any] | None = None) -> int:
        """Run one UPDATE or DELETE with bound parameters; the rows it changed (for a compare-and-set whose
        condition is its WHERE clause)."""

    @abc.abstractmethod
    def transaction(self) -> Any:
        """A context manager that commits on success and rolls back on error."""

    # --- catalog --------------------------------------------------------------------------------
    @abc.abstractmethod
    def list_schemas(self) -> list[str]:
        """Schemas holding user tables (Flurry's own metadata schema excluded)."""

    @abc.abstractmethod
    def list_tables(self, schema: str) -> list[str]:
        """Tables and views in `schema`, sorted by name."""

    @abc.abstractmethod
    def table_summaries(self, schemas: list[str] | None = None) -> list[TableSummary]:
        """Every table and view the connection can read in `schemas` (default: every schema of
        `list_schemas`; the metadata schema never), from the catalog."""

    @abc.abstractmethod
    def table_size_bytes(self, table: TableRef) -> int | None:
        """Storage the table takes, as the warehouse accounts it (None for views or when unknown)."""

    @abc.abstractmethod
    def table_exists(self, table: TableRef) -> bool: ...

    @abc.abstractmethod
    def describe(self, table: TableRef) -> list[ColumnInfo]:
        """Columns of `table`. Raises TableNotFoundError."""

    # --- profile / read -------------------------------------------------------------------------
    @abc.abstractmethod
    def row_count(self, table: TableRef) -> int: ...

    def _require(self, table: TableRef) -> None:
        """Raise TableNotFoundError when `table` is gone."""
        if not self.table_exists(table):
            raise TableNotFoundError(f"The table {table} does not exist (it may have been dropped or renamed).",
                                     hint="Go back to the Data step and pick a table that exists.")

    def _columns_named(self, table: TableRef, columns: list[str]) -> dict[str, ColumnInfo]:
        """`table`'s columns by name. Raises TableNotFoundError when one of `columns` is no longer there."""
        by_name = {c.name: c for c in self.describe(table)}
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise TableNotFoundError(f"The table {table} no longer has the column(s) {', '.join(map(repr, missing))}.",
                                     hint="The table changed since you picked it; go back to the Target step.")
        return by_name

    def column_stats(self, table: TableRef) -> list[ColumnStats]:
        """Non-null and distinct counts per column (from the warehouse-side profile)."""
        return column_stats(self.profile(table))

    @abc.abstractmethod
    def profile(self, table: TableRef) -> TableProfile:
        """Per-column statistics computed in the warehouse (see backend.profiling)."""

    def preview(self, table: TableRef, limit: int = 100, columns: list[ColumnInfo] | None = None) -> pd.DataFrame:
        """The first `limit` rows, bounded for display: at most PREVIEW_MAX_COLUMNS columns, and text or
        other wide values cut to PREVIEW_CELL_CHARS characters inside the warehouse (a hosted app may
        receive 32 MB per query and per message; a column of documents must not break the page).
        `columns`: the table's description when the caller already has it (saves a catalog query)."""
        self._require(table)
        columns = (columns if columns is not None else self.describe(table))[:PREVIEW_MAX_COLUMNS]
        shown = []
        for column in columns:
            ident = quote_ident(column.name)
            plain = column.kind in ("numeric", "boolean", "datetime")
            shown.append(ident if plain else f"{self._shortened_text(ident, PREVIEW_CELL_CHARS)} AS {ident}")
        select = ", ".join(shown)
        return self._preview_query(table, f"SELECT {select} FROM {self.qualify(table)}{limit_clause(limit)}", [])

    def _shortened_text(self, ident: str, chars: int) -> str:
        """SQL for the value of `ident` as text of at most `chars` characters."""
        return f"LEFT(CAST({ident} AS VARCHAR), {int(chars)})"

    def _preview_query(self, table: TableRef, sql: str, params: list[Any]) -> pd.DataFrame:
        return self.query(sql, params)

    @abc.abstractmethod
    def read_columns(
        self, table: TableRef, columns: list[str], *, limit: int | None = None, not_null: str | None = None
    ) -> pd.DataFrame:
        """Read `columns` (optionally capped, optionally only rows where `not_null` is set)."""

    @abc.abstractmethod
    def sample(self, table: TableRef, columns: list[str], rows: int, *, seed: int = 0) -> pd.DataFrame:
        """A uniform random sample of at most `rows` rows (drawn in the warehouse), repeatable by seed."""

    @abc.abstractmethod
    def value_counts(self, table: TableRef, column: str, *, limit: int) -> pd.DataFrame:
        """Rows per value of `column` (columns: value, count), most frequent first, nulls left out."""

    @abc.abstractmethod
    def duplicate_rows(self, table: TableRef) -> int:
        """How many rows are exact copies of an earlier row."""

    @abc.abstractmethod
    def target_gaps(self, table: TableRef, target: str, excluded: tuple[str, ...]) -> tuple[int, int]:
        """Rows whose `target` is missing, and rows whose target (as text) is one of `excluded`."""

    @abc.abstractmethod
    def export_training_sample(self, spec: SampleSpec, destination: Path) -> SampleInfo:
        """Write the rows `spec` selects to a Parquet file, streaming (never the whole table in memory)."""

    @abc.abstractmethod
    def scan_batches(self, table: TableRef, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream `columns` of `table` as Arrow record batches."""

    @abc.abstractmethod
    def aggregate_distribution(self, table: TableRef, column: str, *, bins: int = 30) -> pd.DataFrame:
        """Counts of values (text/boolean/few values) or histogram bins (numeric) of one column."""

    # --- write ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_schema(self, schema: str) -> None: ...

    @abc.abstractmethod
    def write_table(self, table: TableRef, frame: pd.DataFrame, *, replace: bool = False) -> None:
        """Create `table` from `frame`; with `replace`, an existing table is swapped atomically."""

    @abc.abstractmethod
    def replace_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        """Write batches to a staging table, then swap it in atomically; return rows written.
        A failure leaves any previous `table` untouched."""

    @abc.abstractmethod
    def append_table_from_batches(self, table: TableRef, batches: Iterator[pa.RecordBatch]) -> int:
        """Write batches to a staging table, then add its rows to `table` (creating it when missing) in one
        transaction, columns matched by name; return rows written. A failure leaves `table` untouched."""

    @abc.abstractmethod
    def create_table_from_file(self, table: TableRef, path: Path, fmt: str, *, delimiter: str | None = None) -> int:
        """Create or atomically replace `table` from a CSV or Parquet file; return its row count.
        Raises UploadError when the file cannot be parsed."""

    @abc.abstractmethod
    def drop_table(self, table: TableRef) -> None: ...

    def staging_in_use(self) -> set[str]:
        """The staging tables this process is writing now (none known: the adapter keeps no record)."""
        return set()

    def drop_staging_tables(self) -> list[TableRef]:
        """Drop the staging tables a process killed while writing left behind (their target tables are as they
        were); return them. Only for a warehouse this process alone writes to: elsewhere they may be in use."""
        busy = self.staging_in_use()
        left = [TableRef(schema, name) for schema in self.list_schemas() for name in self.list_tables(schema)
                if name.startswith(STAGING_PREFIX) and name not in busy]
        for table in left:
            self.drop_table(table)
        return left

    # --- functions ------------------------------------------------------------------------------
    @abc.abstractmethod
    def function_exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def drop_function(self, name: str) -> None:
        """Remove a function this app registered (no error when it is not there)."""

    def connection_details(self) -> list[tuple[str, str]]:
        """What the sidebar may show about where the app is connected (never credentials)."""
        return [("Warehouse", self.identity)]

    def app_address(self, app: tuple[str, str, str]) -> str | None:
        """The address a colleague opens the hosted app `app` (database, schema, name) at, where the warehouse
        hosts apps; None otherwise."""
        del app
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class PythonFunctionHost(abc.ABC):
    """An adapter whose scoring functions are Python callables registered on the app's own connection (the
    embedded warehouse): what EmbeddedTarget needs beyond the Warehouse port. An adapter opts in by inheriting
    it (and Capabilities.python_udfs); none has it half."""

    @abc.abstractmethod
    def register_function(self, name: str, handler: ScalarFunction, parameter_types: list[str],
                          return_type: str) -> None:
        """Make `handler` callable from SQL as `name(...)` (vectorised over Arrow arrays)."""


class StagedModelHost(abc.ABC):
    """An adapter that runs models inside the warehouse from a staged model file (Snowflake): what
    SnowflakeTarget needs beyond the Warehouse port (Capabilities.staged_functions)."""

    @abc.abstractmethod
    def deploy_model_functions(self, name: str, bundle: Any, content: bytes, sha256: str, model_id: str,
                               prediction_type: str, background: bytes | None = None) -> tuple[str, str | None]:
        """Create permanent scoring functions (and the reasons function, measured against the `background`
        rows' Parquet) from the model file; the predict and probability functions' names."""

    @abc.abstractmethod
    def log_model_version(self, model: str, version: str, bundle: Any, content: bytes, sha256: str, model_id: str,
                          prediction_type: str, metrics: dict[str, float], *, alias: str | None = None
                          ) -> tuple[str | None, str | None]:
        """Record a deployed model as `version` of `model` in the warehouse's own model registry; with `alias`
        (production), as its default version carrying the alias: (what was logged, or why not). Never raises."""

    @abc.abstractmethod
    def score_into(self, predict: str, probability: str | None, features: list[str], source: TableRef,
                   output: TableRef, columns: ScoreColumns, scored_at: pd.Timestamp, *, append: bool) -> int:
        """Score `source` into `output` inside the warehouse, every row stamped with the version and `scored_at`;
        replace `output`, or (`append`) add the rows to it. Rows written."""

    @abc.abstractmethod
    def schedule_scoring(self, task: str, predict: str, probability: str | None, features: list[str],
                         source: TableRef, output: TableRef, columns: ScoreColumns, schedule: str, *,
                         append: bool) -> ScheduledScoring:
        """Re-score on a schedule inside the warehouse."""

    @abc.abstractmethod
    def monitor_model(self, plan: Any) -> str:
        """Create (or replace) the warehouse's model monitor described by `plan` (a snowflake_monitor.MonitorPlan);
        a sentence saying what was done or why the warehouse refused. Never raises."""


def search_tables(summaries: list[TableSummary], text: str) -> list[TableSummary]:
    """Tables whose "schema.name" contains every word of `text` (case-insensitive)."""
    words = text.lower().split()
    return [t for t in summaries if all(w in f"{t.schema}.{t.name}".lower() for w in words)]
