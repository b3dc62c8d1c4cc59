"""The Model Registry as snowflake-ml 1.51 behaves, through its own code: exact pins survive its parameter
reconciler, a version logged before is recognised by the message snowflake-ml really gives, the model is
packaged by its own packager; and the names Flurry gives registry inputs and versions."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

from backend.warehouse.snowflake_model_registry import REGISTRY_SAVE_OPTIONS, version_already_logged


def test_exact_pins_survive_snowflake_mls_own_reconciler() -> None:
    from snowflake.ml._internal.utils import sql_identifier
    from snowflake.ml.registry._manager.model_parameter_reconciler import ModelParameterReconciler

    reconciler = ModelParameterReconciler(
        model=None, session=None, database_name=sql_identifier.SqlIdentifier("DB"),
        schema_name=sql_identifier.SqlIdentifier("FLURRY"), conda_dependencies=["lightgbm==4.1.0"],
        target_platforms=["WAREHOUSE"], options=dict(REGISTRY_SAVE_OPTIONS))
    platforms = reconciler._reconcile_target_platforms()
    kept = reconciler._reconcile_relax_version(dict(REGISTRY_SAVE_OPTIONS), platforms, False)
    assert kept["relax_version"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        untold = reconciler._reconcile_relax_version({}, platforms, False)
    assert untold["relax_version"] is True  # what snowflake-ml does when it is not told: `>=4.1,<5`


def test_a_version_logged_before_is_recognised_by_snowflake_mls_own_message() -> None:
    from snowflake.ml.registry._manager import model_manager

    source = inspect.getsource(model_manager.ModelManager)
    templates = re.findall(r'f"Model \{model_name\} version \{version_name\} ([^"]+)"', source)
    assert templates, "snowflake-ml no longer says which version exists in this form"
    message = f"Model FLURRY_CHURN version V_M1 {templates[0]}"
    assert version_already_logged(message)
    assert not version_already_logged("Insufficient privileges to operate on schema 'FLURRY'")


def test_a_new_signature_leaves_no_overload_of_the_old_model_behind() -> None:
    """Deploying a version with other inputs under the same name makes a second signature (Snowflake overloads
    by argument types): every signature but the one just created is dropped, by its own argument types."""
    import pandas as pd
    import sqlglot

    from backend.warehouse.snowflake_deploy import stale_overload_drops

    signatures = [("(ARG1 FLOAT, ARG2 VARCHAR)", pd.Timestamp("2026-12-01 10:00")),
                  ("(ARG1 FLOAT, ARG2 VARCHAR, ARG3 BOOLEAN)", pd.Timestamp("2026-12-08 09:00")),
                  ("(ARG1 VARCHAR)", pd.Timestamp("2026-11-02 08:00"))]
    drops = stale_overload_drops('"DB"."FLURRY"."flurry_churn"', signatures)
    assert drops == ['DROP FUNCTION IF EXISTS "DB"."FLURRY"."flurry_churn"(FLOAT, VARCHAR)',
                     'DROP FUNCTION IF EXISTS "DB"."FLURRY"."flurry_churn"(VARCHAR)']
    for statement in drops:
        assert sqlglot.parse_one(statement, read="snowflake").key == "drop"
    assert stale_overload_drops('"DB"."FLURRY"."f"', signatures[:1]) == []  # the same inputs: replaced in place


ROOT = Path(__file__).resolve().parents[1]


def test_registry_inputs_get_plain_unique_identifiers_in_feature_order() -> None:
    from backend.warehouse.snowflake_model_registry import registry_feature_names

    names = registry_feature_names(["tenure months", "Tenure-Months", "2nd plan", "\"quoted\"", "été", "_", "a"])
    assert names == ["TENURE_MONTHS", "TENURE_MONTHS_2", "F_2ND_PLAN", "QUOTED", "T", "FEATURE", "A"]
    assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", n) for n in names) and len(set(names)) == len(names)


def test_the_registry_gets_each_metric_s_holdout_score() -> None:
    from backend.version_records import VersionMetrics

    stored = {"roc_auc": {"model": 0.91, "baseline": 0.5}, "log_loss": {"model": float("nan")}, "rmse": {"model": 2},
              "r2": {"model": None, "baseline": 0.0}, "_rows": {"train": 300, "holdout": 100}}
    assert VersionMetrics.from_dict(stored).finite_scores() == {"roc_auc": 0.91, "rmse": 2.0}


def test_the_registry_model_packages_and_scores_with_snowflake_ml_itself(tmp_path: Path) -> None:
    """The model is packaged by the registry's own packager (what `log_model` uploads), loaded back as the
    registry runtime loads it, and scores exactly like the bundle. Only the upload and `CREATE MODEL` need an
    account."""
    checked = subprocess.run([sys.executable, str(ROOT / "tests" / "snowml_registry_check.py"), str(tmp_path)],
                             capture_output=True, text=True, timeout=240, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert checked.returncode == 0, checked.stderr[-3000:]
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result["inputs"] == ["TENURE_MONTHS", "PLAN"] and result["outputs"] == ["PREDICTION", "PROBABILITY"]
    assert result["same_predictions"] and result["probability_max_error"] < 1e-12
    conda = yaml.safe_load(result["conda"])
    assert any(str(d).startswith("lightgbm==") for d in conda["dependencies"])  # pinned to the training version
    assert not any("flaml" in str(d) for d in conda["dependencies"])  # not in the channel: it is carried as code
    assert {"backend", "flaml"} <= set(result["code"])


def test_registry_versions_are_flurrys_version_numbers_and_a_threshold_of_its_own_is_another() -> None:
    """One registry model per Flurry model, its versions V<n> as the wizard's v<n>; a version deployed at another
    threshold than it was trained with labels otherwise, so it is a registry version of its own."""
    from backend.warehouse.snowflake_model_registry import registry_version_name

    assert registry_version_name(3, None, None) == "V3"  # a regression model: no threshold
    assert registry_version_name(3, 0.3127, 0.3127) == "V3"
    assert registry_version_name(3, 0.45, 0.3127) == "V3_T04500"
    assert registry_version_name(12, 0.5, None) == "V12_T05000"  # trained before thresholds were recorded
