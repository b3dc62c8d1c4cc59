"""The supervisor: one per open workspace with local training workers. It advances what must happen whether
or not a page is open — collects a finished training run at once (with its true duration) and starts the
next queued one, and checks deployed models' artifacts — on APScheduler's background scheduler.

Pages only read once a supervisor runs (`JobManager.supervised`). On Snowflake, where the training procedure
records its own result, there is no supervisor and pages refresh what they show.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from backend.training.jobs import JobManager

logger = logging.getLogger(__name__)

ADVANCE_EVERY_S = 1.0
ADVANCE_JOB_ID = "flurry.advance_jobs"

# APScheduler says "Running job …" at INFO on every tick, and warns when a tick is skipped because the one
# before is still collecting a model (intended: one advance at a time, ticks coalesced).
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


_live: weakref.WeakSet[Supervisor] = weakref.WeakSet()


def stop_all() -> None:
    """Stop every supervisor this process started (a test suite's many warehouses, each left open by the app's
    resource cache, would otherwise all keep ticking)."""
    for supervisor in list(_live):
        supervisor.stop()


class Supervisor:
    """Advances `jobs` every ADVANCE_EVERY_S seconds on a background thread until stopped."""

    def __init__(self, jobs: JobManager, *, every_s: float = ADVANCE_EVERY_S) -> None:
        self.jobs = jobs
        # Jobs run on the scheduler's own thread (DebugExecutor), one at a time: no pool to outlive, and a tick
        # that takes long (collecting a model) delays the next instead of overlapping it.
        self.scheduler = BackgroundScheduler(
            executors={"default": DebugExecutor()}, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.scheduler.add_job(self.advance_jobs, IntervalTrigger(seconds=every_s, timezone=UTC),
                               id=ADVANCE_JOB_ID, next_run_time=datetime.now(UTC))
        self.last_error: str | None = None

    def every(self, seconds: float, job: Callable[[], object], job_id: str) -> None:
        """Also run `job` every `seconds` (first at once); a failing run is logged and retried next time."""
        last: list[str] = [""]

        def guarded() -> None:
            try:
                job()
                last[0] = ""
            except Exception as exc:  # the supervisor outlives any one failure; the same one is said once
                if str(exc) != last[0]:
                    logger.exception("the supervisor's job %s failed", job_id)
                last[0] = str(exc)

        self.scheduler.add_job(guarded, IntervalTrigger(seconds=seconds, timezone=UTC), id=job_id,
                               next_run_time=datetime.now(UTC), replace_existing=True)

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def start(self) -> None:
        self.jobs.supervised = True
        self.scheduler.start()
        _live.add(self)
        atexit.register(self.stop)  # a workspace nobody closed (the app's) stops ticking before the interpreter ends

    def stop(self) -> None:
        """Stop advancing (waits for a tick in progress); pages then advance jobs themselves again."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.jobs.supervised = False
        atexit.unregister(self.stop)

    def advance_jobs(self) -> None:
        """Collect finished runs and start queued ones. Never raises: a failing tick is logged and the next one
        tries again (a warehouse briefly busy must not stop the supervisor for good)."""
        try:
            self.jobs.advance()
            self.last_error = None
        except Exception as exc:  # the supervisor outlives any one failure
            if str(exc) != self.last_error:
                logger.exception("the supervisor could not advance training jobs")
            self.last_error = str(exc)
