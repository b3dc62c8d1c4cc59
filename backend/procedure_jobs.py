"""Training on Snowflake's compute: each run is one call of Flurry's stored procedure.

The same states, queue and live view as local runs (the same JobManager); what differs is where the work
happens, behind the Runner interface. Preparing draws nothing locally: it counts the eligible rows and records
the job; launching calls the procedure asynchronously and records its query id; the procedure writes trial
events, its verified model version and the run's final state itself, so a run finishes with no app session
open and polling only notices a call that died without saying so. A run keeps going in Snowflake when the app
restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from backend.errors import FlurryError, InvalidTargetError
from backend.registry import Registry, Run, RunState, new_id
from backend.snowflake_procedure import RESULT_EVENT, job_payload, procedure_name, register_procedure
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.jobs import JobManager
from backend.training.runner import Ending, Outcome, record_left_out
from backend.warehouse.base import Warehouse
from backend.warehouse.snowflake_session import snowflake_reason

PROCEDURE_JOB_DIR = "snowflake-procedure"
JOB_EVENT, LAUNCH_EVENT = "job", "launch"


class ProcedureJobManager(JobManager):
    """Runs training jobs as Flurry's stored procedure on the warehouse (a SnowflakeWarehouse)."""

    def __init__(self, warehouse: Warehouse, registry: Registry, jobs_root: Path, *, max_concurrent: int = 1,
                 training_warehouse: str | None = None) -> None:
        super().__init__(warehouse, registry, jobs_root, max_concurrent=max_concurrent,
                         runner=ProcedureRunner(warehouse, registry, training_warehouse))


class ProcedureRunner:
    """Calls the training procedure and follows the call; the procedure records everything else itself."""

    def __init__(self, warehouse: Warehouse, registry: Registry, training_warehouse: str | None = None) -> None:
        self.wh: Any = warehouse  # a SnowflakeWarehouse (its session, database and sample SQL)
        self.registry = registry
        self.training_warehouse = training_warehouse  # e.g. a Snowpark-optimized warehouse for big runs
        self._procedure_ready = False

    @property
    def _session(self) -> Any:
        return self.wh.session

    # --- prepare ---------------------------------------------------------------------------------
    def location(self) -> str:
        return PROCEDURE_JOB_DIR

    def prepare(self, run_id: str, config: TrainConfig, location: str) -> None:
        spec = config.sample_spec()
        total = self.wh.row_count(config.table)
        sql, params, eligible, sampled = self.wh.training_sample_sql(spec)
        if eligible < MIN_TRAINING_ROWS:
            raise InvalidTargetError(
                f"Only {eligible} rows have a value for {config.target!r}; Flurry needs at least "
                f"{MIN_TRAINING_ROWS}.", hint="Pick a table with more rows, or a target with fewer missing values.")
        self.registry.set_run_rows(run_id, used=min(eligible, config.max_rows), dropped=total - eligible,
                                   eligible=eligible)
        record_left_out(self.wh, self.registry, run_id, config, total, eligible)
        fingerprint = {"table": str(config.table), "rows_total": total, "rows_eligible": eligible,
                       "sampled": sampled, "sample_query_sha256": hashlib.sha256(
                           json.dumps([sql, params], default=str).encode()).hexdigest(),
                       "content_hash": self._content_hash(sql, params), "where": "snowflake"}
        self.registry.add_events(run_id, "fingerprint", [fingerprint])
        self.registry.add_events(run_id, JOB_EVENT, [{"payload": job_payload(run_id, self.wh.database, config, spec)}])

    def _content_hash(self, sql: str, params: list[Any]) -> dict[str, str] | None:
        """Snowflake's order-independent HASH_AGG of the training rows (the rows never leave the account, so
        this stands in for the local path's sha256 of the sample file); None where the engine lacks it."""
        try:
            value = self.wh.query(f'SELECT HASH_AGG(*) AS "h" FROM ({sql})', params)["h"].iloc[0]
        except Exception:  # only an emulated Snowflake (the offline tests' fakesnow) lacks HASH_AGG
            return None
        return {"function": "HASH_AGG", "value": str(value)}

    def discard(self, location: str) -> None:
        pass  # nothing of a procedure run lives outside the registry

    def ready(self, run: Run) -> bool:
        return True  # its job payload was recorded before it was queued

    # --- launch ----------------------------------------------------------------------------------
    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        try:
            if not self._procedure_ready:
                with self.wh.session_lock():
                    register_procedure(self._session, self.wh.database)
                self._procedure_ready = True
            job = json.loads(self.registry.events(run.run_id, JOB_EVENT)[-1].payload["payload"])
            # the procedure's result names its call, so results of an earlier call (a cancelled search) never count
            job["attempt"] = attempt = new_id("a")
            if finalize:  # retrain the best trial so far instead of searching
                job["finalize"] = [e.payload for e in self.registry.events(run.run_id, "trial")]
            payload = json.dumps(job)
            with self.wh.session_lock():  # nobody else uses the session while its warehouse is switched
                previous = self._session.get_current_warehouse()
                if self.training_warehouse:
                    self._session.use_warehouse(self.training_warehouse)
                try:
                    call = self._session.call(procedure_name(self.wh.database), payload, block=False)
                finally:
                    if self.training_warehouse and previous:
                        self._session.use_warehouse(previous)
        except Exception as exc:
            raise FlurryError(f"Could not start training in Snowflake: {snowflake_reason(exc)}") from exc
        self.registry.add_events(run.run_id, LAUNCH_EVENT, [{"query_id": call.query_id, "finalize": finalize,
                                                             "attempt": attempt}])
        return None

    # --- observe ---------------------------------------------------------------------------------
    def new_trials(self, run: Run, known: int) -> list[dict[str, Any]]:
        return []  # the procedure writes its trial events itself

    def outcome(self, run: Run) -> Outcome | None:
        """The procedure records its own outcome (model version and final state); only a call that ended
        without doing so is noticed here, with the call's own error as the reason."""
        launches = self.registry.events(run.run_id, LAUNCH_EVENT)
        attempt = launches[-1].payload.get("attempt") if launches else None
        results = [e for e in self.registry.events(run.run_id, RESULT_EVENT) if e.payload.get("attempt") == attempt]
        if results and results[-1].payload.get("state") == RunState.FAILED.value:
            return Outcome(Ending.FAILED, results[-1].payload.get("message") or "Training failed.")
        if results or self.working(run):
            return None if not self.registry.get_run(run.run_id).state.is_final else Outcome(Ending.RECORDED)
        if self.registry.get_run(run.run_id).state.is_final:  # it recorded its outcome just now
            return Outcome(Ending.RECORDED)
        reason = self._call_error(run)
        return Outcome(Ending.FAILED, f"The training procedure failed in Snowflake: {reason}" if reason
                       else "The training procedure stopped before reporting a result.")

    def _call_error(self, run: Run) -> str | None:
        """Snowflake's own error for the run's last call, if it failed (e.g. a package the channel lacks)."""
        query_id = self._query_id(run)
        if query_id is None:
            return None
        try:
            with self.wh.session_lock():
                self._session.create_async_job(query_id).result()
        except Exception as exc:
            return snowflake_reason(exc)
        return None

    def _query_id(self, run: Run) -> str | None:
        launches = self.registry.events(run.run_id, LAUNCH_EVENT)
        return launches[-1].payload["query_id"] if launches else None

    def working(self, run: Run) -> bool:
        query_id = self._query_id(run)
        if query_id is None:
            return False
        try:
            with self.wh.session_lock():
                return not self._session.create_async_job(query_id).is_done()
        except Exception:  # the query is unknown to this account (or no longer visible)
            return False

    # --- control ---------------------------------------------------------------------------------
    def stop(self, run: Run) -> None:
        query_id = self._query_id(run)
        if query_id:
            with contextlib.suppress(Exception):  # it may have just finished
                self.wh.execute("SELECT SYSTEM$CANCEL_QUERY(?)", [query_id])

    def release(self, run: Run) -> None:
        pass  # nothing of a procedure run lives outside the registry

    def sweep(self, active: list[Run]) -> list[str]:
        return []  # nothing of a procedure run lives outside the registry
