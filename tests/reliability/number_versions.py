"""One process numbering model versions on a Snowflake account, for the concurrency test: `python -m
tests.reliability.number_versions SERVER_JSON GO_FILE MODEL_ID...` connects, says so (GO_FILE.ready-PID), waits
until GO_FILE exists (so two processes start together), numbers each version as the app does when it collects
one, and prints the numbers it was given as JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from backend.model_catalog import Catalog
from backend.registry import Registry
from backend.warehouse.snowflake_session import open_session
from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse


def main(server: dict, go: Path, model_ids: list[str]) -> list[int]:
    registry = Registry(SnowflakeWarehouse(open_session("unused", secrets=server), "NUMBERS"))
    registry.get_model_version(model_ids[0])  # connected and answering
    go.with_name(f"{go.name}.ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return [Catalog(registry).assign(registry.get_model_version(model_id))[1] for model_id in model_ids]


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])))
