"""The one home of session state: an Enum of keys and typed accessors.

Widget values are forgotten when a page stops drawing the widget, so wizard choices that must survive a
page change are copied into these plain keys.
"""

from __future__ import annotations

import enum
from typing import Any

import streamlit as st

from backend.forecasting.series import SeriesSpec
from backend.task_detection import Task
from backend.warehouse.base import TableRef


class Key(enum.StrEnum):
    TABLE = "wizard.table"
    TARGET = "wizard.target"
    TASK = "wizard.task"
    FEATURES = "wizard.features"
    RUN_ID = "wizard.run_id"
    MODEL_ID = "wizard.model_id"
    CASTS = "wizard.casts"
    DATE_CASTS = "wizard.date_casts"  # text columns read as dates
    DEDUPLICATE = "wizard.deduplicate"
    EDITOR_VERSION = "wizard.editor_version"
    JUMP_TO_TABLE = "wizard.jump_to_table"
    IMBALANCED = "wizard.imbalanced"
    WAREHOUSE = "wizard.warehouse"
    OPEN_DASHBOARD = "wizard.open_dashboard"  # the model a page hands to the dashboard it switches to
    POSITIVE = "wizard.positive"  # binary targets: the outcome of interest, as text
    FORECAST = "wizard.forecast"  # forecasts: the SeriesSpec chosen on the Target step
    UPLOAD_RESULT = "wizard.upload_result"  # the last upload's ImportResult, said on the Data step


def get(key: Key, default: Any = None) -> Any:
    return st.session_state.get(key.value, default)


def take(key: Key) -> Any:
    """The value under `key`, removed (a hand-over read once)."""
    return st.session_state.pop(key.value, None)


def put(key: Key, value: Any) -> None:
    st.session_state[key.value] = value


def clear(*keys: Key) -> None:
    for key in keys:
        st.session_state.pop(key.value, None)


def follow_warehouse(current: object) -> None:
    """The wizard's choices belong to one warehouse: forget them when this session moves to another."""
    if get(Key.WAREHOUSE) not in (None, current):
        clear(*Key)
    put(Key.WAREHOUSE, current)


def table() -> TableRef | None:
    value = get(Key.TABLE)
    return value if isinstance(value, TableRef) else None


def select_table(ref: TableRef) -> None:
    """Choose a table; choices downstream of it no longer apply."""
    if table() != ref:
        put(Key.TABLE, ref)
        clear(Key.TARGET, Key.TASK, Key.FEATURES, Key.CASTS, Key.DATE_CASTS, Key.DEDUPLICATE, Key.IMBALANCED, Key.POSITIVE,
              Key.FORECAST)


def target() -> str | None:
    return get(Key.TARGET)


def choose_target(column: str | None) -> None:
    """Choose the column to predict; what was decided for the previous one no longer applies."""
    if target() != column:
        put(Key.TARGET, column)
        clear(Key.TASK, Key.FEATURES, Key.CASTS, Key.DATE_CASTS, Key.DEDUPLICATE, Key.POSITIVE)


def task() -> Task | None:
    value = get(Key.TASK)
    return Task(value) if value else None


def positive() -> str | None:
    return get(Key.POSITIVE)


def forecast_spec() -> SeriesSpec | None:
    value = get(Key.FORECAST)
    return value if isinstance(value, SeriesSpec) else None


def features() -> list[str]:
    return list(get(Key.FEATURES, []) or [])


def casts() -> list[str]:
    return list(get(Key.CASTS, []) or [])


def date_casts() -> list[str]:
    return list(get(Key.DATE_CASTS, []) or [])


def deduplicate() -> bool:
    return bool(get(Key.DEDUPLICATE, False))


def bump_editor() -> None:
    """Make the feature editor redraw from state (after a remedy changed the selection)."""
    put(Key.EDITOR_VERSION, int(get(Key.EDITOR_VERSION, 0)) + 1)
