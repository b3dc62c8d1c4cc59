"""The forecast bundle: what a forecast version keeps and every re-forecast loads. It reads the table's rows
the way training did (the same series, frequency, duplicate and gap rules) and forecasts onward from their
newest periods.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace

import pandas as pd

from backend.forecasting.model import ForecastModel
from backend.forecasting.series import PERIOD, SERIES_KEY, PreparedSeries, SeriesSpec, prepare_series, series_keys
from backend.model_bundle import library_versions, unpickle_verified

FORECAST_COLUMNS = ("forecast", "lower_80", "upper_80", "lower_95", "upper_95")


@dataclass
class ForecastBundle:
    spec: SeriesSpec
    target_sql_type: str
    model: ForecastModel
    learner: str | None  # the lag model's regressor family (None for a baseline)
    fingerprint: dict[str, object] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=library_versions)
    task: str = "forecast"
    threshold: None = None  # forecasts label nothing; what a run's summary reads of every bundle

    @property
    def best_estimator(self) -> str:
        return self.model.method

    @property
    def input_columns(self) -> list[str]:
        """The table columns a forecast reads."""
        spec = self.spec
        return list(dict.fromkeys([spec.time_column, *spec.series_columns, *spec.known_columns, spec.target]))

    def prepare(self, frame: pd.DataFrame) -> PreparedSeries:
        """The table's rows as training read them, each series needing only a season of history (no backtests
        follow a re-forecast). Raises InvalidTargetError as prepare_series does."""
        return prepare_series(frame, replace(self.spec, folds=0))

    def forecast_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The next `horizon` periods of every series in `frame`: its series columns (their own values), the
        time column, and FORECAST_COLUMNS."""
        prepared = self.prepare(frame)
        forecasts = self.model.forecast(prepared.history, prepared.future)
        return self.labelled(forecasts, frame)

    def labelled(self, forecasts: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
        """Forecasts keyed by SERIES_KEY/PERIOD, with the series and time columns of `frame` instead."""
        columns = list(self.spec.series_columns)
        out = forecasts
        if columns:
            lookup = frame[columns].drop_duplicates().assign(**{SERIES_KEY: lambda f: series_keys(f, tuple(columns))})
            out = forecasts.merge(lookup.drop_duplicates(SERIES_KEY), on=SERIES_KEY, how="left")
        if pd.api.types.infer_dtype(frame[self.spec.time_column], skipna=True) == "date":  # a DATE column stays one
            out = out.assign(**{PERIOD: pd.to_datetime(out[PERIOD]).dt.date})
        out = out.rename(columns={PERIOD: self.spec.time_column})
        return out[[*columns, self.spec.time_column, *FORECAST_COLUMNS]].reset_index(drop=True)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_verified_bytes(content: bytes, expected_sha256: str) -> ForecastBundle:
        """Unpickle a bundle only if its bytes match the checksum Flurry recorded when writing it."""
        return unpickle_verified(content, expected_sha256, ForecastBundle, "forecast bundle")
