"""Task detection and feature suggestions, on crafted tables in a real DuckDB warehouse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.errors import EmptyTableError, InvalidTargetError
from backend.task_detection import Task, check_task_override
from backend.workspace import Workspace
from tests.conftest import put_table

rng = np.random.default_rng(0)
N = 60


def crafted() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_ref": [f"C{i:04d}" for i in range(N)],          # unique text -> ID-like
        "row_no": np.arange(N, dtype=np.int64),                    # unique integers -> ID-like
        "measurement": rng.normal(size=N),                         # unique floats -> a real feature
        "country": rng.choice(["fr", "de", "it"], size=N),
        "constant": ["same"] * N,
        "empty": [None] * N,
        "yes_no": rng.choice(["yes", "no"], size=N),
        "grade": rng.integers(1, 6, size=N),
        "amount": rng.gamma(2.0, 100.0, size=N),
        "flag": rng.choice([True, False], size=N),
    })


@pytest.mark.parametrize(("target", "task"), [
    ("yes_no", Task.BINARY), ("flag", Task.BINARY), ("country", Task.MULTICLASS),
    ("grade", Task.MULTICLASS), ("amount", Task.REGRESSION), ("measurement", Task.REGRESSION),
])
def test_task_is_detected_from_the_target(empty_workspace: Workspace, target: str, task: Task) -> None:
    table = put_table(empty_workspace, "crafted", crafted())
    summary, _ = empty_workspace.target_summary(table, target)
    assert summary.detected_task is task


def test_id_like_and_constant_columns_are_excluded_with_reasons(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "crafted", crafted())
    _, choices = empty_workspace.target_summary(table, "yes_no")
    by_name = {c.name: c for c in choices}
    assert "yes_no" not in by_name
    assert not by_name["customer_ref"].include and "ID-like" in by_name["customer_ref"].reason
    assert not by_name["row_no"].include and "ID-like" in by_name["row_no"].reason
    assert not by_name["constant"].include and "constant" in by_name["constant"].reason
    assert not by_name["empty"].include
    for kept in ("measurement", "country", "grade", "amount", "flag"):
        assert by_name[kept].include and by_name[kept].reason == "", kept


def test_target_with_one_value_is_refused(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "crafted", crafted())
    with pytest.raises(InvalidTargetError, match="same value in every row"):
        empty_workspace.target_summary(table, "constant")


def test_target_that_is_entirely_null_is_refused(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "crafted", crafted())
    with pytest.raises(InvalidTargetError, match="empty"):
        empty_workspace.target_summary(table, "empty")


def test_empty_table_is_refused(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "nothing", crafted().head(0))
    with pytest.raises(EmptyTableError):
        empty_workspace.target_summary(table, "yes_no")


def test_nulls_in_the_target_are_counted(empty_workspace: Workspace) -> None:
    frame = crafted()
    frame.loc[:9, "amount"] = None
    table = put_table(empty_workspace, "crafted", frame)
    summary, _ = empty_workspace.target_summary(table, "amount")
    assert (summary.null_rows, summary.usable_rows) == (10, N - 10)


def test_task_override_is_checked(empty_workspace: Workspace) -> None:
    table = put_table(empty_workspace, "crafted", crafted())
    columns = {c.name: c for c in empty_workspace.warehouse.describe(table)}
    summary, _ = empty_workspace.target_summary(table, "country")
    with pytest.raises(InvalidTargetError, match="numeric"):
        check_task_override(summary, columns["country"], Task.REGRESSION)
    with pytest.raises(InvalidTargetError, match="exactly two"):
        check_task_override(summary, columns["country"], Task.BINARY)
    grade_summary, _ = empty_workspace.target_summary(table, "grade")
    check_task_override(grade_summary, columns["grade"], Task.REGRESSION)  # a numeric target may be a number
