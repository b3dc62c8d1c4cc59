"""Model families in plain words, with the library beside them: FLAML's codes (`xgb_limitdepth`, `lrl1`, `sgd`)
are its own jargon and never reach a page alone."""

from __future__ import annotations

# FLAML's code → (what it is, which library fits it)
_NAMES: dict[str, tuple[str, str]] = {
    "lgbm": ("Gradient-boosted trees", "LightGBM"),
    "xgboost": ("Gradient-boosted trees", "XGBoost"),
    "xgb_limitdepth": ("Depth-limited boosted trees", "XGBoost"),
    "rf": ("Random forest", "scikit-learn"),
    "extra_tree": ("Extremely randomised trees", "scikit-learn"),
    "lrl1": ("Logistic regression, L1", "scikit-learn"),
    "lrl2": ("Logistic regression, L2", "scikit-learn"),
    "sgd": ("Linear model by gradient descent", "scikit-learn"),
    "catboost": ("Gradient-boosted trees", "CatBoost"),
    "kneighbor": ("Nearest neighbours", "scikit-learn"),
    "ensemble": ("Blend of the best models", "Flurry"),
}


def plain_name(code: str) -> str:
    """E.g. "Gradient-boosted trees (LightGBM)"; a code Flurry does not know is shown as it is."""
    if code not in _NAMES:
        return code
    what, library = _NAMES[code]
    return f"{what} ({library})"


def short_name(code: str) -> str:
    """The few words a blend's description uses: "LightGBM", "random forest", "L1 logistic regression"."""
    shorts = {"lgbm": "LightGBM", "xgboost": "XGBoost", "xgb_limitdepth": "depth-limited XGBoost",
              "rf": "random forest", "extra_tree": "extra trees", "lrl1": "L1 logistic regression",
              "lrl2": "L2 logistic regression", "sgd": "SGD linear model", "catboost": "CatBoost",
              "ensemble": "blend"}
    return shorts.get(code, code)
