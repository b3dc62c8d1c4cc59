"""Data checks: the traps in a table, each explained in plain words with a one-click remedy.

Column checks read only the warehouse profile; leakage checks fit tiny one-column models on a sample.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from backend.profiling import ColumnProfile, TableProfile
from backend.task_detection import Task
from backend.warehouse.base import is_integer_type

NEAR_CONSTANT_SHARE = 0.995
MOSTLY_NULL_SHARE = 0.9
ID_LIKE_SHARE = 0.98
HIGH_CARDINALITY = 100
MIXED_TYPE_SHARE = 0.8
IMBALANCE_SHARE = 0.1
MIN_CLASS_ROWS = 5  # FLAML validates on up to 5 folds; fewer rows of a class cannot be validated honestly
FEW_ROWS = 100
LEAKAGE_SCORE = 0.98
LEAKAGE_SAMPLE_ROWS = 20_000
NEAR_DUPLICATE_CORRELATION = 0.99


class Remedy(enum.StrEnum):
    EXCLUDE = "exclude"            # leave the column out of the features
    CAST_NUMBER = "cast_number"    # read text as numbers; what does not parse becomes missing
    CAST_DATE = "cast_date"        # read text as dates; what does not parse becomes missing
    DROP_RARE = "drop_rare"        # leave out rows of classes too small to validate
    DEDUPLICATE = "deduplicate"    # train on distinct rows only
    NONE = "none"                  # nothing to do; Flurry handles it (explained)


@dataclass(frozen=True)
class Finding:
    check: str
    title: str
    explanation: str
    remedy: Remedy
    column: str | None = None
    blocking: bool = False


def _column_finding(c: ColumnProfile) -> Finding | None:
    share = f"{c.null_share:.0%}"
    if c.non_null and c.distinct <= 1:
        return Finding("constant", "Constant", f"{c.name!r} holds the same value in every row, so it tells the model "
                       "nothing.", Remedy.EXCLUDE, c.name)
    if c.null_share >= MOSTLY_NULL_SHARE:
        return Finding("mostly_null", "Mostly empty", f"{c.name!r} is missing in {share} of rows; what little is "
                       "there is unlikely to help and may mislead.", Remedy.EXCLUDE, c.name)
    if c.kind in ("text", "boolean") and c.top_share >= NEAR_CONSTANT_SHARE:
        value = c.top_values[0][0]
        return Finding("near_constant", "Almost constant", f"{c.name!r} is {value!r} in {c.top_share:.1%} of rows; "
                       "too few other values to learn from.", Remedy.EXCLUDE, c.name)
    if ((c.kind == "text" or is_integer_type(c.sql_type)) and c.rows > 1 and c.non_null == c.rows
            and c.distinct >= ID_LIKE_SHARE * c.rows):
        return Finding("id_like", "ID-like", f"{c.name!r} has a different value in (almost) every row, like an ID or "
                       "a key. A model would memorise it and fail on new rows.", Remedy.EXCLUDE, c.name)
    if c.kind == "text" and c.non_null and c.numeric_text >= MIXED_TYPE_SHARE * c.non_null:
        odd = c.non_null - c.numeric_text
        detail = f"; {odd:,} values are not numbers and would become missing" if odd else ""
        return Finding("mixed_type", "Numbers stored as text", f"{c.name!r} holds numbers written as text{detail}. "
                       "Reading it as a number lets the model use its order and size.", Remedy.CAST_NUMBER, c.name)
    if c.kind == "text" and c.non_null and c.date_text >= MIXED_TYPE_SHARE * c.non_null:
        odd = c.non_null - c.date_text
        detail = f"; {odd:,} values are not dates and would become missing" if odd else ""
        return Finding("date_text", "Dates stored as text", f"{c.name!r} holds dates written as text{detail}. As text "
                       "each date is a category of its own, and a date after training is one the model never saw. "
                       "Read as dates, the model uses their year, month, day and weekday.", Remedy.CAST_DATE, c.name)
    if c.kind == "text" and c.distinct > HIGH_CARDINALITY and c.distinct > 0.5 * c.non_null:
        return Finding("high_cardinality", "Too many distinct texts", f"{c.name!r} has {c.distinct:,} different "
                       "values (free text or codes); too many to learn from as categories.", Remedy.EXCLUDE, c.name)
    if c.kind == "datetime":
        return Finding("datetime", "Dates", f"{c.name!r} is a date or time. Flurry turns it into year, month, day and "
                       "weekday features; leave it out if new rows will come from a later period.", Remedy.NONE,
                       c.name)
    return None


def column_findings(profile: TableProfile, target: str | None) -> list[Finding]:
    """Findings about the columns that could be features (the target excluded)."""
    return [f for c in profile.columns if c.name != target and (f := _column_finding(c)) is not None]


def target_findings(profile: TableProfile, target: str, task: Task, class_counts: pd.DataFrame | None,
                    duplicate_rows: int | None) -> list[Finding]:
    """Findings about the target and the rows: imbalance, rare classes, too few rows, duplicates."""
    column = profile.column(target)
    findings = []
    usable = column.non_null
    if usable < FEW_ROWS:
        findings.append(Finding("few_rows", "Very few rows", f"Only {usable:,} rows have a value for {target!r}. "
                                "Any model will be rough, and its scores will swing a lot.", Remedy.NONE, target))
    if task is Task.REGRESSION and column.distinct <= 10:
        findings.append(Finding("few_values", "A number with few values", f"{target!r} takes only {column.distinct} "
                                "values. If they are categories rather than amounts, choose classification.",
                                Remedy.NONE, target))
    if task.is_classification and class_counts is not None and len(class_counts):
        counts = class_counts.set_index("value")["count"]
        rare = [str(v) for v, n in counts.items() if n < MIN_CLASS_ROWS]
        if rare:
            shown = ", ".join(repr(v) for v in rare[:5]) + (" …" if len(rare) > 5 else "")
            findings.append(Finding("rare_classes", "Classes too small to learn", f"{len(rare)} class(es) of "
                                    f"{target!r} have fewer than {MIN_CLASS_ROWS} rows ({shown}). They cannot be "
                                    "learned or validated; their rows are left out of training rather than copied.",
                                    Remedy.DROP_RARE, target, blocking=len(counts) - len(rare) < 2))
        share = counts.min() / counts.sum()
        if share < IMBALANCE_SHARE and not rare:
            small = counts.idxmin()
            findings.append(Finding("imbalance", "Imbalanced classes", f"Only {share:.1%} of rows are {str(small)!r}. "
                                    "Accuracy would look good by never predicting it, so Flurry keeps that share in "
                                    "every split (stratified) and optimises a ranking or probability metric instead "
                                    "of accuracy.", Remedy.NONE, target))
    if duplicate_rows:
        findings.append(Finding("duplicates", "Duplicated rows", f"{duplicate_rows:,} rows are exact copies of "
                                "other rows. Copies can land on both sides of the validation split and flatter the "
                                "scores; training on distinct rows avoids that.", Remedy.DEDUPLICATE))
    return findings


def _held_out_split(y: pd.Series, task: Task, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows each column is trained and judged on: the same split for every column (it depends on the
    target alone), drawn once rather than once per column — a 2,000-column table's checks take seconds."""
    stratify = y if task.is_classification and y.value_counts().min() >= 2 else None
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=stratify)
    return np.asarray(train), np.asarray(test)


def _single_column_score(x: pd.Series, y: np.ndarray, split: tuple[np.ndarray, np.ndarray], task: Task,
                         seed: int) -> float:
    """How well one column alone predicts the target on held-out rows (balanced accuracy or R²); `y` as class
    codes 0..k-1 for classification. Scored by numpy rather than sklearn's metrics, whose checks cost more than
    the tree on a table of thousands of columns."""
    if x.dtype == object or str(x.dtype) in ("str", "string", "category", "bool", "boolean"):
        feature = pd.Categorical(x.astype(str)).codes.astype(np.float32).reshape(-1, 1)
    else:
        numbers = pd.to_numeric(x, errors="coerce").astype(float)
        # missing values get a value of their own, below every real one
        feature = numbers.fillna(numbers.min() - 1 if numbers.notna().any() else 0.0).to_numpy(
            dtype=np.float32).reshape(-1, 1)
    train, test = split
    if task.is_classification:
        model = DecisionTreeClassifier(max_depth=12, random_state=seed).fit(feature[train], y[train])
        return _balanced_accuracy(y[test], model.predict(feature[test]))
    model = DecisionTreeRegressor(max_depth=12, random_state=seed).fit(feature[train], y[train])
    truth, predicted = y[test], model.predict(feature[test])
    spread = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((truth - predicted) ** 2)) / spread if spread > 0 else 0.0


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """sklearn's balanced_accuracy_score for class codes: the mean recall over the classes present in `truth`."""
    classes = np.unique(truth)
    recalls = [float(np.mean(predicted[truth == c] == c)) for c in classes]
    return float(np.mean(recalls)) if recalls else 0.0


def leakage_findings(sample: pd.DataFrame, target: str, task: Task, features: list[str], seed: int = 0
                     ) -> list[Finding]:
    """Columns that predict the target almost perfectly on their own: copies, or facts known only afterwards."""
    rows = sample[sample[target].notna()]
    if len(rows) < 30:
        return []
    y = rows[target] if task.is_classification else pd.to_numeric(rows[target], errors="coerce").astype(float)
    y_text = y.astype(str)
    labels = np.unique(y_text.to_numpy(), return_inverse=True)[1] if task.is_classification else y.to_numpy()
    split = _held_out_split(y, task, seed)
    findings = []
    # a copy agrees with the target on 99% of rows, so has at most the target's values and 1% more
    most_values = y_text.nunique() + 0.01 * len(rows)
    for name in features:
        x = rows[name]
        distinct = x.nunique(dropna=True)
        if distinct < 2:
            continue
        is_key = x.dtype == object or str(x.dtype) in ("str", "string") or pd.api.types.is_integer_dtype(x)
        if is_key and distinct >= 0.9 * len(x):
            continue  # a unique key "predicts" nothing on new rows; the ID-like check speaks for it
        same = x.astype(str).eq(y_text).mean() if distinct <= most_values else 0.0
        numeric = pd.to_numeric(x, errors="coerce")
        correlated = (task is Task.REGRESSION and numeric.notna().mean() > 0.9
                      and abs(np.corrcoef(numeric.fillna(numeric.mean()), y)[0, 1]) >= 0.999)
        score = _single_column_score(x, labels, split, task, seed)
        if same >= 0.99 or correlated:
            why = "is a copy of the target (renamed, shifted or rescaled)"
        elif score >= LEAKAGE_SCORE:
            why = f"predicts the target almost perfectly on its own ({score:.1%} on held-out rows)"
        else:
            continue
        findings.append(Finding("leakage", "Suspected target leakage", f"{name!r} {why}. Such a column is usually "
                                "recorded after the outcome is known, so the model would look perfect here and fail "
                                "on new rows.", Remedy.EXCLUDE, name))
    return findings


_COLLISION_SUFFIX = re.compile(r"(.+)_\d+")


def renamed_twins(features: list[str]) -> list[tuple[str, str]]:
    """(original, twin) pairs of names that are one name but for case, or with the numbered suffix a warehouse
    adds when two headers collide (`amount` → `amount_1`); each twin once, against the first column of its name.
    One pass over a lookup of the names: a table of thousands of columns is checked in milliseconds."""
    first_of: dict[str, str] = {}
    for name in features:
        first_of.setdefault(name.casefold(), name)
    pairs: list[tuple[str, str]] = []
    for name in features:
        key = name.casefold()
        original = first_of[key]
        if original == name:
            suffixed = _COLLISION_SUFFIX.fullmatch(key)
            original = first_of.get(suffixed.group(1), name) if suffixed else name
        if original != name:
            pairs.append((original, name))
    return pairs


def pairwise_correlation(values: np.ndarray, min_rows: int) -> np.ndarray:
    """Pearson correlation of every pair of columns over the rows where both are present (pandas' pairwise
    `corr`, NaN below `min_rows` shared rows or without spread), by matrix products: pandas' own loop takes
    minutes on two thousand columns. Columns are centred and scaled first, so the sums do not cancel."""
    present = ~np.isnan(values)
    if present.all() and len(values) >= min_rows:  # one product when nothing is missing
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.corrcoef(values, rowvar=False)
        return np.clip(np.atleast_2d(correlation), -1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = values - np.nanmean(values, axis=0)
        scale = np.nanstd(centred, axis=0)
        x = np.where(present, centred / np.where(scale > 0, scale, 1.0), 0.0)
        mask = present.astype(float)
        shared = mask.T @ mask
        sums = x.T @ mask  # [i, j]: column i's sum over the rows column j is present
        squares = (x * x).T @ mask
        products = x.T @ x
        covariance = products - sums * sums.T / shared
        spread = (squares - sums ** 2 / shared) * (squares - sums ** 2 / shared).T
        correlation = covariance / np.sqrt(spread)
    correlation[(shared < min_rows) | ~(spread > 0)] = np.nan
    return np.clip(correlation, -1.0, 1.0)


def _same_values(sample: pd.DataFrame, first: str, other: str) -> bool:
    """Whether two columns hold the same thing on the sample: numbers moving together (|correlation| ≥
    NEAR_DUPLICATE_CORRELATION), or the same text in nearly every row."""
    if first not in sample.columns or other not in sample.columns or len(sample) < 30:
        return False
    a, b = sample[first], sample[other]
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        correlation = a.astype(float).corr(b.astype(float), min_periods=30)
        return bool(np.isfinite(correlation) and abs(correlation) >= NEAR_DUPLICATE_CORRELATION)
    return bool((a.astype(str).str.casefold() == b.astype(str).str.casefold()).mean() >= NEAR_DUPLICATE_CORRELATION)


def near_duplicate_findings(sample: pd.DataFrame, features: list[str]) -> list[Finding]:
    """Columns that look like another: named alike (case, or a collision's suffix), or numbers that move
    together almost exactly. A model splits its weight between such twins, and each one's explanation halves."""
    findings: list[Finding] = []
    named: set[str] = set()
    for original, twin in renamed_twins(features):
        named.add(twin)
        name_words = (f"{twin!r} has the name of {original!r} but for case or a numbered suffix (an upload "
                      "adds one when two headers collide)")
        if _same_values(sample, original, twin):
            findings.append(Finding("near_duplicate", "Near-duplicate columns", f"{name_words}, and holds the "
                                    "same values: keep one.", Remedy.EXCLUDE, twin))
        else:  # alike in name only (address / address_2): said, never left out on its name alone
            findings.append(Finding("near_duplicate", "Near-duplicate column names", f"{name_words}, but holds "
                                    "other values. Both are kept; rename one if they mean different things.",
                                    Remedy.NONE, twin))
    numbers = [f for f in features if f not in named and f in sample.columns
               and pd.api.types.is_numeric_dtype(sample[f]) and not pd.api.types.is_bool_dtype(sample[f])
               and sample[f].nunique() > 2]
    if len(numbers) < 2 or len(sample) < 30:
        return findings
    correlation = np.abs(pairwise_correlation(sample[numbers].to_numpy(dtype=float, na_value=np.nan), 30))
    for i, j in np.argwhere(np.triu(correlation >= NEAR_DUPLICATE_CORRELATION, k=1)):
        first, other = numbers[i], numbers[j]
        if other in named:
            continue
        named.add(other)
        findings.append(Finding("near_duplicate", "Near-duplicate columns", f"{other!r} moves with {first!r} "
                                f"almost exactly (correlation {correlation[i, j]:.3f}): the same quantity twice, "
                                "or one computed from the other. Keep one.", Remedy.EXCLUDE, other))
    return findings


@dataclass(frozen=True)
class FeaturePlan:
    """What the wizard proposes before the user changes anything: the checks' remedies applied."""

    features: list[str]
    casts: list[str]
    deduplicate: bool
    reasons: dict[str, str]  # column -> why it is left out (or how it is read)
    date_casts: list[str] = field(default_factory=list)


def plan_features(candidates: list[tuple[str, bool, str]], findings: list[Finding]) -> FeaturePlan:
    """Apply each finding's remedy to the candidate features.

    `candidates` are (column, included by default, reason) as task detection proposes them.
    """
    reasons = {name: reason for name, include, reason in candidates if not include}
    features = [name for name, include, _ in candidates if include]
    casts, date_casts = [], []
    for finding in findings:
        if finding.column is None:
            continue
        if finding.remedy is Remedy.EXCLUDE and finding.column in features:
            features.remove(finding.column)
            reasons[finding.column] = finding.title
        elif finding.remedy is Remedy.CAST_NUMBER and finding.column in features:
            casts.append(finding.column)
            reasons[finding.column] = "read as numbers"
        elif finding.remedy is Remedy.CAST_DATE and finding.column in features:
            date_casts.append(finding.column)
            reasons[finding.column] = "read as dates"
    deduplicate = any(f.remedy is Remedy.DEDUPLICATE for f in findings)
    return FeaturePlan(features=features, casts=casts, deduplicate=deduplicate, reasons=reasons,
                       date_casts=date_casts)
