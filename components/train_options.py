"""The Train step's "Advanced" options: safe defaults for everyone, choices for experts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from backend.task_detection import Task
from backend.training.config import available_estimators

_FAMILIES = {"lgbm": "LightGBM", "xgboost": "XGBoost", "xgb_limitdepth": "XGBoost (shallow trees)",
             "rf": "Random forest", "extra_tree": "Extra trees", "lrl1": "Linear (L1)", "lrl2": "Linear (L2)",
             "sgd": "Linear (SGD)", "catboost": "CatBoost"}
_VALIDATION = {"auto": "Automatic (cross-validation for small tables, a holdout for large ones)",
               "holdout": "Holdout: keep a share of the rows aside", "cv": "k-fold cross-validation"}


def advanced_options(task: Task, date_columns: list[str]) -> dict[str, Any]:
    """The expert options as TrainConfig keyword arguments (empty means every default)."""
    options: dict[str, Any] = {}
    with st.expander("Advanced"):
        families = st.multiselect("Model families to try", available_estimators(), key="train.estimators",
                                  format_func=lambda e: _FAMILIES.get(e, e), placeholder="All that suit the task",
                                  help="Leave empty to let AutoML choose.")
        if families:
            options["estimators"] = tuple(families)
        validation = st.radio("How candidates are scored", list(_VALIDATION), key="train.validation",
                              format_func=_VALIDATION.__getitem__)
        options["validation"] = validation
        if validation == "cv":
            options["cv_folds"] = int(st.number_input("Folds", min_value=2, max_value=20, value=5,
                                                      key="train.folds"))
        if validation == "holdout":
            options["split_ratio"] = st.slider("Share of rows held out to score candidates", 0.05, 0.5, 0.1, 0.05,
                                               key="train.split_ratio")
        if date_columns:
            order = st.selectbox("Order rows in time by", [None, *date_columns], key="train.time_column",
                                 format_func=lambda c: "No time order (shuffle)" if c is None else c,
                                 help="Validate and evaluate on the latest rows, as the model will meet the future.")
            if order is not None:
                options["time_column"] = order
        options["ensemble"] = st.checkbox(
            "Blend the best models", value=True, key="train.ensemble",
            help="Spend about 40% of the budget averaging the best models found (usually a little more accurate). "
                 "Skipped by itself when the table is too large to blend within the budget.")
        options["seed"] = int(st.number_input("Seed", min_value=0, value=0, step=1, key="train.seed",
                                              help="The same seed, data and options repeat the same run."))
        if task.is_classification and st.checkbox(
                "Weigh classes equally", key="train.class_weight",
                help="Rows of small classes count more, so the model does not ignore them."):
            options["class_weight"] = "balanced"
    return options
