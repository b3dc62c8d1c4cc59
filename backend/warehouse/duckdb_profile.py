"""DuckDB SQL for column profiles: two scans of the table, whatever its size or width.

Pass 1 computes counts, approximate distinct counts, min/max/mean/std and approximate top values for every
column at once; pass 2 computes histograms (edges from pass 1) and the counts of the top values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from backend.identifiers import quote_ident
from backend.profiling import (
    EXACT_DISTINCT_MAX_ROWS,
    HISTOGRAM_BINS,
    TOP_VALUES,
    ColumnProfile,
    TableProfile,
    equal_width_edges,
    histogram_from_counts,
    present,
)
from backend.warehouse.base import ColumnInfo

Query = Callable[[str, list[Any]], pd.DataFrame]


def _numeric_expr(column: ColumnInfo) -> str | None:
    ident = quote_ident(column.name)
    if column.kind == "numeric":
        return f"CAST({ident} AS DOUBLE)"
    if column.kind == "datetime":
        return f"epoch(CAST({ident} AS TIMESTAMP))"
    return None




def _first_pass(columns: list[ColumnInfo], source: str, query: Query, exact: bool) -> pd.Series:
    parts = ["count(*) AS n_rows"]
    for i, col in enumerate(columns):
        ident = quote_ident(col.name)
        distinct = f"count(DISTINCT {ident})" if exact else f"approx_count_distinct({ident})"
        parts += [f"count({ident}) AS nn_{i}", f"{distinct} AS nd_{i}"]
        number = _numeric_expr(col)
        if number is not None:
            parts += [f"min({number}) AS lo_{i}", f"max({number}) AS hi_{i}"]
        if col.kind == "numeric":
            parts += [f"avg({number}) AS mean_{i}", f"stddev_samp({number}) AS std_{i}"]
        if col.kind in ("text", "boolean"):
            parts.append(f"approx_top_k(CAST({ident} AS VARCHAR), {TOP_VALUES}) AS top_{i}")
        if col.kind == "text":
            parts.append(f"count(TRY_CAST({ident} AS DOUBLE)) AS numtext_{i}")
    return query(f"SELECT {', '.join(parts)} FROM {source}", []).iloc[0]


def _second_pass(columns: list[ColumnInfo], first: pd.Series, source: str, query: Query
                 ) -> tuple[pd.Series | None, dict[int, list[float]]]:
    parts, params, edges = [], [], {}
    for i, col in enumerate(columns):
        number = _numeric_expr(col)
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
    first = _first_pass(columns, source, query, exact=rows <= EXACT_DISTINCT_MAX_ROWS)
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
        low, high = present(first, f"lo_{i}"), present(first, f"hi_{i}")
        profiles.append(ColumnProfile(
            name=col.name, sql_type=col.sql_type, kind=col.kind, rows=rows, non_null=int(first[f"nn_{i}"]),
            distinct=int(first[f"nd_{i}"]), minimum=low, maximum=high, mean=present(first, f"mean_{i}"),
            std=present(first, f"std_{i}"), top_values=top, histogram=histogram,
            numeric_text=int(present(first, f"numtext_{i}") or 0)))
    return TableProfile(rows=rows, columns=profiles)
