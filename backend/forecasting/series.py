"""From a table's rows to clean series a forecaster can learn from, with every problem found said in words:
a time column stored as text, mixed time zones, duplicate (series, time) rows, missing periods, series too
short for the horizon, constant series, and future rows already in the table. Problems with a remedy are
fixed as the user chose and reported; the rest stop the forecast with a message naming the column.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import pandas as pd

from backend.errors import InvalidTargetError
from backend.forecasting.backtest import MIN_FOLDS, history_needed
from backend.forecasting.frequency import DetectedFrequency, detect_frequency

SERIES_KEY = "__series"
PERIOD = "__period"
MAX_SERIES = 10_000  # beyond this a forecast per series is neither readable nor affordable here
MIN_PARSED_SHARE = 0.95  # a text time column must read as times in at least this share of rows


class Duplicates(enum.StrEnum):
    SUM = "sum"  # e.g. several sales lines in one day: the day's total
    MEAN = "mean"  # e.g. several readings in one hour: their average
    REFUSE = "refuse"


class Gaps(enum.StrEnum):
    ZERO = "zero"  # a missing period had none (no sales that day)
    INTERPOLATE = "interpolate"  # a missing period was not recorded: a straight line between its neighbours


@dataclass(frozen=True)
class SeriesSpec:
    time_column: str
    target: str
    series_columns: tuple[str, ...] = ()
    horizon: int = 12
    known_columns: tuple[str, ...] = ()  # known in advance (prices, promotions, holidays)
    duplicates: Duplicates = Duplicates.SUM
    gaps: Gaps = Gaps.INTERPOLATE
    folds: int = MIN_FOLDS


@dataclass(frozen=True)
class SeriesFinding:
    kind: str
    message: str
    remedy: str
    series: tuple[str, ...] = ()  # the series it names (the first few when many)


@dataclass
class PreparedSeries:
    """Complete, regular series (one row per series and period, gaps filled) ready to learn from."""

    history: pd.DataFrame  # SERIES_KEY, PERIOD, target and the known columns, sorted
    future: pd.DataFrame  # rows already in the table for periods after each series' history (known columns)
    frequency: DetectedFrequency
    findings: list[SeriesFinding] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # series with no values yet, or too short to backtest

    @property
    def series(self) -> list[str]:
        return list(pd.unique(self.history[SERIES_KEY]))


ONE_SERIES = "all rows"  # the key of a table that is one series


def series_keys(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """Each row's series, as text: its series columns' values joined by " · " (ONE_SERIES without any)."""
    if not columns:
        return pd.Series(ONE_SERIES, index=frame.index, dtype=object)
    keys = frame[columns[0]].astype(str)
    for column in columns[1:]:
        keys = keys + " · " + frame[column].astype(str)
    return keys.astype(object)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _names(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit:,} more" if len(keys) > limit else "")


def parse_times(values: pd.Series, column: str) -> tuple[pd.Series, list[SeriesFinding]]:
    """`values` as naive timestamps (tz-aware ones keep their wall-clock time). Raises InvalidTargetError for
    text that mostly does not read as times, or for times in several time zones."""
    findings: list[SeriesFinding] = []
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.infer_dtype(values, skipna=True) in ("date", "datetime"):  # DATE columns read as objects
        parsed = pd.to_datetime(values, errors="coerce")
    else:
        text = values.astype("string").str.strip()
        # an offset only counts after a time of day ("2024-03-01 10:00+02:00"), never a date's "-2024"
        zone = text.str.extract(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*([+-]\d{2}:?\d{2}|Z)$")[0]
        offsets = zone.dropna().unique()
        if len(offsets) > 1:
            raise InvalidTargetError(
                f"The time column {column!r} mixes time zones ({', '.join(map(str, offsets[:4]))}).",
                hint="Store its times in one zone (UTC is safest), then pick the table again.")
        wall_clock = text.where(zone.isna(), text.str.slice(stop=-1).where(zone == "Z", text.str.replace(
            r"\s*[+-]\d{2}:?\d{2}$", "", regex=True)))  # one zone: its wall-clock times, as the rows say them
        parsed = _one_format(wall_clock)
        share = float(parsed.notna().sum()) / max(1, int(text.notna().sum()))
        if share < MIN_PARSED_SHARE:
            bad = text[parsed.isna() & text.notna()].head(3).tolist()
            raise InvalidTargetError(f"The column {column!r} is text, and {1 - share:.0%} of it does not read as "
                                     f"dates or times (e.g. {_names(bad, 3)}).",
                                     hint="Pick a date column, or fix those values in the table.")
        findings.append(SeriesFinding("time_as_text", f"{column!r} is stored as text; Flurry read it as dates.",
                                      "Store it as a DATE or TIMESTAMP column to skip this step."))
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]"), findings


def _one_format(text: pd.Series) -> pd.Series:
    """Times read with one format for the whole column (the one that reads the most values: month first, then
    day first), never value by value, so "03-04-2024" means the same in every row."""
    candidates = [pd.to_datetime(text, errors="coerce", dayfirst=dayfirst) for dayfirst in (False, True)]
    return max(candidates, key=lambda parsed: int(parsed.notna().sum()))


def observed_values(frame: pd.DataFrame, spec: SeriesSpec) -> pd.DataFrame:
    """What actually happened: SERIES_KEY, PERIOD and the target for each (series, period) the table has a value
    for, several rows combined by the spec's rule, nothing filled in (for judging forecasts, not learning)."""
    times, _ = parse_times(frame[spec.time_column], spec.time_column)
    rows = pd.DataFrame({SERIES_KEY: series_keys(frame, spec.series_columns), PERIOD: times,
                         spec.target: pd.to_numeric(frame[spec.target], errors="coerce")}).dropna()
    how = "mean" if spec.duplicates is Duplicates.MEAN else "sum"
    return rows.groupby([SERIES_KEY, PERIOD], as_index=False, sort=False)[spec.target].agg(how)


def prepare_series(frame: pd.DataFrame, spec: SeriesSpec) -> PreparedSeries:
    """Clean, complete series from `frame` (the table's rows). Raises InvalidTargetError when no forecast can
    be made: no numeric target, an unreadable or mixed-zone time column, duplicates the user refused, or no
    series long enough for the horizon."""
    for column in (spec.time_column, spec.target, *spec.series_columns, *spec.known_columns):
        if column not in frame.columns:
            raise InvalidTargetError(f"The table has no column {column!r}.", hint="Pick the columns again.")
    frame = frame.reset_index(drop=True)  # rows by position: a frame stacked from parts repeats its labels
    target = pd.to_numeric(frame[spec.target], errors="coerce")
    if frame[spec.target].notna().any() and target.notna().sum() < 0.95 * frame[spec.target].notna().sum():
        raise InvalidTargetError(f"{spec.target!r} is not a number, so it cannot be forecast.",
                                 hint="Pick a numeric column to forecast (sales, demand, load).")
    times, findings = parse_times(frame[spec.time_column], spec.time_column)
    rows = pd.DataFrame({PERIOD: times, spec.target: target})
    rows[SERIES_KEY] = series_keys(frame, spec.series_columns)
    for column in spec.known_columns:
        rows[column] = frame[column]
    rows = rows[rows[PERIOD].notna()]
    if rows.empty:
        raise InvalidTargetError(f"{spec.time_column!r} has no times.", hint="Pick a column with dates.")
    frequency = detect_frequency(rows[PERIOD])
    snapped = frequency.snapped(rows[PERIOD])
    moved = int((snapped != rows[PERIOD]).sum())
    if moved:
        findings.append(SeriesFinding(
            "off_calendar", f"{_count(moved, 'row')} of {spec.time_column!r} lay off the {frequency.frequency.value} "
                            f"calendar and {'was' if moved == 1 else 'were'} counted in the nearest "
                            f"{frequency.frequency.period_word}.",
            f"Store one time per {frequency.frequency.period_word} ({frequency.words}) to skip this step."))
        rows = rows.assign(**{PERIOD: snapped})
    rows = _capped(rows, findings)
    rows = _deduplicated(rows, spec, findings)
    observed = rows[rows[spec.target].notna()]
    if observed.empty:
        raise InvalidTargetError(f"Every value of {spec.target!r} is missing.", hint="Pick a column with values.")
    last_seen = observed.groupby(SERIES_KEY)[PERIOD].max()
    unseen = sorted(set(rows[SERIES_KEY]) - set(last_seen.index))
    if unseen:
        findings.append(SeriesFinding("no_history", f"{len(unseen):,} series have no value of {spec.target!r} yet "
                                                    f"({_names(unseen)}) and were left out.",
                                      "They are forecast once their history arrives.", tuple(unseen[:20])))
        rows = rows[rows[SERIES_KEY].isin(last_seen.index)]
    is_future = rows[PERIOD] > rows[SERIES_KEY].map(last_seen)
    future = rows[is_future].drop(columns=[spec.target])
    if len(future):
        findings.append(SeriesFinding(
            "future_rows", f"{len(future):,} rows are dated after the last value of {spec.target!r} in their "
                           "series: they are the periods to forecast, not history.",
            "Nothing to do: their known-in-advance columns are used for the forecast."))
    history, gap_counts = _completed(rows[~is_future], frequency, spec)
    _report_gaps(gap_counts, spec, findings)
    history, left_out = _long_enough(history, frequency, spec, findings)
    constant = [key for key, values in history.groupby(SERIES_KEY)[spec.target] if values.nunique() <= 1]
    if constant:
        findings.append(SeriesFinding("constant", f"{len(constant):,} series never change ({_names(constant)}).",
                                      "They are forecast as that same value.", tuple(constant[:20])))
    return PreparedSeries(history.reset_index(drop=True), future.reset_index(drop=True), frequency, findings,
                          [*unseen, *left_out])


def _capped(rows: pd.DataFrame, findings: list[SeriesFinding]) -> pd.DataFrame:
    counts = rows.groupby(SERIES_KEY).size().sort_values(ascending=False, kind="stable")
    if len(counts) <= MAX_SERIES:
        return rows
    kept = counts.index[:MAX_SERIES]
    findings.append(SeriesFinding("too_many_series", f"The table holds {len(counts):,} series; Flurry forecasts "
                                  f"the {MAX_SERIES:,} with the most rows.",
                                  "Forecast a coarser level (per region rather than per store), or filter the table."))
    return rows[rows[SERIES_KEY].isin(kept)]


def _deduplicated(rows: pd.DataFrame, spec: SeriesSpec, findings: list[SeriesFinding]) -> pd.DataFrame:
    duplicated = rows.duplicated([SERIES_KEY, PERIOD], keep=False)
    if not duplicated.any():
        return rows
    clashes = int(rows[duplicated].groupby([SERIES_KEY, PERIOD]).ngroups)
    where = (f"{_count(clashes, f'(series, {spec.time_column}) pair')} "
             f"{'has' if clashes == 1 else 'have'} more than one row")
    if spec.duplicates is Duplicates.REFUSE:
        raise InvalidTargetError(f"{where}.", hint="Choose to add them up or to average them, or remove them.")
    how = "added up" if spec.duplicates is Duplicates.SUM else "averaged"
    findings.append(SeriesFinding("duplicates", f"{where}; their values of {spec.target!r} were {how}.",
                                  "Choose the other rule if that is not what they mean."))
    total = (lambda values: values.sum(min_count=1)) if spec.duplicates is Duplicates.SUM else "mean"
    aggregate = {spec.target: total, **{c: "first" for c in spec.known_columns}}  # all-missing stays missing
    return rows.groupby([SERIES_KEY, PERIOD], as_index=False, sort=False).agg(aggregate)


def _completed(rows: pd.DataFrame, frequency: DetectedFrequency, spec: SeriesSpec
               ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every series on its full calendar, missing periods filled by the chosen rule; the fills per series."""
    parts, gaps = [], {}
    latest = rows[PERIOD].max()
    calendars: dict[pd.Timestamp, pd.DatetimeIndex] = {}  # by first period: most series of a panel share one
    for key, series in rows.sort_values(PERIOD).groupby(SERIES_KEY, sort=False):
        series = series[series[PERIOD] >= series.loc[series[spec.target].notna(), PERIOD].min()]
        first = series[PERIOD].iloc[0]
        if first not in calendars:
            calendars[first] = frequency.periods_between(first, latest)
        calendar = calendars[first][calendars[first] <= series[PERIOD].iloc[-1]]
        full = series.set_index(PERIOD).reindex(calendar)
        missing = int(full[spec.target].isna().sum())
        if missing:
            gaps[key] = missing
            full[spec.target] = (full[spec.target].fillna(0.0) if spec.gaps is Gaps.ZERO
                                 else full[spec.target].interpolate(limit_direction="both"))
        full[SERIES_KEY] = key
        parts.append(full.rename_axis(PERIOD).reset_index())
    return pd.concat(parts, ignore_index=True), gaps


def _report_gaps(gaps: dict[str, int], spec: SeriesSpec, findings: list[SeriesFinding]) -> None:
    if not gaps:
        return
    keys = sorted(gaps, key=lambda k: -gaps[k])
    how = "set to 0" if spec.gaps is Gaps.ZERO else "filled in on a straight line between their neighbours"
    findings.append(SeriesFinding(
        "gaps", f"{_count(sum(gaps.values()), 'missing period')} in {len(gaps):,} series ({_names(keys)}) "
                f"{'was' if sum(gaps.values()) == 1 else 'were'} {how}.",
        "Choose 'zero' if a missing period means none (no sales), 'interpolate' if it was not recorded.",
        tuple(keys[:20])))


def _long_enough(history: pd.DataFrame, frequency: DetectedFrequency, spec: SeriesSpec,
                 findings: list[SeriesFinding]) -> tuple[pd.DataFrame, list[str]]:
    needed = history_needed(spec.horizon, frequency.frequency.season_length, folds=spec.folds)
    lengths = history.groupby(SERIES_KEY).size()
    short = sorted(lengths.index[lengths < needed].tolist())
    if len(short) == len(lengths):
        longest = int(lengths.max())
        raise InvalidTargetError(
            f"The longest history is {longest:,} {frequency.frequency.period_word}s; forecasting {spec.horizon} "
            f"ahead{f' with {spec.folds} backtests' if spec.folds else ''} needs at least {needed:,}.",
            hint=f"Forecast fewer {frequency.frequency.period_word}s ahead, or use a table with a longer history.")
    if short:
        findings.append(SeriesFinding(
            "short", f"{len(short):,} series {'has' if len(short) == 1 else 'have'} fewer than {needed:,} "
                     f"{frequency.frequency.period_word}s of history and {'was' if len(short) == 1 else 'were'} left "
                     f"out ({_names(short)}).",
            "Forecast fewer periods ahead to keep them.", tuple(short[:20])))
    return history[~history[SERIES_KEY].isin(short)], short
