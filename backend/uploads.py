"""Bring your own data: a CSV or Parquet file becomes a new warehouse table.

The size limit is enforced before a byte is parsed; malformed files are refused with the parser's reason;
an existing table is only replaced when the user says so, and then atomically.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backend.errors import UploadError
from backend.identifiers import slugify, validate_table_name
from backend.warehouse.base import TableRef, Warehouse

DEFAULT_MAX_UPLOAD_MB = 200
FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class ImportResult:
    table: TableRef
    rows: int
    columns: int
    renamed: tuple[tuple[str, str], ...] = ()  # (name in the file, column name in the table)


def _file_column_names(path: Path, fmt: str, delimiter: str | None) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle, delimiter=delimiter or ","), [])


def max_upload_bytes() -> int:
    return int(float(os.environ.get("FLURRY_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 1024 * 1024)


def default_table_name(file_name: str) -> str:
    return slugify(Path(file_name).stem, max_length=60)


def file_format(file_name: str) -> str:
    """'csv' or 'parquet' from the file name. Raises UploadError for anything else."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in FORMATS:
        raise UploadError(f"{file_name!r} is not a CSV or Parquet file.",
                          hint="Save the data as .csv or .parquet and upload it again.")
    return FORMATS[suffix]


PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"  # Excel workbooks (.xlsx) are zip archives


def check_content(file_name: str, fmt: str, content: bytes) -> None:
    """The bytes are what the name says. Raises UploadError naming what the file seems to be instead."""
    if fmt == "parquet" and not (content.startswith(PARQUET_MAGIC) and content.endswith(PARQUET_MAGIC)):
        looks_like_text = b"\x00" not in content[:4096]
        raise UploadError(f"{file_name!r} is not a complete Parquet file"
                          + (" (it reads as text)." if looks_like_text else " (it may be cut short)."),
                          hint="If it is CSV text, rename it to end in .csv; otherwise export the Parquet file again.")
    if fmt == "csv" and content.startswith(PARQUET_MAGIC):
        raise UploadError(f"{file_name!r} is a Parquet file, though its name says CSV.",
                          hint="Rename it to end in .parquet and upload it again.")
    if fmt == "csv" and content.startswith(ZIP_MAGIC):
        raise UploadError(f"{file_name!r} is an Excel workbook or a zip archive, not CSV text.",
                          hint="Open it and save the sheet as CSV (File → Save As → CSV), then upload that.")
    if fmt == "csv" and b"\x00" in content[:4096]:
        raise UploadError(f"{file_name!r} is not text, so it cannot be read as CSV.",
                          hint="Export the data as CSV (UTF-8) or Parquet and upload that.")


UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text" and some exports: UTF-16 with its byte-order mark


def as_utf8(fmt: str, content: bytes) -> bytes:
    """CSV text as UTF-8: a UTF-16 file (marked by its byte-order mark) re-encoded, anything else unchanged.
    Raises UploadError when a marked file does not decode."""
    if fmt != "csv" or not content.startswith(UTF16_MARKS):
        return content
    try:
        return content.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError("The file says it is UTF-16 text but does not decode as such.",
                          hint="Save it as CSV (UTF-8) and upload it again.") from exc


def sniff_delimiter(head: bytes) -> str:
    """The CSV delimiter, from the first few kilobytes (comma when it cannot tell)."""
    text = head.decode("utf-8", errors="replace")
    try:
        return csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def check_size(size: int) -> None:
    limit = max_upload_bytes()
    if size > limit:
        raise UploadError(f"The file is {size / 1024 / 1024:,.1f} MB; uploads are limited to "
                          f"{limit / 1024 / 1024:,.0f} MB.",
                          hint="Load bigger tables into the warehouse directly, or upload a smaller extract.")
    if size == 0:
        raise UploadError("The file is empty.", hint="Choose a file with a header row and data.")


def import_upload(warehouse: Warehouse, file_name: str, size: int, content: bytes, table: TableRef, *,
                  replace: bool = False) -> ImportResult:
    """Create `table` from an uploaded file. Raises UploadError (size, format, parse errors, existing table)."""
    check_size(size)  # before parsing anything
    fmt = file_format(file_name)
    content = as_utf8(fmt, content)
    check_content(file_name, fmt, content)
    table = TableRef(validate_table_name(table.schema), validate_table_name(table.name))
    if warehouse.table_exists(table) and not replace:
        raise UploadError(f"A table {table} already exists.",
                          hint="Choose another name, or tick 'Replace it' to overwrite it.")
    with tempfile.TemporaryDirectory(prefix="flurry-upload-") as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        path.write_bytes(content)
        delimiter = sniff_delimiter(content[:65536]) if fmt == "csv" else None
        rows = warehouse.create_table_from_file(table, path, fmt, delimiter=delimiter)
        original = _file_column_names(path, fmt, delimiter)
    names = [c.name for c in warehouse.describe(table)]
    # Column names are case-insensitive in the warehouse: "Name" and "name" cannot both exist, so the
    # warehouse renames the later one; say so rather than let the user find out.
    renamed = tuple((o, n) for o, n in zip(original, names, strict=False) if o != n) if len(original) == len(names) else ()
    return ImportResult(table=table, rows=rows, columns=len(names), renamed=renamed)
