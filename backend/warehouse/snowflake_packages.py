"""Which packages Flurry's code inside Snowflake gets, and from where: one set of versions everywhere.

The training procedure, the scoring UDFs and the registry model run on packages from Snowflake's Anaconda
channel, pinned to exactly the versions this installation runs (requirements.txt chose them from what the
channel carries), so a model pickled in the procedure loads in the app and the other way round. FLAML is pure
Python and not known to be in the channel: it travels through the stage as an import, taken from this
installation, never named as a channel package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from backend.errors import DeploymentError

# Pure-Python packages that go through the stage (IMPORTS), keyed by distribution → import name.
SHIPPED_PACKAGES = {"flaml": "flaml"}
# The Python whose channel packages requirements.txt and environment.yml pin (and the hosted app runs).
CHANNEL_PYTHON = (3, 11)


def require_channel_python(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> None:
    """Refuse to register code in Snowflake from another Python: Snowpark gives a procedure or UDF the
    registering client's Python (RUNTIME_VERSION from sys.version_info; cloudpickle needs the exact version),
    and the pinned packages are those the channel carries for CHANNEL_PYTHON."""
    if tuple(version[:2]) != CHANNEL_PYTHON:
        wanted = ".".join(map(str, CHANNEL_PYTHON))
        raise DeploymentError(
            f"Flurry registers its code in Snowflake from Python {wanted}, and this app runs on Python "
            f"{'.'.join(map(str, version[:2]))}: Snowflake would run the code on that version, where the pinned "
            "packages are not offered.", hint=f"Run the app with Python {wanted} (`make run` builds .venv with it).")


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def channel_packages(names: tuple[str, ...] | list[str], versions: dict[str, str] | None = None) -> list[str]:
    """`names` as Anaconda-channel requirements pinned to `versions` (default: this installation's), shipped
    packages left out (they are imports, see `shipped_imports`)."""
    pins = []
    for name in names:
        if name in SHIPPED_PACKAGES:
            continue
        version = (versions or {}).get(name) or installed_version(name)
        pins.append(f"{name}=={version}" if version else name)
    return pins


def package_directory(import_name: str) -> Path:
    """The installed package's directory (what a stage import of it uploads)."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{import_name} is not installed here")
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_imports() -> list[tuple[str, str]]:
    """Snowpark `imports` entries for the shipped packages: (their directory here, their import name)."""
    return [(str(package_directory(name)), name) for name in SHIPPED_PACKAGES.values()]


VENDOR_DIR = Path("build") / "snowflake-app"


def vendor_shipped_packages(destination: Path) -> list[Path]:
    """Copy the shipped packages from this installation into `destination` (what snowflake.yml adds to the
    hosted app's files, since the warehouse runtime installs only from the channel); returns their folders."""
    import shutil

    copied = []
    for name in SHIPPED_PACKAGES.values():
        target = destination / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(package_directory(name), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        copied.append(target)
    return copied



def channel_pins(environment_yml: Path) -> dict[str, str]:
    """The `name=version` pins of an environment.yml's dependencies (python included)."""
    pins = {}
    for line in environment_yml.read_text(encoding="utf-8").splitlines():
        item = line.split("#", 1)[0].strip()
        if item.startswith("- ") and "=" in item:
            name, _, version = item[2:].partition("=")
            pins[name.strip()] = version.strip()
    return pins


def missing_from_channel(pins: dict[str, str], offered: list[tuple[str, str]]) -> list[str]:
    """The pinned `name==version`s that are not among the (name, version) pairs an account offers (its
    INFORMATION_SCHEMA.PACKAGES for Python 3.11), in pin order; Python itself is not a package there."""
    available = {(name.lower(), version) for name, version in offered}
    return [f"{name}=={version}" for name, version in pins.items()
            if name != "python" and (name.lower(), version) not in available]


def offered_packages_sql(names: list[str]) -> tuple[str, list[str]]:
    """The query listing which versions of `names` the account offers for Python 3.11, and its parameters."""
    marks = ", ".join("?" for _ in names)
    return ("SELECT package_name AS \"n\", version AS \"v\" FROM INFORMATION_SCHEMA.PACKAGES "
            f"WHERE language = 'python' AND runtime_version = '3.11' AND package_name IN ({marks})", list(names))
