"""What Flurry proposes for a chosen target: the kind of prediction, the outcome of interest, the features.

The Target step draws these proposals and lets the user change them; the Train step adopts them when a
session arrives with a target but no task or features yet (a target switched and Train clicked before the
Target step's run that proposes them finished), so the two steps can never disagree about the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.checks import FeaturePlan, Finding, plan_features
from backend.forecast_workflow import suggests_forecast
from backend.profiling import TableProfile
from backend.task_detection import FeatureChoice, TargetSummary, Task
from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components import state


@dataclass(frozen=True)
class TaskProposal:
    summary: TargetSummary
    choices: list[FeatureChoice]  # every other column, with whether it is included by default and why
    profile: TableProfile
    time_columns: list[str]  # the columns a forecast may be ordered by (none for a target that is not a number)
    tasks: list[Task]  # the kinds of prediction on offer for this target
    suggested: Task


@dataclass(frozen=True)
class FeatureProposal:
    findings: list[Finding]
    plan: FeaturePlan

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]


def propose_task(table: TableRef, target: str) -> TaskProposal:
    identity = calls.workspace().warehouse.identity
    summary, choices = calls.target_summary(identity, table, target)
    profile = calls.profile(identity, table)
    dated = calls.time_columns(identity, table) if profile.column(target).kind == "numeric" else []
    tasks = [t for t in Task if t is not Task.FORECAST or dated]  # offered for a number and a time to order it by
    suggested = (Task.FORECAST if dated and suggests_forecast(profile, target, dated, summary.detected_task)
                 else summary.detected_task)
    return TaskProposal(summary, choices, profile, dated, tasks, suggested)


def propose_features(table: TableRef, target: str, task: Task, choices: list[FeatureChoice]) -> FeatureProposal:
    identity = calls.workspace().warehouse.identity
    findings = calls.checks(identity, table, target, task, [c.name for c in choices if c.include])
    return FeatureProposal(findings, plan_features([(c.name, c.include, c.reason) for c in choices], findings))


def default_outcome(table: TableRef, target: str) -> str | None:
    """The outcome a binary model looks for unless the user says otherwise: the rarer one."""
    return calls.outcome_choices(calls.workspace().warehouse.identity, table, target).default


def keep_features(proposal: FeatureProposal) -> None:
    """Record the checks' verdict and, on a first visit for this target, their proposed remedies."""
    state.put(state.Key.IMBALANCED, any(f.check == "imbalance" for f in proposal.findings))
    if state.get(state.Key.FEATURES) is None:
        state.put(state.Key.FEATURES, proposal.plan.features)
        state.put(state.Key.CASTS, proposal.plan.casts)
        state.put(state.Key.DATE_CASTS, proposal.plan.date_casts)
        state.put(state.Key.DEDUPLICATE, proposal.plan.deduplicate)


def adopt_proposal(table: TableRef, target: str) -> FeatureProposal | None:
    """Fill in the task, outcome and features the Target step would have proposed, where none are chosen yet.

    None for a forecast: its series are chosen on the Target step, with nothing to propose here."""
    task = state.task()
    if task is None:
        task = propose_task(table, target).suggested
        state.put(state.Key.TASK, task.value)
    if task is Task.FORECAST:
        return None
    if task is Task.BINARY and state.positive() is None:
        state.put(state.Key.POSITIVE, default_outcome(table, target))
    proposal = propose_features(table, target, task, calls.target_summary(
        calls.workspace().warehouse.identity, table, target)[1])
    if not proposal.blocking:  # kept, features stay unchosen: every visit to Train checks again and says why
        keep_features(proposal)
    return proposal
