"""The one place that reads Flurry's configuration.

`FLURRY_WAREHOUSE` selects the warehouse: `duckdb:///absolute/path.duckdb` (the embedded default) or
`snowflake://<connection name>`. Unset, Flurry uses a DuckDB file in the per-user data directory.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from backend.errors import ConfigurationError

ENV_WAREHOUSE = "FLURRY_WAREHOUSE"
ENV_DATA_DIR = "FLURRY_DATA_DIR"
ENV_ALLOWED_SCHEMAS = "FLURRY_ALLOWED_SCHEMAS"


@dataclass(frozen=True)
class WarehouseConfig:
    """Which warehouse to open. `location` is a file path (duckdb) or a connection name (snowflake)."""

    kind: str
    location: str

    @property
    def display_name(self) -> str:
        # A connection name or a file path; never credentials (those live in connections.toml/secrets).
        return f"{self.kind}: {self.location}"


def data_dir() -> Path:
    """Flurry's per-user data directory (created if missing): FLURRY_DATA_DIR, else the platform's user data
    directory, else a folder in the temporary directory when the home directory cannot be written. Snowflake's
    warehouse runtime is such a place ("Security Practices for UDFs and Procedures": "A handler can write
    files, such as log files, to the /tmp directory"), and no environment variable can be set there."""
    configured = os.environ.get(ENV_DATA_DIR)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    # imported here: the scoring UDFs and the training procedure import this package without it
    import platformdirs

    for path in (Path(platformdirs.user_data_dir("flurry", appauthor=False)),
                 Path(tempfile.gettempdir()) / "flurry"):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK | os.X_OK):
            return path
    raise ConfigurationError("Flurry found no folder it may write its files to (neither the home directory nor "
                             "the temporary directory).", hint=f"Set {ENV_DATA_DIR} to a writable folder.")


def default_duckdb_path() -> Path:
    return data_dir() / "flurry.duckdb"


def parse_warehouse_url(url: str) -> WarehouseConfig:
    """Parse a `FLURRY_WAREHOUSE` value. Raises ConfigurationError when it cannot be understood."""
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        path = unquote(parsed.netloc + parsed.path)
        if not path:
            raise ConfigurationError(
                f"The warehouse setting {url!r} names no database file.",
                hint="Use duckdb:///absolute/path/to/file.duckdb.",
            )
        return WarehouseConfig(kind="duckdb", location=path)
    if parsed.scheme == "snowflake":
        return WarehouseConfig(kind="snowflake", location=parsed.netloc or "default")
    raise ConfigurationError(
        f"The warehouse setting {url!r} is not understood.",
        hint="Use duckdb:///path/to/file.duckdb or snowflake://<connection name>.",
    )


def warehouse_config() -> WarehouseConfig:
    """Return the configured warehouse: inside Snowflake (Streamlit in Snowflake, either runtime, where no
    environment can be set) the account the app runs in; otherwise the embedded DuckDB file when nothing is set."""
    url = os.environ.get(ENV_WAREHOUSE, "").strip()
    if url:
        return parse_warehouse_url(url)
    from backend.warehouse.snowflake_session import ACTIVE, inside_snowflake

    if inside_snowflake():
        return WarehouseConfig(kind="snowflake", location=ACTIVE)
    return embedded_config()


def embedded_config() -> WarehouseConfig:
    return WarehouseConfig(kind="duckdb", location=str(default_duckdb_path()))


SECRETS_CONNECTION = "secrets"  # the Snowflake connection of Streamlit's `[connections.snowflake]` secrets


def warehouse_choices(configured: WarehouseConfig, connection_names: list[str], has_secrets: bool,
                      ) -> list[WarehouseConfig]:
    """The warehouses the sidebar offers, the configured one first. Inside Snowflake only the app's own
    account; elsewhere the embedded warehouse and each Snowflake connection (the secrets' one, which wins
    over connections.toml when present, else every connection named in connections.toml)."""
    from backend.warehouse.snowflake_session import ACTIVE

    if configured.kind == "snowflake" and configured.location == ACTIVE:
        return [configured]
    names = sorted(connection_names)
    if has_secrets:  # every snowflake:// setting opens the secrets' connection: offer it once
        names = [] if configured.kind == "snowflake" else [SECRETS_CONNECTION]
    choices = [configured, embedded_config(), *(WarehouseConfig("snowflake", name) for name in names)]
    return list(dict.fromkeys(choices))


SETTINGS_FILE = Path(__file__).resolve().parents[1] / "flurry.toml"


def _settings_file_value(section: str, key: str, path: Path | None = None) -> str:
    """A value of flurry.toml beside app.py (SETTINGS_FILE, read when asked): the one place a hosted app (where no
    environment can be set) reads its settings from. Raises ConfigurationError when the file is not valid TOML."""
    path = path or SETTINGS_FILE
    if not path.is_file():
        return ""
    value = _settings(path, path.stat().st_mtime_ns).get(section, {}).get(key, "")
    return ",".join(value) if isinstance(value, list) else str(value)


@functools.lru_cache(maxsize=4)
def _settings(path: Path, mtime_ns: int) -> dict[str, Any]:
    """The parsed settings file, read again only when it changes (every Streamlit rerun asks for it)."""
    del mtime_ns  # the cache key
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"The settings file {path.name} is not valid TOML: {exc}",
                                 hint="Fix the file and redeploy or restart the app.") from exc


def allowed_schemas_setting() -> str:
    """Comma-separated schema patterns the app may use (empty: every schema the connection can read):
    FLURRY_ALLOWED_SCHEMAS, else `[access] allowed_schemas` in flurry.toml."""
    return os.environ.get(ENV_ALLOWED_SCHEMAS, "") or _settings_file_value("access", "allowed_schemas")


def viewer_mode() -> bool:
    """Dashboards only (for sharing with analysts): no wizard, no upload, no deploy, no data export.
    FLURRY_VIEWER=1, else `[app] viewer = true` in flurry.toml."""
    value = os.environ.get("FLURRY_VIEWER", "") or _settings_file_value("app", "viewer")
    return value.strip().lower() in ("1", "true", "yes", "on")


HOSTED_APP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){2}")


def hosted_app_name() -> tuple[str, str, str] | None:
    """The hosted app's own database, schema and name, for its Snowsight link: FLURRY_APP_NAME, else `[app] name`
    in flurry.toml ("DATABASE.SCHEMA.NAME", unquoted). A Streamlit in Snowflake app cannot ask what it is called,
    so it is told. None when unset; a ConfigurationError when it is not three plain identifiers."""
    value = (os.environ.get("FLURRY_APP_NAME", "") or _settings_file_value("app", "name")).strip()
    if not value:
        return None
    if not HOSTED_APP_NAME.fullmatch(value):
        raise ConfigurationError(f"The app name {value!r} in flurry.toml is not DATABASE.SCHEMA.NAME.",
                                 hint="Give the name snowflake.yml deploys under, e.g. FLURRY_APP.APP.FLURRY.")
    database, schema, name = value.upper().split(".")
    return database, schema, name


def max_concurrent_jobs() -> int:
    """How many training jobs may run at once (FLURRY_MAX_JOBS; 1 suits a 2-core machine)."""
    try:
        return max(1, int(os.environ.get("FLURRY_MAX_JOBS", "1")))
    except ValueError:
        return 1


def training_location(kind: str) -> str:
    """Where training runs: "warehouse" (Snowflake's compute, via the stored procedure; Snowflake's default)
    or "local" (a worker process beside the app). FLURRY_TRAINING, else `[training] where` in flurry.toml."""
    value = (os.environ.get("FLURRY_TRAINING", "") or _settings_file_value("training", "where")).strip().lower()
    if value not in ("", "warehouse", "local"):
        raise ConfigurationError(f"Training location {value!r} is not understood.", hint="Use warehouse or local.")
    return value or ("warehouse" if kind == "snowflake" else "local")


def training_warehouse() -> str | None:
    """A Snowflake warehouse for training runs only (e.g. Snowpark-optimized, for memory-heavy runs):
    FLURRY_TRAINING_WAREHOUSE, else `[training] warehouse` in flurry.toml; None uses the session's own."""
    return (os.environ.get("FLURRY_TRAINING_WAREHOUSE", "") or _settings_file_value("training", "warehouse")) or None
