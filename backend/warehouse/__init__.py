"""Warehouse adapters, opened by kind through a small registry (extend by registering, not branching)."""

from __future__ import annotations

from collections.abc import Callable

from backend.config import WarehouseConfig
from backend.errors import ConfigurationError
from backend.warehouse.base import ColumnInfo, ColumnStats, TableRef, Warehouse

_OPENERS: dict[str, Callable[[WarehouseConfig], Warehouse]] = {}


def register_adapter(kind: str, opener: Callable[[WarehouseConfig], Warehouse]) -> None:
    _OPENERS[kind] = opener


def _open_duckdb(config: WarehouseConfig) -> Warehouse:
    from backend.warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(config.location)


register_adapter("duckdb", _open_duckdb)


SESSIONS_PER_PROCESS = 4  # Snowpark sessions one app process may hold for its viewers' threads


def _open_snowflake(config: WarehouseConfig) -> Warehouse:
    from backend.warehouse.snowflake_session import active_session, configured_secrets, open_session
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    secrets = dict(configured_secrets() or {})
    # a setting of the connection, not of Snowflake: only the offline test double lacks APPROX_TOP_K
    top_values = str(secrets.pop("flurry_top_values", "true")).lower() != "false"
    session = open_session(config.location, secrets=secrets or None)
    # the warehouse runtime's session is handed to the app and cannot be opened twice (each viewer has a process
    # of its own anyway); elsewhere — the container runtime, a local app — viewers' threads get sessions of
    # their own, up to SESSIONS_PER_PROCESS
    handed_over = session is active_session()
    return SnowflakeWarehouse(session, top_values=top_values,
                              reopen=lambda: open_session(config.location, secrets=secrets or None),
                              sessions=1 if handed_over else SESSIONS_PER_PROCESS)


register_adapter("snowflake", _open_snowflake)


def open_warehouse(config: WarehouseConfig) -> Warehouse:
    """Open the configured warehouse. Raises ConfigurationError for a kind with no adapter yet."""
    opener = _OPENERS.get(config.kind)
    if opener is None:
        raise ConfigurationError(
            f"The {config.kind!r} warehouse is not available in this version of Flurry.",
            hint="Unset FLURRY_WAREHOUSE to use the embedded DuckDB warehouse.",
        )
    return opener(config)


__all__ = ["ColumnInfo", "ColumnStats", "TableRef", "Warehouse", "open_warehouse", "register_adapter"]
