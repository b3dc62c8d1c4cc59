"""How often a time series has a row: detected from its timestamps, said in words, with the season that goes
with it (12 months in a year, 7 days in a week, …) and the calendar step that makes the next periods.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backend.errors import InvalidTargetError


class Frequency(enum.StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"

    @property
    def period_word(self) -> str:
        return {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter",
                "yearly": "year"}[self.value]

    @property
    def season_length(self) -> int:
        """Periods in the cycle a seasonal-naive forecast repeats: a day of hours, a week of days, a year of
        weeks, months or quarters; yearly data has no season."""
        return {"hourly": 24, "daily": 7, "weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}[self.value]

    @property
    def periods_per_year(self) -> int:
        """About how many periods a year holds (a method that looks back a number of years counts them)."""
        return {"hourly": 8766, "daily": 365, "weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}[self.value]

    @property
    def season_words(self) -> str:
        return {"hourly": "the same hour yesterday", "daily": "the same day last week",
                "weekly": "the same week last year", "monthly": "the same month last year",
                "quarterly": "the same quarter last year", "yearly": "last year"}[self.value]


# Typical gap between rows, in days, and how far from it a gap may be and still count as that frequency.
_SPACING_DAYS: list[tuple[Frequency, float, float]] = [
    (Frequency.HOURLY, 1 / 24, 1 / 24 * 0.01),
    (Frequency.DAILY, 1.0, 0.01),
    (Frequency.WEEKLY, 7.0, 0.01),
    (Frequency.MONTHLY, 30.44, 3.1),  # 28 to 31 days
    (Frequency.QUARTERLY, 91.31, 3.1),  # 89 to 92 days
    (Frequency.YEARLY, 365.25, 1.1),  # 365 or 366 days
]


@dataclass(frozen=True)
class DetectedFrequency:
    frequency: Frequency
    offset: pd.DateOffset  # steps from one period to the next, landing where the data's rows do
    anchor: str  # where in the period the rows sit, in words ("" when it goes without saying)
    regular_share: float  # share of the gaps between consecutive distinct timestamps that are one period

    @property
    def words(self) -> str:
        """E.g. "monthly (one row per month, on the 1st)"."""
        where = f", {self.anchor}" if self.anchor else ""
        return f"{self.frequency.value} (one row per {self.frequency.period_word}{where})"

    def next_periods(self, last: pd.Timestamp, count: int) -> pd.DatetimeIndex:
        """The `count` periods after `last` (a period of the data)."""
        return pd.DatetimeIndex([last + self.offset * k for k in range(1, count + 1)])

    def snapped(self, times: pd.Series) -> pd.Series:
        """Each time moved to the nearest period of the calendar that starts at the earliest one (a Tuesday row
        of Monday weeks, a reading at 10:02 of hourly data), when it lies within half a period of it."""
        present = times.notna().to_numpy()
        if not present.any():
            return times
        known = times[present]
        calendar = self.periods_between(known.min(), known.max() + self.offset)
        days = next(d for f, d, _ in _SPACING_DAYS if f is self.frequency)
        grid = pd.DataFrame({"period": calendar, "__at": calendar})
        # by position, not index label: a frame stacked from parts repeats its labels
        ordered = pd.DataFrame({"__at": known.to_numpy(), "__row": np.flatnonzero(present)}).sort_values("__at")
        matched = pd.merge_asof(ordered, grid, on="__at", direction="nearest",
                                tolerance=pd.Timedelta(days=days / 2))
        out = times.to_numpy().copy()
        out[matched["__row"].to_numpy()] = matched["period"].fillna(matched["__at"]).to_numpy()
        return pd.Series(out, index=times.index, name=times.name)

    def periods_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """Every period from `start` to `end`, both included (the calendar a complete series has)."""
        periods, step = [], 0
        while (current := start + self.offset * step) <= end:  # multiples of the offset, as next_periods steps:
            periods.append(current)                            # Jan 30 → Feb 28 → Mar 30, never → Mar 28
            step += 1
        return pd.DatetimeIndex(periods)


def detect_frequency(timestamps: pd.Series) -> DetectedFrequency:
    """The frequency of `timestamps` (one series' times, or a panel's: duplicates are ignored). Raises
    InvalidTargetError when there are too few distinct times or the gaps fit no calendar frequency."""
    times = pd.DatetimeIndex(pd.to_datetime(timestamps.dropna()).unique()).sort_values().as_unit("ns")
    if len(times) < 3:
        raise InvalidTargetError(f"Only {len(times)} distinct time(s): too few to tell how often the data has a row.",
                                 hint="A forecast needs a history of at least a few periods.")
    gaps = np.diff(times.asi8) / (86_400 * 1e9)  # in days
    typical = float(np.median(gaps))
    for frequency, days, tolerance in _SPACING_DAYS:
        if abs(typical - days) <= tolerance:
            regular = float(np.mean(np.abs(gaps - days) <= tolerance))
            offset, anchor = _offset(frequency, times)
            return DetectedFrequency(frequency, offset, anchor, regular)
    raise InvalidTargetError(
        f"The rows are {typical:.3g} days apart (typically), which is not hourly, daily, weekly, monthly, "
        "quarterly or yearly.", hint="Aggregate the table to one of those periods first (e.g. a daily total).")


def _offset(frequency: Frequency, times: pd.DatetimeIndex) -> tuple[pd.DateOffset, str]:
    """The step that lands where the data's rows do (month ends stay month ends), and that place in words."""
    if frequency is Frequency.HOURLY:
        return pd.DateOffset(hours=1), ""
    if frequency is Frequency.DAILY:
        return pd.DateOffset(days=1), ""
    if frequency is Frequency.WEEKLY:
        return pd.DateOffset(weeks=1), f"on {times[0].day_name()}s"
    months = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.YEARLY: 12}[frequency]
    if np.all(times.day == 1):
        return pd.DateOffset(months=months), "on the 1st"
    if np.all(times.is_month_end):
        return pd.offsets.MonthEnd(months), "on the last day"
    return pd.DateOffset(months=months), f"on day {times[0].day}"
