"""The Deploy step's scoring section: score a table now (with its progress and a Stop), and scores on a
schedule (the embedded scheduler; Snowflake uses a Task)."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from backend.deploy import SCHEDULE_CHOICES, schedule_scoring
from backend.identifiers import validate_table_name
from backend.model_catalog import current_actor
from backend.scoring_jobs import OutputMode, ScoringRun, ScoringState
from backend.warehouse.base import TableRef
from backend.workspace import Workspace
from components.feedback import user_errors
from components.formatting import md

MODES = {OutputMode.NEW: "Stop if the table exists", OutputMode.REPLACE: "Replace the table",
         OutputMode.APPEND: "Add the new scores to it (keeps a history)"}
CUSTOM = "custom (cron expression)"


def output_table(schema: str, name: str) -> TableRef:
    return TableRef(validate_table_name(schema), validate_table_name(name))


def score_now(ws: Workspace, function: str, source: TableRef, out_schema: str, out_name: str, mode: OutputMode, *,
              label: str = "Score the table", key: str = "deploy.score", working: str = "Scoring in the warehouse…",
              job_key: str = "deploy.scoring_id") -> None:
    """The Score button (a forecast's Write button): queue the job (the supervisor runs it), or run it here
    where no supervisor runs (Snowflake scores in one statement in the warehouse)."""
    assert ws.scoring is not None
    if st.button(label, key=key):
        with user_errors(label.lower()):
            scoring_id = ws.scoring.request(function, source, output_table(out_schema, out_name), mode)
            st.session_state[job_key] = scoring_id
            if ws.supervisor is None:
                with st.spinner(working):
                    ws.scoring.run(scoring_id)
    scoring_id = st.session_state.get(job_key)
    if scoring_id:
        scoring_status(ws, scoring_id)


def scoring_status(ws: Workspace, scoring_id: str) -> None:
    """Progress while it runs (redrawn every second), then the outcome and a preview."""
    assert ws.scoring is not None
    scoring = ws.scoring
    first = scoring.get(scoring_id)

    @st.fragment(run_every=timedelta(seconds=1) if not first.state.is_final else None)
    def status() -> None:
        run = scoring.get(scoring_id)
        if not run.state.is_final:
            label = (f"Scoring {md(run.source)}: {run.rows_done:,} of {run.rows_total:,} rows" if run.rows_total
                     else f"Working on {md(run.source)}: starting…")
            st.progress(run.share_done, text=label)
            st.button("Stop", key="deploy.stop", on_click=scoring.stop, args=(scoring_id,),
                      help="Stops after the current batch; the output table stays as it was.")
            return
        if not first.state.is_final:
            st.rerun()  # it just finished: redraw the whole step
        _outcome(ws, run)

    status()


def _outcome(ws: Workspace, run: ScoringRun) -> None:
    if run.state is ScoringState.SUCCEEDED:
        st.success(md(run.message), icon=":material/check_circle:")
        with user_errors("show the scores"):
            st.dataframe(ws.warehouse.preview(run.output, 20), hide_index=True, width="stretch")
    elif run.state is ScoringState.STOPPED:
        st.warning(md(run.message), icon=":material/stop_circle:")
    else:
        st.error(md(run.message), icon=":material/error:")


def embedded_schedules(ws: Workspace, function: str, source: TableRef, out_schema: str, out_name: str, *,
                       title: str = "Score it on a schedule") -> None:
    """Create, pause and delete schedules; each with its last runs."""
    from backend.schedules import PRESETS  # APScheduler: the embedded warehouse's; the hosted app has none

    schedules = ws.schedules
    with st.expander(title, expanded=bool(schedules.all(function))):
        st.caption("Flurry runs these while the app is open, whether or not anyone has a page open; a run missed "
                   "while it was closed runs once when it opens. For the system's cron: "
                   f"`python -m backend.score --function {function} --source {source} --output "
                   f"{out_schema}.{out_name} --append`.")
        left, right = st.columns(2)
        when = left.selectbox("When", [*PRESETS, CUSTOM], key="deploy.schedule_when")
        cron = PRESETS.get(when) or right.text_input("Cron expression (UTC)", value="30 7 * * 1-5",
                                                     key="deploy.schedule_cron")
        mode = st.radio("Each time", [OutputMode.REPLACE, OutputMode.APPEND], format_func=MODES.get,
                        key="deploy.schedule_mode", horizontal=True)
        if st.button("Create the schedule", key="deploy.schedule_create"):
            with user_errors("create the schedule"):
                made = schedules.create(function, source, output_table(out_schema, out_name), mode, cron=cron,
                                        actor=current_actor())
                if ws.supervisor is not None:
                    schedules.sync(ws.supervisor.scheduler)
                st.success(f"Writes {md(made.output)} {md(made.description)}; next at {made.next_fire():%Y-%m-%d %H:%M} UTC.")
        assert ws.scoring is not None
        for schedule in schedules.all(function):
            runs = ws.scoring.recent(3, schedule_id=schedule.schedule_id)
            last = f"last: {runs[0].state.value.lower()} at {runs[0].requested_at:%Y-%m-%d %H:%M}" if runs else "not run yet"
            nxt = schedule.next_fire()
            state = (f"next {nxt:%Y-%m-%d %H:%M} UTC" if schedule.enabled and nxt else "paused")
            st.markdown(f"**{md(schedule.source)} → {md(schedule.output)}**, {md(schedule.description)} · {state} · {md(last)}")
            a, b = st.columns(2)
            a.button("Resume" if not schedule.enabled else "Pause", key=f"deploy.schedule_toggle.{schedule.schedule_id}",
                     on_click=schedules.set_enabled, args=(schedule.schedule_id, not schedule.enabled))
            b.button("Delete", key=f"deploy.schedule_delete.{schedule.schedule_id}", on_click=schedules.delete,
                     args=(schedule.schedule_id,))


def snowflake_task(ws: Workspace, function: str, source: TableRef, out_schema: str, out_name: str,
                   mode: OutputMode) -> None:
    append = mode is OutputMode.APPEND
    schedule = st.selectbox("Re-score it on a schedule", SCHEDULE_CHOICES, key="deploy.schedule",
                            help="A Snowflake Task adds each run's scores to the table (as chosen above), every "
                                 "row stamped with the version that scored it and when." if append else
                                 "A Snowflake Task re-creates the scored table on this schedule; choose 'Add the "
                                 "new scores' above to keep a history instead.")
    if st.button("Schedule re-scoring", key="deploy.schedule_start"):
        with user_errors("schedule re-scoring"):
            output = output_table(out_schema, out_name)
            scheduled = schedule_scoring(ws.warehouse, ws.registry, function, source, output, schedule,
                                         append=append)
            if scheduled.resumed:
                st.success(f"The task {md(scheduled.task)} re-scores {md(output)} {schedule}.")
            else:
                st.warning(md(scheduled.reason or f"The task {scheduled.task} is suspended."))
