"""The dashboard's operating sections: the production version and its history, drift against training with
alerts in words, and volume and drift over time — all read from what the warehouse recorded."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend.model_catalog import Stage
from backend.model_monitor import attach_model_monitor
from backend.monitoring import drift_alerts
from backend.monitoring_store import StoredDrift, drift_history
from backend.realised import outcome_source, realised_quality, set_outcome_source
from backend.registry import ModelVersion
from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components.feedback import user_errors
from components.formatting import md


def production_section(version: ModelVersion) -> None:
    catalog = calls.workspace().catalog
    model = catalog.model_of(version.model_id)
    this = catalog.version(version.model_id)
    production = catalog.production(model.key)
    if production is None:
        st.caption(f"{md(model.name)}: no version is in production yet.")
    elif production.model_id == version.model_id:
        st.success(f"{md(model.name)} {this.label} is in production: {md(model.function_name)}(…) serves it.",
                   icon=":material/verified:")
    else:
        st.info(f"This is {this.label} ({this.stage.value}) of {md(model.name)}; {production.label} is in production.",
                icon=":material/info:")
    changes = catalog.history(model.key)
    promotions = [c for c in changes if c.stage is Stage.PRODUCTION]
    if promotions:
        with st.expander(f"Production history ({len(promotions)} change{'s' if len(promotions) != 1 else ''})"):
            st.dataframe(pd.DataFrame([{"when (UTC)": f"{c.changed_at:%Y-%m-%d %H:%M}", "version": f"v{c.number}",
                                        "by": c.actor, "note": c.note} for c in promotions]),
                         hide_index=True, width="stretch")


def drift_section(version: ModelVersion) -> None:
    history = drift_history(calls.workspace().registry, version.model_id)
    if version.baseline is None:
        st.info("This version was trained before Flurry kept a baseline, so drift is not measured; retrain it to "
                "watch its inputs.")
        return
    if not history:
        st.info("No batch score has run yet: drift is measured in the warehouse after each one.")
        return
    latest = history[0]
    order = [row["feature"] for row in version.importance]
    alerts = drift_alerts(latest.report, order)
    st.caption(f"Latest: {latest.report.rows:,} rows scored into {md(latest.table)} at "
               f"{latest.computed_at:%Y-%m-%d %H:%M} UTC, against {latest.report.baseline_rows:,} training rows. "
               "PSI below 0.1 is stable, 0.1–0.25 worth watching, above 0.25 an alert.")
    if not alerts:
        st.success("Today's data looks like the training data: no input and no prediction has moved.",
                   icon=":material/check_circle:")
    for alert in alerts:
        (st.warning if alert.band == "alert" else st.info)(md(alert.text), icon=":material/trending_up:")
    rank = {name: i + 1 for i, name in enumerate(order)}
    drifts = [*([latest.report.prediction] if latest.report.prediction else []), *latest.report.columns]
    st.dataframe(pd.DataFrame([{
        "column": "(prediction)" if d is latest.report.prediction else d.column,
        "importance rank": "—" if d is latest.report.prediction or d.column not in rank else str(rank[d.column]),
        "band": d.band, PSI: round(d.psi, 4), JS: round(d.jensen_shannon, 4),
        "missing now": f"{d.missing_share:.1%}", "missing in training": f"{d.baseline_shares[-1]:.1%}",
        MEANS: "—" if d.difference_of_means is None else f"{d.difference_of_means:+.4g}",
    } for d in drifts]), hide_index=True, width="stretch", column_config=DRIFT_HELP)
    if len(history) > 1:
        st.plotly_chart(over_time_figure(history, order[:5]), width="stretch", key="dashboard.drift_over_time")


# Drift measures in words, each with its meaning one hover away (Snowflake's names for them are in the SQL views).
PSI, JS, MEANS = "population stability (PSI)", "distribution distance (Jensen–Shannon)", "change of the mean"
DRIFT_HELP = {
    PSI: st.column_config.NumberColumn(help="How far the share of rows in each bin moved from training: below 0.1 "
                                            "stable, 0.1–0.25 worth watching, above 0.25 an alert."),
    JS: st.column_config.NumberColumn(help="How different the two distributions are, from 0 (the same) to 1 "
                                           "(nothing in common)."),
    MEANS: st.column_config.TextColumn(help="The mean of the scored rows less the mean of the training rows "
                                            "(number columns only)."),
}


def over_time_figure(history: list[StoredDrift], columns: list[str]) -> go.Figure:
    runs = list(reversed(history))
    when = [h.computed_at for h in runs]
    fig = go.Figure(go.Bar(x=when, y=[h.report.rows for h in runs], name="rows scored", yaxis="y2", opacity=0.3))
    series = [("prediction", [h.report.prediction.psi if h.report.prediction else None for h in runs])]
    for column in columns:
        series.append((column, [next((d.psi for d in h.report.columns if d.column == column), None) for h in runs]))
    for name, values in series:
        fig.add_trace(go.Scatter(x=when, y=values, mode="lines+markers", name=name))
    fig.add_hline(y=0.25, line_dash="dot", line_color="#d62728")
    fig.add_hline(y=0.1, line_dash="dot", line_color="#ff7f0e")
    fig.update_layout(title="Drift (PSI) and rows scored, per batch score", height=380, margin={"t": 50, "b": 40},
                      yaxis={"title": "PSI"}, yaxis2={"title": "rows", "overlaying": "y", "side": "right"},
                      legend={"orientation": "h"})
    return fig


HOLDOUT_NAME = {"ACCURACY": "accuracy", "F1_SCORE": "f1", "MAE": "mae", "RMSE": "rmse"}


def outcome_source_form(version: ModelVersion) -> None:
    """Deploy: where the actual outcomes arrive, so dashboards can say whether predictions came true."""
    ws = calls.workspace()
    model = ws.catalog.model_of(version.model_id)
    current = outcome_source(ws.registry, model.key)
    with st.expander("Where do the actual outcomes arrive?" + (f" ({current.table})" if current else "")):
        st.caption("Name the table where what really happened lands (it may arrive weeks later), the column that "
                   "identifies a row, and the outcome. Dashboards then join it to the scores in the warehouse.")
        with user_errors("list the tables"):
            schemas = calls.list_schemas()
            schema = st.selectbox("Schema", schemas, key="deploy.outcomes_schema")
            tables = calls.list_tables(schema)
            if not tables:
                st.info("That schema has no tables.")
                return
            table = st.selectbox("Table", tables, key="deploy.outcomes_table")
            columns = [c.name for c in calls.describe(TableRef(schema, table))]
            key = st.selectbox("Key column", columns, key="deploy.outcomes_key",
                               index=columns.index(current.key_column) if current and current.key_column in columns else 0)
            outcome = st.selectbox("Outcome column", columns, key="deploy.outcomes_column",
                                   index=columns.index(version.target) if version.target in columns else 0)
            if st.button("Use this table", key="deploy.outcomes_save"):
                set_outcome_source(ws.warehouse, ws.registry, model.key, TableRef(schema, table), key, outcome)
                st.success(f"Outcomes for {md(model.name)} come from {md(TableRef(schema, table))}.")
                if ws.warehouse.capabilities.staged_functions:  # Snowflake watches the production version too
                    st.info(md(attach_model_monitor(ws.warehouse, ws.registry, model.key)))


def realised_section(version: ModelVersion) -> None:
    ws = calls.workspace()
    model = ws.catalog.model_of(version.model_id)
    source = outcome_source(ws.registry, model.key)
    scored = [d for d in ws.registry.list_deployments(version.model_id) if d.scored_table is not None]
    if source is None:
        st.info("No table of actual outcomes is named yet (Deploy step), so realised quality is not measured.")
        return
    if not scored:
        st.info("Nothing has been scored yet.")
        return
    latest = max(scored, key=lambda d: d.scored_at)  # type: ignore[arg-type,return-value]
    with user_errors("measure realised quality"):
        positive = version.report.positive_class if version.report is not None else None
        if latest.scored_at_column is None:
            st.info("The latest scores were written before Flurry stamped each row with its scoring time; score the "
                    "table again to measure realised quality.")
            return
        runs = realised_quality(ws.warehouse, latest.scored_table, source, task=version.task,  # type: ignore[arg-type]
                                prediction_column=latest.prediction_column or "prediction",
                                scored_at_column=latest.scored_at_column, positive=positive)
        if not runs:
            st.info(f"No outcome in {md(source.table)} matches a row of {md(latest.scored_table)} yet.")
            return
        rows = []
        for run in runs:
            row: dict[str, object] = {"scored at (UTC)": f"{run.scored_at:%Y-%m-%d %H:%M}", "outcomes arrived": run.matched}
            for name, value in run.metrics.items():
                row[name] = round(value, 4)
                holdout = version.metrics.model_score(HOLDOUT_NAME.get(name, ""))
                if holdout is not None:
                    row[f"{name} on holdout"] = round(float(holdout), 4)
            rows.append(row)
        st.caption(f"Scores in {md(latest.scored_table)} joined to {md(source.table)} on {md(source.key_column)}, "
                   "in the warehouse; each line is one scoring run.")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
