"""Scheduled batch scores on the embedded warehouse: hourly, daily, weekly or any cron expression (UTC), kept
in the warehouse and fired by the supervisor's APScheduler while the app runs, whether or not a page is open.
A fire time missed while the app was closed is caught up once when it opens again. On Snowflake a Task does
this instead (`deploy.schedule_scoring`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from backend.deployed_model import deployment_model
from backend.errors import DeploymentError
from backend.registry import Registry, new_id, now
from backend.registry_records import none_if_na
from backend.scoring_jobs import OutputMode, ScoringJobs
from backend.warehouse.base import TableRef, Warehouse

PRESETS = {"hourly": "0 * * * *", "daily at 06:00 UTC": "0 6 * * *", "weekly on Monday at 06:00 UTC": "0 6 * * 1"}
JOB_PREFIX = "flurry.schedule."


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    function_name: str
    source: TableRef
    output: TableRef
    mode: OutputMode
    cron: str | None
    every_seconds: int | None
    enabled: bool
    created_at: datetime
    created_by: str
    last_fired_at: datetime | None

    def trigger(self) -> CronTrigger | IntervalTrigger:
        if self.cron:
            return CronTrigger.from_crontab(self.cron, timezone=UTC)
        return IntervalTrigger(seconds=int(self.every_seconds or 3600), timezone=UTC,
                               start_date=self.created_at.replace(tzinfo=UTC))

    @property
    def description(self) -> str:
        if self.cron:
            named = next((name for name, cron in PRESETS.items() if cron == self.cron), None)
            return named or f"on cron '{self.cron}' (UTC)"
        seconds = int(self.every_seconds or 0)
        return f"every {seconds // 60} minutes" if seconds % 60 == 0 and seconds >= 60 else f"every {seconds} s"

    def next_fire(self, after: datetime | None = None) -> datetime | None:
        """The next fire time after `after` (default now), naive UTC like the registry's times."""
        moment = (after or now()).replace(tzinfo=UTC)
        fire = self.trigger().get_next_fire_time(None, moment)
        return fire.astimezone(UTC).replace(tzinfo=None) if fire else None


def validate_cron(cron: str) -> str:
    """The expression, tidied. Raises DeploymentError with the parser's reason."""
    cleaned = " ".join(cron.split())
    try:
        CronTrigger.from_crontab(cleaned, timezone=UTC)
    except ValueError as exc:
        raise DeploymentError(f"{cron!r} is not a schedule Flurry can read: {exc}.",
                              hint="Use five fields: minute hour day-of-month month day-of-week, e.g. '30 7 * * 1-5' "
                                   "for 07:30 UTC on weekdays.") from exc
    return cleaned


class Schedules:
    def __init__(self, warehouse: Warehouse, registry: Registry, scoring: ScoringJobs) -> None:
        self.wh = warehouse
        self.registry = registry
        self.scoring = scoring

    def _t(self) -> str:
        return self.registry.t("schedules")

    def create(self, function_name: str, source: TableRef, output: TableRef, mode: OutputMode, *,
               cron: str | None = None, every_seconds: int | None = None, actor: str = "") -> Schedule:
        """Store a schedule (enabled). Raises DeploymentError for an unknown function, a bad cron expression,
        or a mode that cannot repeat."""
        deployment_model(self.registry, function_name)
        self.wh.describe(source)
        if mode is OutputMode.NEW:
            raise DeploymentError("A schedule writes its table again and again.",
                                  hint="Choose to replace the table each time, or to add the new scores to it.")
        if (cron is None) == (every_seconds is None):
            raise DeploymentError("A schedule needs either a cron expression or an interval.")
        if every_seconds is not None and every_seconds < 1:
            raise DeploymentError("An interval is at least one second.")
        cron = validate_cron(cron) if cron is not None else None
        schedule_id = new_id("sch")
        self.wh.execute(f"INSERT INTO {self._t()} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE, ?, ?, NULL)",
                        [schedule_id, function_name, source.schema, source.name, output.schema, output.name,
                         mode.value, cron, every_seconds, now(), actor])
        return self.get(schedule_id)

    def get(self, schedule_id: str) -> Schedule:
        frame = self.registry._query(f"SELECT * FROM {self._t()} WHERE schedule_id = ?", [schedule_id])
        if frame.empty:
            raise DeploymentError(f"No schedule has the id {schedule_id!r}.")
        return _schedule_from_row(frame.iloc[0])

    def all(self, function_name: str | None = None) -> list[Schedule]:
        sql, params = f"SELECT * FROM {self._t()}", []
        if function_name is not None:
            sql, params = sql + " WHERE function_name = ?", [function_name]
        return [_schedule_from_row(row) for _, row in self.registry._query(sql + " ORDER BY created_at", params).iterrows()]

    def delete(self, schedule_id: str) -> None:
        self.wh.execute(f"DELETE FROM {self._t()} WHERE schedule_id = ?", [schedule_id])

    def set_enabled(self, schedule_id: str, enabled: bool) -> None:
        self.wh.execute(f"UPDATE {self._t()} SET enabled = ? WHERE schedule_id = ?", [enabled, schedule_id])

    def fire(self, schedule_id: str) -> str | None:
        """Queue the schedule's score now (None when it was deleted or disabled meanwhile)."""
        try:
            schedule = self.get(schedule_id)
        except DeploymentError:
            return None
        if not schedule.enabled:
            return None
        self.wh.execute(f"UPDATE {self._t()} SET last_fired_at = ? WHERE schedule_id = ?", [now(), schedule_id])
        scoring_id = self.scoring.request(schedule.function_name, schedule.source, schedule.output, schedule.mode,
                                          schedule_id=schedule_id)
        self.scoring.advance()
        return scoring_id

    def sync(self, scheduler: BaseScheduler) -> None:
        """Make the scheduler's jobs match the stored schedules: add new ones (catching up a fire time missed
        while nothing ran), drop deleted or disabled ones."""
        wanted = {s.schedule_id: s for s in self.all() if s.enabled}
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id[len(JOB_PREFIX):] not in wanted:
                job.remove()
        for schedule_id, schedule in wanted.items():
            if scheduler.get_job(JOB_PREFIX + schedule_id) is not None:
                continue
            due = schedule.next_fire(schedule.last_fired_at or schedule.created_at)
            scheduler.add_job(self.fire, schedule.trigger(), args=[schedule_id], id=JOB_PREFIX + schedule_id,
                              replace_existing=True)
            if due is not None and due <= now():
                self.fire(schedule_id)  # missed while the app was closed: once, now


def _schedule_from_row(row: Any) -> Schedule:
    every = none_if_na(row["every_seconds"])
    return Schedule(str(row["schedule_id"]), str(row["function_name"]), TableRef(row["source_schema"], row["source_table"]),
                    TableRef(row["output_schema"], row["output_table"]), OutputMode(row["mode"]),
                    none_if_na(row["cron"]), int(every) if every is not None else None, bool(row["enabled"]),
                    row["created_at"], str(none_if_na(row["created_by"]) or ""), none_if_na(row["last_fired_at"]))
