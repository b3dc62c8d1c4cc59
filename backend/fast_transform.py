"""FLAML's DataTransformer.transform for tabular frames, without its per-call pandas overhead.

A SQL function is called once per 2,048 rows, and FLAML's transform costs about 14 ms a call whatever the
size (two frame copies, a category cast then a re-cast to the saved categories, an sklearn imputer with its
output wrapper) — more than the model's own prediction. This does the same in one pass: text columns to the
categories seen at fit time (missing and unseen values as FLAML's "__NAN__"), numeric columns with FLAML's
fitted medians filled in. It covers exactly the tabular case (no dates, no time series, no text models, the
saved categories present); anything else goes to FLAML's own transform, and `matches_flaml` (run once per
transformer) sends a transformer there for good if the two ever differ.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

import numpy as np
import pandas as pd

NAN_CATEGORY = "__NAN__"
CHECK_ROWS = 500  # the first call's rows compared with FLAML's own transform

_CHECKED: weakref.WeakKeyDictionary[object, bool] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _medians(transformer: Any) -> np.ndarray | None:
    """The numeric columns' fill values, from FLAML's ColumnTransformer(SimpleImputer(median))."""
    inner = getattr(transformer, "transformer", None)
    if inner is None:
        return None
    try:
        imputer = inner.named_transformers_["continuous"]
        return np.asarray(imputer.statistics_, dtype=float)
    except (AttributeError, KeyError, TypeError):
        return None


def supported(transformer: Any) -> bool:
    task = getattr(transformer, "_task", None)
    if task is None or task.is_nlp() or task.is_ts_forecast() or getattr(transformer, "_datetime_columns", None):
        return False
    cats = getattr(transformer, "_cat_categories", None)
    cat_columns = getattr(transformer, "_cat_columns", None)
    num_columns = getattr(transformer, "_num_columns", None)
    if cat_columns is None or num_columns is None:
        return False
    if cat_columns and (not cats or any(cats.get(c) is None for c in cat_columns)):
        return False
    return not num_columns or _medians(transformer) is not None


def fast_transform(transformer: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What `transformer.transform(frame)` returns, for a `supported` transformer."""
    columns: dict[str, Any] = {}
    for column in transformer._cat_columns:
        saved = transformer._cat_categories[column]
        values = frame[column].to_numpy(dtype=object)
        codes = pd.Index(saved).get_indexer(values)
        missing = codes < 0  # missing and unseen values both read as FLAML's "__NAN__"
        if missing.any():
            codes[missing] = pd.Index(saved).get_loc(NAN_CATEGORY) if NAN_CATEGORY in saved else -1
        columns[column] = pd.Categorical.from_codes(codes, categories=saved)
    if transformer._num_columns:
        numbers = frame[transformer._num_columns].to_numpy(dtype=float, copy=True)
        holes = np.isnan(numbers)
        if holes.any():
            medians = _medians(transformer)
            assert medians is not None  # `supported` requires them whenever there are numeric columns
            numbers[holes] = np.take(medians, np.nonzero(holes)[1])
        for j, column in enumerate(transformer._num_columns):
            columns[column] = numbers[:, j]
    return pd.DataFrame(columns, index=frame.index)[transformer._cat_columns + transformer._num_columns]


def matches_flaml(transformer: Any, frame: pd.DataFrame) -> bool:
    """Whether the fast path gives FLAML's own frame on the first rows it sees (checked once per transformer)."""
    with _LOCK:
        known = _CHECKED.get(transformer)
    if known is not None:
        return known
    sample = frame.head(CHECK_ROWS)
    try:
        pd.testing.assert_frame_equal(fast_transform(transformer, sample), transformer.transform(sample),
                                      check_dtype=True, check_categorical=True)
        same = True
    except (AssertionError, KeyError, ValueError, TypeError):
        same = False
    with _LOCK, contextlib.suppress(TypeError):  # not weak-referenceable: checked every call
        _CHECKED[transformer] = same
    return same


def transform(transformer: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """FLAML's transform of `frame`, by the fast path when it is known to agree."""
    if supported(transformer) and matches_flaml(transformer, frame):
        return fast_transform(transformer, frame)
    return transformer.transform(frame)
