"""Security: hostile text through every name and displayed value, secrets that must never be repeated, names
that try to leave their folder, and a server reachable only from this machine unless configured otherwise.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.config import WarehouseConfig
from backend.deploy import deploy, score_table
from backend.deployed_model import load_bundle
from backend.evaluation.card import model_card_data
from backend.export import scoring_bundle
from backend.uploads import default_table_name
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from components.model_card import render_model_card
from tests.conftest import make_workspace, put_table, train_and_wait
from tests.reliability.conftest import Observed

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Pa55-7f1c9e"  # seeded into every place a Snowflake credential is configured
PAYLOADS = ["'); DROP TABLE lab.people; --", '" OR "1"="1', "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
            "${7*7}{{7*7}}", "Robert'); DELETE FROM \"FLURRY\".runs; --"]


@dataclass
class Trained:
    ws: Workspace
    table: TableRef
    model_id: str
    function: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """A model trained and deployed with credentials configured everywhere they can be: the environment, a
    connections.toml and Streamlit's secrets (the embedded warehouse needs none of them)."""
    home = tmp_path_factory.mktemp("home")
    (home / ".snowflake").mkdir()
    (home / ".snowflake" / "connections.toml").write_text(
        f'[prod]\naccount = "acme-x1"\nuser = "analyst"\npassword = "{SECRET}"\n', encoding="utf-8")
    patch = pytest.MonkeyPatch()
    for name, value in {"HOME": str(home), "SNOWFLAKE_HOME": str(home / ".snowflake"), "SNOWFLAKE_PASSWORD": SECRET,
                        "FLURRY_SNOWFLAKE_PASSWORD": SECRET, "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": SECRET}.items():
        patch.setenv(name, value)
    try:
        ws = make_workspace(tmp_path_factory.mktemp("security") / "flurry.duckdb", seed_demo=False)
    except BaseException:
        patch.undo()  # the rest of the session must not run with the seeded credentials
        raise
    rng = np.random.default_rng(9)
    x = rng.normal(size=300)
    frame = pd.DataFrame({PAYLOADS[0]: x, PAYLOADS[2]: rng.choice(PAYLOADS[1:4], 300),
                          "outcome": np.where(x + rng.normal(0, 0.5, 300) > 0, PAYLOADS[3], PAYLOADS[5])})
    try:
        table = put_table(ws, PAYLOADS[4], frame)
        progress = train_and_wait(ws, table, "outcome", budget=2)
        assert progress.model_id is not None
        function = "flurry_predict_people"
        deploy(ws.warehouse, ws.registry, progress.model_id, function)
        yield Trained(ws, table, progress.model_id, function)
    finally:
        ws.close()
        patch.undo()


def test_hostile_names_and_values_round_trip_and_nothing_is_executed(trained: Trained, observed: Observed) -> None:
    """SQL and HTML payloads as a table name, column names and every value of the target: stored, trained on,
    scored and read back exactly as written, and no statement in them ran (Flurry's runs and every table are
    still there)."""
    ws, table = trained.ws, trained.table
    assert table.name == PAYLOADS[4] and TableRef("lab", PAYLOADS[4]) in [TableRef("lab", t) for t in
                                                                          ws.warehouse.list_tables("lab")]
    version = ws.registry.get_model_version(trained.model_id)
    assert set(version.feature_names) == {PAYLOADS[0], PAYLOADS[2]}
    output = TableRef("lab", PAYLOADS[1])
    scored = score_table(ws.warehouse, ws.registry, trained.function, table, output)
    read = ws.warehouse.read_columns(output, [PAYLOADS[2], scored.prediction_column])
    assert set(read[PAYLOADS[2]]) <= set(PAYLOADS[1:4])
    assert set(read[scored.prediction_column]) <= {PAYLOADS[3], PAYLOADS[5]}
    observed.rows_lost(300 - ws.warehouse.row_count(table))
    assert ws.registry.list_runs() and ws.warehouse.row_count(table) == 300


def test_secrets_configured_never_appear_in_artifacts_exports_cards_or_logs(
        trained: Trained, observed: Observed, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    ws = trained.ws
    with caplog.at_level(logging.DEBUG):
        bundle = load_bundle(ws.registry, trained.model_id)
        exported = scoring_bundle(ws.registry, trained.model_id, WarehouseConfig("snowflake", "prod"))
        card = render_model_card(model_card_data(ws.registry, trained.model_id))
    places = {"the model file": bundle.to_bytes().decode("latin-1"), "the model card": card,
              "the log": caplog.text, "the console": "".join(capfd.readouterr())}
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        places |= {f"exported {name}": archive.read(name).decode("latin-1") for name in archive.namelist()}
    for run in ws.registry.list_runs():
        places[f"run {run.run_id}"] = repr(run)
    leaked = sorted(place for place, text in places.items() if SECRET in text)
    observed.tracebacks(caplog.text.count("Traceback"))
    assert leaked == []


@pytest.mark.parametrize("file_name", ["../../etc/passwd.csv", "..\\..\\windows\\system32.csv", "/abs/path.csv",
                                       "a/../../b.parquet", "....//x.csv", "\x00evil.csv"])
def test_upload_names_cannot_leave_their_folder(file_name: str, observed: Observed) -> None:
    name = default_table_name(file_name)
    assert name and "/" not in name and "\\" not in name and ".." not in name and "\x00" not in name


def test_the_local_server_listens_on_this_machine_only_unless_configured(observed: Observed) -> None:
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1" and config["client"]["showErrorDetails"] == "none"
    assert "--server.address 127.0.0.1" in (ROOT / "Makefile").read_text(encoding="utf-8")
