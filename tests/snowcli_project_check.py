"""Run by tests/test_snowflake_hosting.py under the Snowflake CLI's own virtualenv (.venv-snowcli), never by
pytest itself: the CLI pins packages this project cannot share a virtualenv with.

Loads snowflake.yml with the CLI's project-definition model, bundles each streamlit entity as
`snow streamlit deploy` would, renders its CREATE STREAMLIT statement, and prints one JSON object keyed by entity.
"""

import json
import sys
from pathlib import Path

from snowflake.cli._plugins.streamlit.streamlit_entity import StreamlitEntity
from snowflake.cli._plugins.workspace.context import WorkspaceContext
from snowflake.cli.api.console import cli_console
from snowflake.cli.api.project.definition import load_project


def main(root: Path) -> dict:
    definition = load_project([root / "snowflake.yml"]).project_definition
    context = WorkspaceContext(console=cli_console, project_root=root, get_default_role=lambda: "PUBLIC",
                               get_default_warehouse=lambda: None)
    entities = {}
    for entity_id, model in definition.entities.items():
        entity = StreamlitEntity(model, context)
        deploy_root = root / "output" / "deploy" / entity_id  # the CLI requires it inside the project
        entity.bundle(deploy_root)
        files = sorted(p.relative_to(deploy_root).as_posix() for p in deploy_root.rglob("*") if p.is_file())
        # a container runtime is only created from files (FROM), which is where its RUNTIME_NAME goes
        sql = (entity.get_deploy_sql(replace=True, artifacts_dir=deploy_root) if model.runtime_name else
               entity.get_deploy_sql(replace=True, from_stage_name="@FLURRY_APP_STAGE"))
        entities[entity_id] = {"type": model.type, "main_file": model.main_file, "files": files, "sql": sql}
    return entities


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
