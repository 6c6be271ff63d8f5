"""The record formats of the Data Streamer: kinds, versions, parsing, rendering, CSV.

Records are read from any version into one canonical form (the ``new`` shape) and written
from it in the version and shape each destination asked for. ``../spec/FORMATS.md`` is the
contract; the JSON Schema files of each kind and version live in ``schemas/json/``.
"""

from schemas.canonical import (
    Canonical,
    Lines,
    canonical,
    canonical_json,
    canonical_kind,
    canonical_lines,
    canonical_record,
)
from schemas.csv_format import csv_header, csv_row, csv_row_stored, read_csv, render_csv
from schemas.decode import iter_json, loads, loads_stored, parse_json
from schemas.errors import InvalidValue, MalformedRecord, MissingField, RecordError, WrongType
from schemas.jsonschema import json_schema
from schemas.kinds import NULLABLE_ROOTS, Kind, Record, Shape, Version, detect_kind, detect_version
from schemas.parse import parse_record
from schemas.render import dumps, dumps_stored, render

__all__ = [
    "NULLABLE_ROOTS",
    "Canonical",
    "InvalidValue",
    "Kind",
    "Lines",
    "MalformedRecord",
    "MissingField",
    "Record",
    "RecordError",
    "Shape",
    "Version",
    "WrongType",
    "canonical",
    "canonical_json",
    "canonical_kind",
    "canonical_lines",
    "canonical_record",
    "csv_header",
    "csv_row",
    "csv_row_stored",
    "detect_kind",
    "detect_version",
    "dumps",
    "dumps_stored",
    "iter_json",
    "json_schema",
    "loads",
    "loads_stored",
    "parse_json",
    "parse_record",
    "read_csv",
    "render",
    "render_csv",
]
