"""DuckDB SQL for column profiles: two scans of the table per slice of its columns, whatever its size.

Pass 1 computes counts, approximate distinct counts, min/max/mean/std and approximate top values for every
column at once; pass 2 computes histograms (edges from pass 1) and the counts of the top values.
"""

from __future__ import annotations

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
from backend.warehouse.profile_sql import (
    ProfileDialect,
    Query,
    column_profile,
    first_pass_sql,
    numeric_expr,
    profile_in_slices,
)

DUCKDB = ProfileDialect(epoch_seconds=lambda ident: f"epoch(CAST({ident} AS TIMESTAMP))",
                        parses_as_number=lambda ident: f"TRY_CAST({ident} AS DOUBLE)",
                        parses_as_date=lambda ident: f"TRY_CAST({ident} AS DATE)")


def _second_pass(columns: list[ColumnInfo], first: pd.Series, source: str, query: Query
                 ) -> tuple[pd.Series | None, dict[int, list[float]]]:
    parts: list[str] = []
    params: list[float | list[str]] = []  # bin bounds, and each text column's top values
    edges: dict[int, list[float]] = {}
    for i, col in enumerate(columns):
        number = numeric_expr(col, DUCKDB)
        if number is not None and present(first, f"lo_{i}") is not None:
            low, high = float(first[f"lo_{i}"]), float(first[f"hi_{i}"])
            edges[i] = equal_width_edges(low, high, HISTOGRAM_BINS)
            # Count bin numbers, not values: DuckDB's histogram(x, edges) keeps a map of every distinct value
            # first (gigabytes on a 10M-row ID column); at most HISTOGRAM_BINS keys here.
            width = (high - low) / HISTOGRAM_BINS if high > low else 1.0
            # (least() skips NULLs in DuckDB, so missing values are kept out explicitly)
            parts.append(f"histogram(CASE WHEN {number} IS NOT NULL THEN least(CAST(floor(({number} - ?::DOUBLE) "
                         f"/ ?::DOUBLE) AS INTEGER), {len(edges[i]) - 1}) + 1 END) AS hist_{i}")
            params += [low, width]
        top = present(first, f"top_{i}")
        if col.kind in ("text", "boolean") and top is not None and len(top):
            ident = f"CAST({quote_ident(col.name)} AS VARCHAR)"
            parts.append(f"histogram(CASE WHEN list_contains(?::VARCHAR[], {ident}) THEN {ident} END) AS topn_{i}")
            params.append([str(v) for v in top])
    if not parts:
        return None, edges
    return query(f"SELECT {', '.join(parts)} FROM {source}", params).iloc[0], edges



def profile_columns(columns: list[ColumnInfo], source: str, query: Query) -> TableProfile:
    """Profile `columns` of the table `source` (an already-quoted name) using `query(sql, params)`."""
    rows = int(query(f"SELECT count(*) AS n FROM {source}", [])["n"].iloc[0])
    return profile_in_slices(columns, rows, lambda part, n: _profile_slice(part, n, source, query))


def _profile_slice(columns: list[ColumnInfo], rows: int, source: str, query: Query) -> list[ColumnProfile]:
    first = query(first_pass_sql(columns, source, DUCKDB, exact=rows <= EXACT_DISTINCT_MAX_ROWS), []).iloc[0]
    second, edges = _second_pass(columns, first, source, query)
    profiles = []
    for i, col in enumerate(columns):
        top: list[tuple[str, int]] = []
        histogram: list[tuple[float, float, int]] = []
        if second is not None and present(second, f"topn_{i}") is not None:
            top = sorted(((str(k), int(v)) for k, v in dict(second[f"topn_{i}"]).items()), key=lambda kv: -kv[1])
        if second is not None and i in edges and present(second, f"hist_{i}") is not None:
            by_bin = {int(k): int(v) for k, v in dict(second[f"hist_{i}"]).items()}
            counts = {edge: by_bin.get(b + 1, 0) for b, edge in enumerate(edges[i])}
            histogram = histogram_from_counts(float(first[f"lo_{i}"]), edges[i], counts)
        profiles.append(column_profile(col, i, rows, first, top, histogram))
    return profiles
