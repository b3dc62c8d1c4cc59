"""The methods a forecast chooses between and how it chooses: each series' statistical methods (exponential
smoothing, theta) and the one-standard-error rule over the backtest folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.forecasting.baselines import seasonal_naive
from backend.forecasting.frequency import Frequency
from backend.forecasting.scores import mase


def test_each_series_statistical_method_follows_a_trend_and_season_and_only_positive_data_is_multiplicative() -> None:
    """Exponential smoothing (form by AICc) and theta, fitted on one trending seasonal series, forecast its
    held-out year closer than repeating last year does; series with zeros get no multiplicative form."""
    from backend.forecasting.ets import candidate_forms, ets_forecast
    from backend.forecasting.theta import theta_forecast

    rng = np.random.default_rng(5)
    months = np.arange(84)
    values = (100 + 1.5 * months) * (1 + 0.25 * np.sin(2 * np.pi * months / 12)) + rng.normal(0, 2, 84)
    history, held_out = values[:72], values[72:]
    repeat_last_year = mase(held_out, seasonal_naive(history, 12, 12), history, 12)
    for method in (ets_forecast, theta_forecast):
        assert mase(held_out, method(history, 12, Frequency.MONTHLY), history, 12) < 0.6 * repeat_last_year, \
            method.__name__
    forms = candidate_forms(history, 12)
    assert any(f.seasonal == "mul" for f in forms) and any(f.damped for f in forms)
    assert not any(f.error == "add" and f.seasonal == "mul" for f in forms)  # unstable: left out
    with_zero = np.concatenate([[0.0], history[1:]])
    assert all(f.error == "add" and f.seasonal != "mul" for f in candidate_forms(with_zero, 12))
    flat = np.full(30, 7.0)
    monthly = Frequency.MONTHLY
    assert np.all(ets_forecast(flat, 3, monthly) == 7.0) and np.all(theta_forecast(flat, 3, monthly) == 7.0)


def test_theta_follows_the_season_and_trend_of_recent_years_not_of_decades_ago() -> None:
    """Forty-four years of quarters: a large seasonal swing and a steep climb for thirty, then a small swing on
    a gentle slope. Theta forecasts the small swing and the gentle slope (fitted on the whole history, its one
    seasonal pattern and one straight line were those of the distant past)."""
    from backend.forecasting.theta import RECENT_YEARS, theta_forecast

    rng = np.random.default_rng(11)
    quarters = np.arange(176)
    recent = quarters >= 120
    swing = np.where(recent, 0.02, 0.25) * np.sin(np.pi / 2 * quarters)  # ±25% seasons, then ±2%
    level = np.where(recent, 400 + 0.5 * (quarters - 120), 40 + 3 * quarters)
    values = level * (1 + swing) + rng.normal(0, 1, 176)
    history, held_out = values[:168], values[168:]
    assert 4 * RECENT_YEARS <= 168 - 120  # the window holds only the recent regime
    forecast = theta_forecast(history, 8, Frequency.QUARTERLY)
    assert np.ptp(forecast[:4]) / forecast.mean() < 0.08  # this year's seasons differ by ~4%, not ~35%
    assert mase(held_out, forecast, history, 4) < mase(held_out, seasonal_naive(history, 8, 4), history, 4)


def test_an_average_within_noise_of_the_best_method_is_chosen_and_a_clearly_better_method_alone_is_kept() -> None:
    from backend.forecasting.backtest_run import SEASONAL_NAIVE, BacktestReport, FoldScore
    from backend.forecasting.fit import robust_choice
    from backend.forecasting.model import combination_name

    def report(scores: dict[str, np.ndarray]) -> BacktestReport:  # one score per (fold, series) cell
        return BacktestReport([FoldScore(method, fold, f"s{series}", {"mase": float(values[fold, series])})
                               for method, values in scores.items() for fold, series in np.ndindex(values.shape)],
                              {method: pd.DataFrame() for method in scores})

    rng = np.random.default_rng(3)

    def noise(spread: float) -> np.ndarray:  # mean exactly zero: the shift added is the difference in means
        drawn = rng.normal(0, spread, (3, 4))
        return drawn - drawn.mean()

    theta, average = "theta method", combination_name(("theta method", "exponential smoothing"))
    alone = 0.8 + rng.normal(0, 0.2, (3, 4))
    noisy = report({theta: alone, average: alone + 0.02 + noise(0.2),
                    SEASONAL_NAIVE: alone + 0.5})
    assert noisy.best() == theta and noisy.within_noise_of_best() == [theta, average]
    assert robust_choice(noisy) == average  # a little worse on these folds, within their noise

    clear = report({theta: alone, average: alone + 0.1 + noise(0.01), SEASONAL_NAIVE: alone + 0.5})
    assert clear.within_noise_of_best() == [theta] and robust_choice(clear) == theta

    # an average within noise of seasonal naive but worse than it never displaces it
    baseline_best = report({SEASONAL_NAIVE: alone, average: alone + 0.02 + noise(0.2)})
    assert average in baseline_best.within_noise_of_best() and robust_choice(baseline_best) == SEASONAL_NAIVE


def test_series_judged_on_the_same_folds_are_not_counted_as_independent_evidence() -> None:
    """40 series that all moved together: the average was worse on one fold and better on the other two. That is
    three pieces of evidence, not 120; the ranking within their noise is chance, and the average is chosen."""
    from backend.forecasting.backtest_run import BacktestReport, FoldScore
    from backend.forecasting.fit import robust_choice
    from backend.forecasting.model import combination_name

    rng = np.random.default_rng(5)
    theta, average = "theta method", combination_name(("theta method", "exponential smoothing"))
    alone = 0.8 + rng.normal(0, 0.05, (3, 40))
    shared = np.asarray([0.25, -0.15, -0.04])[:, None]  # each fold's shock, the same for every series in it
    scores = {theta: alone, average: alone + shared + rng.normal(0, 0.01, (3, 40))}
    report = BacktestReport([FoldScore(m, fold, f"s{series}", {"mase": float(v[fold, series])})
                             for m, v in scores.items() for fold, series in np.ndindex(v.shape)],
                            {m: pd.DataFrame() for m in scores})
    assert report.best() == theta and report.mean(average) > report.mean(theta)
    assert report.within_noise_of_best() == [theta, average]
    assert robust_choice(report) == average
