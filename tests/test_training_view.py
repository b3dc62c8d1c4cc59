"""The sentence that tells users how many rows trained their model."""

from __future__ import annotations

from datetime import datetime

from backend.registry import Run, RunState
from backend.task_detection import Task
from backend.version_records import LeaderboardEntry
from backend.warehouse.base import TableRef
from components.training_view import blend_caption, leaderboard_frame, rows_sentence


def run(used: int, eligible: int, dropped: int) -> Run:
    now = datetime(2026, 1, 1)
    return Run(run_id="r", state=RunState.RUNNING, table=TableRef("s", "t"), target="y", task=Task.BINARY,
               metric="roc_auc", time_budget=60, config={}, created_at=now, updated_at=now, worker_pid=None,
               job_dir="", message="", rows_used=used, rows_dropped=dropped, rows_eligible=eligible)


def test_sampled_runs_say_so() -> None:
    assert rows_sentence(run(1_000_000, 48_000_000, 0)) == "Training on a 1,000,000-row sample of 48,000,000 rows."


def test_full_runs_and_left_out_rows() -> None:
    sentence = rows_sentence(run(175, 175, 25))
    assert sentence.startswith("Training on 175 rows; 25 rows left out")


def test_a_winning_blend_is_scored_against_the_best_single_model_on_the_same_rows() -> None:
    stored = {"estimator": "ensemble", "score": 0.91234, "blend": "lgbm 60% + rf 40%", "best_single_same_rows": 0.9}
    caption = blend_caption(LeaderboardEntry.from_dict(stored))
    assert "the blend reaches 0.9123 against 0.9000 for the best single model" in caption
    assert "against" not in blend_caption(LeaderboardEntry("ensemble", 0.8, "lgbm 50% + rf 50%"))


def test_the_leaderboard_leads_with_the_holdout_score_under_plain_names() -> None:
    board = leaderboard_frame([LeaderboardEntry("ensemble", 0.85, "LightGBM 60% · random forest 40%", 0.84, 0.83),
                               LeaderboardEntry("xgb_limitdepth", 0.86, holdout_score=0.81),
                               LeaderboardEntry("sgd", 0.70)], "ensemble", "ROC AUC")
    assert list(board.columns) == ["chosen", "model", "ROC AUC on the holdout", "search's validation ROC AUC", "blend"]
    assert board["model"].tolist() == ["Blend of the best models (Flurry)", "Depth-limited boosted trees (XGBoost)",
                                       "Linear model by gradient descent (scikit-learn)"]
    assert board["chosen"].tolist() == [True, False, False]
    # a blend has no search score of its own; a family never fitted outside the search has no holdout score
    assert board.iloc[0, 3] == "—" and board.iloc[2, 2] == "—" and board.iloc[1, 2] == "0.8100"


def test_the_shareable_link_is_absolute_and_keeps_the_apps_base_path() -> None:
    from components.sharing import dashboard_link

    params = {"model": "m-1"}
    assert dashboard_link("http://127.0.0.1:8501/deploy", params) == "http://127.0.0.1:8501/dashboard?model=m-1"
    assert dashboard_link("http://127.0.0.1:8501/deploy/?x=1", params) == "http://127.0.0.1:8501/dashboard?model=m-1"
    assert dashboard_link("https://apps.example.com/flurry/deploy", params) == \
        "https://apps.example.com/flurry/dashboard?model=m-1"
    assert dashboard_link("https://apps.example.com/flurry/", params) == \
        "https://apps.example.com/flurry/dashboard?model=m-1"
