"""What Snowflake does with models, beside its data (StagedModelHost): permanent UDFs from the staged model
file, scores and re-scoring Tasks inside the warehouse, the Model Registry and model monitors. A mixin of
SnowflakeWarehouse, whose session, SQL and names it uses; the statements themselves are in snowflake_deploy,
snowflake_model_registry and snowflake_monitor."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, Protocol

import pandas as pd

from backend.errors import DeploymentError, WarehouseQueryError
from backend.identifiers import quote_ident
from backend.reasons import explain_function_name
from backend.warehouse import snowflake_deploy as sd
from backend.warehouse.base import ScheduledScoring, ScoreColumns, StagedModelHost, TableRef
from backend.warehouse.snowflake_model_registry import log_model_version
from backend.warehouse.snowflake_monitor import monitor_name, monitor_statements
from backend.warehouse.snowflake_session import snowflake_reason


class _Snowflake(Protocol):
    """What the mixin uses of SnowflakeWarehouse."""

    database: str

    @property
    def _session(self) -> Any: ...
    def session_lock(self) -> contextlib.AbstractContextManager[Any]: ...
    def current_warehouse(self) -> str: ...
    def qualify(self, table: TableRef) -> str: ...
    def execute(self, sql: str, params: list[Any] | None = None) -> None: ...
    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame: ...
    def row_count(self, table: TableRef) -> int: ...
    def drop_function(self, name: str) -> None: ...
    def _functions(self, name: str) -> pd.DataFrame: ...
    def _drop_stale_overloads(self, name: str) -> None: ...
    def schedule_statement(self, task: str, body: str, schedule: str) -> ScheduledScoring: ...


class SnowflakeModelHost(StagedModelHost):
    def deploy_model_functions(self: _Snowflake, name: str, bundle: Any, content: bytes, sha256: str, model_id: str,
                               prediction_type: str, background: bytes | None = None) -> tuple[str, str | None]:
        with self.session_lock():
            staged = sd.stage_model(self._session, self.database, model_id, content, sha256, background)
            predict, probability = sd.register_model_functions(self._session, self.database, name, bundle, staged,
                                                               prediction_type)
        # A function registered with other argument types is an overload beside the old one, not its replacement
        # ("Naming and overloading procedures and UDFs": one name, several signatures), and queries and Tasks
        # passing the old inputs would go on calling the old model. Only the signature just made is kept.
        for function in (predict, probability, explain_function_name(name)):
            if function is not None:
                self._drop_stale_overloads(function)
        if probability is None:  # a classifier's probability function outlives a regression model otherwise
            self.drop_function(f"{name}_proba")
        return predict, probability

    def _drop_stale_overloads(self: _Snowflake, name: str) -> None:
        frame = self._functions(name)
        for statement in sd.stale_overload_drops(sd.function_name(self.database, name),
                                              list(zip(frame["s"], frame["c"], strict=True))):
            self.execute(statement)

    def log_model_version(self: _Snowflake, model: str, version: str, bundle: Any, content: bytes, sha256: str,
                          model_id: str, prediction_type: str, metrics: dict[str, float], *, alias: str | None = None
                          ) -> tuple[str | None, str | None]:
        with self.session_lock():
            outcome = log_model_version(self._session, self.database, model, version, model_id, bundle, content,
                                        sha256, prediction_type, metrics, alias=alias)
        return outcome.logged, outcome.reason

    def score_into(self: _Snowflake, predict: str, probability: str | None, features: list[str], source: TableRef,
                   output: TableRef, columns: ScoreColumns, scored_at: pd.Timestamp, *, append: bool) -> int:
        select = sd.scored_select(self.database, predict, probability, features, self.qualify(source), columns,
                                  sd.sql_string(columns.version_label), sd.timestamp_sql(scored_at))
        target = self.qualify(output)
        if not append:
            self.execute(sd.replace_sql(target, select))
            return self.row_count(output)
        self.execute(sd.create_empty_sql(target, select))
        self.execute(sd.append_sql(target, select))
        counted = self.query(f"SELECT COUNT(*) AS \"n\" FROM {target} WHERE {quote_ident(columns.time)} = ?",
                             [scored_at.to_pydatetime()])
        return int(counted["n"].iloc[0])

    def schedule_scoring(self: _Snowflake, task: str, predict: str, probability: str | None, features: list[str],
                         source: TableRef, output: TableRef, columns: ScoreColumns, schedule: str, *,
                         append: bool) -> ScheduledScoring:
        """A Task re-scoring `source` into `output` on `schedule` with the session's warehouse (re-creating it,
        or adding each run's rows), every row stamped with the version the function serves when the Task runs
        and the time; created suspended, then resumed. Resuming needs the EXECUTE TASK privilege (SYSADMIN
        lacks it by default): without it the task stays created and suspended, and the result says so and names
        the privilege."""
        select = sd.scored_select(self.database, predict, probability, features, self.qualify(source), columns,
                                  sd.served_version_sql(self.database, predict), sd.NOW_UTC)
        target = self.qualify(output)
        if append:  # a Task's body is one statement: the table it adds to is made now
            self.execute(sd.create_empty_sql(target, select))
        return self.schedule_statement(task, sd.append_sql(target, select) if append else
                                       sd.replace_sql(target, select), schedule)

    def monitor_model(self: _Snowflake, plan: Any) -> str:
        """The monitor's source view and the monitor (snowflake_monitor), on the session's warehouse unless the
        plan names one. Model monitors need an edition and privileges some accounts lack: a refusal is said."""
        compute = plan.warehouse or self.current_warehouse()
        if not compute:
            return "The Snowflake connection has no warehouse for the model monitor; set `warehouse` in it."
        try:
            for statement in monitor_statements(self.database, replace(plan, warehouse=compute)):
                self.execute(statement)
        except WarehouseQueryError as exc:
            return (f"Snowflake did not create the model monitor: {snowflake_reason(exc.__cause__ or exc)} (model "
                    "monitors need CREATE MODEL MONITOR in FLURRY and an account where they are offered).")
        return (f"The Snowflake model monitor {monitor_name(plan.model)} watches {plan.model} {plan.version} "
                "(Snowsight: AI & ML » Models).")

    def schedule_statement(self: _Snowflake, task: str, body: str, schedule: str) -> ScheduledScoring:
        """A Task running `body` on `schedule` with the session's warehouse, created suspended, then resumed
        (see schedule_scoring)."""
        compute = self.current_warehouse()
        if not compute:
            raise DeploymentError("The Snowflake connection has no warehouse to run the schedule on.",
                                  hint="Set `warehouse` in the connection.")
        create, resume = sd.task_sql(self.database, task, compute, schedule, body)
        self.execute(create)
        try:
            self.execute(resume)
        except WarehouseQueryError as exc:
            role = str(self._session.get_current_role() or "").strip('"') or "PUBLIC"
            return sd.suspended_task(task, role, snowflake_reason(exc.__cause__ or exc), resume)
        return ScheduledScoring(task, resumed=True)
