"""What a table profile asks of every warehouse: the first pass (counts, distincts, ranges, moments, frequent
values) as one aggregate query per slice of columns, and the column profile built from its row. Each SQL dialect supplies the
two expressions that differ; the second pass (histograms and exact counts of the frequent values) is the
dialect modules' own, since each warehouse counts buckets best in its own way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from backend.identifiers import quote_ident
from backend.profiling import TOP_VALUES, ColumnProfile, TableProfile, present
from backend.warehouse.base import ColumnInfo

Query = Callable[[str, list[Any]], pd.DataFrame]  # (sql, bound values) → the result
# (a slice of the columns, the table's row count) → their profiles, from the dialect's two passes over them
SliceProfiler = Callable[[list[ColumnInfo], int], list[ColumnProfile]]
# A wide table is profiled this many columns at a time: planning one aggregate statement is not linear in its
# aggregates (DuckDB: 500 distinct counts in one SELECT took 10 s, and a 1,000-column table 218 s to profile;
# 2,000 columns took 6 s in slices of 20, 9 s in slices of 50); each slice reads only its own columns.
COLUMNS_PER_QUERY = 20


def profile_in_slices(columns: list[ColumnInfo], rows: int, profile_slice: SliceProfiler,
                      per_query: int = COLUMNS_PER_QUERY) -> TableProfile:
    """The table's profile, `per_query` columns at a time."""
    profiles: list[ColumnProfile] = []
    for start in range(0, len(columns), per_query):
        profiles += profile_slice(columns[start:start + per_query], rows)
    return TableProfile(rows=rows, columns=profiles)


@dataclass(frozen=True)
class ProfileDialect:
    epoch_seconds: Callable[[str], str]  # a (quoted) datetime column → seconds since 1970
    parses_as_number: Callable[[str], str]  # a (quoted) text column → non-NULL where its text is a number
    parses_as_date: Callable[[str], str]  # a (quoted) text column → non-NULL where its text is a date or time


def numeric_expr(column: ColumnInfo, dialect: ProfileDialect) -> str | None:
    """The column as a DOUBLE for ranges and histograms, or None for columns that have none."""
    ident = quote_ident(column.name)
    if column.kind == "numeric":
        return f"CAST({ident} AS DOUBLE)"
    if column.kind == "datetime":
        return dialect.epoch_seconds(ident)
    return None


def first_pass_sql(columns: list[ColumnInfo], source: str, dialect: ProfileDialect, *, exact: bool,
                   top_values: bool = True) -> str:
    """One aggregate over `source` (already quoted); column i's results are aliased `<stat>_<i>`."""
    parts = ['COUNT(*) AS "n_rows"']
    for i, col in enumerate(columns):
        ident = quote_ident(col.name)
        distinct = f"COUNT(DISTINCT {ident})" if exact else f"APPROX_COUNT_DISTINCT({ident})"
        parts += [f'COUNT({ident}) AS "nn_{i}"', f'{distinct} AS "nd_{i}"']
        number = numeric_expr(col, dialect)
        if number is not None:
            parts += [f'MIN({number}) AS "lo_{i}"', f'MAX({number}) AS "hi_{i}"']
        if col.kind == "numeric":
            parts += [f'AVG({number}) AS "mean_{i}"', f'STDDEV_SAMP({number}) AS "std_{i}"']
        if col.kind in ("text", "boolean") and top_values:
            parts.append(f'APPROX_TOP_K(CAST({ident} AS VARCHAR), {TOP_VALUES}) AS "top_{i}"')
        if col.kind == "text":
            parts.append(f'COUNT({dialect.parses_as_number(ident)}) AS "numtext_{i}"')
            # dates that are not also numbers (Snowflake reads a number's text as seconds since 1970)
            parts.append(f'COUNT(CASE WHEN {dialect.parses_as_number(ident)} IS NULL THEN '
                         f'{dialect.parses_as_date(ident)} END) AS "datetext_{i}"')
    return f"SELECT {', '.join(parts)} FROM {source}"


def column_profile(col: ColumnInfo, i: int, rows: int, first: pd.Series, top: list[tuple[str, int]],
                   histogram: list[tuple[float, float, int]]) -> ColumnProfile:
    """Column i's profile from the first pass's row, with the second pass's frequent values and histogram."""
    return ColumnProfile(
        name=col.name, sql_type=col.sql_type, kind=col.kind, rows=rows, non_null=int(first[f"nn_{i}"]),
        distinct=int(first[f"nd_{i}"]), minimum=present(first, f"lo_{i}"), maximum=present(first, f"hi_{i}"),
        mean=present(first, f"mean_{i}"), std=present(first, f"std_{i}"), top_values=top, histogram=histogram,
        numeric_text=int(present(first, f"numtext_{i}") or 0), date_text=int(present(first, f"datetext_{i}") or 0))
