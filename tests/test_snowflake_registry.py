"""The Model Registry as snowflake-ml 1.51 behaves, through its own code: exact pins survive its parameter
reconciler, and a version logged before is recognised by the message snowflake-ml really gives."""

from __future__ import annotations

import inspect
import re
import warnings

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
