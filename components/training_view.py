"""Live training progress and the leaderboard, drawn from persisted run events."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from backend.forecast_workflow import forecast_config
from backend.forecasting.model import method_words
from backend.forecasting.series import SeriesSpec
from backend.learner_names import plain_name, short_name
from backend.metrics import METRICS, METRICS_BY_TASK
from backend.registry import Run, RunState
from backend.task_detection import Task
from backend.training.config import DEFAULT_TIME_BUDGET_S
from backend.training.fit import SEARCH_SHARE
from backend.training.jobs import RunProgress
from backend.version_records import LeaderboardEntry
from backend.warehouse.base import LeftOut, TableRef
from components import backend_calls as calls
from components import charts, state
from components.evaluation_view import model_warnings
from components.feedback import user_errors
from components.formatting import md


def wall_words(progress: RunProgress) -> str:
    """The whole wait, from Start: "Running · 12 s of 30 s", "Succeeded · 27 s from Start to a ready model
    (budget 30 s)"."""
    run, wall = progress.run, progress.wall_seconds
    if run.state.is_final:
        return f"{run.state.value.title()} · {wall:.0f} s from Start to the end, for a budget of {run.time_budget} s"
    return f"{run.state.value.title()} · {wall:.0f} s of {run.time_budget} s"


def _progress_body(progress: RunProgress, chosen: str | None = None, holdout_score: float | None = None) -> None:
    """The run's progress; once it is over, `chosen` names the model kept and `holdout_score` is its score on the
    holdout (what leads, rather than the search's best validation score, which it was tuned on)."""
    run = progress.run
    if run.state is RunState.QUEUED:
        position = calls.workspace().jobs.queue_position(run.run_id)
        st.info(f"Waiting for another training run to finish (number {position or 1} in the queue). "
                "It starts by itself; you can leave this page.", icon=":material/hourglass_top:")
        return
    metric = METRICS[run.metric]
    budget = run.time_budget
    st.progress(min(1.0, progress.wall_seconds / budget) if budget else 0.0, text=md(wall_words(progress)))
    forecast = run.task is Task.FORECAST
    cols = st.columns(3)
    cols[0].metric("Methods backtested" if forecast else "Trials done", len(progress.trials))
    best, label = progress.best_score, f"Best {metric.label}"
    if forecast and chosen is not None:  # the chosen average may score a little behind the best single method
        score = next((t.score for t in reversed(progress.trials) if t.estimator == chosen), None)
        best, label = (score, f"{metric.label} of the chosen model") if score is not None else (best, label)
    if holdout_score is not None:
        best, label = holdout_score, f"{metric.label} on the holdout"
    elif chosen is not None and not forecast:
        best, label = None, f"{metric.label} on the holdout"
    cols[1].metric(label, "—" if best is None else f"{best:.4f}")
    if chosen is not None:
        shown = chosen if forecast else short_name(chosen)
        cols[2].metric("Chosen model", shown[:1].upper() + shown[1:],
                       help=None if forecast else plain_name(chosen))
    else:
        current = progress.current_estimator
        cols[2].metric("Trying now", "starting…" if current is None else current if forecast else plain_name(current))
    if run.rows_used is not None:
        st.caption(md(rows_sentence(run, progress.left_out)))
    if run.state is RunState.RUNNING and run.message:  # e.g. finished, its model waiting for room on the disk
        st.warning(md(run.message), icon=":material/info:")
    if progress.trials:
        chart, families = st.columns([3, 2])
        chart.plotly_chart(charts.best_score_over_time(progress.trials, metric.label), width="stretch")
        best = progress.best_per_estimator()
        # the search's own validation scores, named so: the holdout's are the leaderboard's and the headline's
        families.dataframe(pd.DataFrame({"method" if forecast else "model family":
                                         list(best) if forecast else [short_name(b) for b in best],
                                         f"{'backtest' if forecast else 'search'} {metric.label}": list(best.values())}),
                           hide_index=True, width="stretch")


def rows_sentence(run: Run, left_out: LeftOut | None = None) -> str:
    """E.g. "Training on a 1,000,000-row sample of 48,000,000 rows; 1,204 rows left out: 1,204 with no value of
    churn."; each reason with its count."""
    eligible = run.rows_eligible
    if eligible is not None and run.rows_used is not None and run.rows_used < eligible:
        sentence = f"Training on a {run.rows_used:,}-row sample of {eligible:,} rows"
    else:
        sentence = f"Training on {run.rows_used:,} rows"
    if run.rows_dropped and run.task is Task.FORECAST:
        sentence += f"; {run.rows_dropped:,} rows have no value of the target (periods still to come, or gaps)"
    elif run.rows_dropped and left_out is not None and left_out.total == run.rows_dropped:
        reasons = [f"{left_out.missing_target:,} with no value of {run.target}" if left_out.missing_target else "",
                   f"{left_out.excluded_classes:,} of the classes you left out as too rare to learn"
                   if left_out.excluded_classes else "",
                   f"{left_out.duplicates:,} exact duplicates, as you chose to train on distinct rows"
                   if left_out.duplicates else ""]
        sentence += f"; {run.rows_dropped:,} rows left out: " + "; ".join(r for r in reasons if r)
    elif run.rows_dropped:  # a run recorded before the reasons were
        sentence += (f"; {run.rows_dropped:,} rows left out (no target value, a class left out as too rare, or "
                     "a duplicate)")
    return sentence + "."


def live_progress(first: RunProgress) -> None:
    """Show a run's progress (`first`: as the page read it, and made its model the session's), refreshing every
    second while it trains."""
    jobs = calls.workspace().jobs
    run_id = first.run.run_id

    @st.fragment(run_every=timedelta(seconds=1))
    def refresh() -> None:
        progress = jobs.progress(run_id)
        _progress_body(progress)
        if progress.run.state.is_final:
            st.rerun()  # hand over to the full page, which shows the result

    if first.run.state.is_final:
        show_result(first)
    else:
        keep, discard = st.columns(2)
        if keep.button("Stop, keep the best model so far", key="train.stop_keep", icon=":material/stop_circle:"):
            with st.spinner("Stopping and keeping the best model found…"):
                jobs.cancel(run_id, keep_best=True)
            st.rerun()
        if discard.button("Stop and discard", key="train.cancel", icon=":material/cancel:"):
            jobs.cancel(run_id)
            st.rerun()
        refresh()


def blend_caption(blended: LeaderboardEntry) -> str:
    """What the leaderboard's blend row means, against the best single model on the same rows."""
    single = blended.best_single_same_rows
    versus = f" against {single:.4f} for the best single model" if single is not None else ""
    return (f"The search ran for {SEARCH_SHARE:.0%} of the budget; the rest blended its best models. On the rows "
            f"held out while blending, the blend reaches {blended.score:.4f}{versus}, better by more than noise, so "
            "it stands.")


LEADERBOARD_CAPTION = ("Each model is scored on the holdout, rows no model was trained or tuned on, labelled by its "
                       "most probable class. The search's own validation scores run higher: it kept the best of many "
                       "tries on those rows.")


def leaderboard_frame(leaderboard: list[LeaderboardEntry], chosen: str, metric_label: str) -> pd.DataFrame:
    """The leaderboard as drawn: plain names, the holdout score (the same basis for every row) first."""
    def shown(value: float | None) -> str:  # a missing figure is a dash, never "None"
        return "—" if value is None else f"{value:.4f}"

    board = pd.DataFrame([{
        "chosen": e.estimator == chosen, "model": plain_name(e.estimator),
        f"{metric_label} on the holdout": shown(e.holdout_score),
        f"search's validation {metric_label}": shown(None if e.estimator == "ensemble" else e.score),
        "blend": e.blend or ""} for e in leaderboard])
    if not any(e.blend for e in leaderboard):  # the column says what a blend is made of
        board = board.drop(columns="blend")
    return board


def show_result(progress: RunProgress) -> None:
    run = progress.run
    if run.state is RunState.SUCCEEDED and progress.model_id:
        version = calls.model_version(progress.model_id)
        metric = METRICS[run.metric]
        chosen_row = next((e for e in version.leaderboard if e.estimator == version.best_estimator), None)
        blend = chosen_row.blend if chosen_row is not None else None
        chosen = f"a blend of {blend}" if blend else plain_name(version.best_estimator)
        forecast = run.task is Task.FORECAST
        finished = ((f"Training finished: Flurry forecasts by **{md(method_words(chosen))}**, chosen from "
                     f"{len(progress.trials)} methods in time-ordered backtests." if forecast else
                     f"Training finished: the best model is **{chosen}** after {len(progress.trials)} trials.")
                    + (f" {md(run.message)}" if run.message else ""))
        useless = next((w for w in model_warnings(version) if w.kind == "useless"), None)
        if useless is not None:  # never a green banner for a model that is no better than guessing
            st.warning(finished, icon=":material/info:")
            st.error(md(useless.text), icon=":material/block:")
        else:
            st.success(finished)
        # the Evaluate step's own figure for the run's metric (at the model's threshold), else the leaderboard's
        holdout = version.metrics.model_score(run.metric)
        if holdout is None and chosen_row is not None:
            holdout = chosen_row.holdout_score
        _progress_body(progress, chosen=version.best_estimator, holdout_score=holdout)
        st.subheader("Backtest score per method (lower is better)" if forecast else "Leaderboard")
        if chosen_row is not None and blend:
            st.caption(blend_caption(chosen_row))
        elif run.config.get("ensemble") and not forecast and "stopped early" not in (run.message or "").lower():
            st.caption(f"The search ran for {SEARCH_SHARE:.0%} of the budget; blending its best models did not fit "
                       "in the rest, or did not beat the best one by more than noise, so the best single model "
                       "stands.")
        if forecast:
            board = pd.DataFrame([{"chosen": e.estimator == version.best_estimator, "method": e.estimator,
                                   metric.label: e.score} for e in version.leaderboard])
        else:
            board = leaderboard_frame(version.leaderboard, version.best_estimator, metric.label)
            st.caption(LEADERBOARD_CAPTION)
        st.dataframe(board, hide_index=True, width="stretch")
        st.page_link("pages/evaluate.py", label="Next: evaluate and explain", icon=":material/arrow_forward:")
    else:
        if run.state is RunState.CANCELLED:
            st.warning("This run was cancelled; no model was kept.")
        else:
            ended = "was interrupted" if run.state is RunState.INTERRUPTED else "failed"
            st.error(f"This run {ended}: {md(run.message or 'no reason was recorded.')}  \n"
                     "Run it again as it was, or adjust the options and press Start.", icon=":material/error:")
            if progress.failure_details:  # an unexpected failure: the details, for whoever looks into it
                with st.expander("Technical details (for your administrator)"):
                    st.code(progress.failure_details, language=None)
        if st.button("Run it again", key="train.rerun", icon=":material/replay:"):
            with user_errors("start the run again"):
                state.put(state.Key.RUN_ID, calls.workspace().jobs.rerun(run.run_id))
                st.rerun()


def forecast_training(table: TableRef, spec: SeriesSpec | None) -> None:
    """The Train step of a forecast: budget and metric, start, then the same live progress as any run."""
    if spec is None:
        st.info("Finish the Target step: choose the time column and the horizon of the forecast.")
        st.page_link("pages/target.py", label="Go to Target", icon=":material/target:")
        return
    ws = calls.workspace()
    series = f", one series per {', '.join(spec.series_columns)}" if spec.series_columns else ""
    with user_errors("read the series"):
        word = calls.forecast_preview(ws.warehouse.identity, table, spec).frequency.frequency.period_word
    st.caption(f"Forecasting **{md(spec.target)}** in {md(table)} {spec.horizon} {word}s ahead, ordered by "
               f"{md(spec.time_column)}{md(series)}. Every method is judged on rolling-origin backtests: trained on "
               "the past only, scored on the periods that followed.")
    budget = st.number_input("Time budget (seconds)", value=DEFAULT_TIME_BUDGET_S, step=10, key="train.budget",
                             help="Most of it searches the lag model's learner; the rest backtests every method.")
    metrics = METRICS_BY_TASK[Task.FORECAST]
    metric = st.radio("Choose the method by", metrics, key="train.metric", format_func=lambda m: METRICS[m].label,
                      captions=[METRICS[m].explanation for m in metrics])
    run_id = state.get(state.Key.RUN_ID)
    busy = bool(run_id) and not ws.registry.get_run(run_id).state.is_final
    if st.button("Start training", type="primary", key="train.start", disabled=busy,
                 help="A run is in progress; wait for it or cancel it." if busy else None):
        with user_errors("start training"):
            config = forecast_config(ws.warehouse, table, spec, metric, int(budget))
            state.put(state.Key.RUN_ID, ws.jobs.start(config))
            state.clear(state.Key.MODEL_ID)
            st.rerun()
    if run_id:
        with user_errors("show the training progress"):
            progress = ws.jobs.progress(run_id)
            if progress.model_id:
                state.put(state.Key.MODEL_ID, progress.model_id)
            live_progress(progress)
