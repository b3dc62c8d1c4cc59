"""Training samples drawn in the warehouse: capped, stratified, deduplicated, repeatable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.warehouse.base import STRATIFIED_FLOOR, SampleSpec
from backend.workspace import Workspace
from tests.conftest import put_table

N = 20_000


@pytest.fixture
def labelled(empty_workspace: Workspace):
    rng = np.random.default_rng(4)
    label = np.where(np.arange(N) < N * 0.03, "rare", "common")
    frame = pd.DataFrame({"x": rng.normal(size=N), "label": label})
    frame.loc[::100, "label"] = None
    return empty_workspace, put_table(empty_workspace, "labelled", frame)


def export(ws: Workspace, spec: SampleSpec, tmp_path: Path) -> tuple[pd.DataFrame, int, bool]:
    path = tmp_path / f"s{abs(hash(spec))}.parquet"
    info = ws.warehouse.export_training_sample(spec, path)
    frame = pd.read_parquet(path)
    assert len(frame) == info.rows_written
    return frame, info.rows_eligible, info.sampled


def test_no_sampling_below_the_cap(labelled, tmp_path: Path) -> None:
    ws, table = labelled
    frame, eligible, sampled = export(ws, SampleSpec(table, ("x", "label"), "label", max_rows=N), tmp_path)
    assert (len(frame), eligible, sampled) == (N - N // 100, N - N // 100, False)
    assert frame["label"].notna().all()


def test_stratified_sample_keeps_shares_and_a_floor(labelled, tmp_path: Path) -> None:
    ws, table = labelled
    spec = SampleSpec(table, ("x", "label"), "label", max_rows=5000, stratify=True, seed=1)
    frame, eligible, sampled = export(ws, spec, tmp_path)
    assert sampled and eligible == N - N // 100
    counts = frame["label"].value_counts()
    rare_rows = int((pd.Series(np.where(np.arange(N) < N * 0.03, 1, 0))[np.arange(N) % 100 != 0]).sum())
    assert counts["rare"] == pytest.approx(min(rare_rows, STRATIFIED_FLOOR), rel=0.15)
    assert counts["common"] == pytest.approx(5000 * (1 - rare_rows / eligible), rel=0.1)
    again, _, _ = export(ws, spec, tmp_path)
    assert again.equals(frame), "the same seed draws the same rows"


def test_uniform_sample_and_exclusions_and_distinct(labelled, tmp_path: Path) -> None:
    ws, table = labelled
    frame, _, sampled = export(ws, SampleSpec(table, ("x", "label"), "label", max_rows=2000, seed=3), tmp_path)
    assert sampled and len(frame) == pytest.approx(2000, rel=0.1)
    spec = SampleSpec(table, ("label",), "label", max_rows=N, exclude_target_values=("rare",), distinct=True)
    frame, eligible, _ = export(ws, spec, tmp_path)
    assert frame["label"].tolist() == ["common"] and eligible == 1


def test_wide_tables_get_a_smaller_row_cap() -> None:
    from backend.training.config import DEFAULT_MAX_ROWS, rows_cap

    assert rows_cap(20) == DEFAULT_MAX_ROWS
    assert 100_000 < rows_cap(500) < 200_000
    assert rows_cap(10**6) >= 1000


def test_suggested_budget_grows_with_the_table() -> None:
    from backend.training.config import MAX_TIME_BUDGET_S, suggested_budget_s

    assert suggested_budget_s(344, 7) == 30
    assert suggested_budget_s(53_940, 9) == 60
    assert suggested_budget_s(1_000_000, 50) == MAX_TIME_BUDGET_S
    assert suggested_budget_s(10**6, 20) > suggested_budget_s(10**5, 20) > suggested_budget_s(10**4, 20)
