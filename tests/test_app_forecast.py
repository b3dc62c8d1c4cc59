"""The forecasting wizard driven headlessly with AppTest: from a dated table to the forecast's dashboard."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.apptest_steps import choose, goto, new_app, start_training, texts, wait_for_model
from tests.conftest import FAST_BUDGET_S, make_workspace, put_table


def weekly_store_sales() -> pd.DataFrame:
    """Three stores' weekly units (awkward names; a duplicate row, a missing week) and a store too new to
    forecast."""
    rng = np.random.default_rng(3)
    weeks = pd.date_range("2022-01-03", periods=120, freq="W-MON")
    rows = []
    for store, level in (("North #1", 200.0), ("South \"2\"", 80.0), ("East", 40.0)):
        season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(len(weeks)) / 52)
        values = level * season + rng.normal(0, level * 0.05, len(weeks))
        rows += [{"Week Start": w.date(), "store id": store, "Units Sold": float(v)} for w, v in zip(weeks, values, strict=True)]
    rows += [{"Week Start": weeks[-1].date(), "store id": "New", "Units Sold": 5.0}]
    frame = pd.DataFrame(rows)
    frame = pd.concat([frame, frame.iloc[[10]]], ignore_index=True)  # a duplicate (store, week) row
    return frame.drop(index=[50]).reset_index(drop=True)  # a week missing in one store


@pytest.mark.floor
def test_forecast_from_target_to_dashboard(warehouse_file: Path) -> None:
    ws = make_workspace(warehouse_file)
    put_table(ws, "weekly sales", weekly_store_sales())
    ws.close()

    at = new_app()
    choose(at, "lab", "weekly sales", "Units Sold")
    assert not at.exception and not at.error, texts(at, "error")
    task = at.radio(key="target.task")
    assert task.value.value == "forecast", "a table of dated rows per store should suggest a forecast"
    assert at.multiselect(key="target.forecast.series").value == ["store id"]
    at.number_input(key="target.forecast.horizon").set_value(6).run()
    assert not at.exception and not at.error, texts(at, "error")
    shown = texts(at, "markdown").replace("\\", "")  # as the page reads, without Markdown's escapes
    assert "weekly (one row per week, on Mondays)" in shown and "3 series" in shown
    assert "1 series has fewer than" in shown and "('New')" in shown  # each finding, in words
    assert "1 missing period in 1 series" in shown and "pair has more than one row" in shown, shown

    start_training(at, FAST_BUDGET_S)
    assert not at.exception and not at.error, texts(at, "error")
    wait_for_model(at, 120)
    at.run()
    assert "Flurry forecasts by" in texts(at, "success")

    goto(at, "pages/evaluate.py")
    assert not at.exception and not at.error, texts(at, "error")
    assert "Forecasts Units Sold for the next 6 weeks of each of 3 series" in texts(at, "markdown")
    assert set(at.selectbox(key=next(s.key for s in at.selectbox if s.key.startswith("evaluate.series"))).options) \
        == {"North #1", "South \"2\"", "East"}

    goto(at, "pages/deploy.py")
    at.button(key="deploy.forecast_use").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    at.button(key="deploy.forecast_write").click().run()
    deadline = time.monotonic() + 60
    while "Wrote the forecast" not in texts(at, "success") and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception and not at.error, texts(at, "error")
    assert ("Wrote the forecast into forecasts.weekly_sales_forecast: 18 rows, 3 series × 6 periods ahead"
            in texts(at, "success").replace("\\", ""))

    at.button(key="deploy.open_dashboard").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    assert any(s.value == "The newest forecast and what happened" for s in at.subheader)
    assert "None of the forecast periods has an actual value yet" in texts(at, "info")


@pytest.mark.usefixtures("warehouse_file")
def test_a_new_target_gets_its_own_kind_of_prediction() -> None:
    """A text target (categories), then a number in the same table: the second is detected afresh, not
    judged as categories because the first one was."""
    at = new_app()
    choose(at, "demo", "tourism_nights", "region")
    assert at.radio(key="target.task").value.value == "multiclass"
    at.selectbox(key="target.column").set_value("visitor_nights_m").run()
    assert not at.exception and not at.error, texts(at, "error")
    assert at.radio(key="target.task").value.value == "forecast"
