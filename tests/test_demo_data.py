"""Demo tables: seeded from packaged files, idempotently, never touching anyone else's tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from backend.demo_data import DEMO_SCHEMA, DEMO_TABLES
from backend.warehouse.base import TableRef
from tests.conftest import make_workspace, put_table


def test_first_start_seeds_every_demo_table_with_rows(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "w.duckdb")
    try:
        assert set(ws.warehouse.list_tables(DEMO_SCHEMA)) == {d.name for d in DEMO_TABLES}
        for demo in DEMO_TABLES:
            assert ws.warehouse.row_count(TableRef(DEMO_SCHEMA, demo.name)) > 100
        kinds = {c.kind for d in DEMO_TABLES for c in ws.warehouse.describe(TableRef(DEMO_SCHEMA, d.name))}
        assert "text" in kinds
        nulls = [s for d in DEMO_TABLES for s in ws.warehouse.column_stats(TableRef(DEMO_SCHEMA, d.name))
                 if s.non_null < ws.warehouse.row_count(TableRef(DEMO_SCHEMA, d.name))]
        assert nulls, "at least one demo table has missing values"
    finally:
        ws.close()


def test_seeding_is_idempotent_and_respects_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ws = make_workspace(path, seed_demo=False)
    mine = put_table(ws, "penguins", pd.DataFrame({"mine": [1, 2, 3]}), schema=DEMO_SCHEMA)
    ws.close()

    ws = make_workspace(path)  # first seeding: must not replace the user's own demo.penguins
    assert ws.warehouse.read_columns(mine, ["mine"])["mine"].tolist() == [1, 2, 3]
    churn = TableRef(DEMO_SCHEMA, "customer_churn")
    rows = ws.warehouse.row_count(churn)
    ws.warehouse.drop_table(churn)  # the user drops a demo table on purpose
    ws.close()

    ws = make_workspace(path)
    try:
        assert not ws.warehouse.table_exists(churn), "a dropped demo table stays dropped"
        assert ws.warehouse.row_count(TableRef(DEMO_SCHEMA, "diamond_prices")) == 53940
        assert ws.warehouse.read_columns(mine, ["mine"])["mine"].tolist() == [1, 2, 3]
        assert rows == 7043
    finally:
        ws.close()
