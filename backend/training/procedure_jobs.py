"""Jobs that train on Snowflake's compute: each run is one call of Flurry's stored procedure.

The same states, queue and live view as local jobs (it is a JobManager); what differs is where the work
happens. Start draws nothing locally: it counts the eligible rows and records the job; launching calls the
procedure asynchronously and records its query id; the procedure writes trial events, its verified model
version and the run's final state itself, so a run finishes with no app session open and syncing only
notices a call that died without saying so. A run keeps going in Snowflake when the app restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from backend.errors import FlurryError, InvalidTargetError
from backend.registry import Run, RunState, new_id
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.jobs import JobManager
from backend.warehouse.base import SampleSpec
from backend.warehouse.snowflake_session import snowflake_reason

PROCEDURE_JOB_DIR = "snowflake-procedure"
JOB_EVENT, LAUNCH_EVENT = "job", "launch"


class ProcedureJobManager(JobManager):
    """Runs training jobs as Flurry's stored procedure on the warehouse (a SnowflakeWarehouse)."""

    def __init__(self, *args: Any, training_warehouse: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.training_warehouse = training_warehouse  # e.g. a Snowpark-optimized warehouse for big runs
        self._procedure_ready = False

    @property
    def _session(self) -> Any:
        return self.wh.session

    # --- start -----------------------------------------------------------------------------------
    def start(self, config: TrainConfig) -> str:
        from backend.warehouse.snowflake_training import job_payload

        config.validate()
        self.wh.describe(config.table)
        run_id = self.registry.create_run(
            table=config.table, target=config.target, task=config.task.value, metric=config.metric,
            time_budget=config.time_budget_s, config=config.to_dict(), job_dir=PROCEDURE_JOB_DIR)
        try:
            spec = SampleSpec(table=config.table, columns=config.exported_columns, target=config.target,
                              max_rows=config.max_rows, seed=config.seed, stratify=config.task.is_classification,
                              distinct=config.deduplicate, exclude_target_values=config.drop_classes)
            total = self.wh.row_count(config.table)
            sql, params, eligible, sampled = self.wh.training_sample_sql(spec)
            if eligible < MIN_TRAINING_ROWS:
                raise InvalidTargetError(
                    f"Only {eligible} rows have a value for {config.target!r}; Flurry needs at least "
                    f"{MIN_TRAINING_ROWS}.", hint="Pick a table with more rows, or a target with fewer missing values.")
            self.registry.set_run_rows(run_id, used=min(eligible, config.max_rows), dropped=total - eligible,
                                       eligible=eligible)
            fingerprint = {"table": str(config.table), "rows_total": total, "rows_eligible": eligible,
                           "sampled": sampled, "sample_query_sha256": hashlib.sha256(
                               json.dumps([sql, params], default=str).encode()).hexdigest(),
                           "content_hash": self._content_hash(sql, params), "where": "snowflake"}
            self.registry.add_events(run_id, "fingerprint", [fingerprint])
            self.registry.add_events(run_id, JOB_EVENT, [{"payload": job_payload(
                run_id, self.wh.database, config, spec)}])
        except FlurryError as exc:
            self.registry.set_run_state(run_id, RunState.FAILED, message=str(exc))
            raise
        except Exception as exc:
            self.registry.set_run_state(run_id, RunState.FAILED, message=f"Could not start training: {exc}")
            raise
        self._launch_queued()
        return run_id

    def _content_hash(self, sql: str, params: list[Any]) -> dict[str, str] | None:
        """Snowflake's order-independent HASH_AGG of the training rows (the rows never leave the account, so
        this stands in for the local path's sha256 of the sample file); None where the engine lacks it."""
        try:
            value = self.wh.query(f'SELECT HASH_AGG(*) AS "h" FROM ({sql})', params)["h"].iloc[0]
        except Exception:  # only an emulated Snowflake (the offline tests' fakesnow) lacks HASH_AGG
            return None
        return {"function": "HASH_AGG", "value": str(value)}

    def _launch(self, run: Run, *, finalize: bool = False) -> None:
        from backend.warehouse.snowflake_training import procedure_name, register_procedure

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
            self._finish(run, RunState.FAILED, f"Could not start training in Snowflake: {snowflake_reason(exc)}")
            return
        self.registry.add_events(run.run_id, LAUNCH_EVENT, [{"query_id": call.query_id, "finalize": finalize,
                                                             "attempt": attempt}])
        self.registry.set_run_state(run.run_id, RunState.RUNNING)

    # --- observe ---------------------------------------------------------------------------------
    def _sync_running(self, run: Run) -> None:
        """The procedure records its own outcome (model version and final state); here only a call that ended
        without doing so is noticed, with the call's own error as the reason."""
        from backend.warehouse.snowflake_training import RESULT_EVENT

        launches = self.registry.events(run.run_id, LAUNCH_EVENT)
        attempt = launches[-1].payload.get("attempt") if launches else None
        results = [e for e in self.registry.events(run.run_id, RESULT_EVENT) if e.payload.get("attempt") == attempt]
        if results and results[-1].payload.get("state") == RunState.FAILED.value:
            self._finish(run, RunState.FAILED, results[-1].payload.get("message") or "Training failed.")
        elif not results and not self._alive(run):
            if self.registry.get_run(run.run_id).state.is_final:  # it recorded its outcome just now
                return
            reason = self._call_error(run)
            self._finish(run, RunState.FAILED, f"The training procedure failed in Snowflake: {reason}" if reason
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

    def _alive(self, run: Run) -> bool:
        query_id = self._query_id(run)
        if query_id is None:
            return False
        try:
            with self.wh.session_lock():
                return not self._session.create_async_job(query_id).is_done()
        except Exception:  # the query is unknown to this account (or no longer visible)
            return False

    def _cleanup(self, run_id: str, job_dir: Path) -> None:
        self._launch_queued()  # nothing of a procedure run lives outside the registry

    # --- control ---------------------------------------------------------------------------------
    def _stop(self, run: Run, *, keep_best: bool) -> None:
        run_id = run.run_id
        query_id = self._query_id(run)
        if query_id:
            with contextlib.suppress(Exception):  # it may have just finished
                self.wh.execute("SELECT SYSTEM$CANCEL_QUERY(?)", [query_id])
        if self.registry.get_run(run_id).state.is_final:  # it recorded its outcome before the cancel arrived
            return
        trials = self.registry.events(run_id, "trial")
        if keep_best and any(t.payload.get("config") is not None for t in trials):
            self._launch(run, finalize=True)  # the run ends SUCCEEDED with the best model found so far
            return
        self._finish(run, RunState.CANCELLED, "Cancelled by the user.")

    def recover(self) -> list[str]:
        """At start-up: runs still executing in Snowflake carry on; finished ones are collected; the rest
        (started, but with no query to follow) become INTERRUPTED."""
        interrupted = []
        for run in self.active_runs():
            if run.state is RunState.QUEUED:
                continue
            if self._alive(run):
                continue
            self.sync(run.run_id)
            if not self.registry.get_run(run.run_id).state.is_final:
                self._finish(run, RunState.INTERRUPTED, "The app stopped while this run was training.")
                interrupted.append(run.run_id)
        self._launch_queued()
        return interrupted
