"""``streamer convert``: records in any version in, one chosen version out (NDJSON or CSV).

Inputs are JSON (one object, an array, NDJSON) or CSV under one of the four S3 headers, as
files or standard input, gzip-compressed when the name ends in ``.gz``. The input format is
told from the first byte: ``{`` or ``[`` is JSON, anything else CSV. Records stream through one
at a time, so the size of an input does not matter (a JSON array excepted: it is read whole).
"""

from __future__ import annotations

import gzip
import itertools
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

from schemas import (
    Canonical,
    Kind,
    RecordError,
    Shape,
    Version,
    canonical_json,
    canonical_kind,
    canonical_record,
    csv_header,
    csv_row_stored,
    dumps_stored,
    read_csv,
)

__all__ = ["ConvertError", "convert", "read_inputs"]


class ConvertError(Exception):
    """A problem with the input that the user must fix; the message says where and what."""


def convert(
    inputs: Sequence[str],
    output: BinaryIO,
    version: Version,
    *,
    as_csv: bool = False,
    kind: Kind | None = None,
    shape: Shape = Shape.FULL,
) -> int:
    """Convert every record of ``inputs`` ("-" is standard input) to ``output``; return the count.

    With ``kind``, records of the other kind are read and checked but not written. Stops at
    the first record that cannot be read, with a ``ConvertError`` naming the input,
    the record's position and the field at fault.
    """
    if as_csv:
        return _to_csv(read_inputs(inputs), output, version, kind)
    written = 0
    write = output.write
    try:
        for name in inputs or ["-"]:
            with _reading(name) as records:
                for record in records:  # the common case: one loop, no layer between
                    if isinstance(record, RecordError):
                        raise record
                    record_kind = canonical_kind(record)
                    if kind is None or record_kind is kind:
                        try:
                            write(dumps_stored(record[0], record_kind, version, shape) + b"\n")
                        except OSError as exc:
                            raise _Unwritten(exc) from None
                        written += 1
    except _Unwritten as unwritten:  # the output's error, as it came (a closed pipe: no error)
        raise unwritten.error from None
    return written


class _Unwritten(Exception):
    """Writing the output failed: not an error of the input being read."""

    def __init__(self, error: OSError) -> None:
        self.error = error


def _to_csv(
    records: Iterator[tuple[str, int, Canonical]],
    output: BinaryIO,
    version: Version,
    kind: Kind | None,
) -> int:
    written = 0
    csv_kind: Kind | None = None
    for name, index, record in records:
        record_kind = canonical_kind(record)
        if kind is not None and record_kind is not kind:
            continue
        if csv_kind is None:
            csv_kind = record_kind
            output.write(csv_header(csv_kind, version).encode())
        if record_kind is not csv_kind:
            raise ConvertError(
                f"{_label(name)}: record {index}: is {record_kind.article} record in a file"
                f" of {csv_kind} records; a CSV file holds one kind: choose it with --kind"
            )
        output.write(csv_row_stored(record[0], record_kind, version))
        written += 1
    return written


def read_inputs(inputs: Sequence[str]) -> Iterator[tuple[str, int, Canonical]]:
    """Every record of ``inputs`` ("-" or none: standard input) as (input, position, record),
    the record in its canonical form (``schemas.Canonical``).

    Raises ``ConvertError`` naming the input, the record's position and the field at fault
    for the first record that cannot be read."""
    for name in inputs or ["-"]:
        with _reading(name) as records:
            for index, record in enumerate(records):
                if isinstance(record, RecordError):
                    raise record
                yield name, index, record


@contextmanager
def _reading(name: str) -> Iterator[Iterator[Canonical | RecordError]]:
    """The records of input ``name``, an unreadable one as its error (for the reader to raise);
    an error raised while reading becomes a ``ConvertError`` naming the input."""
    with ExitStack() as stack:
        stream = _open(name, stack)
        try:
            yield _records(stream)
        except RecordError as exc:
            raise ConvertError(f"{_label(name)}: {exc.message}") from None
        except (OSError, EOFError) as exc:
            raise ConvertError(f"{_label(name)}: cannot read: {exc}") from None


def _records(stream: BinaryIO) -> Iterator[Canonical | RecordError]:
    lines = iter(stream)
    first = next((line for line in lines if line.strip()), b"")
    lines = itertools.chain([first], lines)
    if first.lstrip()[:1] in (b"{", b"["):
        return canonical_json(lines)
    return _csv_records(lines)


def _csv_records(lines: Iterator[bytes]) -> Iterator[Canonical]:
    try:
        yield from map(canonical_record, read_csv(line.decode() for line in lines))
    except UnicodeDecodeError:
        raise RecordError("$", "the CSV file is not valid UTF-8") from None


def _open(name: str, stack: ExitStack) -> BinaryIO:
    try:
        raw = sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise ConvertError(f"{name}: cannot open: {exc.strerror}") from None
    if name.endswith(".gz"):
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[return-value]
    return raw


def _label(name: str) -> str:
    return "<stdin>" if name == "-" else name
