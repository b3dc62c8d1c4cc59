"""Numbers and values as people read them."""

from __future__ import annotations

import math
import numbers


def human(value: object) -> str:
    """A prediction or cell value for display: thousands separators, sensible precision, text unchanged."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return "missing"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.1f}"
    return f"{number:,.4g}"


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"


_MARKDOWN_SPECIALS = "\\`*_{}[]()<>#+-.!|~:$"


def md(text: object) -> str:
    """Escape data-derived text (table, column and model names, messages) before it meets markdown, so a
    name can never become a link, an image or formatting."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))
