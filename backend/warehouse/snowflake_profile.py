"""Snowflake SQL for column profiles: two scans per slice of the table's columns, as for DuckDB.

Pass 1: counts, distinct counts (exact up to EXACT_DISTINCT_MAX_ROWS rows, HyperLogLog beyond), min/max/
mean/std, numbers-in-text counts and APPROX_TOP_K's candidates for the most frequent values. Pass 2: the
histogram bins (edges from pass 1) and the exact counts of those candidates, as conditional counts.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from backend.identifiers import quote_ident
from backend.profiling import (
    EXACT_DISTINCT_MAX_ROWS,
    HISTOGRAM_BINS,
    ColumnProfile,
    TableProfile,
    equal_width_edges,
    histogram_from_counts,
    present,
)
from backend.warehouse.base import ColumnInfo
from backend.warehouse.profile_sql import ProfileDialect, Query, column_profile, numeric_expr, profile_in_slices
from backend.warehouse.profile_sql import first_pass_sql as shared_first_pass_sql

SNOWFLAKE_COLUMNS_PER_QUERY = 250
SNOWFLAKE = ProfileDialect(epoch_seconds=lambda ident: f"DATE_PART(EPOCH_SECOND, CAST({ident} AS TIMESTAMP_NTZ))",
                           parses_as_number=lambda ident: f"TRY_TO_DOUBLE(CAST({ident} AS VARCHAR))",
                           # TRY_CAST from a string to DATE (docs.snowflake.com/sql-reference/functions/try_cast:
                           # "Only works for string expressions", DATE among its targets); DATE rather than a
                           # TIMESTAMP type because fakesnow, the offline tests' Snowflake, turns a TRY_CAST to
                           # TIMESTAMP into a plain CAST that fails on the first word, and both engines read a date
                           # with a time of day as its date
                           parses_as_date=lambda ident: f"TRY_CAST(CAST({ident} AS VARCHAR) AS DATE)")


def first_pass_sql(columns: list[ColumnInfo], source: str, *, exact: bool, top_values: bool = True) -> str:
    return shared_first_pass_sql(columns, source, SNOWFLAKE, exact=exact, top_values=top_values)


def top_candidates(raw: Any) -> list[str]:
    """APPROX_TOP_K's result ([[value, count], ...], as JSON text through the connector) → the values."""
    pairs = json.loads(raw) if isinstance(raw, str) else raw
    return [str(pair[0]) for pair in pairs or [] if pair and pair[0] is not None]


def second_pass_sql(columns: list[ColumnInfo], first: pd.Series, source: str
                    ) -> tuple[str | None, list[Any], dict[int, list[float]], dict[int, list[str]]]:
    # the inner query computes each column's bin number (and text value) once; the outer one counts
    inner: list[str] = []
    parts: list[str] = []
    inner_params: list[Any] = []
    outer_params: list[Any] = []
    edges: dict[int, list[float]] = {}
    tops: dict[int, list[str]] = {}
    for i, col in enumerate(columns):
        number = numeric_expr(col, SNOWFLAKE)
        if number is not None and present(first, f"lo_{i}") is not None:
            low, high = float(first[f"lo_{i}"]), float(first[f"hi_{i}"])
            edges[i] = equal_width_edges(low, high, HISTOGRAM_BINS)
            width = (high - low) / HISTOGRAM_BINS if high > low else 1.0
            inner.append(f'FLOOR(({number} - ?) / ?) AS "b_{i}"')
            inner_params += [low, width]
            last = len(edges[i]) - 1  # the maximum itself falls on the last bin's upper edge
            parts += [f'COUNT_IF("b_{i}" {">=" if b == last else "="} {b}) AS "h_{i}_{b}"' for b in range(last + 1)]
        top = present(first, f"top_{i}")
        if col.kind in ("text", "boolean") and top is not None:
            tops[i] = top_candidates(top)
            inner.append(f'CAST({quote_ident(col.name)} AS VARCHAR) AS "v_{i}"')
            for k, value in enumerate(tops[i]):
                parts.append(f'COUNT_IF("v_{i}" = ?) AS "t_{i}_{k}"')
                outer_params.append(value)
    if not parts:
        return None, [], edges, tops
    sql = f"SELECT {', '.join(parts)} FROM (SELECT {', '.join(inner)} FROM {source})"
    # bound in text order: the outer select's values come before the inner query's
    return sql, [*outer_params, *inner_params], edges, tops


def profile_columns(columns: list[ColumnInfo], source: str, query: Query, *, top_values: bool = True) -> TableProfile:
    """Profile `columns` of `source` (an already-quoted name) with `query(sql, params)`."""
    rows = int(query(f'SELECT COUNT(*) AS "n" FROM {source}', [])["n"].iloc[0])
    # each statement is a round trip through the service's compiler and queue: far fewer, wider slices there
    return profile_in_slices(columns, rows, lambda part, n: _profile_slice(part, n, source, query, top_values),
                             per_query=SNOWFLAKE_COLUMNS_PER_QUERY)


def _profile_slice(columns: list[ColumnInfo], rows: int, source: str, query: Query, top_values: bool
                   ) -> list[ColumnProfile]:
    first = query(first_pass_sql(columns, source, exact=rows <= EXACT_DISTINCT_MAX_ROWS, top_values=top_values),
                  []).iloc[0]
    sql, params, edges, tops = second_pass_sql(columns, first, source)
    second = query(sql, params).iloc[0] if sql else None
    profiles = []
    for i, col in enumerate(columns):
        histogram: list[tuple[float, float, int]] = []
        top: list[tuple[str, int]] = []
        if second is not None and i in edges:
            counts = {edge: int(second[f"h_{i}_{b}"]) for b, edge in enumerate(edges[i])}
            histogram = histogram_from_counts(float(first[f"lo_{i}"]), edges[i], counts)
        if second is not None and i in tops:
            top = sorted(((v, int(second[f"t_{i}_{k}"])) for k, v in enumerate(tops[i])), key=lambda kv: -kv[1])
        profiles.append(column_profile(col, i, rows, first, top, histogram))
    return profiles
