"""Architecture rules that must hold as the code grows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_backend_never_imports_streamlit() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "backend").rglob("*.py")
                 if any(n == "streamlit" or n.startswith("streamlit.") for n in _imports(p))]
    assert offenders == []


def test_the_rule_checker_sees_streamlit_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from streamlit import session_state\n")
    assert "streamlit" in _imports(sample)


def test_pages_do_not_import_sql_engines() -> None:
    for page in (ROOT / "pages").glob("*.py"):
        assert not {"duckdb", "snowflake.snowpark"} & _imports(page), page.name


def test_no_unsafe_html_anywhere() -> None:
    for path in list(ROOT.glob("*.py")) + list((ROOT / "pages").glob("*.py")) + list((ROOT / "components").glob("*.py")):
        assert "unsafe_allow_html" + "=True" not in path.read_text(encoding="utf-8"), path.name
