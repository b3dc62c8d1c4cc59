"""The interface between the training state machine (backend.training.jobs) and the places a run's work
happens: a worker process beside the app (backend.training.local_runner) or Flurry's stored procedure on
Snowflake's compute (backend.procedure_jobs)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from backend.registry import Registry, Run
from backend.training.config import TrainConfig
from backend.warehouse.base import LeftOut, Warehouse

logger = logging.getLogger(__name__)

LEFT_OUT_EVENT = "left_out"  # a run's event: why the rows it does not learn from were left out
TRACEBACK_EVENT = "traceback"  # a run's event: an unexpected failure's traceback, for whoever looks into it


class Ending(enum.Enum):
    FINISHED = "finished"  # the work left a model to collect
    FAILED = "failed"  # it said why it failed
    LOST = "lost"  # it is gone without a word (a killed worker): FAILED now, INTERRUPTED when found at start-up
    RECORDED = "recorded"  # it recorded its own outcome in the registry (the Snowflake procedure)


@dataclass(frozen=True)
class Outcome:
    """How a run's work ended, as its runner found it."""

    ending: Ending
    message: str = ""
    ended: datetime | None = None  # when the work ended (a run's duration ends there, not at collection)
    result: dict[str, Any] = field(default_factory=dict)  # FINISHED: what the work reported
    files: dict[str, bytes] = field(default_factory=dict)  # FINISHED: the model files, verified before use
    stopped_early: bool = False


class Runner(Protocol):
    """Where a run's work happens."""

    def location(self) -> str:
        """Where a new run's files go (recorded as its job directory)."""

    def prepare(self, run_id: str, config: TrainConfig, location: str) -> None:
        """Draw the run's data and record what it needs to start. Raises FlurryError with the user's reason."""

    def discard(self, location: str) -> None:
        """Remove what a run that could not start left behind."""

    def ready(self, run: Run) -> bool:
        """A queued run whose data is prepared (after a restart, an unprepared one is INTERRUPTED)."""

    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        """Start the work (with `finalize`: refit the best trial so far instead of searching); the worker's
        pid where there is one. Raises FlurryError with the reason it could not start."""

    def new_trials(self, run: Run, known: int) -> list[dict[str, Any]]:
        """Trial events past the first `known` that the work left and the registry lacks."""

    def outcome(self, run: Run) -> Outcome | None:
        """How the work ended, or None while it goes on."""

    def working(self, run: Run) -> bool:
        """Whether the work is still going (a process alive, a query executing)."""

    stops_cooperatively: bool
    """True: `stop` only asks, and the work ends the run itself (refitting its best trial when asked to keep it);
    False: `stop` ends the work, and the manager ends the run (or launches the refit)."""

    def stop(self, run: Run, *, keep_best: bool = False) -> str | None:
        """Stop the work within seconds (it may have just finished), or ask it to (see stops_cooperatively);
        a sentence for the user when the stop could only be partly done (a refused cancel), else None."""

    def release(self, run: Run) -> None:
        """Free what the run held (its process, its files) once it has ended."""

    def sweep(self, active: list[Run]) -> list[str]:
        """At start-up: remove what runs no longer active left (an app stopped between recording a run's end and
        releasing it); return what was removed."""


def record_left_out(warehouse: Warehouse, registry: Registry, run_id: str, config: TrainConfig, total: int,
                    eligible: int) -> None:
    """Record why the rows the run does not learn from were left out, each reason with its count. A sentence is
    never worth a run: when the count fails, the run starts and the Train step gives the reasons without counts."""
    if config.is_forecast or total == eligible:
        return
    try:
        missing, excluded = warehouse.target_gaps(config.table, config.target, tuple(config.drop_classes))
    except Exception:
        logger.warning("the rows left out could not be counted by reason", exc_info=True)
        return
    left_out = LeftOut.of(total, eligible, missing, excluded, config.deduplicate)
    registry.add_events(run_id, LEFT_OUT_EVENT, [left_out.to_dict()])
