"""What a run's work and the app say to each other through Flurry's registry, when the work runs where the app
cannot reach it (the Snowflake training procedure, started by a Task): the work's heartbeats, and the user's
request to stop.

The work beats as it goes (each search iteration, each phase), so anyone can tell it is alive from the registry
alone, without asking Snowflake about a query another session started; and it reads the stop request as it
beats, so stopping is the work's own act: it ends the search where it is and, when asked to, keeps the best
model found so far in the same call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.registry import Registry

HEARTBEAT_EVENT = "heartbeat"  # {"phase": what the work is doing}
STOP_EVENT = "stop"  # {"keep_best": bool}: the user asked the work to stop
CHECK_EVERY_S = 1.0  # how often the work looks for a stop request (one registry read each time)
HEARTBEAT_EVERY_S = 30.0  # how often the work says it is alive when nothing else was written
QUIET_LIMIT_S = 600.0  # how long work may be silent before it is taken for dead (runs with longer budgets: theirs)


class StopRequested(Exception):
    """Raised in the work's own thread when the user asked it to stop."""

    def __init__(self, keep_best: bool) -> None:
        super().__init__("stopped by the user" + (", keeping the best model so far" if keep_best else ""))
        self.keep_best = keep_best


@dataclass(frozen=True)
class StopRequest:
    keep_best: bool


def request_stop(registry: Registry, run_id: str, *, keep_best: bool) -> None:
    registry.add_events(run_id, STOP_EVENT, [{"keep_best": keep_best}])


def stop_request(registry: Registry, run_id: str) -> StopRequest | None:
    """The user's request to stop the run, if any: a run already ended (cancelled) counts as one to discard."""
    if registry.get_run(run_id).state.is_final:
        return StopRequest(keep_best=False)
    requests = registry.events(run_id, STOP_EVENT)
    return StopRequest(bool(requests[-1].payload.get("keep_best"))) if requests else None


def quiet_limit_s(time_budget_s: float) -> float:
    """How long a run's work may go without a word before it is taken for dead: its longest silent stretch (the
    holdout report after the search, inside the budget) cannot outlast its budget, and the procedure's start
    (its packages loaded in a fresh sandbox) takes minutes at most."""
    return max(QUIET_LIMIT_S, float(time_budget_s))


class Pulse:
    """Called from the work's thread as it goes: beats now and then and raises StopRequested when the user asked
    to stop. A Snowflake procedure may not query from a second thread, so nothing here runs in the background."""

    def __init__(self, registry: Registry, run_id: str, *, check_every: float = CHECK_EVERY_S,
                 heartbeat_every: float = HEARTBEAT_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry, self._run_id, self._clock = registry, run_id, clock
        self._check_every, self._heartbeat_every = check_every, heartbeat_every
        self._checked = self._beaten = float("-inf")

    def __call__(self) -> None:
        """Between search iterations: beat when quiet too long, look for a stop request now and then."""
        now = self._clock()
        if now - self._beaten >= self._heartbeat_every:
            self.beat("searching")
        if now - self._checked >= self._check_every:
            self.check()

    def beat(self, phase: str) -> None:
        self._beaten = self._clock()
        self._registry.add_events(self._run_id, HEARTBEAT_EVENT, [{"phase": phase}])

    def check(self) -> None:
        self._checked = self._clock()
        request = stop_request(self._registry, self._run_id)
        if request is not None:
            raise StopRequested(request.keep_best)
