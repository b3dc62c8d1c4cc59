"""Forecasting foundations: frequency detection, time-ordered backtest folds, baselines and forecast errors."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidTargetError
from backend.forecasting.backtest import history_needed, rolling_origin_folds
from backend.forecasting.backtest_run import Forecaster
from backend.forecasting.baselines import naive, seasonal_naive
from backend.forecasting.frequency import Frequency, detect_frequency
from backend.forecasting.scores import FORECAST_METRICS, forecast_score, mape, mase, seasonal_naive_scale, smape
from backend.forecasting.series import PERIOD, SERIES_KEY, Duplicates, Gaps, SeriesSpec, prepare_series


@pytest.mark.parametrize(("start", "freq", "expected", "season", "words"), [
    ("2024-03-01 00:00", "h", Frequency.HOURLY, 24, "hourly (one row per hour)"),
    ("2024-03-01", "D", Frequency.DAILY, 7, "daily (one row per day)"),
    ("2024-03-06", "W-WED", Frequency.WEEKLY, 52, "weekly (one row per week, on Wednesdays)"),
    ("2019-01-01", "MS", Frequency.MONTHLY, 12, "monthly (one row per month, on the 1st)"),
    ("2019-01-31", "ME", Frequency.MONTHLY, 12, "monthly (one row per month, on the last day)"),
    ("2015-01-01", "QS", Frequency.QUARTERLY, 4, "quarterly (one row per quarter, on the 1st)"),
    ("2015-03-31", "QE", Frequency.QUARTERLY, 4, "quarterly (one row per quarter, on the last day)"),
    ("1990-01-01", "YS", Frequency.YEARLY, 1, "yearly (one row per year, on the 1st)"),
])
def test_each_frequency_is_detected_said_in_words_and_continued(start: str, freq: str, expected: Frequency,
                                                               season: int, words: str) -> None:
    times = pd.date_range(start, periods=40, freq=freq)
    shuffled = pd.Series(np.random.default_rng(0).permutation(times.repeat(3)))  # a panel: each time thrice
    detected = detect_frequency(shuffled)
    assert detected.frequency is expected and detected.frequency.season_length == season
    assert detected.words == words and detected.regular_share == 1.0
    following = pd.date_range(times[-1], periods=4, freq=freq)[1:]
    assert list(detected.next_periods(times[-1], 3)) == list(following)
    assert list(detected.periods_between(times[0], times[-1])) == list(times)


def test_gaps_lower_the_regular_share_and_odd_spacing_is_refused_with_a_remedy() -> None:
    times = pd.Series(pd.date_range("2023-01-01", periods=60, freq="D").delete([10, 11, 30]))
    detected = detect_frequency(times)
    assert detected.frequency is Frequency.DAILY and 0.9 < detected.regular_share < 1.0
    assert len(detected.periods_between(times.iloc[0], times.iloc[-1])) == 60  # the calendar refills the gaps
    with pytest.raises(InvalidTargetError, match="not hourly, daily") as refused:
        detect_frequency(pd.Series(pd.date_range("2023-01-01", periods=30, freq="3D")))
    assert "Aggregate" in refused.value.hint
    with pytest.raises(InvalidTargetError, match="too few"):
        detect_frequency(pd.Series(pd.to_datetime(["2023-01-01", "2023-01-02"])))


@pytest.mark.parametrize(("periods", "horizon", "folds", "step"), [(48, 12, 3, None), (100, 7, 5, 3), (20, 1, 3, 1)])
def test_no_fold_ever_validates_on_data_earlier_than_its_training_data(periods: int, horizon: int, folds: int,
                                                                       step: int | None) -> None:
    made = rolling_origin_folds(periods, horizon, folds=folds, step=step)
    assert len(made) == folds
    assert made[-1].test[-1] == periods - 1  # the last fold is judged on the latest periods
    for fold in made:
        assert len(fold.test) == horizon and fold.train.start == 0
        assert max(fold.train) < min(fold.test)  # every training period comes before every judged one
    origins = [f.origin for f in made]
    assert origins == sorted(origins) and len(set(origins)) == folds


def test_a_history_too_short_for_the_backtests_is_refused_with_what_is_needed() -> None:
    with pytest.raises(InvalidTargetError, match="at least 31 are needed") as refused:
        rolling_origin_folds(30, 10, folds=3, min_train=1)
    assert "fewer periods ahead" in refused.value.hint
    assert history_needed(12, 12) == 12 + 36


def test_baselines_repeat_the_last_value_and_the_last_season() -> None:
    history = np.arange(1.0, 13.0)  # 12 months: 1 … 12
    assert naive(history, 3).tolist() == [12.0, 12.0, 12.0]
    assert seasonal_naive(history, 5, 4).tolist() == [9.0, 10.0, 11.0, 12.0, 9.0]
    assert seasonal_naive(history[:3], 2, 12).tolist() == [3.0, 3.0]  # shorter than a season: naive


def test_forecast_errors_equal_their_definitions() -> None:
    history = np.array([10.0, 12, 14, 11, 13, 15, 12, 14, 16])  # season 3
    actual, forecast = np.array([13.0, 15, 17]), np.array([12.0, 16, 17])
    scale = np.mean(np.abs(history[3:] - history[:-3]))  # seasonal-naive error on the history
    assert seasonal_naive_scale(history, 3) == pytest.approx(scale)
    assert mase(actual, forecast, history, 3) == pytest.approx(np.mean([1, 1, 0]) / scale)
    # forecasting the history's own seasonal naive scores MASE 1 on a future that moves like the history
    assert mase(history[3:], history[:-3], history, 3) == pytest.approx(1.0)
    assert smape(actual, forecast) == pytest.approx(100 * np.mean([1 / 12.5, 1 / 15.5, 0]))
    assert smape(np.array([0.0]), np.array([0.0])) == 0.0
    assert mape(np.array([0.0, 10.0]), np.array([5.0, 12.0])) == pytest.approx(20.0)  # the zero is left out
    assert forecast_score("rmse", actual, forecast, history, 3) == pytest.approx(np.sqrt(2 / 3))
    assert set(FORECAST_METRICS) == {"mase", "smape", "mape", "rmse"}
    assert all(m.explanation for m in FORECAST_METRICS.values())


def _panel(months: dict[str, int], start: str = "2020-01-01") -> pd.DataFrame:
    """Monthly sales per store, each store with its own length of history."""
    rng = np.random.default_rng(5)
    parts = []
    for store, n in months.items():
        when = pd.date_range(start, periods=n, freq="MS")
        season = 10 * np.sin(2 * np.pi * when.month / 12)
        parts.append(pd.DataFrame({"month": when, "store": store, "sales": 100 + season + rng.normal(0, 1, n)}))
    return pd.concat(parts, ignore_index=True)


def test_duplicate_rows_are_added_up_averaged_or_refused_as_chosen() -> None:
    frame = _panel({"A": 40})
    doubled = pd.concat([frame, frame.iloc[[5]].assign(sales=1.0)], ignore_index=True)
    spec = SeriesSpec("month", "sales", ("store",), horizon=6)
    summed = prepare_series(doubled, spec)
    period = frame["month"].iloc[5]
    value = summed.history.loc[summed.history[PERIOD] == period, "sales"].item()
    assert value == pytest.approx(frame["sales"].iloc[5] + 1.0)
    assert any(f.kind == "duplicates" and "added up" in f.message for f in summed.findings)
    averaged = prepare_series(doubled, replace(spec, duplicates=Duplicates.MEAN))
    assert averaged.history.loc[averaged.history[PERIOD] == period, "sales"].item() == pytest.approx(
        (frame["sales"].iloc[5] + 1.0) / 2)
    with pytest.raises(InvalidTargetError, match="1 \\(series, month\\) pair has more than one row"):
        prepare_series(doubled, replace(spec, duplicates=Duplicates.REFUSE))


def test_missing_periods_are_filled_as_chosen_and_reported_per_series() -> None:
    frame = _panel({"A": 40, "B": 40})
    holed = frame.drop(index=frame.index[(frame["store"] == "B") & frame.index.isin([45, 46])])
    spec = SeriesSpec("month", "sales", ("store",), horizon=6)
    zero = prepare_series(holed, replace(spec, gaps=Gaps.ZERO))
    b = zero.history[zero.history[SERIES_KEY] == "B"]
    assert len(b) == 40 and (b["sales"] == 0).sum() == 2
    gaps = next(f for f in zero.findings if f.kind == "gaps")
    assert gaps.series == ("B",) and "2 missing periods in 1 series" in gaps.message
    line = prepare_series(holed, spec).history.set_index([SERIES_KEY, PERIOD])["sales"]
    before, after = frame["sales"].iloc[44], frame["sales"].iloc[47]
    assert line[("B", frame["month"].iloc[45])] == pytest.approx(before + (after - before) / 3)


def test_a_series_too_short_is_left_out_and_listed_and_too_short_everywhere_is_refused() -> None:
    frame = _panel({"long": 48, "also long": 40, "new store": 10})
    prepared = prepare_series(frame, SeriesSpec("month", "sales", ("store",), horizon=6))
    assert prepared.left_out == ["new store"] and sorted(prepared.series) == ["also long", "long"]
    assert any(f.kind == "short" and "'new store'" in f.message for f in prepared.findings)
    with pytest.raises(InvalidTargetError, match=r"longest history is 48 months; .* at least 60"):
        prepare_series(frame, SeriesSpec("month", "sales", ("store",), horizon=16))


def test_text_times_are_read_and_said_mixed_zones_and_unreadable_text_are_refused() -> None:
    frame = _panel({"A": 40})
    as_text = frame.assign(month=frame["month"].dt.strftime("%Y-%m-%d"))
    prepared = prepare_series(as_text, SeriesSpec("month", "sales", horizon=6))
    assert len(prepared.history) == 40 and any(f.kind == "time_as_text" for f in prepared.findings)
    zones = as_text.assign(month=[f"{d}T00:00:00{'+01:00' if i % 2 else '+02:00'}"
                                  for i, d in enumerate(as_text["month"])])
    with pytest.raises(InvalidTargetError, match="mixes time zones") as mixed:
        prepare_series(zones, SeriesSpec("month", "sales", horizon=6))
    assert "one zone" in mixed.value.hint
    garbled = as_text.assign(month=["soon"] * 20 + as_text["month"].tolist()[20:])
    with pytest.raises(InvalidTargetError, match="does not read as dates"):
        prepare_series(garbled, SeriesSpec("month", "sales", horizon=6))
    with pytest.raises(InvalidTargetError, match="is not a number"):
        prepare_series(frame.assign(sales="lots"), SeriesSpec("month", "sales", horizon=6))


def test_future_rows_are_set_aside_and_constant_series_are_named() -> None:
    frame = _panel({"A": 40, "flat": 40})
    frame.loc[frame["store"] == "flat", "sales"] = 7.0
    future = pd.DataFrame({"month": pd.date_range("2023-05-01", periods=3, freq="MS"), "store": "A", "sales": None})
    prepared = prepare_series(pd.concat([frame, future], ignore_index=True),
                              SeriesSpec("month", "sales", ("store",), horizon=3))
    assert len(prepared.future) == 3 and prepared.history[PERIOD].max() == frame["month"].max()
    assert {f.kind for f in prepared.findings} >= {"future_rows", "constant"}
    assert next(f for f in prepared.findings if f.kind == "constant").series == ("flat",)


def test_too_many_series_are_capped_with_the_rule_said(monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.forecasting.series as series_module

    monkeypatch.setattr(series_module, "MAX_SERIES", 2)
    frame = _panel({"big": 48, "bigger": 50, "small": 45})
    prepared = prepare_series(frame, SeriesSpec("month", "sales", ("store",), horizon=3))
    assert sorted(prepared.series) == ["big", "bigger"]
    assert any(f.kind == "too_many_series" and "the 2 with the most rows" in f.message for f in prepared.findings)


def _simulated(series: int, periods: int, seed: int = 11) -> pd.DataFrame:
    """Monthly series with a yearly season, a level of their own and noise."""
    rng = np.random.default_rng(seed)
    when = pd.date_range("2010-01-01", periods=periods, freq="MS")
    parts = []
    for i in range(series):
        level = rng.uniform(50, 500)
        season = 0.2 * level * np.sin(2 * np.pi * (when.month + i) / 12)
        parts.append(pd.DataFrame({"month": when, "store": f"S{i:02d}",
                                   "sales": level + season + rng.normal(0, 0.05 * level, periods)}))
    return pd.concat(parts, ignore_index=True)


def test_the_global_lag_model_beats_naive_and_the_backtest_compares_every_method() -> None:
    from backend.forecasting.backtest_run import NAIVE, SEASONAL_NAIVE, baseline_forecaster, run_backtest
    from backend.forecasting.lag_model import lag_forecaster, lag_plan, lightgbm_regressor

    prepared = prepare_series(_simulated(12, 72), SeriesSpec("month", "sales", ("store",), horizon=6))
    plan = lag_plan(prepared.frequency, 72)
    assert 12 in plan.lags and plan.feature_words(prepared.frequency.frequency)["lag_12"] == "the same month last year"
    methods = {NAIVE: baseline_forecaster(prepared.frequency, "sales", seasonal=False),
               SEASONAL_NAIVE: baseline_forecaster(prepared.frequency, "sales", seasonal=True),
               "lag model": lag_forecaster(plan, prepared.frequency, "sales", lightgbm_regressor())}
    report = run_backtest(prepared.history, prepared.frequency, "sales", 6, methods)
    assert {s.fold for s in report.scores} == {1, 2, 3} and len({s.series for s in report.scores}) == 12
    assert report.mean("lag model") < report.mean(NAIVE)
    assert report.mean(SEASONAL_NAIVE) < report.mean(NAIVE)  # the season is real
    assert report.best() in ("lag model", SEASONAL_NAIVE)
    worst_first = report.by_series("lag model")
    assert worst_first.is_monotonic_decreasing and set(worst_first.index) == set(prepared.series)


def test_intervals_contain_the_truth_at_roughly_their_nominal_rate() -> None:
    """80% and 95% intervals from backtest errors, on 40 simulated series whose last 6 months were held out."""
    from backend.forecasting.backtest_run import (
        SEASONAL_NAIVE,
        baseline_forecaster,
        interval_widths,
        run_backtest,
        with_intervals,
    )

    frame = _simulated(40, 78, seed=3)
    cut = frame["month"].sort_values().unique()[-6]
    prepared = prepare_series(frame[frame["month"] < cut], SeriesSpec("month", "sales", ("store",), horizon=6))
    method = baseline_forecaster(prepared.frequency, "sales", seasonal=True)
    report = run_backtest(prepared.history, prepared.frequency, "sales", 6, {SEASONAL_NAIVE: method}, folds=4)
    widths = interval_widths(report.errors[SEASONAL_NAIVE], 6)
    assert np.all(np.diff(widths[0.8]) >= 0) and np.all(widths[0.95] >= widths[0.8])
    forecasts = with_intervals(method(prepared.history, 6), prepared.history, "sales", widths)
    truth = frame[frame["month"] >= cut].rename(columns={"store": SERIES_KEY, "month": PERIOD})
    judged = forecasts.merge(truth, on=[SERIES_KEY, PERIOD])
    assert len(judged) == 240
    inside_80 = ((judged["sales"] >= judged["lower_80"]) & (judged["sales"] <= judged["upper_80"])).mean()
    inside_95 = ((judged["sales"] >= judged["lower_95"]) & (judged["sales"] <= judged["upper_95"])).mean()
    assert 0.65 <= inside_80 <= 0.93 and 0.86 <= inside_95 <= 1.0 and inside_95 > inside_80


def test_a_forecast_is_backtested_against_the_baselines_and_continues_every_series() -> None:
    """The whole fit: FLAML searches the lag model's regressor (2 s), every method is backtested, the best
    forecasts each series' next periods with nested intervals, and a lag model says its drivers in words."""
    from backend.forecasting.backtest_run import NAIVE, SEASONAL_NAIVE
    from backend.forecasting.fit import COMBINED, LAG_MODEL, fit_forecast
    from backend.forecasting.theta import THETA

    frame = _simulated(6, 60, seed=8)
    prepared = prepare_series(frame, SeriesSpec("month", "sales", ("store",), horizon=4))
    result = fit_forecast(prepared, "sales", 4, budget_s=2)
    from backend.forecasting.model import averaged_methods, combination_members
    from backend.forecasting.report import build_report

    tried = set(result.backtest.errors)
    assert {NAIVE, SEASONAL_NAIVE, LAG_MODEL, COMBINED, THETA} <= tried  # theta: cheap enough for any budget
    averages = [m for m in tried if combination_members(m)]
    singles = tried - {NAIVE, COMBINED, *averages}
    # every pair and every three of the single methods is averaged, not only the best-ranked (COMBINED is one pair)
    assert {frozenset(averaged_methods(m)) for m in tried if averaged_methods(m)} == {
        frozenset(members) for size in (2, 3) for members in itertools.combinations(singles, size)}
    assert result.learner in (None, "lgbm", "rf", "extra_tree", "xgboost")
    means = {m: result.backtest.mean(m) for m in result.backtest.errors}
    close = result.backtest.within_noise_of_best()  # the choice: of these, the one averaging the most methods
    assert result.chosen in close and min(means, key=means.get) in close
    assert all(len(averaged_methods(m)) <= len(averaged_methods(result.chosen)) for m in close
               if means[m] < means[SEASONAL_NAIVE])
    report = build_report(result, prepared)
    best = min(means, key=means.get)
    assert report.best_alone == (best if best != result.chosen else None)
    assert any(line.startswith("It was chosen over") for line in report.summary("sales")) == (best != result.chosen)
    forecasts = result.forecasts
    assert len(forecasts) == 6 * 4 and set(forecasts[SERIES_KEY]) == set(prepared.series)
    last = prepared.history.groupby(SERIES_KEY)[PERIOD].max()
    for key, rows in forecasts.groupby(SERIES_KEY):
        assert list(rows[PERIOD]) == list(prepared.frequency.next_periods(last[key], 4))
    ordered = forecasts[["lower_95", "lower_80", "forecast", "upper_80", "upper_95"]].to_numpy()
    assert np.all(np.diff(ordered, axis=1) >= 0)
    if result.chosen in (LAG_MODEL, COMBINED):
        assert result.drivers and all(d.words for d in result.drivers)


def _reference_features(values: np.ndarray, position: int, lags: tuple[int, ...], windows: tuple[int, ...],
                        season: int) -> tuple[dict[str, float], float]:
    """The lag features by their definition, one period at a time: the values before `position`, relative to
    the mean absolute value of the last season (or three periods)."""
    recent = values[max(0, position - max(season, 3)):position]
    scale = float(np.mean(np.abs(recent))) if len(recent) else 1.0
    scale = scale if scale > 0 else 1.0
    row = {f"lag_{lag}": values[position - lag] / scale if position - lag >= 0 else np.nan for lag in lags}
    for width in windows:
        chunk = values[max(0, position - width):position]
        row[f"mean_{width}"] = float(np.mean(chunk)) / scale if len(chunk) else np.nan
    return row, scale


def test_lag_features_equal_their_definition_and_a_panel_forecasts_each_series_as_if_alone() -> None:
    from backend.forecasting.lag_model import LagPlan, _feature_block, _windows, fit_lag_model, lightgbm_regressor

    plan = LagPlan(lags=(1, 2, 12), windows=(3, 12), season_length=12)
    values = np.random.default_rng(4).normal(100, 10, 40)
    features, scales = _feature_block(_windows(values, plan.width), plan)
    for position in (0, 1, 5, 12, 39, 40):
        expected, scale = _reference_features(values, position, plan.lags, plan.windows, 12)
        assert scales[position] == pytest.approx(scale)
        for name, value in expected.items():
            assert features[name][position] == pytest.approx(value, nan_ok=True), (name, position)

    prepared = prepare_series(_simulated(5, 48, seed=2), SeriesSpec("month", "sales", ("store",), horizon=6))
    model = fit_lag_model(prepared.history, plan, prepared.frequency, "sales", lightgbm_regressor(n_estimators=30))
    together = model.forecast(prepared.history, 6)
    one = prepared.history[prepared.history[SERIES_KEY] == "S03"]
    alone = model.forecast(one, 6)
    np.testing.assert_allclose(together.loc[together[SERIES_KEY] == "S03", "forecast"].to_numpy(),
                               alone["forecast"].to_numpy())
    assert list(alone[PERIOD]) == list(prepared.frequency.next_periods(one[PERIOD].iloc[-1], 6))


def test_a_combination_is_scored_as_the_average_of_its_members_forecasts() -> None:
    from backend.forecasting.backtest_run import (
        NAIVE,
        SEASONAL_NAIVE,
        baseline_forecaster,
        combination_backtest,
        run_backtest,
    )

    def combined_forecaster(first: Forecaster, second: Forecaster) -> Forecaster:  # the average, refitted
        def forecast(history: pd.DataFrame, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
            both = first(history, horizon, future).merge(second(history, horizon, future), on=[SERIES_KEY, PERIOD])
            return both.assign(forecast=(both["forecast_x"] + both["forecast_y"]) / 2)
        return forecast

    prepared = prepare_series(_simulated(4, 60, seed=6), SeriesSpec("month", "sales", ("store",), horizon=5))
    naive_f = baseline_forecaster(prepared.frequency, "sales", seasonal=False)
    seasonal_f = baseline_forecaster(prepared.frequency, "sales", seasonal=True)
    singles = run_backtest(prepared.history, prepared.frequency, "sales", 5, {NAIVE: naive_f, SEASONAL_NAIVE: seasonal_f})
    combined = combination_backtest(singles, (NAIVE, SEASONAL_NAIVE), "both", prepared.history, prepared.frequency,
                                    "sales", 5)
    refitted = run_backtest(prepared.history, prepared.frequency, "sales", 5,
                            {"both": combined_forecaster(naive_f, seasonal_f)})
    for metric in FORECAST_METRICS:
        assert combined.mean("both", metric) == pytest.approx(refitted.mean("both", metric))
    assert combined.by_fold("both") == pytest.approx(refitted.by_fold("both"))


def test_few_series_get_more_backtest_folds_as_far_as_their_history_allows() -> None:
    from backend.forecasting.backtest import MAX_FOLDS, MIN_FOLDS, backtest_folds, history_needed

    assert backtest_folds(1, 200, 12, 12) == MAX_FOLDS  # one long monthly series: five years of folds
    assert backtest_folds(1, history_needed(12, 12, folds=4), 12, 12) == 4  # as many as its history holds
    assert backtest_folds(20, 76, 8, 4) == MIN_FOLDS  # twenty series judge enough forecasts in three
    assert backtest_folds(1, 30, 6, 12) == MIN_FOLDS  # never fewer than three


def test_untidy_rows_stay_honest_missing_stays_missing_and_unseen_series_are_named() -> None:
    frame = _panel({"A": 40, "B": 40})
    ahead = pd.DataFrame({"month": [frame["month"].max() + pd.DateOffset(months=1)] * 2, "store": ["A", "A"],
                          "sales": [np.nan, np.nan]})  # a future period listed twice: still to come, not a zero
    newcomer = pd.DataFrame({"month": [frame["month"].max()], "store": ["C"], "sales": [np.nan]})
    prepared = prepare_series(pd.concat([frame, ahead, newcomer], ignore_index=True),
                              SeriesSpec("month", "sales", ("store",), horizon=6))
    assert prepared.history.groupby(SERIES_KEY)[PERIOD].max().eq(frame["month"].max()).all()
    assert len(prepared.future) == 1 and "C" in prepared.left_out
    assert any(f.kind == "no_history" and "'C'" in f.message for f in prepared.findings)


@pytest.mark.parametrize(("texts", "expected"), [
    (["15-03-2024", "16-03-2024", "17-03-2024"], "2024-03-15"),  # day first throughout
    (["03-15-2024", "03-16-2024", "03-17-2024"], "2024-03-15"),  # month first; no "time zone" -2024
    (["2024-03-15 00:00+02:00", "2024-03-16 00:00+02:00", "2024-03-17 00:00+02:00"], "2024-03-15"),  # wall clock
])
def test_text_dates_are_read_with_one_format_and_their_own_wall_clock(texts: list[str], expected: str) -> None:
    from backend.forecasting.series import parse_times

    parsed, findings = parse_times(pd.Series(texts * 4), "day")
    assert parsed.iloc[0] == pd.Timestamp(expected) and parsed.notna().all()
    assert [f.kind for f in findings] == ["time_as_text"]


def test_a_series_of_exactly_the_length_the_horizon_needs_is_forecast() -> None:
    """48 months at a 12-month horizon: the earliest fold leaves a season to learn from, too little for lags."""
    from backend.forecasting.fit import fit_forecast

    prepared = prepare_series(_simulated(1, 48, seed=9), SeriesSpec("month", "sales", ("store",), horizon=12))
    result = fit_forecast(prepared, "sales", 12, budget_s=2)
    assert len(result.forecasts) == 12 and result.forecasts["forecast"].notna().all()


def test_known_in_advance_values_reach_the_backtests() -> None:
    """Sales that a promotion drives: the lag model told the promotions of the judged periods beats the same
    model without them."""
    from backend.forecasting.backtest_run import run_backtest
    from backend.forecasting.lag_model import lag_forecaster, lag_plan, lightgbm_regressor

    rng = np.random.default_rng(2)
    frame = _simulated(6, 60, seed=4)
    frame["promo"] = rng.integers(0, 2, len(frame)).astype(float)
    frame["sales"] = frame["sales"] * (1 + frame["promo"])
    spec = SeriesSpec("month", "sales", ("store",), horizon=6, known_columns=("promo",))
    prepared = prepare_series(frame, spec)
    plan = lag_plan(prepared.frequency, 60)
    methods = {"told": lag_forecaster(plan, prepared.frequency, "sales", lightgbm_regressor(), ("promo",)),
               "blind": lag_forecaster(plan, prepared.frequency, "sales", lightgbm_regressor())}
    report = run_backtest(prepared.history, prepared.frequency, "sales", 6, methods)
    assert report.mean("told") < 0.7 * report.mean("blind")


def test_rows_off_the_calendar_are_counted_in_their_nearest_period_not_dropped() -> None:
    weeks = pd.date_range("2022-01-03", periods=80, freq="W-MON")
    times = pd.Series(weeks)
    times.iloc[[10, 40]] += pd.Timedelta(days=1)  # two Tuesdays among the Mondays
    frame = pd.DataFrame({"week": times, "units": np.arange(80, dtype=float)})
    prepared = prepare_series(frame, SeriesSpec("week", "units", horizon=4))
    assert list(prepared.history[PERIOD]) == list(weeks)
    assert prepared.history["units"].tolist() == list(range(80))  # every value kept, none interpolated
    kinds = [f.kind for f in prepared.findings]
    assert "off_calendar" in kinds and "gaps" not in kinds


def test_rows_stacked_from_parts_with_repeated_labels_prepare_like_any_other() -> None:
    parts = [frame.reset_index(drop=True) for _, frame in _simulated(3, 30).groupby("store")]
    stacked = pd.concat(parts)  # labels 0…29 three times
    assert not stacked.index.is_unique
    prepared = prepare_series(stacked, SeriesSpec("month", "sales", ("store",), horizon=3))
    expected = prepare_series(stacked.reset_index(drop=True), SeriesSpec("month", "sales", ("store",), horizon=3))
    pd.testing.assert_frame_equal(prepared.history, expected.history)
    assert len(prepared.history) == 90
