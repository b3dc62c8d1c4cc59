"""Batch scores as jobs kept in the warehouse: requested by a page, a schedule or the command line, run by
the supervisor's scoring thread, with their progress (rows done of the total), a stop that leaves the
previous output intact, and their outcome.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.deploy import score_table
from backend.deployed_model import deployment_model
from backend.deployment_targets import ScoringStopped
from backend.errors import DeploymentError, FlurryError
from backend.forecast_workflow import write_forecast
from backend.monitoring_store import record_drift
from backend.registry import Registry, new_id, now
from backend.registry_records import none_if_na
from backend.warehouse.base import TableRef, Warehouse

logger = logging.getLogger(__name__)
_claiming = threading.Lock()



class ScoringState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def is_final(self) -> bool:
        return self not in (ScoringState.QUEUED, ScoringState.RUNNING)


class OutputMode(enum.StrEnum):
    NEW = "new"  # refuse an existing table
    REPLACE = "replace"  # swap the new scores in for the old table
    APPEND = "append"  # add the new scores to the old table (a history)


@dataclass(frozen=True)
class ScoringRun:
    scoring_id: str
    function_name: str
    source: TableRef
    output: TableRef
    mode: OutputMode
    state: ScoringState
    rows_done: int
    rows_total: int | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    message: str
    stop_requested: bool
    schedule_id: str | None

    @property
    def share_done(self) -> float:
        return min(1.0, self.rows_done / self.rows_total) if self.rows_total else 0.0


class ScoringJobs:
    def __init__(self, warehouse: Warehouse, registry: Registry) -> None:
        self.wh = warehouse
        self.registry = registry
        self._runner: threading.Thread | None = None
        self._lock = threading.Lock()

    def _t(self) -> str:
        return self.registry.t("scoring_runs")

    # --- requests ------------------------------------------------------------------------------
    def request(self, function_name: str, source: TableRef, output: TableRef, mode: OutputMode = OutputMode.NEW,
                *, schedule_id: str | None = None) -> str:
        """Queue a batch score; what can be checked at once is (DeploymentError for an unknown function, an
        output that exists in NEW mode, or the source itself as output)."""
        model_id = deployment_model(self.registry, function_name)
        if (output.schema, output.name.lower()) == (source.schema, source.name.lower()):
            raise DeploymentError("The scores cannot overwrite the table being scored.", hint="Choose a new table name.")
        self.wh.describe(source)  # TableNotFoundError now, not in the background
        if mode is OutputMode.NEW and self.wh.table_exists(output):
            raise DeploymentError(f"The table {output} already exists.",
                                  hint="Choose another name, tick 'Replace it', or add the new scores to it.")
        scoring_id = new_id("s")
        self.wh.execute(
            f"INSERT INTO {self._t()} (scoring_id, function_name, source_schema, source_table, output_schema, "
            "output_table, mode, state, rows_done, rows_total, requested_at, message, stop_requested, schedule_id, "
            "model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, '', FALSE, ?, ?)",
            [scoring_id, function_name, source.schema, source.name, output.schema, output.name, mode.value,
             ScoringState.QUEUED.value, now(), schedule_id, model_id])
        return scoring_id

    def get(self, scoring_id: str) -> ScoringRun:
        frame = self.registry._query(f"SELECT * FROM {self._t()} WHERE scoring_id = ?", [scoring_id])
        if frame.empty:
            raise DeploymentError(f"No batch score has the id {scoring_id!r}.")
        return _run_from_row(frame.iloc[0])

    def recent(self, limit: int = 20, *, schedule_id: str | None = None) -> list[ScoringRun]:
        sql, params = f"SELECT * FROM {self._t()}", []
        if schedule_id is not None:
            sql, params = sql + " WHERE schedule_id = ?", [schedule_id]
        frame = self.registry._query(sql + f" ORDER BY requested_at DESC LIMIT {int(limit)}", params)
        return [_run_from_row(row) for _, row in frame.iterrows()]

    def last_source(self, function_name: str) -> TableRef | None:
        """The table the deployment's newest successful job read (None before any)."""
        frame = self.registry._query(f"SELECT source_schema, source_table FROM {self._t()} WHERE function_name = ? "
                                     "AND state = ? ORDER BY requested_at DESC LIMIT 1",
                                     [function_name, ScoringState.SUCCEEDED.value])
        return None if frame.empty else TableRef(str(frame["source_schema"].iloc[0]), str(frame["source_table"].iloc[0]))

    def stop(self, scoring_id: str) -> None:
        """Ask a running score to stop after its current batch; a queued one never starts."""
        self.wh.execute(f"UPDATE {self._t()} SET stop_requested = TRUE WHERE scoring_id = ?", [scoring_id])
        self._finish_if(scoring_id, ScoringState.QUEUED, ScoringState.STOPPED, "Stopped before it started.")

    # --- running -------------------------------------------------------------------------------
    def run(self, scoring_id: str) -> ScoringRun:
        """Run one queued score to its end (the calling thread does the work)."""
        with _claiming:  # the supervisor's thread and a caller may both reach for the same queued score
            run = self.get(scoring_id)
            if run.state is not ScoringState.QUEUED:
                return run
            self.wh.execute(f"UPDATE {self._t()} SET state = ?, started_at = ? WHERE scoring_id = ?",
                            [ScoringState.RUNNING.value, now(), scoring_id])

        def progress(done: int, total: int) -> bool:
            self.wh.execute(f"UPDATE {self._t()} SET rows_done = ?, rows_total = ? WHERE scoring_id = ?",
                            [done, total, scoring_id])
            return not self.get(scoring_id).stop_requested

        try:
            if self._is_forecast(run.function_name):  # a forecast deployment writes the next periods
                written = write_forecast(self.wh, self.registry, run.function_name, run.source, run.output,
                                         append=run.mode is OutputMode.APPEND,
                                         overwrite=run.mode is OutputMode.REPLACE)
                self._finish(scoring_id, ScoringState.SUCCEEDED, written.message)
                self.wh.execute(f"UPDATE {self._t()} SET rows_done = ?, rows_total = ? WHERE scoring_id = ?",
                                [written.rows, written.rows, scoring_id])
                return self.get(scoring_id)
            result = score_table(self.wh, self.registry, run.function_name, run.source, run.output,
                                 overwrite=run.mode is OutputMode.REPLACE, append=run.mode is OutputMode.APPEND,
                                 progress=progress)
        except ScoringStopped as exc:
            self._finish(scoring_id, ScoringState.STOPPED, f"{exc.message} {exc.hint or ''}".strip())
        except FlurryError as exc:
            self._finish(scoring_id, ScoringState.FAILED, f"{exc.message} {exc.hint or ''}".strip())
        except Exception as exc:  # the reason goes to the registry; the supervisor carries on
            logger.exception("batch score %s failed", scoring_id)
            self._finish(scoring_id, ScoringState.FAILED, f"Scoring failed ({type(exc).__name__}: {exc}).")
        else:
            self.wh.execute(f"UPDATE {self._t()} SET rows_done = ? WHERE scoring_id = ?", [result.rows, scoring_id])
            self._finish(scoring_id, ScoringState.SUCCEEDED, f"Scored {result.rows:,} rows into {result.table}.")
            try:
                record_drift(self.wh, self.registry, scoring_id, deployment_model(self.registry, run.function_name),
                             result)
            except Exception:  # the scores are in; a drift report that fails must not undo them
                logger.exception("drift could not be measured for batch score %s", scoring_id)
        return self.get(scoring_id)

    def _is_forecast(self, function_name: str) -> bool:
        model_id = deployment_model(self.registry, function_name)
        return self.registry.get_model_version(model_id).task == "forecast"

    def run_queued(self) -> int:
        """Run every queued score, oldest first; return how many ran."""
        ran = 0
        while True:
            frame = self.registry._query(f"SELECT scoring_id FROM {self._t()} WHERE state = ? ORDER BY requested_at "
                                         "LIMIT 1", [ScoringState.QUEUED.value])
            if frame.empty:
                return ran
            self.run(str(frame["scoring_id"].iloc[0]))
            ran += 1

    def advance(self) -> None:
        """The supervisor's tick: start the scoring thread when scores wait and none runs."""
        with self._lock:
            if self._runner is not None and self._runner.is_alive():
                return
            waiting = self.registry._query(f"SELECT count(*) AS n FROM {self._t()} WHERE state = ?",
                                           [ScoringState.QUEUED.value])
            if int(waiting["n"].iloc[0]) == 0:
                return
            self._runner = threading.Thread(target=self.run_queued, name="flurry-scoring", daemon=True)
            self._runner.start()

    def recover(self) -> int:
        """At start-up: scores left RUNNING by a previous process failed (their staging table was never swapped
        in, so the old output is intact)."""
        frame = self.registry._query(f"SELECT scoring_id FROM {self._t()} WHERE state = ?", [ScoringState.RUNNING.value])
        for scoring_id in frame["scoring_id"]:
            self._finish(str(scoring_id), ScoringState.FAILED,
                         "The app stopped while this table was being scored; the previous output is as it was.")
        return len(frame)

    def _finish(self, scoring_id: str, state: ScoringState, message: str) -> None:
        self.wh.execute(f"UPDATE {self._t()} SET state = ?, finished_at = ?, message = ? WHERE scoring_id = ?",
                        [state.value, now(), message, scoring_id])

    def _finish_if(self, scoring_id: str, current: ScoringState, state: ScoringState, message: str) -> None:
        self.wh.execute(f"UPDATE {self._t()} SET state = ?, finished_at = ?, message = ? WHERE scoring_id = ? "
                        "AND state = ?", [state.value, now(), message, scoring_id, current.value])


def _run_from_row(row: Any) -> ScoringRun:
    total = none_if_na(row["rows_total"])
    return ScoringRun(
        scoring_id=str(row["scoring_id"]), function_name=str(row["function_name"]),
        source=TableRef(row["source_schema"], row["source_table"]), output=TableRef(row["output_schema"], row["output_table"]),
        mode=OutputMode(row["mode"]), state=ScoringState(row["state"]), rows_done=int(none_if_na(row["rows_done"]) or 0),
        rows_total=int(total) if total is not None else None, requested_at=row["requested_at"],
        started_at=none_if_na(row["started_at"]), finished_at=none_if_na(row["finished_at"]),
        message=str(none_if_na(row["message"]) or ""), stop_requested=bool(none_if_na(row["stop_requested"])),
        schedule_id=none_if_na(row["schedule_id"]))
