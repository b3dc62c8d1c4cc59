"""Each data check on a crafted table where it must fire, and on one where it must not."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from backend.checks import Finding, Remedy, pairwise_correlation, renamed_twins
from backend.task_detection import Task
from backend.workspace import Workspace
from tests.conftest import put_table

N = 600
rng = np.random.default_rng(11)


def base() -> pd.DataFrame:
    x = rng.normal(size=N)
    return pd.DataFrame({
        "x": x,
        "noise": rng.normal(size=N),
        "colour": rng.choice(["red", "green", "blue"], N),
        "label": np.where(x + rng.normal(scale=0.8, size=N) > 0, "yes", "no"),
    })


def findings(ws: Workspace, frame: pd.DataFrame, target: str = "label", task: Task = Task.BINARY) -> list[Finding]:
    table = put_table(ws, f"checked_{uuid.uuid4().hex[:8]}", frame)
    features = [c for c in frame.columns if c != target]
    return ws.checks(table, target, task, features)


def fired(found: list[Finding], check: str) -> set[str | None]:
    return {f.column for f in found if f.check == check}


def test_a_clean_table_raises_nothing(empty_workspace: Workspace) -> None:
    assert findings(empty_workspace, base()) == []


@pytest.mark.parametrize(("column", "values", "check", "remedy"), [
    ("const", ["same"] * N, "constant", Remedy.EXCLUDE),
    ("almost", ["a"] * (N - 1) + ["b"], "near_constant", Remedy.EXCLUDE),
    ("sparse", [None] * (N - 20) + list(range(20)), "mostly_null", Remedy.EXCLUDE),
    ("key", [f"k{i}" for i in range(N)], "id_like", Remedy.EXCLUDE),
    ("number_text", [str(i % 50) if i % 40 else "n/a" for i in range(N)], "mixed_type", Remedy.CAST_NUMBER),
    ("comment", [f"note {i % 400} about it" for i in range(N)], "high_cardinality", Remedy.EXCLUDE),
    ("signed_up", pd.date_range("2020-01-01", periods=N, freq="h"), "datetime", Remedy.NONE),
    ("signup_date", [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(N)], "date_text", Remedy.CAST_DATE),
])
def test_column_checks_fire(empty_workspace: Workspace, column: str, values: list[object], check: str,
                            remedy: Remedy) -> None:
    frame = base().assign(**{column: values})
    found = [f for f in findings(empty_workspace, frame) if f.column == column]
    assert [(f.check, f.remedy) for f in found] == [(check, remedy)], found


def test_near_misses_do_not_fire(empty_workspace: Workspace) -> None:
    frame = base().assign(
        mostly_a=["a"] * (N - 30) + ["b"] * 30,                      # 95%: a real, if skewed, feature
        half_empty=[None] * (N // 2) + list(range(N // 2)),           # 50% missing: keep
        measured=rng.normal(size=N),                                  # unique floats are not IDs
        few_codes=[f"c{i % 40}" for i in range(N)],                   # 40 categories is fine
    )
    assert findings(empty_workspace, frame) == []


def test_leakage_copy_and_near_perfect_predictor(empty_workspace: Workspace) -> None:
    frame = base()
    frame["outcome_copy"] = frame["label"].map({"yes": "Y", "no": "N"})   # a renamed copy
    frame["refund_issued"] = np.where(frame["label"] == "yes", 1.0, 0.0) + rng.normal(scale=0.01, size=N)
    found = findings(empty_workspace, frame)
    assert fired(found, "leakage") == {"outcome_copy", "refund_issued"}
    assert all(f.remedy is Remedy.EXCLUDE for f in found if f.check == "leakage")


def test_leakage_of_a_shifted_copy_in_regression(empty_workspace: Workspace) -> None:
    frame = base().drop(columns="label")
    frame["amount"] = frame["x"] * 100 + rng.normal(scale=40, size=N)
    frame["amount_next_day"] = frame["amount"] + 5
    found = findings(empty_workspace, frame, target="amount", task=Task.REGRESSION)
    assert fired(found, "leakage") == {"amount_next_day"}


def test_imbalance_rare_classes_few_rows_and_duplicates(empty_workspace: Workspace) -> None:
    frame = base()
    frame["label"] = ["rare"] * 30 + ["common"] * (N - 30)
    found = findings(empty_workspace, frame)
    assert fired(found, "imbalance") == {"label"}

    frame["label"] = ["tiny"] * 3 + ["a"] * 300 + ["b"] * (N - 303)
    found = findings(empty_workspace, frame, task=Task.MULTICLASS)
    (rare,) = [f for f in found if f.check == "rare_classes"]
    assert rare.remedy is Remedy.DROP_RARE and "'tiny'" in rare.explanation and not rare.blocking

    small = base().head(60)
    assert fired(findings(empty_workspace, small), "few_rows") == {"label"}

    once = base()
    doubled = pd.concat([once, once.head(25)], ignore_index=True)
    (dup,) = [f for f in findings(empty_workspace, doubled) if f.check == "duplicates"]
    assert "25 rows" in dup.explanation and dup.remedy is Remedy.DEDUPLICATE


def test_one_real_class_beside_rare_ones_blocks(empty_workspace: Workspace) -> None:
    frame = base()
    frame["label"] = ["a"] * (N - 2) + ["b", "c"]
    (rare,) = [f for f in findings(empty_workspace, frame, task=Task.MULTICLASS) if f.check == "rare_classes"]
    assert rare.blocking


def test_dates_stored_as_text_are_read_as_dates_in_training_and_scoring(empty_workspace: Workspace) -> None:
    """The remedy is real: the model sees dates (their year, month, …), so a date after training is a date it can
    place, not an unknown category."""
    from backend.deployed_model import load_bundle
    from tests.conftest import wait_for

    days = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, N), unit="D")
    frame = base().assign(signup_date=days.strftime("%Y-%m-%d"))
    summer = (days.month >= 7) ^ (rng.random(N) < 0.2)  # the season decides, mostly
    frame["label"] = np.where(summer, "yes", "no")
    table = put_table(empty_workspace, "signups", frame)
    found = empty_workspace.checks(table, "label", Task.BINARY, ["x", "signup_date"])
    assert [(f.check, f.remedy) for f in found if f.column == "signup_date"] == [("date_text", Remedy.CAST_DATE)]
    config = empty_workspace.train_config(table, "label", Task.BINARY, ["x", "signup_date"], "roc_auc", 3,
                                          date_casts=("signup_date",))
    progress = wait_for(empty_workspace, empty_workspace.jobs.start(config))
    assert progress.model_id, progress.run.message
    bundle = load_bundle(empty_workspace.registry, progress.model_id)
    assert {f.name: f.kind for f in bundle.features}["signup_date"] == "datetime"
    later = pd.DataFrame({"x": [0.0, 0.0], "signup_date": ["2031-02-10", "2031-09-10"]})  # never seen in training
    model_input = bundle.model_input(later)
    months = [c for c in model_input.columns if c.startswith("month_")]
    assert months and model_input[months[0]].tolist() == [2, 9]  # the model reads each date's month
    assert len(bundle.predict(later)) == 2


def test_the_pairwise_correlation_is_pandas_own_on_gaps_constants_and_huge_offsets() -> None:
    values = rng.normal(size=(300, 25)) * rng.uniform(1, 1e6, 25) + rng.uniform(-1e9, 1e9, 25)
    values[:, 4] = values[:, 2] * -3 + 7  # exactly anti-correlated
    values[:, 6] = 5.0  # no spread: no correlation at all
    values[rng.random(values.shape) < 0.25] = np.nan
    values[:280, 9] = np.nan  # fewer than 30 rows shared with anything
    expected = pd.DataFrame(values).corr(min_periods=30).to_numpy()
    got = pairwise_correlation(values, 30)
    assert np.array_equal(np.isnan(expected), np.isnan(got))
    assert np.nanmax(np.abs(expected - got)) < 1e-9
    whole = rng.normal(size=(100, 6))
    assert np.allclose(pairwise_correlation(whole, 30), pd.DataFrame(whole).corr().to_numpy())


def test_names_alike_pair_each_twin_with_the_first_column_of_its_name() -> None:
    names = ["amount_1", "amount", "AMOUNT", "Region", "region_2", "q_1", "q_2", "id", "ID_10"]
    assert renamed_twins(names) == [("amount", "amount_1"), ("amount", "AMOUNT"), ("Region", "region_2"),
                                    ("id", "ID_10")]
    assert renamed_twins([f"m{i}" for i in range(3000)]) == []


def test_near_duplicate_columns_are_named(empty_workspace: Workspace) -> None:
    frame = base()
    frame["AMOUNT"] = rng.gamma(2.0, 40.0, N)
    frame["amount_1"] = frame["AMOUNT"].round(0)  # what an upload calls a second "amount" header
    frame["x_in_cm"] = frame["x"] * 2.54 + rng.normal(0, 0.01, N)  # the same measure in other units
    frame["q_1"], frame["q_2"] = rng.normal(size=N), rng.normal(size=N)  # numbered, but not copies
    frame["city"] = rng.choice(["Lyon", "Lille", "Nice"], N)
    frame["city_2"] = rng.choice(["Oslo", "Bergen"], N)  # alike in name only: said, never left out for it
    found = findings(empty_workspace, frame)
    assert fired(found, "near_duplicate") == {"amount_1", "x_in_cm", "city_2"}
    by_column = {f.column: f for f in found if f.check == "near_duplicate"}
    assert "'amount_1' has the name of 'AMOUNT'" in by_column["amount_1"].explanation
    assert "moves with 'x' almost exactly" in by_column["x_in_cm"].explanation
    assert by_column["amount_1"].remedy is Remedy.EXCLUDE and by_column["x_in_cm"].remedy is Remedy.EXCLUDE
    assert by_column["city_2"].remedy is Remedy.NONE and "other values" in by_column["city_2"].explanation
