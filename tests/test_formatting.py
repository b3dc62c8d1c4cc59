"""Display helpers: data-derived names never become markdown, numbers read well."""

from __future__ import annotations

import math

from components.formatting import human, md


def test_markdown_in_a_table_name_is_neutralised() -> None:
    hostile = "![pixel](http://example.invalid/x.png) **bold** [link](javascript:alert(1))"
    escaped = md(hostile)
    for token in ("![", "](", "**", "[link]"):
        assert token not in escaped
    assert escaped.replace("\\", "") == hostile  # nothing is lost, only escaped


def test_human_numbers() -> None:
    assert human(4599.5888) == "4,599.6"
    assert human(3.0) == "3"
    assert human(0.123456) == "0.1235"
    assert human(math.nan) == "missing"
    assert human("Adelie") == "Adelie"
    assert human(True) == "True"
