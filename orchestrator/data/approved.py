"""Approved-dataset intake: the exact bytes an ethics board or data-protection authority approved.

The spec pins the file by SHA-256. The file is streamed into the trial's work directory and hashed
in the same pass; only when the hash matches does the copy get its final name (read-only) and is
parsed. Parsing the copy rather than the original means the bytes read are the bytes hashed, even
if the original changes afterwards.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import DataError
from orchestrator.spec import ApprovedData

DataFormat = Literal["csv", "parquet"]
FORMATS: dict[str, DataFormat] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CHUNK_BYTES = 1 << 20
READ_ONLY = 0o444
# Identifiers stay text: a CSV reader would turn "00123" into 123, and the gateway carries case ids
# as text.
TEXT_COLUMNS = ("case_id",)


class ApprovedProvenance(BaseModel):
    """Where an approved dataset came from and what was taken in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec_path: str = Field(description="The approved file's path exactly as written in the spec.")
    source_path: str = Field(
        description="The approved file as named by the spec, resolved to an absolute path."
    )
    path: str = Field(description="Read-only copy in the trial's work directory; the bytes that were parsed.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file (matches the spec).")
    approval_ref: str = Field(description="Reference of the approval (ethics board, DPA ...).")
    format: DataFormat = Field(description="File format, from the file name's suffix.")
    size_bytes: int = Field(ge=0, description="Size of the file in bytes.")
    rows: int = Field(ge=0, description="Rows read.")
    columns: list[str] = Field(description="Columns read, in file order.")


def resolve_approved_path(path: Path, base_dir: Path | None = None) -> Path:
    """Absolute path of the approved file: relative paths resolve against ``base_dir`` (the spec
    file's directory when known), else against the current directory."""
    path = path.expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return path.absolute()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def copy_verified(source: Path, destination: Path, expected_sha256: str) -> int:
    """Copy ``source`` to ``destination`` (read-only) if its SHA-256 is ``expected_sha256``.

    Returns the size in bytes. On a mismatch, a missing or unreadable file, raises DataError naming
    the file (and both hashes) and leaves nothing under ``destination``.
    """
    if not source.is_file():
        raise DataError(f"approved data file {source} does not exist (spec sha256 {expected_sha256})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    digest = hashlib.sha256()
    size = 0
    try:
        partial.unlink(missing_ok=True)  # a leftover of an interrupted intake may be read-only
        with source.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(CHUNK_BYTES):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"cannot copy approved data file {source} into {destination.parent}: {exc.strerror or exc}"
        ) from exc
    actual = digest.hexdigest()
    if actual != expected_sha256:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"approved data file {source} does not match its approval: sha256 is {actual}, "
            f"the spec expects {expected_sha256}"
        )
    os.chmod(partial, READ_ONLY)
    # Replacing works over an earlier read-only copy (a re-run in the same work directory).
    os.replace(partial, destination)
    return size


def data_format(path: Path) -> DataFormat:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise DataError(f"approved data file {path} has an unsupported format; use one of {known}") from None


def read_table(path: Path, fmt: DataFormat, text_columns: Sequence[str] = TEXT_COLUMNS) -> pd.DataFrame:
    """Read a CSV or Parquet file; DataError naming the file when it cannot be parsed.

    ``text_columns`` (identifiers) are read as text wherever they exist.
    """
    import pyarrow as pa

    try:
        if fmt == "csv":
            return pd.read_csv(path, dtype=dict.fromkeys(text_columns, "str"))
        frame = pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot parse approved data file {path} as {fmt}: {exc}") from exc
    for column in text_columns:
        if column in frame.columns and pd.api.types.is_integer_dtype(frame[column]):
            frame[column] = frame[column].astype("str")
    return frame


def intake_approved(
    approved: ApprovedData,
    workdir: Path,
    base_dir: Path | None = None,
    folder: str = "approved",
    text_columns: Sequence[str] = TEXT_COLUMNS,
) -> tuple[pd.DataFrame, ApprovedProvenance]:
    """Verify, copy (read-only, under ``workdir/<folder>/``) and read an approved dataset.

    ``folder`` keeps datasets of one trial apart (the trial data, its reference population);
    ``text_columns`` are read as text (the case id column).
    """
    source = resolve_approved_path(approved.path, base_dir)
    copy = workdir / folder / source.name
    size = copy_verified(source, copy, approved.sha256)
    fmt = data_format(source)
    frame = read_table(copy, fmt, text_columns)
    provenance = ApprovedProvenance(
        spec_path=str(approved.path),
        source_path=str(source),
        path=str(copy),
        sha256=approved.sha256,
        approval_ref=approved.approval_ref,
        format=fmt,
        size_bytes=size,
        rows=len(frame),
        columns=[str(column) for column in frame.columns],
    )
    return frame, provenance
