"""Names that collide inside DuckDB: a database file is a catalog named after the file, so the default
flurry.duckdb is a catalog "flurry" beside Flurry's own schema "FLURRY", and lab.duckdb may hold a schema "lab"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.deploy import deploy, score_table
from backend.warehouse.base import TableRef
from tests.conftest import make_workspace, put_table, train_and_wait


@pytest.mark.parametrize(("file_name", "schema"), [("flurry.duckdb", "lab"), ("lab.duckdb", "lab")])
def test_catalog_named_like_a_schema(tmp_path: Path, file_name: str, schema: str) -> None:
    ws = make_workspace(tmp_path / file_name)
    try:
        rng = np.random.default_rng(5)
        x = rng.normal(size=120)
        table = put_table(ws, "t", pd.DataFrame({"x": x, "y": np.where(x > 0, "hi", "lo")}), schema=schema)
        assert schema in ws.warehouse.list_schemas() and "FLURRY" not in ws.warehouse.list_schemas()
        progress = train_and_wait(ws, table, "y", budget=2)
        deploy(ws.warehouse, ws.registry, progress.model_id, "flurry_predict_y")
        result = score_table(ws.warehouse, ws.registry, "flurry_predict_y", table, TableRef(schema, "t_scored"))
        assert result.rows == 120
    finally:
        ws.close()


def test_a_default_function_name_says_a_shared_word_once() -> None:
    from types import SimpleNamespace

    from backend.deploy import default_function_name

    def name(table: str, target: str) -> str:
        return default_function_name(SimpleNamespace(table=TableRef("s", table), target=target))  # type: ignore[arg-type]

    assert name("customer_churn", "churn") == "flurry_predict_customer_churn"
    assert name("churn", "churn_flag") == "flurry_predict_churn_flag"
    assert name("Orders 2024", "Late?") == "flurry_predict_orders_2024_late"
    assert name("credit_default", "Status") == "flurry_predict_credit_default_status"


def test_a_named_models_functions_say_a_shared_word_once(tmp_path: Path) -> None:
    from backend.model_catalog import Catalog
    from backend.registry import ModelVersion, now
    from backend.task_detection import Task
    from backend.version_records import VersionMetrics

    ws = make_workspace(tmp_path / "n.duckdb", seed_demo=False)
    try:
        version = ModelVersion(model_id="m1", run_id="r1", created_at=now(), name="churn", table=TableRef("demo",
                               "customer_churn"), target="churn", task=Task.BINARY, metric="roc_auc",
                               best_estimator="lgbm", features=[], metrics=VersionMetrics(), leaderboard=[],
                               importance=[], versions={}, sha256="0" * 64)
        key, _ = Catalog(ws.registry).assign(version)
        assert Catalog(ws.registry).model(key).function_name == "flurry_predict_customer_churn"
    finally:
        ws.close()
