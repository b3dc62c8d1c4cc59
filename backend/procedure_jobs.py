"""Training on Snowflake's compute: each run is one call of Flurry's stored procedure, started by the run's own
Task.

The same states, queue and live view as local runs (the same JobManager); what differs is where the work
happens, behind the Runner interface. Preparing draws nothing locally: it counts the eligible rows and records
the job; launching creates and executes the run's Task, whose call belongs to no app session, so the run
finishes whether or not any viewer stays. The procedure writes trial events, heartbeats, its verified model
version and the run's final state itself; the app only reads them, and takes a run whose heartbeats stopped
for dead. Stopping is a request the procedure reads at its next search iteration (backend.training.run_signals).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from backend.errors import FlurryError, InvalidTargetError
from backend.registry import Registry, Run, RunState, new_id, now
from backend.snowflake_procedure import (
    JOB_EVENT,
    RESULT_EVENT,
    job_payload,
    procedure_name,
    register_procedure,
    training_job,
)
from backend.training.config import MIN_TRAINING_ROWS, TrainConfig
from backend.training.jobs import JobManager
from backend.training.run_signals import quiet_limit_s, request_stop
from backend.training.runner import Ending, Outcome, record_left_out
from backend.warehouse.base import Warehouse
from backend.warehouse.snowflake_deploy import (
    CANCEL_TASK_SQL,
    RUN_TASK_PREFIX,
    qualified_task,
    run_task_name,
    run_task_sql,
    run_tasks_sql,
    sql_string,
    task_history_sql,
)
from backend.warehouse.snowflake_session import snowflake_reason

PROCEDURE_JOB_DIR = "snowflake-procedure"
LAUNCH_EVENT = "launch"


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
        self.quiet_limit_s: float | None = None  # None: run_signals.quiet_limit_s of the run's budget
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

    # --- launch ---------------------------------------------------------------------------------
    def launch(self, run: Run, *, finalize: bool = False) -> int | None:
        """Create the run's own Task calling the procedure and execute it (see run_task_sql for why a Task).
        `finalize` never comes here: a stopped run refits its best trial inside its own call."""
        attempt = new_id("a")  # the procedure's result names its call, so an earlier call's results never count
        task = run_task_name(self.wh.database, run.run_id)
        call = f"CALL {procedure_name(self.wh.database)}({sql_string(training_job(self.wh.database, run.run_id, attempt))})"
        try:
            with self.wh.session_lock():
                if not self._procedure_ready:
                    register_procedure(self._session, self.wh.database)
                    self._procedure_ready = True
                compute = self.training_warehouse or self.wh.current_warehouse()
            if not compute:
                raise FlurryError("The Snowflake connection has no warehouse to train on.",
                                  hint="Set `warehouse` in the connection, or a training warehouse in flurry.toml.")
            for statement in run_task_sql(task, compute, run.time_budget, call):
                self.wh.execute(statement)
        except FlurryError as exc:
            raise FlurryError(f"Could not start training in Snowflake: {exc.message}", hint=exc.hint) from exc
        except Exception as exc:
            raise FlurryError(f"Could not start training in Snowflake: {snowflake_reason(exc)}") from exc
        self.registry.add_events(run.run_id, LAUNCH_EVENT, [{"task": task, "attempt": attempt, "warehouse": compute}])
        return None

    # --- observe ---------------------------------------------------------------------------------
    def new_trials(self, run: Run, known: int) -> list[dict[str, Any]]:
        return []  # the procedure writes its trial events itself

    def outcome(self, run: Run) -> Outcome | None:
        """The procedure records its own outcome (model version and final state); a run whose work went quiet
        for longer than it can be silent is taken for dead, with Snowflake's reason where the Task's history
        gives one."""
        results = self._results(run)
        if results and results[-1].payload.get("state") == RunState.FAILED.value:
            return Outcome(Ending.FAILED, results[-1].payload.get("message") or "Training failed.")
        if self.registry.get_run(run.run_id).state.is_final:  # it recorded its outcome
            return Outcome(Ending.RECORDED)
        if results or self.working(run):
            return None
        quiet = self._quiet_s(run)
        reason = self._task_error(run)
        return Outcome(Ending.FAILED, "The training in Snowflake stopped without reporting a result "
                       f"({quiet / 60:.0f} minutes without a word from it)" + (f": {reason}" if reason else "."))

    def _results(self, run: Run) -> list[Any]:
        launches = self.registry.events(run.run_id, LAUNCH_EVENT)
        attempt = launches[-1].payload.get("attempt") if launches else None
        return [e for e in self.registry.events(run.run_id, RESULT_EVENT) if e.payload.get("attempt") == attempt]

    def _quiet_s(self, run: Run) -> float:
        last = self.registry.last_event_at(run.run_id)
        return (now() - last).total_seconds() if last is not None else float("inf")

    def working(self, run: Run) -> bool:
        """Alive while the work's last word (heartbeat, trial, launch) is recent: read from Flurry's registry,
        never by asking Snowflake about a query another session started."""
        if not self.registry.events(run.run_id, LAUNCH_EVENT):
            return False
        return self._quiet_s(run) <= (self.quiet_limit_s if self.quiet_limit_s is not None
                                      else quiet_limit_s(run.time_budget))

    def _task_error(self, run: Run) -> str | None:
        """Why the run's Task ended, from its history (None where it says nothing or cannot be read)."""
        try:
            frame = self.wh.query(task_history_sql(self.wh.database, run.run_id))
        except Exception:  # history needs MONITOR or OWNERSHIP on the task; an emulated Snowflake lacks it
            return None
        error = frame["error"].iloc[0] if not frame.empty else None
        return str(error) if error else None

    # --- control ---------------------------------------------------------------------------------
    stops_cooperatively = True  # the procedure reads the stop request at its next iteration and ends the run

    def stop(self, run: Run, *, keep_best: bool = False) -> str | None:
        """Ask the run to stop (it reads the request within a second of its next search iteration). Without
        `keep_best`, the Task's call is also cancelled at once where the role may; a refusal is returned in words
        (the run then stops at its next iteration), never swallowed."""
        request_stop(self.registry, run.run_id, keep_best=keep_best)
        if keep_best:
            return None
        try:
            self.wh.execute(CANCEL_TASK_SQL, [run_task_name(self.wh.database, run.run_id)])
        except Exception as exc:
            return (f"Snowflake refused to cancel the training query at once ({snowflake_reason(exc)}); it stops "
                    "by itself at its next search iteration. Cancelling at once needs OWNERSHIP or OPERATE on the "
                    "run's task.")
        return None

    def release(self, run: Run) -> None:
        """Drop the run's Task once it has ended ("any current run of the task is completed", DROP TASK)."""
        with contextlib.suppress(Exception):  # gone already, or no privilege: a Task left behind runs nothing
            self.wh.execute(f"DROP TASK IF EXISTS {run_task_name(self.wh.database, run.run_id)}")

    def sweep(self, active: list[Run]) -> list[str]:
        """At start-up: drop the Tasks of runs no longer active (a cancelled run's Task is left to finish its
        call, which then ends at its next iteration; dropping lets "any current run of the task" complete)."""
        keep = {run_task_name(self.wh.database, run.run_id) for run in active}
        try:
            shown = self.wh.query(run_tasks_sql(self.wh.database))
        except Exception:  # no privilege to list them, or an emulated Snowflake: they stay, inert
            return []
        dropped = []
        for name in shown.get("name", []):
            task = qualified_task(self.wh.database, str(name))
            if str(name).startswith(RUN_TASK_PREFIX) and task not in keep:
                with contextlib.suppress(Exception):
                    self.wh.execute(f"DROP TASK IF EXISTS {task}")
                    dropped.append(task)
        return dropped
