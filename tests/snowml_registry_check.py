"""Run by tests/test_snowflake_hosting.py in a fresh Python process (the registry's packager imports the
bundle's code anew), never by pytest itself.

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
from snowflake.ml.model import task as registry_task
from snowflake.ml.model._packager.model_packager import ModelPackager

from backend.warehouse import snowflake_model_registry as smr
from backend.warehouse.snowflake_deploy import model_packages
from tests.churn_example import churn_frame, churn_model


def main(work: Path) -> dict:
    frame = churn_frame()
    bundle = churn_model(frame, work)
    content = bundle.to_bytes()
    (work / "bundle.pkl").write_bytes(content)
    package = work / "package"
    ModelPackager(str(package)).save(
        name="FLURRY_CHURN", model=smr._custom_model(work / "bundle.pkl", hashlib.sha256(content).hexdigest()),
        signatures={"predict": smr._signature(bundle, "VARCHAR")}, conda_dependencies=model_packages(bundle),
        code_paths=smr.registry_code_paths(), options={}, task=registry_task.Task.TABULAR_BINARY_CLASSIFICATION,
        target_platforms=["WAREHOUSE"])
    loaded = ModelPackager(str(package))
    meta = loaded.load(as_custom_model=True)
    inputs = frame[["tenure months", "plan"]].set_axis(smr.registry_feature_names(bundle.feature_names), axis=1)
    scored = loaded.model.predict(inputs)
    signature = meta.signatures["predict"]
    return {"inputs": [f.name for f in signature.inputs], "outputs": [f.name for f in signature.outputs],
            "same_predictions": scored["PREDICTION"].tolist() == list(bundle.predict(frame)),
            "probability_max_error": float(np.abs(scored["PROBABILITY"] - bundle.output_probability(frame)).max()),
            "code": sorted(p.name for p in (package / "code").iterdir()),
            "conda": (package / "runtimes" / "cpu" / "env" / "conda.yml").read_text(encoding="utf-8")}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))))
