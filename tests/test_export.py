"""Taking the model out: the scoring bundle scores a CSV in a separate, isolated Python outside the checkout,
exactly as the model does in Flurry, and refuses a model file that was changed."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from backend.deploy import load_bundle
from backend.export import scoring_bundle
from backend.model_bundle import MODEL_LIBRARIES
from backend.task_detection import Task
from backend.workspace import Workspace
from tests.conftest import put_table, wait_for


def test_the_scoring_bundle_scores_a_csv_outside_flurry(empty_workspace: Workspace, tmp_path: Path) -> None:
    ws = empty_workspace
    rng = np.random.default_rng(4)
    n = 300
    x = rng.normal(size=n)
    weird = 'plan """ \\ name'  # would end a docstring or escape a quote if pasted into the script
    table = put_table(ws, "churners", pd.DataFrame({"x": x, weird: rng.choice(["a", "b"], n),
                                                    "left": np.where(x + rng.normal(0, 0.5, n) > 1, "yes", "no")}))
    config = ws.train_config(table, "left", Task.BINARY, ["x", weird], "roc_auc", 2, ensemble=False,
                             estimators=("lgbm",))
    model_id = wait_for(ws, ws.jobs.start(config)).model_id
    assert model_id
    with zipfile.ZipFile(io.BytesIO(scoring_bundle(ws.registry, model_id))) as archive:
        archive.extractall(tmp_path / "bundle")
    out = tmp_path / "bundle"
    pins = (out / "requirements.txt").read_text().split()
    bundle = load_bundle(ws.registry, model_id)
    assert {f"{name}=={bundle.versions[name]}" for name in MODEL_LIBRARIES if name in bundle.versions} <= set(pins)
    rows = ws.warehouse.preview(table, 1000).drop(columns=["left"])
    rows.to_csv(tmp_path / "in.csv", index=False)
    # an isolated interpreter (-I: no PYTHONPATH, no user site) run from elsewhere: only the bundle's files
    done = subprocess.run([sys.executable, "-I", str(out / "predict.py"), str(tmp_path / "in.csv"),
                           str(tmp_path / "scored.csv")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Scored {n:,} rows" in done.stdout
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert scored["prediction"].tolist() == list(bundle.predict(rows))
    assert np.allclose(scored["probability_yes"], bundle.output_probability(rows))
    (out / "model.pkl").write_bytes((out / "model.pkl").read_bytes() + b"!")
    refused = subprocess.run([sys.executable, "-I", str(out / "predict.py"), str(tmp_path / "in.csv"),
                              str(tmp_path / "again.csv")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "checksum" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "again.csv").exists()
