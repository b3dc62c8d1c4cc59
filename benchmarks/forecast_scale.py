"""Forecast scale: a panel of 1,000 daily series × 3 years (1,096,000 rows, generated: a level, a trend, a
weekly and a yearly rhythm and noise of each series' own), trained at a 120 s budget through the same path as
the app's worker (series prepared from the raw rows, every method backtested, the best refitted) and its
forecast table written into an embedded warehouse.

Reports `train_s` (training wall time, to set beside the budget), `write_s` (the forecast table), `rows`,
`series`, `chosen`, `mase` and `seasonal_naive_mase` of the backtest, `peak_rss_mb` (target ≤ 2,048), and
`scored_at_s`: when each method's backtest score was known, seconds into training.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SERIES = 1000
DAYS = 3 * 365 + 1
BUDGET_S = 120
HORIZON = 28


def panel(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-01", periods=DAYS, freq="D")
    t = np.arange(DAYS)
    level = rng.uniform(20, 2000, SERIES)[:, None]
    trend = rng.normal(0, 0.0003, SERIES)[:, None] * t
    weekly = rng.uniform(0, 0.3, SERIES)[:, None] * np.sin(2 * np.pi * (t + rng.integers(0, 7, SERIES)[:, None]) / 7)
    yearly = rng.uniform(0, 0.2, SERIES)[:, None] * np.sin(2 * np.pi * t / 365.25)
    noise = rng.normal(0, 0.05, (SERIES, DAYS))
    values = level * (1 + trend + weekly + yearly + noise)
    return pd.DataFrame({"day": np.tile(days.date, SERIES), "item": np.repeat([f"item {i:04d}" for i in range(SERIES)], DAYS),
                         "units": values.ravel()})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> int:
    from backend.config import WarehouseConfig
    from backend.forecast_workflow import deploy_forecast, forecast_config, write_forecast
    from backend.forecasting.report import ForecastReport
    from backend.forecasting.series import SeriesSpec
    from backend.registry import RunState
    from backend.training.dispatch import train_run
    from backend.training.jobs import record_model_version
    from backend.training.results import result_summary
    from backend.warehouse.base import TableRef
    from backend.workspace import open_workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(WarehouseConfig("duckdb", str(Path(tmp) / "scale.duckdb")), seed_demo=False,
                            supervise=False)
        table = TableRef("lab", "daily_units")
        ws.warehouse.ensure_schema("lab")
        ws.warehouse.write_table(table, panel())
        spec = SeriesSpec("day", "units", ("item",), horizon=HORIZON)
        config = forecast_config(ws.warehouse, table, spec, "mase", BUDGET_S)
        run_id = ws.registry.create_run(table=table, target="units", task="forecast", metric="mase",
                                        time_budget=BUDGET_S, config=config.to_dict(), job_dir=tmp)
        ws.registry.set_run_state(run_id, RunState.RUNNING)
        frame = ws.warehouse.read_columns(table, list(config.exported_columns))
        started = time.monotonic()
        result = train_run(frame, config, Path(tmp) / "trials.jsonl")
        train_s = time.monotonic() - started
        stages = {json.loads(line)["learner"]: round(json.loads(line)["wall_clock_time"], 1)
                  for line in (Path(tmp) / "trials.jsonl").read_text(encoding="utf-8").splitlines() if line}
        bundle = result.bundle.to_bytes()
        model_id = record_model_version(ws.registry, run_id, config, json.loads(json.dumps(
            result_summary(result, bundle))), bundle, result.holdout_parquet)
        del frame, result
        started = time.monotonic()
        written = write_forecast(ws.warehouse, ws.registry, deploy_forecast(ws.registry, model_id), table,
                                 TableRef("forecasts", "daily_units_forecast"))
        write_s = time.monotonic() - started
        report = ForecastReport.of(ws.registry.get_model_version(model_id).metrics)
        assert report is not None
        ws.close()
    print(json.dumps({"rows": SERIES * DAYS, "series": SERIES, "budget_s": BUDGET_S, "train_s": round(train_s, 1),
                      "write_s": round(write_s, 1), "forecast_rows": written.rows, "chosen": report.method,
                      "mase": round(report.scores["mase"]["model"], 3),
                      "seasonal_naive_mase": round(report.scores["mase"]["seasonal_naive"], 3),
                      "peak_rss_mb": round(peak_rss_mb()), "target_peak_rss_mb": 2048,
                      "scored_at_s": stages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
