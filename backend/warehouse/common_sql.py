"""The statements both adapters run alike, written once: counts, reads, value counts, duplicates, histograms and
the training sample's draw. Each dialect supplies its few expressions — how a statement on a table is run, the
projection that types its columns, the seeded draw of each row and the order a sample arrives in.
"""

from __future__ import annotations

import abc
from typing import Any

import pandas as pd

from backend.errors import TableNotFoundError
from backend.identifiers import limit_clause, quote_ident
from backend.warehouse.base import SampleSpec, TableRef, Warehouse, column_kind, stratified_quota

DRAW_MODULUS = 1_000_000_007  # a row's draw lies in [0, DRAW_MODULUS): it is kept when below a quota
DRAW = '"__flurry_draw"'


class CommonSqlWarehouse(Warehouse):
    @abc.abstractmethod
    def _read(self, table: TableRef, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query on `table` (a table that went away is said so: TableNotFoundError)."""

    @abc.abstractmethod
    def _projection(self, table: TableRef, columns: list[str]) -> str:
        """The select list of `columns`, each cast to what the models read."""

    @abc.abstractmethod
    def _rows_with_draw(self, spec: SampleSpec, where: str) -> str:
        """The rows `spec` may take (the projection of its columns, DISTINCT when asked, filtered by `where`) with
        their seeded draw as DRAW; the seed is the first parameter."""

    def _exclusion(self, target: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
        """The condition leaving out rows whose target, as text, is one of `values`, and its parameters."""
        return f" AND CAST({target} AS VARCHAR) NOT IN ({', '.join('?' for _ in values)})", list(values)

    sample_order = ""  # the order a training sample arrives in (Snowflake has none unless asked)

    def row_count(self, table: TableRef) -> int:
        self._require(table)
        return int(self._read(table, f'SELECT COUNT(*) AS "n" FROM {self.qualify(table)}')["n"].iloc[0])

    def read_columns(self, table: TableRef, columns: list[str], *, limit: int | None = None,
                     not_null: str | None = None) -> pd.DataFrame:
        sql = f"SELECT {self._projection(table, columns)} FROM {self.qualify(table)}"
        if not_null is not None:
            sql += f" WHERE {quote_ident(not_null)} IS NOT NULL"
        if limit is not None:
            sql += limit_clause(limit)
        return self._read(table, sql, [])

    def value_counts(self, table: TableRef, column: str, *, limit: int) -> pd.DataFrame:
        ident = quote_ident(column)
        return self._read(table, f'SELECT {ident} AS "value", COUNT(*) AS "count" FROM {self.qualify(table)} '
                                 f"WHERE {ident} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1{limit_clause(limit)}", [])

    def duplicate_rows(self, table: TableRef) -> int:
        source = self.qualify(table)
        return int(self._read(table, f"SELECT (SELECT COUNT(*) FROM {source}) - "
                                     f'(SELECT COUNT(*) FROM (SELECT DISTINCT * FROM {source})) AS "n"')["n"].iloc[0])

    def target_gaps(self, table: TableRef, target: str, excluded: tuple[str, ...]) -> tuple[int, int]:
        ident = quote_ident(target)
        condition = (f"CAST({ident} AS VARCHAR) IN ({', '.join('?' for _ in excluded)})" if excluded else "FALSE")
        counts = self._read(table, f'SELECT COALESCE(SUM(CASE WHEN {ident} IS NULL THEN 1 ELSE 0 END), 0) AS "missing", '
                                   f'COALESCE(SUM(CASE WHEN {ident} IS NOT NULL AND {condition} THEN 1 ELSE 0 END), 0) '
                                   f'AS "excluded" FROM {self.qualify(table)}', list(excluded))
        return int(counts["missing"].iloc[0]), int(counts["excluded"].iloc[0])

    def aggregate_distribution(self, table: TableRef, column: str, *, bins: int = 30) -> pd.DataFrame:
        columns = {c.name: c for c in self.describe(table)}
        if column not in columns:
            raise TableNotFoundError(f"The table {table} has no column {column!r}.")
        ident, source = quote_ident(column), self.qualify(table)
        if column_kind(columns[column].sql_type) != "numeric":
            return self._read(table, f'SELECT CAST({ident} AS VARCHAR) AS "value", COUNT(*) AS "count" FROM {source} '
                                     f"GROUP BY 1 ORDER BY 2 DESC{limit_clause(bins)}", [])
        return self._read(table, (
            f"WITH v AS (SELECT CAST({ident} AS DOUBLE) AS x FROM {source} WHERE {ident} IS NOT NULL), "
            "r AS (SELECT MIN(x) AS lo, CASE WHEN MAX(x) > MIN(x) THEN (MAX(x) - MIN(x)) / ? ELSE 1 END AS w, "
            "? - 1 AS top FROM v) "  # the last bin holds the maximum
            'SELECT lo + (b + 0.5) * w AS "value", COUNT(*) AS "count" FROM '
            "(SELECT LEAST(FLOOR((x - lo) / w), top) AS b, lo, w FROM v, r) GROUP BY b, lo, w ORDER BY b"),
            [int(bins), int(bins)])

    def training_sample_sql(self, spec: SampleSpec) -> tuple[str, list[Any], int, bool]:
        """The query selecting `spec`'s rows, its parameters, the rows eligible and whether it samples: every
        row's seeded draw, kept below a quota (per class when stratified; small classes kept up to a floor)."""
        table, target = spec.table, quote_ident(spec.target)
        where = "WHERE TRUE" if spec.unlabelled else f"WHERE {target} IS NOT NULL"
        where_params: list[Any] = []
        if spec.exclude_target_values:
            exclusion, where_params = self._exclusion(target, tuple(spec.exclude_target_values))
            where += exclusion
        rows_sql = self._rows_with_draw(spec, where)
        params: list[Any] = [int(spec.seed), *where_params]
        eligible = int(self._read(table, f'SELECT COUNT(*) AS "n" FROM ({rows_sql})', params)["n"].iloc[0])
        sql = f"SELECT {', '.join(quote_ident(c) for c in spec.columns)} FROM ({rows_sql})"
        sampled = eligible > spec.max_rows
        if sampled and spec.stratify:
            counts = self._read(table, f'SELECT CAST({target} AS VARCHAR) AS "value", COUNT(*) AS "n" '
                                       f"FROM ({rows_sql}) GROUP BY 1", params)
            fraction = spec.max_rows / eligible
            cases, case_params = [], []
            for value, n in zip(counts["value"], counts["n"], strict=True):
                cases.append("WHEN ? THEN ?")
                case_params += [str(value), int(DRAW_MODULUS * stratified_quota(int(n), fraction) / int(n))]
            sql += f" WHERE {DRAW} < CASE CAST({target} AS VARCHAR) {' '.join(cases)} ELSE 0 END"
            params = [*params, *case_params]
        elif sampled:
            sql += f" WHERE {DRAW} < ?"
            params = [*params, int(DRAW_MODULUS * spec.max_rows / eligible)]
        return sql + self.sample_order, params, eligible, sampled
