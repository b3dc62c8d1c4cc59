"""The reliability suite's ledger: per area, the cases tried, those that failed, the rows lost and the
tracebacks seen, printed as a table after every run that includes them (`make test`, `make reliability`) and
written as JSON where FLURRY_RELIABILITY_JSON names a file (`make reliability` does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

AREAS = {"test_bad_input": "bad input", "test_faults": "faults", "test_kills": "faults", "test_security": "security",
         "test_concurrency": "concurrency"}


@dataclass
class AreaFigures:
    cases: int = 0
    failures: int = 0
    rows_lost: int = 0
    tracebacks: int = 0


LEDGER: dict[str, AreaFigures] = {}


def _area(nodeid: str) -> str | None:
    module = Path(nodeid.split("::")[0]).stem
    return AREAS.get(module) if "reliability" in nodeid else None


class Observed:
    """What a case saw besides passing or failing: rows lost and tracebacks, added to its area's figures."""

    def __init__(self, area: str) -> None:
        self.figures = LEDGER.setdefault(area, AreaFigures())
        self.extra_cases = 0

    def case(self) -> None:
        """One more case tried within this test (a kill, say); a test that counts its own stands for that many."""
        self.figures.cases += 1
        self.extra_cases += 1

    def rows_lost(self, rows: int) -> None:
        self.figures.rows_lost += max(0, rows)

    def tracebacks(self, count: int) -> None:
        self.figures.tracebacks += max(0, count)


@pytest.fixture
def observed(request: pytest.FixtureRequest) -> Iterator[Observed]:
    seen = Observed(_area(request.node.nodeid) or "other")
    yield seen
    if seen.extra_cases:
        seen.figures.cases -= 1  # the test itself, counted when it reported, is the cases it counted


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    area = _area(report.nodeid)
    if area is None or not (report.when == "call" or report.failed):
        return
    figures = LEDGER.setdefault(area, AreaFigures())
    if report.when == "call":
        figures.cases += 1
    figures.failures += int(report.failed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER:
        return
    terminalreporter.write_sep("-", "reliability")
    terminalreporter.write_line(f"{'area':<14}{'cases':>7}{'failures':>10}{'rows lost':>11}{'tracebacks':>12}")
    for area, f in sorted(LEDGER.items()):
        terminalreporter.write_line(f"{area:<14}{f.cases:>7}{f.failures:>10}{f.rows_lost:>11}{f.tracebacks:>12}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("FLURRY_RELIABILITY_JSON")
    if target and LEDGER:
        Path(target).write_text(json.dumps({area: asdict(f) for area, f in sorted(LEDGER.items())}, indent=2) + "\n",
                                encoding="utf-8")
