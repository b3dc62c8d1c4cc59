"""The one small frozen config that stands in for FLAML's many `fit` arguments."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

from backend.errors import InvalidTrainingOptionError
from backend.metrics import METRICS_BY_TASK
from backend.task_detection import Task
from backend.warehouse.base import SampleSpec, TableRef

MIN_TIME_BUDGET_S = 2
MAX_TIME_BUDGET_S = 3600
DEFAULT_TIME_BUDGET_S = 60
DEFAULT_MAX_ROWS = 1_000_000
MIN_TRAINING_ROWS = 10
# What the worker may spend on the training frame. FLAML and its learners hold several copies of it, so a
# row costs about 8 bytes × columns × TRAINING_COPIES.
TRAINING_MEMORY_BYTES = 2 * 1024**3
TRAINING_COPIES = 4
MAX_HORIZON = 1000
# A forecast learns from every row of its series (a sample would cut holes in them), up to this many.
MAX_FORECAST_ROWS = 5_000_000


def rows_cap(n_columns: int) -> int:
    """The most rows a training sample may have: DEFAULT_MAX_ROWS, less for very wide tables."""
    by_memory = TRAINING_MEMORY_BYTES // (8 * max(1, n_columns) * TRAINING_COPIES)
    return int(max(MIN_TRAINING_ROWS * 100, min(DEFAULT_MAX_ROWS, by_memory)))


VALIDATIONS = ("auto", "holdout", "cv")
KNOWN_ESTIMATORS = ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree", "lrl1", "lrl2", "sgd")
# Families offered only when their library is installed (FLAML's "auto" list adds them by itself then).
OPTIONAL_ESTIMATORS = {"catboost": "catboost"}


def available_estimators() -> tuple[str, ...]:
    """The model families this installation can train."""
    return KNOWN_ESTIMATORS + tuple(name for name, module in OPTIONAL_ESTIMATORS.items()
                                    if importlib.util.find_spec(module) is not None)


@dataclass(frozen=True)
class TrainConfig:
    table: TableRef
    target: str
    target_sql_type: str
    task: Task
    features: tuple[tuple[str, str], ...]  # (name, sql_type) in table order
    metric: str
    time_budget_s: int = DEFAULT_TIME_BUDGET_S
    seed: int = 0
    holdout_ratio: float = 0.2
    max_rows: int = DEFAULT_MAX_ROWS
    estimators: tuple[str, ...] = ()  # empty: FLAML's own choice for the task
    casts: tuple[str, ...] = ()  # text features read as numbers (what does not parse becomes missing)
    date_casts: tuple[str, ...] = ()  # text features read as dates (what does not parse becomes missing)
    deduplicate: bool = False  # train on distinct rows only
    drop_classes: tuple[str, ...] = ()  # target values whose rows are left out (too rare to learn)
    validation: str = "auto"  # how FLAML scores candidates: "auto", "holdout" or "cv"
    cv_folds: int = 5
    class_weight: str = "none"  # "balanced" weighs rows so every class counts alike
    split_ratio: float = 0.1  # share of training rows FLAML holds out to score candidates ("holdout")
    time_column: str | None = None  # order rows by it: validate and evaluate on the latest rows
    ensemble: bool = True  # blend the search's best models when the budget allows (backend.training.ensemble)
    positive_class: str | None = None  # binary: the outcome of interest, as text (None: the smaller class)
    # other columns of the table kept beside the holdout rows (never given to the model): to find a row by its
    # key (a customer id) and to judge the model by segments of columns it does not use
    extra_columns: tuple[str, ...] = ()
    # forecasting (task FORECAST): `time_column` orders each series, `features` are the columns known in advance
    series_columns: tuple[str, ...] = ()  # one series per combination of their values (empty: one series)
    horizon: int = 12  # how many periods ahead to forecast
    duplicates: str = "sum"  # several rows for one series and period: "sum", "mean" or "refuse"
    gaps: str = "interpolate"  # missing periods: "interpolate" or "zero"

    @property
    def exported_columns(self) -> tuple[str, ...]:
        """What the training sample holds: the features, the target, the time column if it is not one (and a
        forecast's series columns)."""
        names = [name for name, _ in self.features]
        extra = [self.time_column] if self.time_column and self.time_column not in names else []
        extra += [c for c in (*self.series_columns, *self.extra_columns)
                  if c not in names and c not in extra and c != self.target]
        return (*names, *extra, self.target)

    @property
    def is_forecast(self) -> bool:
        return self.task is Task.FORECAST

    def sample_spec(self) -> SampleSpec:
        """The rows this run trains on, as the warehouse draws them (every runner and reproduce.py alike)."""
        return SampleSpec(table=self.table, columns=self.exported_columns, target=self.target,
                          max_rows=self.max_rows, seed=self.seed, stratify=self.task.is_classification,
                          distinct=self.deduplicate, exclude_target_values=self.drop_classes,
                          unlabelled=self.is_forecast)

    def validate(self) -> None:
        """Raise InvalidTrainingOptionError for any option out of range."""
        if not MIN_TIME_BUDGET_S <= self.time_budget_s <= MAX_TIME_BUDGET_S:
            raise InvalidTrainingOptionError(
                f"The time budget must be between {MIN_TIME_BUDGET_S} and {MAX_TIME_BUDGET_S} seconds "
                f"(got {self.time_budget_s}).", hint="Pick a budget in that range; 60 seconds is a good start.")
        if self.metric not in METRICS_BY_TASK[self.task]:
            raise InvalidTrainingOptionError(f"The metric {self.metric!r} does not fit a {self.task.value} task.",
                                             hint="Pick one of the metrics offered.")
        if self.is_forecast:
            self._validate_forecast()
        elif not self.features:
            raise InvalidTrainingOptionError("No feature columns are selected.",
                                             hint="Include at least one column on the Target step.")
        if self.target in {name for name, _ in self.features}:
            raise InvalidTrainingOptionError(f"The target {self.target!r} cannot also be a feature.",
                                             hint="Untick it among the features on the Target step.")
        if set(self.casts) - {name for name, _ in self.features}:
            raise InvalidTrainingOptionError("Only feature columns can be read as numbers.",
                                             hint="Include the column as a feature, or leave it as text.")
        if set(self.date_casts) - {name for name, _ in self.features} or set(self.date_casts) & set(self.casts):
            raise InvalidTrainingOptionError("Only feature columns can be read as dates, and not also as numbers.",
                                             hint="Include the column as a feature, and read it one way.")
        if self.validation not in VALIDATIONS:
            raise InvalidTrainingOptionError(f"Unknown validation {self.validation!r}.",
                                             hint=f"Choose one of {', '.join(VALIDATIONS)}.")
        if not 2 <= self.cv_folds <= 20:
            raise InvalidTrainingOptionError(f"Cross-validation needs between 2 and 20 folds (got {self.cv_folds}).",
                                             hint="Choose 5 folds, or a single validation split.")
        if self.class_weight not in ("none", "balanced"):
            raise InvalidTrainingOptionError(f"Unknown class weighting {self.class_weight!r}.",
                                             hint="Choose none or balanced.")
        if self.class_weight == "balanced" and not self.task.is_classification:
            raise InvalidTrainingOptionError("Class weighting only applies to classification.",
                                             hint="Set class weighting to none for a number target.")
        if not 0.05 <= self.split_ratio <= 0.5:
            raise InvalidTrainingOptionError(f"The validation share must be between 5% and 50% (got {self.split_ratio:.0%}).",
                                             hint="10% to 20% suits most tables.")
        if self.time_column is not None and self.time_column == self.target:
            raise InvalidTrainingOptionError(f"The target {self.target!r} cannot order the rows in time.",
                                             hint="Pick a date or time column to order the rows.")
        if not 0 <= self.seed < 2**31:
            raise InvalidTrainingOptionError(f"The seed must be a whole number between 0 and 2,147,483,647 (got {self.seed}).",
                                             hint="Any number in that range gives a repeatable run; 0 is fine.")
        missing = set(self.estimators) & set(OPTIONAL_ESTIMATORS) - set(available_estimators())
        if missing:
            raise InvalidTrainingOptionError(f"{', '.join(sorted(missing))} is not installed here.",
                                             hint=f"Install it (pip install {' '.join(sorted(missing))}) or "
                                                  "choose other model families.")
        unknown = set(self.estimators) - set(available_estimators())
        if unknown:
            raise InvalidTrainingOptionError(f"Unknown model families: {', '.join(sorted(unknown))}.",
                                             hint=f"Choose from {', '.join(available_estimators())}.")
        if self.positive_class is not None and self.task is not Task.BINARY:
            raise InvalidTrainingOptionError("An outcome of interest only applies to a yes/no (binary) target.",
                                             hint="Leave the outcome of interest unset for this target.")
        if not 0.05 <= self.holdout_ratio <= 0.5:
            raise InvalidTrainingOptionError(f"The holdout share must be between 5% and 50% (got {self.holdout_ratio:.0%}).",
                                             hint="20% suits most tables.")

    def _validate_forecast(self) -> None:
        if self.time_column is None:
            raise InvalidTrainingOptionError("A forecast needs a time column.", hint="Pick one on the Target step.")
        if not 1 <= self.horizon <= MAX_HORIZON:
            raise InvalidTrainingOptionError(f"The horizon must be between 1 and {MAX_HORIZON} periods "
                                             f"(got {self.horizon}).", hint="Forecast fewer periods ahead.")
        used = {self.target, self.time_column}
        if used & set(self.series_columns) or used & {name for name, _ in self.features}:
            raise InvalidTrainingOptionError("The target and the time column cannot also identify series or be "
                                             "known in advance.", hint="Pick other columns on the Target step.")
        if set(self.series_columns) & {name for name, _ in self.features}:
            raise InvalidTrainingOptionError("A column cannot both identify series and be known in advance.",
                                             hint="Keep it in one of the two lists on the Target step.")
        if self.duplicates not in ("sum", "mean", "refuse") or self.gaps not in ("interpolate", "zero"):
            raise InvalidTrainingOptionError("Unknown handling of duplicate rows or missing periods.",
                                             hint="Choose it again on the Target step.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["table"] = {"schema": self.table.schema, "name": self.table.name}
        data["task"] = self.task.value
        data["features"] = [list(f) for f in self.features]
        data["estimators"] = list(self.estimators)
        data["casts"] = list(self.casts)
        data["date_casts"] = list(self.date_casts)
        data["drop_classes"] = list(self.drop_classes)
        data["extra_columns"] = list(self.extra_columns)
        data["series_columns"] = list(self.series_columns)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        return TrainConfig(
            table=TableRef(data["table"]["schema"], data["table"]["name"]), target=data["target"],
            target_sql_type=data["target_sql_type"], task=Task(data["task"]),
            features=tuple((str(n), str(t)) for n, t in data["features"]), metric=data["metric"],
            time_budget_s=int(data["time_budget_s"]), seed=int(data["seed"]),
            holdout_ratio=float(data["holdout_ratio"]), max_rows=int(data["max_rows"]),
            estimators=tuple(data.get("estimators") or ()), casts=tuple(data.get("casts") or ()),
            date_casts=tuple(data.get("date_casts") or ()),
            deduplicate=bool(data.get("deduplicate", False)), drop_classes=tuple(data.get("drop_classes") or ()),
            validation=str(data.get("validation", "auto")), cv_folds=int(data.get("cv_folds", 5)),
            class_weight=str(data.get("class_weight", "none")), split_ratio=float(data.get("split_ratio", 0.1)),
            time_column=data.get("time_column"),
            # runs recorded before blending existed were single models; a rerun repeats them as they were
            ensemble=bool(data.get("ensemble", False)),
            positive_class=None if data.get("positive_class") is None else str(data["positive_class"]),
            extra_columns=tuple(data.get("extra_columns") or ()),
            series_columns=tuple(data.get("series_columns") or ()), horizon=int(data.get("horizon", 12)),
            duplicates=str(data.get("duplicates", "sum")), gaps=str(data.get("gaps", "interpolate")),
        )


def suggested_budget_s(rows: int, n_features: int) -> int:
    """A rough time budget for AutoML to settle on a table of this size, rounded to a friendly number.

    Calibrated by eye on this machine's demo runs: small tables settle within half a minute, and the
    search needs about a second more per 20,000 row×column cells (one trial of a boosted model costs
    roughly that, and FLAML wants a few dozen trials).
    """
    seconds = 20 + rows * max(1, n_features) / 20_000
    for nice in (30, 60, 120, 300, 600, 900, 1800, MAX_TIME_BUDGET_S):
        if seconds <= nice:
            return nice
    return MAX_TIME_BUDGET_S
