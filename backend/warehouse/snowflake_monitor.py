"""A Snowflake model monitor on the production version: the account's own observability (drift, performance
over time in Snowsight) fed by the rows Flurry already writes — the stamped scores and the table where actual
outcomes arrive — joined in a view.

CREATE MODEL MONITOR ("ML Observability"; sql-reference/sql/create-model-monitor): the monitor must be in the
model's schema (FLURRY); TIMESTAMP_COLUMN must be TIMESTAMP_NTZ (the scores' `scored_at` is UTC without a zone);
at least one prediction column; a binary classifier's actual must be a class, a multiclass classifier's
prediction and actual classes, a regression's both scores. Column lists are ARRAY constants.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.identifiers import quote_ident
from backend.warehouse.base import METADATA_SCHEMA
from backend.warehouse.snowflake_deploy import sql_string

REGISTRY_FUNCTION = "predict"  # the registry model's inference method (snowflake_model_registry)
REFRESH_INTERVAL = "1 hour"
AGGREGATION_WINDOW = "1 day"


@dataclass(frozen=True)
class MonitorPlan:
    """What the monitor watches: names Flurry settled, the scores' columns and the outcomes' table."""

    model: str  # the registry model (upper case, as logged)
    version: str  # its registry version (V<n>)
    task: str  # "binary", "multiclass" or "regression"
    scored: str  # the scored table, qualified
    outcomes: str  # the outcomes' table, qualified
    key_column: str  # in both tables
    outcome_column: str
    prediction_column: str
    probability_column: str | None
    scored_at_column: str
    version_column: str
    version_label: str  # the rows this version scored carry it ("v3")
    positive_class: str | None  # binary: the class the probability is of
    warehouse: str


def monitor_name(model: str) -> str:
    return f"{model}_MONITOR"


def _qualified(database: str, name: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(name)}"


def monitor_statements(database: str, plan: MonitorPlan) -> list[str]:
    """The source view, then the monitor (both replaced: the production version moved, or the outcomes did)."""
    view = _qualified(database, f"{plan.model}_MONITORED")
    predicted, actual = f's.{quote_ident(plan.prediction_column)}', f'o.{quote_ident(plan.outcome_column)}'
    columns = [f'CAST(s.{quote_ident(plan.key_column)} AS VARCHAR) AS "ID"',
               f'CAST(s.{quote_ident(plan.scored_at_column)} AS TIMESTAMP_NTZ) AS "SCORED_AT"']
    if plan.task == "binary" and plan.positive_class is not None:  # classes as 1/0 of the positive class
        positive = sql_string(str(plan.positive_class))
        columns += [f'IFF(CAST({predicted} AS VARCHAR) = {positive}, 1, 0) AS "PREDICTION"',
                    f'IFF(CAST({actual} AS VARCHAR) = {positive}, 1, 0) AS "ACTUAL"']
        if plan.probability_column:
            columns.append(f'CAST(s.{quote_ident(plan.probability_column)} AS DOUBLE) AS "PROBABILITY"')
    elif plan.task == "regression":
        columns += [f'CAST({predicted} AS DOUBLE) AS "PREDICTION"', f'CAST({actual} AS DOUBLE) AS "ACTUAL"']
    else:
        columns += [f'CAST({predicted} AS VARCHAR) AS "PREDICTION"', f'CAST({actual} AS VARCHAR) AS "ACTUAL"']
    create_view = (
        f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM {plan.scored} s JOIN {plan.outcomes} o "
        f"ON CAST(s.{quote_ident(plan.key_column)} AS VARCHAR) = CAST(o.{quote_ident(plan.key_column)} AS VARCHAR) "
        f"WHERE s.{quote_ident(plan.version_column)} = {sql_string(plan.version_label)} AND {actual} IS NOT NULL")
    if plan.task == "regression":
        outputs = "PREDICTION_SCORE_COLUMNS = ('PREDICTION') ACTUAL_SCORE_COLUMNS = ('ACTUAL')"
    else:
        outputs = "PREDICTION_CLASS_COLUMNS = ('PREDICTION') ACTUAL_CLASS_COLUMNS = ('ACTUAL')"
        if plan.task == "binary" and plan.probability_column:
            outputs += " PREDICTION_SCORE_COLUMNS = ('PROBABILITY')"
    create_monitor = (
        f"CREATE OR REPLACE MODEL MONITOR {_qualified(database, monitor_name(plan.model))} WITH "
        f"MODEL = {_qualified(database, plan.model)} VERSION = {sql_string(plan.version)} "
        f"FUNCTION = {sql_string(REGISTRY_FUNCTION)} SOURCE = {view} WAREHOUSE = {quote_ident(plan.warehouse)} "
        f"REFRESH_INTERVAL = {sql_string(REFRESH_INTERVAL)} AGGREGATION_WINDOW = {sql_string(AGGREGATION_WINDOW)} "
        f'TIMESTAMP_COLUMN = "SCORED_AT" ID_COLUMNS = (\'ID\') {outputs}')
    return [create_view, create_monitor]
