"""What Snowflake's hosted runtimes allow: the warehouse runtime lets code write only to /tmp and sets no
environment variable, so Flurry must find its own place to keep files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from backend import config
from backend.config import embedded_config
from backend.errors import ConfigurationError
from backend.workspace import open_workspace

UNWRITABLE = "/proc/flurry-home"  # no one, root included, may make a folder here


@pytest.fixture
def home_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The warehouse runtime's file system: no FLURRY_* variable, the home directory not writable, a temporary
    directory that is."""
    monkeypatch.delenv("FLURRY_DATA_DIR", raising=False)
    monkeypatch.delenv("FLURRY_WAREHOUSE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", UNWRITABLE)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_the_app_keeps_its_files_in_the_temporary_directory_when_home_cannot_be_written(
        home_not_writable: Path) -> None:
    assert config.data_dir() == home_not_writable / "flurry"
    ws = open_workspace(embedded_config(), seed_demo=False)
    try:
        assert (home_not_writable / "flurry" / "flurry.duckdb").is_file()
    finally:
        ws.close()


def test_no_writable_folder_at_all_is_said_with_the_remedy(home_not_writable: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", UNWRITABLE)
    with pytest.raises(ConfigurationError, match="FLURRY_DATA_DIR"):
        config.data_dir()
