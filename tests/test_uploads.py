"""Bring your own data: uploads become tables; bad files get reasons; nothing is overwritten unasked."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from backend.errors import FlurryError
from backend.uploads import ImportResult, import_upload
from backend.warehouse.base import TableRef
from backend.workspace import Workspace

CSV = b'id;"Order Total (EUR)";select;note\n1;10,5;yes;"a; b"\n2;7;no;plain\n3;;yes;"quoted ""word"""\n'


def upload(ws: Workspace, name: str, content: bytes, table: str = "mine", **kwargs: bool) -> ImportResult:
    return import_upload(ws.warehouse, name, len(content), content, TableRef("uploads", table), **kwargs)


def test_a_semicolon_csv_with_awkward_headers(empty_workspace: Workspace) -> None:
    result = upload(empty_workspace, "export.csv", CSV)
    assert (result.rows, result.columns) == (3, 4)
    frame = empty_workspace.warehouse.preview(result.table)
    assert list(frame.columns) == ["id", "Order Total (EUR)", "select", "note"]
    assert frame["note"].tolist() == ["a; b", "plain", 'quoted "word"']


def test_yes_no_columns_keep_the_files_own_words(empty_workspace: Workspace) -> None:
    """DuckDB would read Yes/No as booleans; the model must then predict 'Yes', not 'True'."""
    content = b"default,student,balance\nNo,Yes,10.5\nYes,No,700\nNo,No,3\n"
    result = upload(empty_workspace, "defaults.csv", content)
    frame = empty_workspace.warehouse.preview(result.table)
    assert frame["default"].tolist() == ["No", "Yes", "No"] and frame["student"].tolist() == ["Yes", "No", "No"]
    assert frame["balance"].tolist() == [10.5, 700.0, 3.0]


def test_parquet_upload_and_replace_only_when_asked(empty_workspace: Workspace) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).to_parquet(buffer)
    content = buffer.getvalue()
    upload(empty_workspace, "data.parquet", content)
    with pytest.raises(FlurryError, match="already exists"):
        upload(empty_workspace, "data.parquet", content)
    smaller = io.BytesIO()
    pd.DataFrame({"x": [9]}).to_parquet(smaller)
    upload(empty_workspace, "data.parquet", smaller.getvalue(), replace=True)
    assert empty_workspace.warehouse.row_count(TableRef("uploads", "mine")) == 1


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.csv", b'a,b\n1,2,3,4\n"unterminated\n', "could not be read as CSV"),
    ("broken.parquet", b"not a parquet file at all", "not a complete Parquet file .it reads as text"),
    ("header_only.csv", b"a,b,c\n", "no rows"),
    ("empty.csv", b"", "empty"),
    ("table.xlsx", b"PK\x03\x04", "not a CSV or Parquet"),
])
def test_malformed_files_are_refused_with_a_reason(empty_workspace: Workspace, name: str, content: bytes,
                                                   message: str) -> None:
    with pytest.raises(FlurryError, match=message):
        upload(empty_workspace, name, content)
    assert not empty_workspace.warehouse.table_exists(TableRef("uploads", "mine"))


def test_a_failed_replace_keeps_the_old_table(empty_workspace: Workspace) -> None:
    upload(empty_workspace, "export.csv", CSV)
    with pytest.raises(FlurryError):
        upload(empty_workspace, "export.csv", b'a,b\n1,2,3,4\n"unterminated\n', replace=True)
    assert empty_workspace.warehouse.row_count(TableRef("uploads", "mine")) == 3


def test_size_limit_is_enforced_before_parsing(empty_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLURRY_MAX_UPLOAD_MB", "0.001")  # about 1 kB
    big = b"a,b\n" + b"1,2\n" * 1000
    with pytest.raises(FlurryError, match="limited to"):
        upload(empty_workspace, "big.csv", big)
    # the check uses the declared size, before any byte is read
    with pytest.raises(FlurryError, match="limited to"):
        import_upload(empty_workspace.warehouse, "big.csv", 10**9, b"", TableRef("uploads", "mine"))


def test_names_differing_only_in_case_are_renamed_and_reported(empty_workspace: Workspace) -> None:
    result = upload(empty_workspace, "case.csv", b"Name,name,NAME\n1,2,3\n")
    assert result.renamed == (("name", "name_1"), ("NAME", "NAME_2"))
    assert list(empty_workspace.warehouse.preview(result.table).columns) == ["Name", "name_1", "NAME_2"]
    # what the Data step keeps saying after the upload (no toast that vanishes)
    from components.upload_view import upload_sentences

    assert upload_sentences(result) == [
        f"Created {result.table} with 1 row and 3 columns.",
        "Renamed, since column names must differ by more than case: 'name' is now 'name_1'; 'NAME' is now 'NAME_2'."]
