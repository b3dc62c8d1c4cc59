"""A library that reaches Snowflake as code without its package metadata (FLAML: not in Snowflake's channel, so
shipped as a folder of modules) still tells the model which version it is, and the model loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json
from importlib import metadata
from backend.model_bundle import incompatible_versions, library_versions
try:
    metadata.version("flaml")
    has_metadata = True
except metadata.PackageNotFoundError:
    has_metadata = False
here = library_versions()
print(json.dumps({"has_metadata": has_metadata, "flaml": here.get("flaml"),
                  "refused": incompatible_versions({"flaml": here.get("flaml") or "2.7.0"}, here)}))
"""


def test_flaml_shipped_without_its_metadata_still_reports_its_version(tmp_path: Path) -> None:
    """The installed packages as a UDF's imports see them: every one of them, but FLAML's .dist-info gone."""
    site = Path(sysconfig.get_paths()["purelib"])
    farm = tmp_path / "site"
    farm.mkdir()
    for entry in site.iterdir():
        if not (entry.name.lower().startswith("flaml") and entry.name.endswith(".dist-info")):
            (farm / entry.name).symlink_to(entry)
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = [{str(ROOT)!r}, "
                           f"{str(farm)!r}]\n{PROBE}"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["has_metadata"] is False  # the situation itself: no package metadata for FLAML
    import flaml

    assert seen["flaml"] == flaml.__version__ and seen["refused"] == []
