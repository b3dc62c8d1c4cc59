"""The Evaluate page re-rendering for a model trained on a 1,000,000-row table (AppTest, after the first view).

Everything the page draws comes from the version's stored holdout report (200,000 holdout rows judged at
training time), so a rerun (moving a widget) reads the registry and draws; nothing is predicted. The peer is
the same page's first view, which also loads the stored holdout rows and the model for the row explainer.
Keys: rerender_s (target ≤ 2), first_view_s, train_s.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backend.config import WarehouseConfig
from backend.metrics import default_metric
from backend.registry import RunState
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from backend.workspace import open_workspace

ROWS = 1_000_000
ROOT = Path(__file__).resolve().parents[1]


def table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=ROWS) for i in range(6)})
    frame["segment"] = rng.choice(["retail", "online", "partner", "wholesale"], ROWS)
    signal = frame["x0"] + 0.5 * frame["x1"] * frame["x2"] + (frame["segment"] == "online") + rng.normal(0, 1, ROWS)
    frame["converted"] = np.where(signal > 2.0, "yes", "no")
    return frame


def main() -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "evaluate.duckdb"
        ws = open_workspace(WarehouseConfig("duckdb", str(db)), seed_demo=False)
        ref = TableRef("bench", "conversions")
        ws.warehouse.ensure_schema("bench")
        ws.warehouse.write_table(ref, table())
        features = [f"x{i}" for i in range(6)] + ["segment"]
        config = ws.train_config(ref, "converted", Task.BINARY, features, default_metric(Task.BINARY), 30)
        start = time.perf_counter()
        run_id = ws.jobs.start(config)
        while not (progress := ws.jobs.progress(run_id)).run.state.is_final:
            time.sleep(0.5)
        train_s = time.perf_counter() - start
        assert progress.run.state is RunState.SUCCEEDED and progress.model_id, progress.run.message
        ws.close()

        os.environ["FLURRY_WAREHOUSE"] = f"duckdb:///{db}"
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.run()
        at.session_state["wizard.model_id"] = progress.model_id
        start = time.perf_counter()
        at.switch_page("pages/evaluate.py").run()
        first_view_s = time.perf_counter() - start
        assert not at.exception, at.exception
        times = []
        for _ in range(3):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return {"rerender_s": sorted(times)[1], "first_view_s": first_view_s, "train_s": train_s}


if __name__ == "__main__":
    print(json.dumps(main()))
