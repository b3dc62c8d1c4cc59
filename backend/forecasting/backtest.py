"""Rolling-origin backtests: the only honest validation of a forecast. Each fold learns from every period up
to its origin and is judged on the `horizon` periods after it; origins step back from the end of the
history, so the last fold is judged on the latest periods. Nothing is shuffled, and no fold ever learns from
a period at or after one it is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.errors import InvalidTargetError

MIN_FOLDS = 3
MAX_FOLDS = 5
# Forecasts judged across the folds: a few series get more folds (as far as their history allows), so the
# choice between methods does not rest on a handful of periods.
JUDGED_FORECASTS = 100


@dataclass(frozen=True)
class Fold:
    """Positions on the series' period axis: learn from [0, origin), judge on [origin, origin + horizon)."""

    number: int  # 1 for the earliest origin
    origin: int
    horizon: int

    @property
    def train(self) -> range:
        return range(0, self.origin)

    @property
    def test(self) -> range:
        return range(self.origin, self.origin + self.horizon)


def rolling_origin_folds(periods: int, horizon: int, *, folds: int = MIN_FOLDS, step: int | None = None,
                         min_train: int = 1) -> list[Fold]:
    """`folds` backtest folds over `periods` periods, the last judged on the final `horizon` periods and each
    earlier one `step` periods (default: the horizon) before. Raises InvalidTargetError when the history is
    too short for them."""
    if horizon < 1:
        raise InvalidTargetError("The forecast horizon must be at least one period.")
    step = horizon if step is None else step
    earliest = periods - horizon - (folds - 1) * step
    if folds < 1 or step < 1 or earliest < min_train:
        needed = min_train + horizon + (folds - 1) * step
        raise InvalidTargetError(
            f"{periods} periods of history are too few for {folds} backtests of {horizon} periods each "
            f"(at least {needed} are needed).", hint="Forecast fewer periods ahead, or use a longer history.")
    return [Fold(i + 1, earliest + i * step, horizon) for i in range(folds)]


def history_needed(horizon: int, season_length: int, *, folds: int = MIN_FOLDS) -> int:
    """The shortest history a series can be backtested and forecast on: a season (for seasonal naive) plus
    the folds' test periods."""
    return max(season_length, 1) + horizon + (folds - 1) * horizon


def backtest_folds(series: int, shortest: int, horizon: int, season_length: int) -> int:
    """MIN_FOLDS, raised towards MAX_FOLDS while fewer than JUDGED_FORECASTS forecasts would be judged and the
    shortest series' history (`shortest` periods) holds another fold."""
    folds = MIN_FOLDS
    while (folds < MAX_FOLDS and series * folds * horizon < JUDGED_FORECASTS
           and history_needed(horizon, season_length, folds=folds + 1) <= shortest):
        folds += 1
    return folds
