"""Step 5 · Deploy: the model's versions (promote, roll back), its SQL functions, scoring a table into a new
table, and the dashboard link."""

from __future__ import annotations

import streamlit as st

from backend.deployed_model import DeployedFunctions
from backend.evaluation.summary import Severity
from backend.export import scoring_bundle
from backend.reasons import explain_function_name
from backend.task_detection import Task
from backend.warehouse.base import TableRef
from components import backend_calls as calls
from components import evaluation_view as view
from components import monitoring_view, scoring_view, state, versions_view
from components.feedback import user_errors
from components.forecast_deploy import forecast_deployment
from components.formatting import md
from components.pickers import pick_model
from components.sharing import share_sentence
from components.shell import require_shell
from components.state import Key

require_shell()

st.title("Put the model to work")
version = pick_model("deploy.model")
if version is None:
    st.stop()
if version.task is Task.FORECAST:
    with user_errors("show the forecast's deployment"):
        forecast_deployment(version)
    st.stop()
ws = calls.workspace()

catalog = ws.catalog
with user_errors("read the model's versions"):
    model = catalog.model_of(version.model_id)
    this = catalog.version(version.model_id)
    versions = catalog.versions(model.key)
    production = catalog.production(model.key)
if not versions:
    st.stop()

st.subheader(f"1 · {md(model.name)}: {len(versions)} version{'s' if len(versions) != 1 else ''}")
announced = versions_view.show_flash()
view.show_warnings([w for w in view.model_warnings(version) if w.severity is Severity.BLOCKER])
previous = catalog.previous_production(model.key)
rollback_to = previous.label if previous is not None and calls.health(previous.model_id).ok else None
in_production = production is not None and production.model_id == version.model_id
serving = production.label if production is not None and calls.health(production.model_id).ok else None
versions_view.show_broken(calls.health(version.model_id), this.label,
                          versions_view.production_remedy(rollback_to) if in_production else
                          versions_view.candidate_remedy(serving))
if production is not None and not in_production:
    versions_view.show_broken(calls.health(production.model_id), f"The production version {production.label}",
                              versions_view.production_remedy(rollback_to))
current = ws.registry.threshold(version.model_id)
if current is not None and version.report is not None:
    st.caption(f"{this.label} labels rows {md(repr(version.report.positive_class))} when their probability is at "
               f"least {md(current.description)}. The probability function returns the probability of "
               f"{md(repr(version.report.positive_class))}; change the threshold on the Evaluate step.")
elif current is not None:
    st.caption(md(f"{this.label} labels rows with the 0.5 rule: {current.description}."))
versions_view.versions_table(model, versions)
versions_view.stage_actions(model, version, this, production, announced)
versions_view.history_table(model)
versions_view.rename_form(model)

production = catalog.production(model.key)
if production is None:
    st.stop()
if not calls.health(production.model_id).ok:  # nothing may score with a model Flurry will not load
    st.info(f"Scoring, schedules and the SQL example are off while the production version ({production.label}) is "
            "broken; its error above says what to do.", icon=":material/block:")
    st.stop()
function = model.function_name
with user_errors("show the SQL example"):
    serving = calls.model_version(production.model_id)
    bundle = calls.bundle(production.model_id)
    example = DeployedFunctions(function, f"{function}_proba" if bundle.is_classification else None,
                                explain=explain_function_name(function))
    st.code(example.example_sql(serving.feature_names, serving.table), language="sql", wrap_lines=True)
    st.caption(f"{md(function)} always serves the production version ({production.label}); each promoted version "
               f"is also callable by its own name, e.g. {md(model.version_function(production.number))}. "
               f"{md(explain_function_name(function))} returns the prediction, its probability and its top three "
               "reasons in words.")

st.subheader("2 · Score a table")
with user_errors("list tables to score"):
    schemas = calls.list_schemas()
    # keyed by the model: another model's choices (its source, its output table) never carry over to this one
    keys = f"deploy.{model.key}"
    source_schema = st.selectbox("Schema of the table to score", schemas, key=f"{keys}.source_schema",
                                 index=schemas.index(version.table.schema) if version.table.schema in schemas else 0)
    tables = calls.list_tables(source_schema)
    source_name = st.selectbox("Table to score", tables, key=f"{keys}.source_table",
                               index=tables.index(version.table.name) if version.table.name in tables else 0)
    out_schema = st.text_input("Write the scores into schema", key=f"{keys}.out_schema",
                               value=ws.output_schema("scores", TableRef(source_schema, source_name)))
    out_name = st.text_input("…as the table", value=ws.plain_name(f"{source_name}_scored"), key=f"{keys}.out_table")
    mode = st.radio("If that table exists", list(scoring_view.MODES), format_func=scoring_view.MODES.get,
                    key=f"{keys}.mode", horizontal=True)
    st.caption("Each row gets the prediction, its probability, the model version that scored it and when.")
    source = TableRef(source_schema, source_name)
    scoring_view.score_now(ws, function, source, out_schema, out_name, mode)
    if ws.warehouse.capabilities.staged_functions:
        scoring_view.snowflake_task(ws, function, source, out_schema, out_name, mode)
    else:
        scoring_view.embedded_schedules(ws, function, source, out_schema, out_name)

    monitoring_view.outcome_source_form(version)

st.subheader("3 · Share")
link = calls.link_params(version.model_id)
# a button, not st.page_link(query_params=…): Streamlit 1.51, the warehouse runtime's newest, has no such argument
if st.button("Open this model's dashboard", icon=":material/dashboard:", key="deploy.open_dashboard"):
    state.put(Key.OPEN_DASHBOARD, version.model_id)
    st.switch_page("pages/dashboard.py")
st.caption(md(share_sentence(link)))

st.subheader("4 · Take it out of Flurry")
st.caption("A zip with the model file (checked against its sha256 when loaded), the model's own code and pinned "
           "requirements. `pip install -r requirements.txt`, then `python predict.py in.csv out.csv` scores a CSV, "
           "and `python reproduce.py` repeats the training run — the same sample, split, configuration and seed — "
           "and prints its holdout metrics beside these.")
if st.button("Prepare the bundle", key="deploy.bundle_prepare", icon=":material/inventory_2:"):
    with user_errors("prepare the bundle"):
        st.session_state["deploy.bundle"] = (version.model_id, scoring_bundle(ws.registry, version.model_id, ws.config))
prepared = st.session_state.get("deploy.bundle")
if prepared and prepared[0] == version.model_id:
    st.download_button("Download the bundle (zip)", prepared[1], file_name=f"flurry-{version.model_id}.zip",
                       mime="application/zip", key="deploy.bundle_download", icon=":material/download:")

