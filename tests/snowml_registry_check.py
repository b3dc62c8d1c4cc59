"""Run by tests/test_snowflake_hosting.py under .venv-snowml (snowflake-ml-python, which needs pandas < 3 and
so cannot share .venv), never by pytest itself.

Packages Flurry's registry model exactly as `Registry.log_model` does before uploading it (the registry's own
ModelPackager, offline), loads it back as the registry runtime would, scores with it, and prints one JSON
object comparing that with the bundle's own predictions.
"""

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from snowflake.ml.model import task as registry_task
from snowflake.ml.model._packager.model_packager import ModelPackager

from backend.task_detection import Task
from backend.training.config import TrainConfig
from backend.training.fit import fit_bundle, training_rows
from backend.warehouse import snowflake_model_registry as smr
from backend.warehouse.base import TableRef
from backend.warehouse.snowflake_deploy import BACKEND_DIR, model_packages


def main(work: Path) -> dict:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure months": rng.integers(1, 70, 400).astype(float),
                          "plan": rng.choice(["basic", "pro"], 400)})
    frame["churned"] = np.where((frame["tenure months"] < 20) ^ (rng.random(400) < 0.1), "yes", "no")
    config = TrainConfig(table=TableRef("s", "t"), target="churned", target_sql_type="VARCHAR", task=Task.BINARY,
                         features=(("tenure months", "DOUBLE"), ("plan", "VARCHAR")), metric="roc_auc",
                         time_budget_s=2, ensemble=False)
    bundle, _ = fit_bundle(training_rows(frame, config), config, work / "log.jsonl")
    content = bundle.to_bytes()
    (work / "bundle.pkl").write_bytes(content)
    package = work / "package"
    ModelPackager(str(package)).save(
        name="FLURRY_CHURN", model=smr._custom_model(work / "bundle.pkl", hashlib.sha256(content).hexdigest()),
        signatures={"predict": smr._signature(bundle, "VARCHAR")}, conda_dependencies=model_packages(bundle),
        code_paths=[str(BACKEND_DIR)], options={}, task=registry_task.Task.TABULAR_BINARY_CLASSIFICATION,
        target_platforms=["WAREHOUSE"])
    loaded = ModelPackager(str(package))
    meta = loaded.load(as_custom_model=True)
    inputs = frame[["tenure months", "plan"]].set_axis(smr.registry_feature_names(bundle.feature_names), axis=1)
    scored = loaded.model.predict(inputs)
    signature = meta.signatures["predict"]
    return {"inputs": [f.name for f in signature.inputs], "outputs": [f.name for f in signature.outputs],
            "same_predictions": scored["PREDICTION"].tolist() == list(bundle.predict(frame)),
            "probability_max_error": float(np.abs(scored["PROBABILITY"] - bundle.predict_proba(frame).max(axis=1)).max()),
            "conda": (package / "runtimes" / "cpu" / "env" / "conda.yml").read_text(encoding="utf-8")}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))))
