"""An allow-list of schemas the app may show and read.

Required when the app runs with its owner's rights (Streamlit in Snowflake): viewers must only reach what
configuration allows. The guard wraps any warehouse; every call that names a table is checked, raw SQL
included (by the fully qualified names in it), so no page or engine function can forget to.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.errors import FlurryError
from backend.warehouse.base import METADATA_SCHEMA, SampleSpec, TableRef, TableSummary, Warehouse


class NotAllowedError(FlurryError):
    """The table's schema is outside the configured allow-list."""


@dataclass(frozen=True)
class AllowList:
    """Schema name patterns (shell-style, case-insensitive), e.g. ("demo", "sales_*")."""

    patterns: tuple[str, ...]

    def allows(self, schema: str) -> bool:
        if schema == METADATA_SCHEMA:
            return True  # Flurry's own metadata, reached only through the registry
        return any(fnmatch.fnmatchcase(schema.lower(), p.strip().lower()) for p in self.patterns if p.strip())

    def output_schema(self, preferred: str, source: str | None) -> str:
        """Where Flurry writes by default: `preferred` when allowed, else the source table's own schema, else the
        first schema the list names outright (no wildcard); `preferred` when none is."""
        if self.allows(preferred):
            return preferred
        if source is not None and self.allows(source):
            return source
        return next((p.strip() for p in self.patterns if p.strip() and not any(c in p for c in "*?[")), preferred)

    @staticmethod
    def parse(text: str) -> AllowList | None:
        patterns = tuple(p.strip() for p in text.split(",") if p.strip())
        return AllowList(patterns) if patterns else None


# A fully qualified name as the adapters write it (Warehouse.qualify): "catalog"."schema"."table", each part
# quoted, doubled quotes inside. Raw SQL names every table it reads or writes this way.
_QUALIFIED = re.compile(r'"((?:[^"]|"")*)"\s*\.\s*"((?:[^"]|"")*)"\s*\.\s*"((?:[^"]|"")*)"')


def qualified_names_in_sql(sql: str) -> set[tuple[str, str]]:
    """(catalog, schema) of every fully qualified table name in `sql`."""
    return {(m.group(1).replace('""', '"'), m.group(2).replace('""', '"')) for m in _QUALIFIED.finditer(sql)}


def _tables_in(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[TableRef]:
    found = []
    for value in [*args, *kwargs.values()]:
        if isinstance(value, SampleSpec):
            value = value.table
        if isinstance(value, TableRef):
            found.append(value)
    return found


class GuardedWarehouse:
    """Delegates to a warehouse, refusing any call about a table outside the allow-list."""

    def __init__(self, inner: Warehouse, allow: AllowList) -> None:
        self._inner = inner
        self._allow = allow

    def list_schemas(self) -> list[str]:
        return [s for s in self._inner.list_schemas() if self._allow.allows(s)]

    def table_summaries(self, schemas: list[str] | None = None) -> list[TableSummary]:
        allowed = [s for s in (schemas if schemas is not None else self.list_schemas()) if self._allow.allows(s)]
        return self._inner.table_summaries(allowed)  # the catalog is asked about allowed schemas only

    def check(self, table: TableRef) -> None:
        if not self._allow.allows(table.schema):
            raise NotAllowedError(f"This app is not allowed to use the schema {table.schema!r}.",
                                  hint="Ask the app's owner to add it to FLURRY_ALLOWED_SCHEMAS.")

    def query(self, sql: str, params: list[Any] | None = None) -> Any:
        self._check_sql(sql)
        return self._inner.query(sql, params)

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self._check_sql(sql)
        self._inner.execute(sql, params)

    def update(self, sql: str, params: list[Any] | None = None) -> int:
        self._check_sql(sql)
        return self._inner.update(sql, params)

    def _check_sql(self, sql: str) -> None:
        """Raw SQL passes the allow-list too: every table it names in full (as qualify writes it) must be in this
        warehouse's own database and an allowed schema."""
        own = qualified_names_in_sql(self._inner.qualify(TableRef("s", "t")))
        catalog = next(iter(own))[0].lower() if own else None
        for named_catalog, schema in sorted(qualified_names_in_sql(sql)):
            if catalog is not None and named_catalog.lower() != catalog:
                raise NotAllowedError(f"This app only reaches its own database, not {named_catalog!r}.",
                                      hint="Ask the app's owner to connect it to that database instead.")
            if not self._allow.allows(schema):
                raise NotAllowedError(f"This app is not allowed to use the schema {schema!r}.",
                                      hint="Ask the app's owner to add it to FLURRY_ALLOWED_SCHEMAS.")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            for table in _tables_in(args, kwargs):
                self.check(table)
            if name == "list_tables" and args and not self._allow.allows(str(args[0])):
                raise NotAllowedError(f"This app is not allowed to use the schema {args[0]!r}.",
                                      hint="Ask the app's owner to add it to FLURRY_ALLOWED_SCHEMAS.")
            return attribute(*args, **kwargs)

        return guarded


def guard(warehouse: Warehouse, allow: AllowList | None) -> Warehouse:
    """The warehouse itself when nothing is configured, else the guarded one."""
    if allow is None:
        return warehouse
    guarded: Callable[..., Any] = GuardedWarehouse  # duck-typed stand-in for the Warehouse interface
    return guarded(warehouse, allow)  # type: ignore[no-any-return]
