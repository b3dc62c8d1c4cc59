"""The Deploy step's model section: the named model, its versions with their stage and health, and promote /
roll back / archive, each confirmed before anything changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend.evaluation import summary as words
from backend.learner_names import plain_name
from backend.metrics import METRICS
from backend.model_catalog import CatalogVersion, NamedModel, Stage, current_actor
from backend.model_health import Health
from backend.promotion import Promotion, deploy_version, input_change, promote, rollback
from backend.registry import ModelVersion
from components import backend_calls as calls
from components.feedback import user_errors
from components.formatting import md

PENDING = "deploy.pending"  # the change waiting for its confirmation: ("promote" | "rollback", model id)
FLASH = "deploy.flash"  # what the last change did, shown once after the rerun


def show_broken(health: Health, label: str, remedy: str = "Retrain the model.") -> None:
    """A broken version's reason and what to do (the caller names only versions that exist)."""
    if not health.ok:
        st.error(f"{md(label)} is broken: {md(health.reason)} {md(remedy)}", icon=":material/error:")


OWNER_REMEDY = "The model's owner can retrain it, or put a working version in production on the Deploy step."


def candidate_remedy(serving: str | None) -> str:
    """What to do about a broken version that is not in production (`serving`: the working production version)."""
    return f"Retrain the model; {serving} serves on." if serving else "Retrain the model."


def production_remedy(rollback_to: str | None) -> str:
    """What to do when the production version is broken: roll back to a version that exists and works, or
    retrain."""
    return (f"Roll back to {rollback_to}, or retrain the model." if rollback_to else
            "Retrain the model; there is no earlier version to roll back to.")


def useless_reason(version: ModelVersion) -> str | None:
    """Why the version's own report calls it useless (the blocker's words), or None."""
    return next((w.text for w in words.warnings(version.report) if w.kind == "useless"), None) \
        if version.report is not None else None


def health_word(version: ModelVersion, health: Health) -> str:
    """One word per version for tables: "broken" (cannot serve), "useless" (no better than guessing), "ok"."""
    if not health.ok:
        return "broken"
    return "useless" if useless_reason(version) else "ok"


def versions_table(model: NamedModel, versions: list[CatalogVersion]) -> None:
    rows = []
    for v in versions:
        version = calls.model_version(v.model_id)
        headline = version.metrics.headline
        health = calls.health(v.model_id)
        rows.append({"version": v.label, "stage": v.stage.value, "health": health_word(version, health),
                     "trained": f"{v.created_at:%Y-%m-%d %H:%M}", "model": plain_name(version.best_estimator),
                     "holdout": (f"{METRICS[headline[0]].label} {headline[1].model:.4f}"
                                 if headline and headline[0] in METRICS and headline[1].model is not None else ""),
                     "own function": model.version_function(v.number)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def rename_form(model: NamedModel) -> None:
    with st.expander("Rename the model"), st.form(f"deploy.rename.{model.key}"):
        name = st.text_input("Name", value=model.name, max_chars=80, key=f"deploy.name.{model.key}")
        if st.form_submit_button("Save the name"):
            with user_errors("rename the model"):
                calls.workspace().catalog.rename(model.key, name)
                st.rerun()


def _ask(action: str, model_id: str) -> None:
    st.session_state[PENDING] = (action, model_id)


def _cancel() -> None:
    st.session_state.pop(PENDING, None)


def _done(promotion: Promotion, first: bool) -> None:
    """Remember what happened for the rerun that redraws the versions with their new stages."""
    st.session_state.pop(PENDING, None)
    calls.forget_bundles()
    if first:
        message = (f"Deployed. Call {md(promotion.production.predict)}(…) from SQL in this warehouse; it serves "
                   f"{promotion.version.label}.")
    else:
        message = f"{md(promotion.production.predict)} now serves {promotion.version.label}."
    note = (f"Also logged to the Snowflake Model Registry as {md(promotion.production.registry_version)}."
            if promotion.production.registry_version else md(promotion.production.registry_note or ""))
    st.session_state[FLASH] = (message, note)
    st.rerun()


def show_flash() -> bool:
    """The outcome of the change made just before this rerun; whether there was one (its banner says what the
    version now does, so no second banner repeats it)."""
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash[0], icon=":material/check_circle:")
        if flash[1]:
            st.caption(flash[1])
    return bool(flash)


def stage_actions(model: NamedModel, version: ModelVersion, this: CatalogVersion,
                  production: CatalogVersion | None, announced: bool = False) -> None:
    """Promote (or first deploy), roll back and archive, for the chosen version. `announced`: the change just made
    was already said in a banner, so the version's stage is said in a caption."""
    ws = calls.workspace()
    health = calls.health(version.model_id)
    useless = useless_reason(version)
    pending = st.session_state.get(PENDING)  # set by the buttons' callbacks, before this run
    if this.stage is Stage.PRODUCTION and health.ok:  # a broken version serves nothing: its error says so
        (st.caption if announced else st.success)(f"{this.label} is in production: {md(model.function_name)}(…) "
                                                  "serves it.")
    elif this.stage is Stage.PRODUCTION:
        pass
    elif production is None and useless is None:
        if st.button("Deploy as a SQL function", type="primary", key="deploy.deploy", disabled=not health.ok,
                     help=f"Creates {model.function_name}(…) serving {this.label}."):
            with user_errors("deploy the model"):
                _done(promote(ws.warehouse, ws.registry, version.model_id, actor=current_actor(),
                              note=f"{this.label} deployed"), first=True)
    elif production is None:  # a useless model is deployed only once its user has read why it is useless
        st.button("Deploy as a SQL function…", type="primary", key="deploy.deploy", disabled=not health.ok,
                  on_click=_ask, args=("deploy", version.model_id))
        if pending == ("deploy", version.model_id):
            st.warning(f"{md(useless)} Deploy it anyway?", icon=":material/block:")
            yes, no = st.columns(2)
            if yes.button(f"Deploy {this.label} anyway", key="deploy.confirm_useless"):
                with user_errors("deploy the model"):
                    _done(promote(ws.warehouse, ws.registry, version.model_id, actor=current_actor(),
                                  note=f"{this.label} deployed, though its report calls it useless"), first=True)
            no.button("Cancel", key="deploy.cancel_useless", on_click=_cancel)
    else:
        st.caption(f"{md(model.function_name)}(…) serves {production.label} now.")
        st.button(f"Promote {this.label} to production…", type="primary", key="deploy.deploy", disabled=not health.ok,
                  on_click=_ask, args=("promote", version.model_id))
        if pending == ("promote", version.model_id):
            change = input_change(ws.registry, version.model_id)
            st.warning(f"After this, every query calling {md(model.function_name)} gets {this.label}'s answers "
                       f"instead of {production.label}'s. {md(change or '')}", icon=":material/swap_horiz:")
            if useless is not None:
                st.error(md(useless), icon=":material/block:")
            yes, no = st.columns(2)
            confirm = f"Promote {this.label} anyway" if useless is not None else f"Yes, promote {this.label}"
            if yes.button(confirm, type="primary", key="deploy.confirm"):
                with user_errors("promote the version"):
                    _done(promote(ws.warehouse, ws.registry, version.model_id, actor=current_actor(),
                                  accept_new_inputs=True), first=False)
            no.button("Cancel", key="deploy.cancel", on_click=_cancel)
    previous = ws.catalog.previous_production(model.key)
    if production is not None and previous is not None:
        st.button(f"Roll back to {previous.label}…", key="deploy.rollback", on_click=_ask, args=("rollback", model.key),
                  help=f"{model.function_name} serves {previous.label} again.")
        if pending == ("rollback", model.key):
            st.warning(f"After this, {md(model.function_name)} serves {previous.label} again instead of "
                       f"{production.label}.", icon=":material/undo:")
            yes, no = st.columns(2)
            if yes.button(f"Yes, roll back to {previous.label}", type="primary", key="deploy.confirm_rollback"):
                with user_errors("roll back"):
                    _done(rollback(ws.warehouse, ws.registry, model.key, actor=current_actor()), first=False)
            no.button("Cancel", key="deploy.cancel_rollback", on_click=_cancel)
    if this.stage is Stage.CANDIDATE:
        left, right = st.columns(2)
        if left.button(f"Make {this.label} callable by its own name", key="deploy.own", disabled=not health.ok):
            with user_errors("deploy the version"):
                functions = deploy_version(ws.warehouse, ws.registry, version.model_id)
                st.success(f"Call {md(functions.predict)}(…) to try {this.label} beside production.")
        if right.button(f"Archive {this.label}", key="deploy.archive"):
            with user_errors("archive the version"):
                ws.catalog.archive(version.model_id, current_actor())
                st.rerun()


def history_table(model: NamedModel) -> None:
    changes = calls.workspace().catalog.history(model.key)
    if not changes:
        return
    with st.expander("History: who changed what, when"):
        st.dataframe(pd.DataFrame([{"when": f"{c.changed_at:%Y-%m-%d %H:%M:%S}", "version": f"v{c.number}",
                                    "stage": c.stage.value, "by": c.actor, "note": c.note} for c in changes]),
                     hide_index=True, width="stretch")
