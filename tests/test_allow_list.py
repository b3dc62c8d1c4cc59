"""The schema allow-list: what the app shows and reads when it runs with its owner's rights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.deploy import deploy, score_table
from backend.task_detection import Task
from backend.uploads import import_upload
from backend.warehouse.allow_list import AllowList, NotAllowedError
from backend.warehouse.base import TableRef
from tests.conftest import make_workspace, put_table, train_and_wait

DEMO = TableRef("demo", "penguins")


def test_patterns() -> None:
    allow = AllowList.parse(" lab , sales_* ")
    assert allow is not None
    assert allow.allows("lab") and allow.allows("LAB") and allow.allows("sales_eu")
    assert not allow.allows("demo") and not allow.allows("laboratory")
    assert AllowList.parse(" , ") is None


def test_everything_outside_the_allow_list_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    ws = make_workspace(path)  # seeds demo tables with no allow-list in force
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    put_table(ws, "ok", pd.DataFrame({"x": x, "y": np.where(x > 0, "a", "b")}))
    ws.close()

    monkeypatch.setenv("FLURRY_ALLOWED_SCHEMAS", "lab")
    ws = make_workspace(path)
    try:
        assert ws.warehouse.list_schemas() == ["lab"]
        for call in (lambda: ws.warehouse.profile(DEMO), lambda: ws.warehouse.preview(DEMO),
                     lambda: ws.warehouse.list_tables("demo"), lambda: ws.target_summary(DEMO, "species"),
                     lambda: ws.train_config(DEMO, "species", Task.MULTICLASS, ["island"], "log_loss", 5)):
            with pytest.raises(NotAllowedError, match="not allowed"):
                call()
        with pytest.raises(NotAllowedError):
            import_upload(ws.warehouse, "a.csv", 8, b"a,b\n1,2\n", TableRef("demo", "sneaky"))

        table = TableRef("lab", "ok")
        progress = train_and_wait(ws, table, "y", budget=2)
        deploy(ws.warehouse, ws.registry, progress.model_id, "flurry_predict_ok")
        with pytest.raises(NotAllowedError):
            score_table(ws.warehouse, ws.registry, "flurry_predict_ok", table, TableRef("demo", "scored"))
        with pytest.raises(NotAllowedError):
            score_table(ws.warehouse, ws.registry, "flurry_predict_ok", DEMO, TableRef("lab", "scored"))
        assert score_table(ws.warehouse, ws.registry, "flurry_predict_ok", table, TableRef("lab", "s")).rows == 200
        # raw SQL too: by the fully qualified names in it, however they are spaced or quoted
        assert ws.warehouse.query(f"SELECT count(*) AS n FROM {ws.warehouse.qualify(table)}")["n"].iloc[0] == 200
        demo = ws.warehouse.qualify(table).replace('"lab"."ok"', '"demo"."penguins"')  # qualify(DEMO) is refused
        for sql in (f"SELECT * FROM {demo}", f"CREATE TABLE {ws.warehouse.qualify(TableRef('lab', 'copy'))} AS "
                    f"SELECT * FROM {demo.replace('.', ' . ')}"):
            for call in (ws.warehouse.query, ws.warehouse.execute):
                with pytest.raises(NotAllowedError, match="'demo'"):
                    call(sql)
        assert not ws.warehouse.table_exists(TableRef("lab", "copy"))
        elsewhere = ws.warehouse.qualify(table).replace(ws.warehouse.qualify(table).split(".")[0], '"other_db"', 1)
        with pytest.raises(NotAllowedError, match="own database"):
            ws.warehouse.query(f"SELECT * FROM {elsewhere}")
    finally:
        ws.close()


def test_the_schemas_of_raw_sql_are_read_from_its_qualified_names() -> None:
    from backend.warehouse.allow_list import qualified_names_in_sql

    assert qualified_names_in_sql('SELECT "a"."x" FROM "db"."lab"."t" JOIN "db" . "we""ird" . "u" ON 1') == {
        ("db", "lab"), ("db", 'we"ird')}
    assert qualified_names_in_sql("SELECT 1 FROM t") == set()


def test_the_schema_offered_for_output_is_one_the_app_may_use() -> None:
    """A default the allow-list would refuse helps no one: the preferred name where allowed, else the source
    table's schema, else the first schema the list names outright."""
    from backend.warehouse.allow_list import AllowList

    assert AllowList(("SALES", "SCORES")).output_schema("SCORES", "SALES") == "SCORES"
    assert AllowList(("SALES", "DEMO_*")).output_schema("SCORES", "DEMO_CHURN") == "DEMO_CHURN"
    assert AllowList(("DEMO_*", "SALES")).output_schema("SCORES", None) == "SALES"
    assert AllowList(("DEMO_*",)).output_schema("SCORES", None) == "SCORES"  # nothing better to offer
