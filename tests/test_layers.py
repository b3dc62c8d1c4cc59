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


# The backend's layers, lowest first: a module imports only from its own layer or those below, at module level
# or inside a function alike, and no two modules import each other even indirectly. The warehouse port (the
# interface, names, profiles, sessions) sits below the model; the adapters sit above it, because they register
# model bundles as SQL functions. Every module must be placed: a new one is placed on purpose.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("backend.errors", "backend.digests", "backend.identifiers")),
    ("profiling", ("backend.profiling",)),
    ("warehouse port", ("backend.warehouse.base", "backend.warehouse.allow_list", "backend.warehouse.profile_sql",
                        "backend.warehouse.duckdb_profile", "backend.warehouse.snowflake_profile",
                        "backend.warehouse.snowflake_session", "backend.warehouse.snowflake_packages",
                        "backend.config", "backend.uploads")),
    ("registry and model", ("backend.registry", "backend.registry_records", "backend.registry_migrations",
                            "backend.model_bundle", "backend.version_records",
                            "backend.fast_transform", "backend.learner_names", "backend.weighted_ensemble",
                            "backend.contributions", "backend.explain",
                            "backend.reasons", "backend.metrics", "backend.task_detection", "backend.checks",
                            "backend.monitoring", "backend.evaluation", "backend.forecasting", "backend.model_catalog",
                            "backend.experiments", "backend.realised", "backend.demo_data")),
    ("warehouse adapters", ("backend.warehouse",)),
    ("training", ("backend.training",)),
    ("deploy", ("backend.deploy", "backend.deployed_model", "backend.deployment_targets", "backend.export",
                "backend.forecast_workflow", "backend.forecast_outcomes", "backend.model_health",
                "backend.monitoring_store", "backend.model_monitor", "backend.promotion", "backend.scoring_jobs",
                "backend.schedules", "backend.dashboard")),
    ("workspace", ("backend.workspace", "backend.snowflake_procedure", "backend.procedure_jobs",
                   "backend.supervisor", "backend.score")),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _backend_graph() -> dict[str, set[str]]:
    """Each backend module → the backend modules it imports anywhere in it (`from package import module`
    counts as the module, not the package's __init__)."""
    modules = {_module_name(p): p for p in (ROOT / "backend").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                imported |= submodules
                if node.module in modules and len(submodules) < len(node.names):
                    imported.add(node.module)
        graph[name] = imported - {name}
    return graph


def _layer(module: str) -> int:
    """The first layer whose prefixes name `module` (exactly or as a package)."""
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, or [] (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_backend_has_no_import_cycles_and_every_import_points_down_the_layers() -> None:
    graph = _backend_graph()
    assert _cycle(graph) == [], " → ".join(_cycle(graph))
    upward = sorted(f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
                    for m, targets in graph.items() for t in targets if _layer(t) > _layer(m))
    assert upward == []


def test_the_layer_checker_sees_a_cycle_and_a_function_level_import(tmp_path: Path) -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from backend.workspace import Workspace\n")
    assert "backend.workspace" in _imports(sample)
    assert _layer("backend.warehouse.duckdb_warehouse") > _layer("backend.model_bundle") > _layer("backend.warehouse.base")
