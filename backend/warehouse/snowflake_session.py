"""Opening a Snowpark session, and saying which account it is without ever showing a credential.

Order: the app's own session inside Streamlit in Snowflake (`get_active_session()`); otherwise the
`[connections.snowflake]` secrets the app layer hands over (this package never imports streamlit);
otherwise the named connection from `connections.toml` (`snowflake://<name>` in FLURRY_WAREHOUSE).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import numpy as np
import pandas as pd

from backend.errors import ConfigurationError, FlurryError, WarehouseQueryError

logger = logging.getLogger(__name__)

# Keys of a connection's parameters that are secrets: never shown, logged or put in a message.
SECRET_KEYS = ("password", "token", "private_key", "private_key_file_pwd", "private_key_passphrase",
               "passcode", "oauth_client_secret", "client_secret", "private_key_file")


@dataclass(frozen=True)
class SessionIdentity:
    """What the sidebar shows: where the app is connected, never how."""

    account: str
    role: str
    warehouse: str
    database: str
    schema: str

    def lines(self) -> list[tuple[str, str]]:
        return [("Account", self.account), ("Role", self.role), ("Warehouse", self.warehouse),
                ("Database", self.database), ("Schema", self.schema)]


def _no_secrets() -> Mapping[str, Any] | None:
    return None


_secrets_provider: Callable[[], Mapping[str, Any] | None] = _no_secrets


def use_secrets(provider: Callable[[], Mapping[str, Any] | None]) -> None:
    """Let the app layer hand over Streamlit's `[connections.snowflake]` secrets (read only when connecting)."""
    global _secrets_provider
    _secrets_provider = provider


def configured_secrets() -> Mapping[str, Any] | None:
    return _secrets_provider()


def redact(text: str, parameters: Mapping[str, Any] | None) -> str:
    """`text` with every secret value of `parameters` replaced by ***."""
    for key in SECRET_KEYS:
        value = (parameters or {}).get(key)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


MAX_REASON_CHARS = 2000


def snowflake_reason(exc: BaseException, parameters: Mapping[str, Any] | None = None) -> str:
    """Snowflake's whole message for `exc` on one line, any secret value blanked out (of `parameters`, else of
    the configured secrets). Snowflake puts the reason after the first line ("SQL compilation error:" then
    "Object 'X' does not exist or not authorized."), so nothing may be cut at a line break."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(lines) or type(exc).__name__
    text = redact(text, parameters if parameters is not None else configured_secrets())
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 1] + "…"


ACTIVE = "active"  # the connection name meaning "the session Snowflake gave this process"


def active_session() -> Any | None:
    """The session Streamlit in Snowflake gives the app, or None anywhere else.

    Only looked for when Snowpark is already loaded (Snowflake's runtime loads it before the app starts), so
    the embedded default never pays for importing it; sessions of Snowpark's local testing mode don't count."""
    if "snowflake.snowpark" not in sys.modules:
        return None
    try:
        from snowflake.snowpark.context import get_active_session

        session = get_active_session()
    except Exception:  # no active session: not running inside Snowflake
        return None
    if "Mock" in type(getattr(session, "_conn", None)).__name__ or session in _opened_here:
        return None
    return session


# Sessions this process opened itself (from secrets or connections.toml): Snowpark counts them as active too,
# but they are not the one Snowflake gives a hosted app, so they must not make the app think it is hosted.
_opened_here: weakref.WeakSet[Any] = weakref.WeakSet()


def _remember(session: Any) -> Any:
    _opened_here.add(session)
    return session


# Snowpark Container Services (Streamlit's container runtime) mounts the service's OAuth token here and names
# the account in the environment; the app's own session is opened from them (there is no get_active_session).
SPCS_TOKEN_FILE = Path("/snowflake/session/token")
_SPCS_OPTIONAL = (("database", "SNOWFLAKE_DATABASE"), ("schema", "SNOWFLAKE_SCHEMA"),
                  ("warehouse", "SNOWFLAKE_WAREHOUSE"), ("port", "SNOWFLAKE_PORT"), ("protocol", "SNOWFLAKE_PROTOCOL"))


def container_parameters(environ: Mapping[str, str] | None = None, token_file: Path | None = None
                         ) -> dict[str, str] | None:
    """The connection parameters of the app's own session in Snowflake's container runtime (the service
    token, the account and host from the environment), or None anywhere else. Holds the token: never log it."""
    environ = os.environ if environ is None else environ
    token_file = token_file or SPCS_TOKEN_FILE
    if not (environ.get("SNOWFLAKE_ACCOUNT") and environ.get("SNOWFLAKE_HOST") and token_file.is_file()):
        return None
    parameters = {"account": environ["SNOWFLAKE_ACCOUNT"], "host": environ["SNOWFLAKE_HOST"],
                  "authenticator": "oauth", "token": token_file.read_text(encoding="utf-8").strip()}
    parameters.update({key: environ[name] for key, name in _SPCS_OPTIONAL if environ.get(name)})
    return parameters


def inside_snowflake() -> bool:
    """Whether Snowflake hosts this app: the warehouse runtime's active session, or the container runtime."""
    return active_session() is not None or container_parameters() is not None


def connection_names() -> list[str]:
    """The connections named in connections.toml / config.toml, read by the Snowflake connector itself (so
    the same files, in the same places, as `snow` and `Session.builder.config("connection_name", …)`).
    Names only: nothing else of a connection leaves this function. Empty when the files are missing or bad."""
    try:
        from snowflake.connector.config_manager import CONFIG_MANAGER

        # the connector annotates an option lookup as the option itself, but returns its value: here the
        # table of connections by name
        connections = cast(Mapping[str, Any], CONFIG_MANAGER["connections"])
        return sorted(str(name) for name in connections)
    except Exception:  # no Snowflake configuration, or one the connector cannot read
        return []


def open_session(connection_name: str, secrets: Mapping[str, Any] | None = None) -> Any:
    """A Snowpark session: from `secrets` when given, the one Snowflake gave the app for `ACTIVE`, else the
    named connection of connections.toml.

    Raises ConfigurationError with a message free of credentials when it cannot connect."""
    if connection_name == ACTIVE and not secrets:
        session = active_session()
        if session is not None:
            return session
        secrets = container_parameters()
        if secrets is None:
            raise ConfigurationError("There is no active Snowflake session: the app is not running inside Snowflake.",
                                     hint="Name a connection instead: FLURRY_WAREHOUSE=snowflake://<connection name>.")
    from snowflake.snowpark import Session

    try:
        if secrets:
            return _remember(Session.builder.configs(dict(secrets)).create())
        return _remember(Session.builder.config("connection_name", connection_name).create())
    except Exception as exc:
        source = ("the container runtime's own session" if connection_name == ACTIVE else
                  "the [connections.snowflake] secrets" if secrets else f"the connection {connection_name!r}")
        # the driver's own text can echo parameters: they are blanked out, and nothing is logged
        reason = snowflake_reason(exc, secrets or {})
        raise ConfigurationError(
            f"Could not connect to Snowflake with {source}: {reason}",
            hint="Check the account, user and authenticator in connections.toml or .streamlit/secrets.toml "
                 "(run `snow connection test`), or choose the embedded warehouse in the sidebar.",
        ) from None


def _current(session: Any, getter: str) -> str:
    try:
        value = getattr(session, getter)()
    except Exception:  # some contexts cannot report it (e.g. no warehouse chosen yet)
        return "unknown"
    return str(value).strip('"') if value else "none"


def identity(session: Any) -> SessionIdentity:
    return SessionIdentity(account=_current(session, "get_current_account"), role=_current(session, "get_current_role"),
                           warehouse=_current(session, "get_current_warehouse"),
                           database=_current(session, "get_current_database"),
                           schema=_current(session, "get_current_schema"))


# snowflake-cli's own fallback when SYSTEM$GET_SNOWSIGHT_HOST() cannot answer (snowflake/cli/api/project/util.py,
# make_snowsight_url): the production Snowsight.
SNOWSIGHT_HOST = "https://app.snowflake.com"


def snowsight_app_url(host: str, organization: str, account: str, app: tuple[str, str, str]) -> str:
    """The app-builder address of a Streamlit in Snowflake app. "Sharing Streamlit in Snowflake apps"
    (docs.snowflake.com/en/developer-guide/streamlit/features/sharing-streamlit-apps): the format is
    https://app.snowflake.com/<organization_name>/<account_name>/#/streamlit-apps/<db>.<schema>.<app>, and a
    warehouse-runtime app has only this URL. Each part is URI-encoded as snowflake-cli's identifier_for_url does."""
    path = ".".join(quote(part, safe="-_!~*'()") for part in app)
    return (f"{host.rstrip('/')}/{quote(organization.lower(), safe='')}/{quote(account.lower(), safe='')}"
            f"/#/streamlit-apps/{path}")


def snowsight_location(session: Any) -> tuple[str, str, str] | None:
    """(Snowsight host, organization, account) of the session's account; None when the account cannot say
    (CURRENT_ORGANIZATION_NAME() needs an organization). The host falls back to the production Snowsight as
    snowflake-cli does."""
    try:
        row = session.sql("SELECT CURRENT_ORGANIZATION_NAME(), CURRENT_ACCOUNT_NAME()").collect()[0]
    except Exception:  # not every account or emulator knows its organization
        return None
    if not row[0] or not row[1]:
        return None
    try:
        host = str(session.sql("SELECT SYSTEM$GET_SNOWSIGHT_HOST()").collect()[0][0] or SNOWSIGHT_HOST)
    except Exception:
        host = SNOWSIGHT_HOST
    if not host.startswith("https://"):
        host = SNOWSIGHT_HOST
    return host, str(row[0]), str(row[1])


@contextlib.contextmanager
def snowflake_errors() -> Iterator[None]:
    """Snowflake's refusals as WarehouseQueryError with Snowflake's whole message (e.g. "SQL compilation error:
    Insufficient privileges to operate on schema 'SALES'"), which the pages show; bound values never appear in it."""
    try:
        yield
    except FlurryError:
        raise
    except Exception as exc:
        if not type(exc).__module__.startswith("snowflake"):
            raise
        reason = snowflake_reason(exc)
        raise WarehouseQueryError(f"Snowflake refused the request: {reason}",
                                  hint="Check that the app's role may use this database, schema and warehouse.") from exc


# The connector's errors for a connection that is gone and for a session the service no longer knows (expired
# or closed): a new session may succeed where this one cannot. Before these the statement never ran; 250003
# ("failed to execute request") may come after the service received it, so only a read is repeated then.
NOT_RUN_ERRNOS = frozenset({250001, 250002, 390111, 390112, 390114})
MAYBE_RUN_ERRNOS = frozenset({250003})


def connection_lost(exc: BaseException | None, *, read_only: bool) -> bool:
    errno = getattr(exc, "errno", None)
    return errno in NOT_RUN_ERRNOS or (read_only and errno in MAYBE_RUN_ERRNOS)


def bindable(params: list[Any] | None) -> list[Any] | None:
    """`params` as the connector binds them (None for none)."""
    return [bindable_value(p) for p in params] if params else None


def bindable_value(value: Any) -> Any:
    """A time read back from Snowflake is a pandas Timestamp (or numpy datetime64), which the connector refuses
    ("cannot be automatically mapped"): it goes back as the datetime it stands for, a missing one as NULL."""
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).to_pydatetime()
    return value
