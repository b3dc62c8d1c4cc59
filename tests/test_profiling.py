"""Column profiles computed in DuckDB: only aggregates come back, and they are right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.profiling import HISTOGRAM_BINS
from backend.workspace import Workspace
from tests.conftest import put_table


def frame() -> pd.DataFrame:
    n = 1000
    values = np.arange(n, dtype=float)
    values[::10] = np.nan
    return pd.DataFrame({
        "value": values,
        "colour": ["red"] * 600 + ["blue"] * 300 + ["green"] * 99 + [None],
        "when": pd.date_range("2024-01-01", periods=n, freq="D"),
        "mixed": [str(i) if i % 4 else "n/a" for i in range(n)],
        "flag": [i % 3 == 0 for i in range(n)],
        "ident": [f"id-{i}" for i in range(n)],
    })


def test_numeric_profile(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "p", frame())
    profile = empty_workspace.warehouse.profile(table)
    value = profile.column("value")
    assert profile.rows == 1000
    assert (value.non_null, value.nulls) == (900, 100)
    assert value.null_share == pytest.approx(0.1)
    assert value.minimum == 1.0 and value.maximum == 999.0
    expected = frame()["value"]
    assert value.mean == pytest.approx(expected.mean()) and value.std == pytest.approx(expected.std())
    assert len(value.histogram) == HISTOGRAM_BINS
    assert sum(b[2] for b in value.histogram) == 900
    assert value.histogram[0][0] == 1.0 and value.histogram[-1][1] == 999.0
    assert value.histogram[0][2] == pytest.approx(45, abs=2)  # 50 numbers per bin, every tenth missing


def test_text_boolean_datetime_profile(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "p", frame())
    profile = empty_workspace.warehouse.profile(table)
    colour = profile.column("colour")
    assert colour.top_values[:3] == [("red", 600), ("blue", 300), ("green", 99)]
    assert colour.top_share == pytest.approx(600 / 999)
    assert profile.column("ident").distinct == 1000  # exact on small tables: IDs are recognisable
    assert profile.column("mixed").numeric_text == 750
    assert dict(profile.column("flag").top_values) == {"false": 666, "true": 334}
    when = profile.column("when")
    assert when.kind == "datetime" and sum(b[2] for b in when.histogram) == 1000


def test_profile_of_an_empty_table(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "p", frame().head(0))
    profile = empty_workspace.warehouse.profile(table)
    assert profile.rows == 0 and all(c.histogram == [] for c in profile.columns)


def test_nested_and_interval_columns_are_profiled_as_other_and_left_out(empty_workspace: Workspace) -> None:
    """BIGINT[] starts like BIGINT and INTERVAL like INT: neither may be treated as a number; TIME (a time of
    day) is not a point in time (both warehouses refuse to cast it to TIMESTAMP)."""
    from backend.warehouse.base import TableRef, column_kind

    assert [column_kind(t) for t in ("BIGINT[]", "INTEGER[3]", "STRUCT(a INTEGER)", "MAP(VARCHAR, INTEGER)",
                                     "INTERVAL", "INTEGER", "ARRAY", "VARIANT", "TIME", "TIME WITH TIME ZONE",
                                     "TIMESTAMP_TZ", "DATE")] == [
        "other", "other", "other", "other", "other", "numeric", "other", "other", "other", "other", "datetime",
        "datetime"]
    wh = empty_workspace.warehouse
    wh.execute('CREATE TABLE lab.nested AS SELECT i % 7 AS "n", [i, i + 1] AS "pair", {\'a\': i} AS "record", '
               'INTERVAL (i) MINUTE AS "wait", TIME \'12:00:00\' + INTERVAL (i) MINUTE AS "clock", '
               'i % 2 = 0 AS "even" FROM range(50) t(i)')
    table = TableRef("lab", "nested")
    profile = wh.profile(table)
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds == {"n": "numeric", "pair": "other", "record": "other", "wait": "other", "clock": "other",
                     "even": "boolean"}
    _, choices = empty_workspace.target_summary(table, "even")
    assert {c.name for c in choices if c.include} == {"n"}
    assert len(wh.preview(table, 5)) == 5
