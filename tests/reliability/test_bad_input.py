"""The bad-input catalogue: every step of the wizard given what a new user's tables and clicks really hold.

Each case calls what the step's page calls, and gets either a refusal (a FlurryError, whose message and hint
the page shows) or a finding (shown on the Target step), that names the column or setting at fault and says
what to do — or, for names that are legal however awkward, simply works with the names unchanged. Around
every case the warehouse is compared before and after: nothing stored, nothing altered, no row lost.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from backend.checks import Finding
from backend.dashboard import dashboard_data
from backend.deploy import change_threshold, deploy, score_table
from backend.errors import FlurryError
from backend.forecast_workflow import forecast_config, preview
from backend.forecasting.series import Duplicates, SeriesSpec
from backend.metrics import default_metric
from backend.task_detection import Task, check_task_override
from backend.uploads import import_upload
from backend.warehouse.base import METADATA_SCHEMA, TableRef
from backend.workspace import Workspace
from tests.conftest import make_workspace, put_table, train_and_wait
from tests.reliability.conftest import Observed

ROWS = 240


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(14)
    x = rng.normal(size=ROWS)
    churn = np.where(x + rng.normal(0, 0.5, ROWS) > 0, "yes", "no")
    base = pd.DataFrame({"tenure": x, "plan": rng.choice(["basic", "plus", "pro"], ROWS), "churned": churn})
    days = pd.date_range("2023-01-01", periods=120, freq="D")
    sales = pd.DataFrame({"day": np.tile(days, 2), "store": np.repeat(["north", "south"], 120),
                          "units": rng.poisson(20, 240).astype(float)})
    wide = pd.DataFrame(rng.normal(size=(30, 2000)), columns=[f"m{i}" for i in range(2000)])
    return {
        "customers": base,
        "one_value": base.assign(churned="no"),
        "no_values": base.assign(churned=None),
        "some_missing": base.assign(churned=base["churned"].where(rng.random(ROWS) > 0.25)),
        "three_rows": base.head(3),
        "a_rare_class": base.assign(churned=["yes"] * 3 + ["no"] * (ROWS - 3)),
        "one_in_a_thousand": pd.DataFrame({"tenure": rng.normal(size=3003), "churned": ["no"] * 3000 + ["yes"] * 3}),
        "dated": base.assign(signed_up=pd.date_range("2020-01-01", periods=ROWS, freq="D"),
                             last_seen=pd.date_range("2024-03-01", periods=ROWS, freq="h", tz="Europe/Paris")),
        "with_ids": base.assign(customer_id=[f"C-{i:06d}" for i in range(ROWS)],
                                note=[f"called on day {i} about {rng.integers(10**6)}" for i in range(ROWS)]),
        "mixed": base.assign(monthly_fee=[str(round(v, 2)) if i % 7 else "n/a" for i, v in enumerate(x * 10 + 50)]),
        "leaky": base.assign(churn_flag=np.where(churn == "yes", 1, 0)),
        "empty": base.head(0),
        "wide": wide.assign(churned=np.where(wide["m0"] > 0, "yes", "no")),
        "sales": sales,
        "sales_twice": pd.concat([sales, sales.head(5)], ignore_index=True),
        "sales_short": sales[sales["day"] >= days[-20]],
        "sales_text_target": sales.assign(units=sales["units"].astype(int).astype(str) + " units"),
        "sales_null_target": sales.assign(units=np.nan),
        "sales_zones": sales.assign(day=[f"{d:%Y-%m-%d} 00:00{'+01:00' if i % 2 else '+05:00'}"
                                         for i, d in enumerate(sales["day"])]),
    }


@dataclass
class Bench:
    ws: Workspace
    tables: dict[str, TableRef]
    model_id: str
    run_id: str
    function: str

    def snapshot(self) -> dict[str, int]:
        """Every table the user and Flurry hold, with its rows."""
        held = {}
        for schema in {*self.ws.warehouse.list_schemas(), METADATA_SCHEMA}:
            for name in self.ws.warehouse.list_tables(schema):
                table = TableRef(schema, name)
                held[str(table)] = self.ws.warehouse.row_count(table)
        return held


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    ws = make_workspace(tmp_path_factory.mktemp("bad-input") / "flurry.duckdb", seed_demo=False)
    tables = {name: put_table(ws, name, frame) for name, frame in _frames().items()}
    progress = train_and_wait(ws, tables["customers"], "churned", budget=2)
    assert progress.model_id is not None
    function = "churn_model"
    deploy(ws.warehouse, ws.registry, progress.model_id, function)
    yield Bench(ws, tables, progress.model_id, progress.run.run_id, function)
    ws.close()


def refusal(act: Callable[[], object]) -> str:
    """What the page shows when `act` is refused: the message and its remedy (which must be there)."""
    with pytest.raises(FlurryError) as refused:
        act()
    assert refused.value.hint, f"no remedy given: {refused.value.message}"
    return f"{refused.value.message} {refused.value.hint}"


def finding(findings: list[Finding], check: str, column: str | None = None) -> str:
    """The Target step's finding of kind `check` (about `column`, when given), which must be among `findings`."""
    found = [f for f in findings if f.check == check and column in (None, f.column)]
    assert found, f"no {check!r} finding for {column!r} among {[(f.check, f.column) for f in findings]}"
    return f"{found[0].title}: {found[0].explanation}"


def _target_step(b: Bench, table: str, target: str, task: Task | None = None) -> list[Finding]:
    """The Target step: the task detected (or the user's choice checked), then every data check, from the one
    profile of the table (as the page's cache keeps it)."""
    ref = b.tables[table]
    profile = b.ws.warehouse.profile(ref)
    summary, choices = b.ws.target_summary(ref, target, profile)
    column = next(c for c in b.ws.warehouse.describe(ref) if c.name == target)
    if task is not None:
        check_task_override(summary, column, task)
    return b.ws.checks(ref, target, task or summary.detected_task, [c.name for c in choices if c.name != target],
                       profile)


def _train_step(b: Bench, table: str, target: str, *, budget: int = 10, **options: object) -> object:
    ref = b.tables[table]
    summary, choices = b.ws.target_summary(ref, target)
    return b.ws.train_config(ref, target, summary.detected_task, [c.name for c in choices if c.include],
                             default_metric(summary.detected_task), budget, **options)


def _upload(b: Bench, file_name: str, content: bytes, table: str = "uploaded") -> object:
    return import_upload(b.ws.warehouse, file_name, len(content), content, TableRef("lab", table))


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _forecast(b: Bench, table: str, spec: SeriesSpec) -> object:
    return preview(b.ws.warehouse, b.tables[table], spec)


SALES = SeriesSpec("day", "units", ("store",), horizon=7)

# (case, what the step is given) → the message the user sees; each must name what it says (second item)
CASES: dict[str, tuple[Callable[[Bench], str], str]] = {
    # --- the Target step ---------------------------------------------------------------------------------------
    "target with one value": (lambda b: refusal(lambda: _target_step(b, "one_value", "churned")), "churned"),
    "target with no values": (lambda b: refusal(lambda: _target_step(b, "no_values", "churned")), "churned"),
    "empty table": (lambda b: refusal(lambda: _target_step(b, "empty", "churned")), "no rows"),
    "three rows": (lambda b: refusal(lambda: _train_step(b, "three_rows", "churned")), "churned"),
    "a class rarer than the folds": (lambda b: finding(_target_step(b, "a_rare_class", "churned"), "rare_classes"),
                                     "churned"),
    "a class rarer than the folds, trained": (lambda b: refusal(lambda: _train_step(b, "a_rare_class", "churned")),
                                              "churned"),
    "1:1000 imbalance": (lambda b: finding(_target_step(b, "one_in_a_thousand", "churned"), "rare_classes"), "'yes'"),
    "regression on text": (lambda b: refusal(lambda: _target_step(b, "customers", "churned", Task.REGRESSION)),
                           "churned"),
    "binary on three values": (lambda b: refusal(lambda: _target_step(b, "customers", "plan", Task.BINARY)), "plan"),
    "forecast without a time column": (lambda b: refusal(lambda: _target_step(b, "customers", "plan", Task.FORECAST)),
                                       "plan"),
    "dates as a feature": (lambda b: finding(_target_step(b, "dated", "churned"), "datetime", "signed_up"), "signed_up"),
    "a time-zone column": (lambda b: finding(_target_step(b, "dated", "churned"), "datetime", "last_seen"), "last_seen"),
    "an ID-like column": (lambda b: finding(_target_step(b, "with_ids", "churned"), "id_like", "customer_id"), "customer_id"),
    "free text in every row": (lambda b: finding(_target_step(b, "with_ids", "churned"), "id_like", "note"), "note"),
    "numbers stored as text": (lambda b: finding(_target_step(b, "mixed", "churned"), "mixed_type", "monthly_fee"),
                               "monthly_fee"),
    "a copy of the target": (lambda b: finding(_target_step(b, "leaky", "churned"), "leakage", "churn_flag"), "churn_flag"),
    "2,000 columns": (lambda b: finding(_target_step(b, "wide", "churned"), "leakage", "m0"), "m0"),
    # --- the Train step ----------------------------------------------------------------------------------------
    "budget of zero": (lambda b: refusal(lambda: _train_step(b, "customers", "churned", budget=0)), "budget"),
    "budget of a week": (lambda b: refusal(lambda: _train_step(b, "customers", "churned", budget=604800)), "budget"),
    "one cross-validation fold": (lambda b: refusal(lambda: _train_step(b, "customers", "churned", validation="cv",
                                                                        cv_folds=1)), "fold"),
    "a column dropped since picked": (lambda b: refusal(lambda: b.ws.train_config(
        b.tables["customers"], "churned", Task.BINARY, ["tenure", "gone"], "roc_auc", 10)), "'gone'"),
    "an outcome of interest no longer there": (lambda b: refusal(lambda: _train_step(
        b, "customers", "churned", positive_class="maybe")), "'maybe'"),
    # --- the Data step: uploads --------------------------------------------------------------------------------
    "a malformed CSV": (lambda b: refusal(lambda: _upload(b, "orders.csv", b'a,b\n1,2,3,4\n"open\n')), "CSV"),
    "a truncated Parquet file": (lambda b: refusal(lambda: _upload(
        b, "orders.parquet", _parquet(pd.DataFrame({"a": range(50)}))[:-40])), "orders.parquet"),
    "Parquet named .csv": (lambda b: refusal(lambda: _upload(b, "orders.csv", _parquet(pd.DataFrame({"a": [1]})))),
                           "orders.csv"),
    "CSV named .parquet": (lambda b: refusal(lambda: _upload(b, "orders.parquet", b"a,b\n1,2\n")), "orders.parquet"),
    "an Excel workbook named .csv": (lambda b: refusal(lambda: _upload(b, "orders.csv", b"PK\x03\x04" + bytes(60))),
                                     "Excel"),
    "a binary file named .csv": (lambda b: refusal(lambda: _upload(b, "orders.csv", bytes(range(256)))),
                                 "orders.csv"),
    "an image": (lambda b: refusal(lambda: _upload(b, "photo.png", b"\x89PNG\r\n")), "photo.png"),
    "an empty file": (lambda b: refusal(lambda: _upload(b, "orders.csv", b"")), "empty"),
    "a header and no rows": (lambda b: refusal(lambda: _upload(b, "orders.csv", b"a,b,c\n")), "no rows"),
    "an upload too big": (lambda b: refusal(lambda: import_upload(b.ws.warehouse, "orders.csv", 10**12, b"a\n1\n",
                                                                  TableRef("lab", "uploaded"))), "MB"),
    "an upload onto an existing table": (lambda b: refusal(lambda: _upload(b, "customers.csv", b"a\n1\n",
                                                                           "customers")), "customers"),
    # --- the Deploy step: scoring ------------------------------------------------------------------------------
    "scoring a table missing an input": (lambda b: refusal(lambda: score_table(
        b.ws.warehouse, b.ws.registry, b.function, b.tables["sales"], TableRef("lab", "scored"))), "tenure"),
    "scores over their own source": (lambda b: refusal(lambda: score_table(
        b.ws.warehouse, b.ws.registry, b.function, b.tables["customers"], b.tables["customers"])), "overwrite"),
    "scores onto an existing table": (lambda b: refusal(lambda: score_table(
        b.ws.warehouse, b.ws.registry, b.function, b.tables["customers"], b.tables["mixed"])), "mixed"),
    "a function that does not exist": (lambda b: refusal(lambda: score_table(
        b.ws.warehouse, b.ws.registry, "no_such_model", b.tables["customers"], TableRef("lab", "scored"))),
        "no_such_model"),
    "a threshold above 1": (lambda b: refusal(lambda: change_threshold(b.ws.warehouse, b.ws.registry, b.model_id,
                                                                       1.5, "manual")), "threshold"),
    "a threshold below 0": (lambda b: refusal(lambda: change_threshold(b.ws.warehouse, b.ws.registry, b.model_id,
                                                                       -0.1, "manual")), "threshold"),
    "a function named like SQL": (lambda b: refusal(lambda: deploy(b.ws.warehouse, b.ws.registry, b.model_id,
                                                                   "x); DROP TABLE lab.customers; --")), "name"),
    # --- forecasting -------------------------------------------------------------------------------------------
    "a forecast of text": (lambda b: refusal(lambda: _forecast(b, "sales_text_target", SALES)), "units"),
    "a forecast of an empty target": (lambda b: refusal(lambda: _forecast(b, "sales_null_target", SALES)), "units"),
    "duplicate periods, refused": (lambda b: refusal(lambda: _forecast(
        b, "sales_twice", SeriesSpec("day", "units", ("store",), horizon=7, duplicates=Duplicates.REFUSE))), "day"),
    "a horizon longer than the history": (lambda b: refusal(lambda: _forecast(
        b, "sales_short", SeriesSpec("day", "units", ("store",), horizon=30))), "30"),
    "mixed time zones": (lambda b: refusal(lambda: _forecast(b, "sales_zones", SALES)), "day"),
    "a forecast budget out of range": (lambda b: refusal(lambda: forecast_config(
        b.ws.warehouse, b.tables["sales"], SALES, "mase", 1)), "budget"),
    # --- the Dashboards step -----------------------------------------------------------------------------------
    "a dashboard link to no model": (lambda b: refusal(lambda: dashboard_data(b.ws.warehouse, b.ws.registry,
                                                                              "0123456789abcdef")), "0123456789abcdef"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_message_naming_it_and_a_remedy_and_changes_nothing(
        bench: Bench, case: str, observed: Observed, caplog: pytest.LogCaptureFixture) -> None:
    act, named = CASES[case]
    before = bench.snapshot()
    with caplog.at_level(logging.WARNING):
        message = act(bench)
    after = bench.snapshot()
    observed.rows_lost(sum(rows - after.get(table, 0) for table, rows in before.items()))
    observed.tracebacks(sum(1 for r in caplog.records if r.exc_info) + message.count("Traceback"))
    assert named.lower() in message.lower(), message
    assert "Traceback" not in message and "Error:" not in message.split(". ")[0], message
    assert after == before  # nothing stored, nothing altered


AWKWARD_NAMES = ["select", "from", "Order Date", "it's", 'say "hi"', "[bracket]", "x); DROP TABLE y; --",
                 "café €", "日本語", "a.b", "  padded  ", "100%"]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_column_names_round_trip_through_upload_profile_and_checks(bench: Bench, name: str,
                                                                          observed: Observed) -> None:
    """Reserved words, quotes, spaces, brackets, SQL and unicode are names like any other: uploaded, profiled,
    checked and read back exactly as written."""
    frame = pd.DataFrame({name: [1.5, 2.5, 3.5, 4.5] * 10, "label": ["a", "b"] * 20})
    table = f"awkward_{AWKWARD_NAMES.index(name)}"
    result = _upload(bench, "awkward.parquet", _parquet(frame), table)
    ref = TableRef("lab", table)
    try:
        assert [c.name for c in bench.ws.warehouse.describe(ref)] == [name, "label"] and not result.renamed
        profile = bench.ws.warehouse.profile(ref)
        assert profile.column(name).non_null == 40 and profile.column(name).mean == pytest.approx(3.0)
        findings = bench.ws.checks(ref, "label", Task.BINARY, [name], profile)
        assert all(f.column in (None, name, "label") for f in findings)
        assert list(bench.ws.warehouse.read_columns(ref, [name])[name][:2]) == [1.5, 2.5]
    finally:
        bench.ws.warehouse.drop_table(ref)


def test_a_utf16_text_file_from_excel_is_read_like_any_csv(bench: Bench, observed: Observed) -> None:
    """Excel's "Unicode text" is UTF-16 with a byte-order mark and tabs between fields: read as it is meant."""
    frame = pd.DataFrame({"région": ["Île-de-France", "Nord", "Sud"] * 10, "ventes": [1.5, 2.0, 3.25] * 10})
    content = frame.to_csv(index=False, sep="\t").encode("utf-16")
    try:
        result = _upload(bench, "export.txt", content, "excel_unicode")
        read = bench.ws.warehouse.read_columns(TableRef("lab", "excel_unicode"), ["région", "ventes"])
        assert result.rows == 30 and not result.renamed
        assert list(read["région"][:3]) == ["Île-de-France", "Nord", "Sud"] and read["ventes"].sum() == 67.5
    finally:
        bench.ws.warehouse.drop_table(TableRef("lab", "excel_unicode"))


def test_a_dashboard_link_to_a_deleted_model_says_so(bench: Bench, observed: Observed) -> None:
    """Last, as it deletes the bench's model: its link then gets the same plain refusal as any unknown id."""
    before = bench.snapshot()
    bench.ws.delete_run(bench.run_id)
    message = refusal(lambda: dashboard_data(bench.ws.warehouse, bench.ws.registry, bench.model_id))
    assert bench.model_id in message and not bench.ws.warehouse.function_exists(bench.function)
    after = bench.snapshot()
    observed.rows_lost(sum(rows - after.get(table, 0) for table, rows in before.items()
                           if not table.startswith(METADATA_SCHEMA)))
    assert {t: r for t, r in after.items() if not t.startswith(METADATA_SCHEMA)} == \
           {t: r for t, r in before.items() if not t.startswith(METADATA_SCHEMA)}


def test_the_catalogue_is_at_least_forty_cases() -> None:
    assert len(CASES) + len(AWKWARD_NAMES) + 1 >= 40
