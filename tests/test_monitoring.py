"""Drift in the warehouse: the SQL counts equal pandas on the same rows; a shifted table alerts, an unshifted
one stays stable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.monitoring import (
    PSI_ALERT,
    PSI_WATCH,
    MonitoringBaseline,
    band,
    baseline_of,
    drift_report,
    jensen_shannon,
    psi,
)
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from tests.conftest import put_table


def frame(n: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0 if shifted else 0.0, 1.0, n)
    x[rng.random(n) < (0.2 if shifted else 0.05)] = np.nan
    plans = ["basic", "plus", "pro", "family"]
    plan = rng.choice(plans, n, p=[0.1, 0.1, 0.2, 0.6] if shifted else [0.4, 0.3, 0.2, 0.1])
    return pd.DataFrame({"x": x, "plan": plan, "active": rng.random(n) < 0.5,
                         "prediction": rng.random(n) ** (0.3 if shifted else 1.0)})


def pandas_shares(values: pd.Series, column) -> list[float]:  # type: ignore[no-untyped-def]
    """The same bins, counted by pandas, to check the warehouse's counts."""
    n = len(values)
    missing = values.isna()
    if column.kind == "numeric":
        bins = np.searchsorted(np.asarray(column.edges), values[~missing].astype(float).to_numpy(), side="right")
        counts = np.bincount(bins, minlength=len(column.edges) + 1)
        return [*(counts / n).tolist(), float(missing.mean())]
    text = values[~missing].map(lambda v: ("true" if v else "false") if isinstance(v, bool | np.bool_) else str(v))
    matched = [float((text == v).sum() / n) for v in column.values]
    return [*matched, float((~text.isin(column.values)).sum() / n), float(missing.mean())]


@pytest.fixture
def baseline() -> MonitoringBaseline:
    train = frame(5000, 0)
    return baseline_of(train, ["x", "plan", "active"], train["prediction"], "holdout rows")


def test_the_warehouse_counts_equal_pandas_and_a_shift_alerts(empty_workspace: Workspace, baseline) -> None:
    ws = empty_workspace
    assert [c.kind for c in baseline.columns] == ["numeric", "text", "text"]
    assert len(baseline.column("x").edges) == 9 and sum(baseline.column("x").shares) == pytest.approx(1.0)
    same, moved = frame(3000, 1), frame(3000, 2, shifted=True)
    for name, rows in (("same", same), ("moved", moved)):
        put_table(ws, name, rows)
    quiet = drift_report(ws.warehouse, TableRef("lab", "same"), baseline, "prediction")
    loud = drift_report(ws.warehouse, TableRef("lab", "moved"), baseline, "prediction")
    for report, rows in ((quiet, same), (loud, moved)):
        assert report.rows == len(rows) and report.baseline_rows == 5000
        for drift in [*report.columns, report.prediction]:
            column = baseline.prediction if drift.column == "prediction" else baseline.column(drift.column)
            expected = pandas_shares(rows[drift.column], column)
            assert drift.shares == pytest.approx(expected, abs=1e-12)
            assert drift.psi == pytest.approx(psi(expected, column.shares))
            assert drift.jensen_shannon == pytest.approx(jensen_shannon(expected, column.shares))
    assert {d.column: d.band for d in quiet.columns} == {"x": "stable", "plan": "stable", "active": "stable"}
    assert quiet.prediction.band == "stable"
    assert {d.column: d.band for d in loud.columns} == {"x": "alert", "plan": "alert", "active": "stable"}
    assert loud.prediction.band == "alert"
    x = next(d for d in loud.columns if d.column == "x")
    assert x.missing_share == pytest.approx(moved["x"].isna().mean())
    assert x.difference_of_means == pytest.approx(moved["x"].mean() - baseline.column("x").mean)
    label, now_share, then_share = next(d for d in loud.columns if d.column == "plan").biggest_move
    assert label == "family" and now_share > then_share


def test_only_one_scoring_runs_rows_are_counted(empty_workspace: Workspace, baseline) -> None:
    ws = empty_workspace
    history = pd.concat([frame(1000, 3).assign(run=1), frame(2000, 4, shifted=True).assign(run=2)])
    put_table(ws, "history", history)
    first = drift_report(ws.warehouse, TableRef("lab", "history"), baseline, "prediction", where=('"run" = ?', [1]))
    assert first.rows == 1000 and all(d.band == "stable" for d in first.columns)


def test_bands_follow_the_usual_psi_rule() -> None:
    assert (band(PSI_WATCH - 1e-9), band(PSI_WATCH), band(PSI_ALERT), band(PSI_ALERT + 1e-9)) == (
        "stable", "watch", "watch", "alert")
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0 and np.isfinite(psi([1.0, 0.0], [0.0, 1.0]))


def test_alerts_name_the_moved_columns_by_how_much_the_model_relies_on_them(empty_workspace: Workspace,
                                                                               baseline) -> None:
    from backend.monitoring import drift_alerts

    put_table(empty_workspace, "moved", frame(3000, 2, shifted=True))
    report = drift_report(empty_workspace.warehouse, TableRef("lab", "moved"), baseline, "prediction")
    alerts = drift_alerts(report, ["plan", "active", "x"])
    assert [a.column for a in alerts] == ["prediction", "plan", "x"]
    assert alerts[1].text.startswith("'plan' now has ") and "'family' against 10% in training" in alerts[1].text
    assert "the model's strongest driver has moved" in alerts[1].text
    assert "its 3rd strongest input" in alerts[2].text
