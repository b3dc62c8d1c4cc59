"""Safe identifiers. Every name that reaches SQL goes through `quote_ident`; values are always bound."""

from __future__ import annotations

import re
import unicodedata

from backend.errors import InvalidIdentifierError

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_IDENTIFIER_LENGTH = 255


def quote_ident(name: str) -> str:
    """Return `name` as a double-quoted SQL identifier (inner quotes doubled).

    Raises InvalidIdentifierError for empty names, NUL characters or absurd lengths.
    """
    if not isinstance(name, str) or name == "":
        raise InvalidIdentifierError("An empty name cannot be used in the warehouse.")
    if "\x00" in name:
        raise InvalidIdentifierError("A name contains a NUL character and cannot be used.")
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(f"The name {name[:40]!r}… is longer than {MAX_IDENTIFIER_LENGTH} characters.")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def slugify(text: str, *, max_length: int = 40) -> str:
    """Turn free text into a lower-case `[a-z0-9_]` slug (for default function names)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not slug or slug[0].isdigit():
        slug = f"m_{slug}" if slug else "model"
    return slug[:max_length].rstrip("_")


def table_target_slug(table: str, target: str, *, max_part: int = 20) -> str:
    """`<table>_<target>` as a slug, a word the two names share said once: table `customer_churn` and target
    `churn` give `customer_churn`, not `customer_churn_churn`."""
    first = slugify(table, max_length=max_part).split("_")
    second = slugify(target, max_length=max_part).split("_")
    overlap = max((k for k in range(1, min(len(first), len(second)) + 1) if first[-k:] == second[:k]), default=0)
    return "_".join(first + second[overlap:])


def validate_function_name(name: str) -> str:
    """Return `name` if it is a plain lower-case SQL function name; raise InvalidIdentifierError otherwise.

    Function names are chosen by users and typed into SQL editors, so they are kept boring on purpose.
    """
    if not _SAFE_NAME.match(name or ""):
        raise InvalidIdentifierError(
            f"{name!r} cannot be used as a function name.",
            hint="Use lower-case letters, digits and underscores, starting with a letter (at most 63 characters).",
        )
    return name


def validate_table_name(name: str) -> str:
    """Return a stripped table name typed by a user; raise InvalidIdentifierError when unusable."""
    cleaned = (name or "").strip()
    quote_ident(cleaned)  # raises on empty/NUL/too long
    return cleaned


def limit_clause(rows: int) -> str:
    """` LIMIT n` with n written as a literal: Snowflake documents LIMIT's argument as a non-negative integer
    constant and some drivers refuse a bound one. `int()` and the range check keep user text out of it."""
    count = int(rows)
    if count < 0:
        raise ValueError(f"a row limit cannot be negative (got {count})")
    return f" LIMIT {count}"
