"""The S3 CSV files: the four header rows, rows under them, and reading them back (FORMATS.md §4).

Writing: UTF-8 without BOM (``old``: every non-ASCII character becomes a space), every non-null
field double-quoted and a null written as nothing between the commas (so ``""`` is an empty
string and stays one), ``\\n`` line ends, one header row, one record kind per file; booleans
and timestamps follow the version; volumes at 6 decimals and ``cost`` at 10, as the platform
writes them; other numbers never in exponent notation; ``detail`` as compact JSON, or as its
text when it is a string.

Reading: the header row tells the kind and whether the file is legacy (``old``/``migrated``) or
``new``; columns are matched by name, so reordered or added columns still read (an unknown
column becomes a root field holding its text). An unquoted empty field is null, a quoted one an
empty string. Each row is then parsed like any JSON record, so a file written here reads back
as the records it was written from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, NamedTuple

from schemas.decode import MAX_INTEGER_DIGITS, loads
from schemas.errors import InvalidValue, MalformedRecord, RecordError
from schemas.kinds import Kind, Record, Version
from schemas.parse import parse_record
from schemas.render import ascii_only, to_json
from schemas.timestamps import legacy_timestamp

__all__ = ["csv_header", "csv_row", "read_csv", "render_csv"]


class Column(NamedTuple):
    name: str
    path: tuple[str, ...]
    type: str
    """``int``, ``num``, ``dec6``/``dec10`` (decimals at that scale), ``str``, ``ts`` (timestamp),
    ``bool`` or ``json``."""


def _columns(*spec: str) -> tuple[Column, ...]:
    """Build a column table from ``"name type path.to.field"`` entries."""
    columns = []
    for line in spec:
        name, kind, path = line.split()
        columns.append(Column(name, tuple(path.split(".")), kind))
    return tuple(columns)


_EVENT_LEGACY = _columns(
    "id int id",
    "timestamp ts timestamp",
    "event_type_id int event_type.id",
    "event_type_description str event_type.description",
    "event_severity_id int event_severity.id",
    "event_severity_description str event_severity.description",
    "organisation_id int organisation.id",
    "organisation_name str organisation.name",
    "description str description",
    "alert bool alert",
    "event_source_id int event_source.id",
    "event_source_name str event_source.description",
    "endpoint_id int endpoint.id",
    "endpoint_name str endpoint.name",
    "endpoint_imei str endpoint.imei",
    "endpoint_ip_address str endpoint.ip_address",
    "endpoint_tags str endpoint.tags",
    "sim_id int sim.id",
    "sim_iccid str sim.iccid",
    "msisdn_msisdn str sim.msisdn",
    "sim_production_date ts sim.production_date",
    "imsi_id int imsi.id",
    "imsi_imsi str imsi.imsi",
    "user_id int user.id",
    "user_username str user.username",
    "user_name str user.name",
)

_EVENT_NEW = _columns(
    "id int id",
    "timestamp ts timestamp",
    "event_source_id int event_source.id",
    "event_source_description str event_source.description",
    "event_severity_id int event_severity.id",
    "event_severity_description str event_severity.description",
    "event_type_id int event_type.id",
    "event_type_description str event_type.description",
    "organisation_id int organisation.id",
    "organisation_name str organisation.name",
    "user_id int user.id",
    "user_username str user.username",
    "user_name str user.name",
    "alert bool alert",
    "description str description",
    "endpoint_id int endpoint.id",
    "endpoint_name str endpoint.name",
    "endpoint_ip_address str endpoint.ip_address",
    "endpoint_tags str endpoint.tags",
    "endpoint_imei str endpoint.imei",
    "sim_id int sim.id",
    "sim_iccid str sim.iccid",
    "sim_msisdn str sim.msisdn",
    "sim_production_date ts sim.production_date",
    "imsi_id int imsi.id",
    "imsi_imsi str imsi.imsi",
    "imsi_import_date ts imsi.import_date",
    "detail json detail",
)

_USAGE_LEGACY = _columns(
    "id int id",
    "event_start_timestamp ts start_timestamp",
    "event_stop_timestamp ts end_timestamp",
    "organisation_id int organisation.id",
    "organisation_name str organisation.name",
    "endpoint_id int endpoint.id",
    "sim_id int sim.id",
    "iccid str sim.iccid",
    "imsi str imsi",
    "operator_id int operator.id",
    "operator_name str operator.name",
    "country_id int operator.country.id",
    "operator_country_name str operator.country.name",
    "traffic_type_id int traffic_type.id",
    "traffic_type_description str traffic_type.description",
    "volume dec6 volume.total",
    "volume_tx dec6 volume.tx",
    "volume_rx dec6 volume.rx",
    "cost dec10 cost",
    "currency_id int currency.id",
    "currency_code str currency.code",
    "currency_symbol str currency.symbol",
    "ratezone_tariff_id int tariff.id",
    "ratezone_tariff_name str tariff.name",
    "ratezone_id int tariff.ratezone.id",
    "ratezone_name str tariff.ratezone.name",
    "endpoint_name str endpoint.name",
    "endpoint_ip_address str endpoint.ip_address",
    "endpoint_tags str endpoint.tags",
    "endpoint_imei str endpoint.imei",
    "msisdn_msisdn str sim.msisdn",
    "sim_production_date ts sim.production_date",
    "operator_mncs str operator.mnc",
    "country_mcc str operator.country.mcc",
)

_USAGE_NEW = _columns(
    "id int id",
    "start_timestamp ts start_timestamp",
    "end_timestamp ts end_timestamp",
    "cost dec10 cost",
    "volume_total dec6 volume.total",
    "volume_rx dec6 volume.rx",
    "volume_tx dec6 volume.tx",
    "operator_id int operator.id",
    "operator_name str operator.name",
    "operator_mnc str operator.mnc",
    "operator_country_id int operator.country.id",
    "operator_country_mcc str operator.country.mcc",
    "operator_country_name str operator.country.name",
    "organisation_id int organisation.id",
    "organisation_name str organisation.name",
    "tariff_id int tariff.id",
    "tariff_name str tariff.name",
    "tariff_ratezone_id int tariff.ratezone.id",
    "tariff_ratezone_name str tariff.ratezone.name",
    "traffic_type_id int traffic_type.id",
    "traffic_type_description str traffic_type.description",
    "endpoint_id int endpoint.id",
    "endpoint_name str endpoint.name",
    "endpoint_ip_address str endpoint.ip_address",
    "endpoint_tags str endpoint.tags",
    "endpoint_imei str endpoint.imei",
    "endpoint_balance_amount num endpoint.balance.amount",
    "endpoint_balance_last_updated ts endpoint.balance.last_updated",
    "endpoint_balance_expiry_date ts endpoint.balance.expiry_date",
    "endpoint_balance_currency_id int endpoint.balance.currency.id",
    "endpoint_balance_currency_code str endpoint.balance.currency.code",
    "endpoint_balance_currency_symbol str endpoint.balance.currency.symbol",
    "imsi str imsi",
    "imsi_id int imsi_id",
    "sim_id int sim.id",
    "sim_iccid str sim.iccid",
    "sim_msisdn str sim.msisdn",
    "sim_production_date ts sim.production_date",
    "currency_id int currency.id",
    "currency_code str currency.code",
    "currency_symbol str currency.symbol",
)

_LAYOUTS: dict[tuple[Kind, bool], tuple[Column, ...]] = {
    (Kind.EVENT, True): _EVENT_LEGACY,
    (Kind.EVENT, False): _EVENT_NEW,
    (Kind.USAGE, True): _USAGE_LEGACY,
    (Kind.USAGE, False): _USAGE_NEW,
}
_HEADERS = {
    key: ",".join(f'"{column.name}"' for column in columns) + "\n"
    for key, columns in _LAYOUTS.items()
}


_PLANS = {
    key: tuple(
        (column.path[0], column.path[1:], column.type in ("int", "num", "str"), column.type)
        for column in columns
    )
    for key, columns in _LAYOUTS.items()
}
"""Each layout as ``csv_row`` walks it: the root key, the keys below it, whether text and
integers are written as they are, and the column's type."""


def csv_header(kind: Kind, version: Version) -> str:
    """The exact header row (with its line end) for ``kind`` in ``version``."""
    return _HEADERS[kind, version is not Version.NEW]


def csv_row(record: Record, kind: Kind, version: Version) -> str:
    """One canonical record as a CSV row (with its line end) under ``csv_header``."""
    legacy = version is not Version.NEW
    cells: list[str] = []
    append = cells.append
    for first, rest, plain, column_type in _PLANS[kind, legacy]:
        value = record.get(first)
        for key in rest:
            if value is None:
                break
            value = value.get(key)
        if value is None:
            append("")
        elif plain and type(value) is str:  # most cells: text written as it is
            append('"' + value.replace('"', '""') + '"')
        elif plain and type(value) is int:
            append(f'"{value}"')
        else:
            append(_cell(value, column_type, legacy))
    row = ",".join(cells) + "\n"
    return ascii_only(row) if version is Version.OLD else row


def render_csv(records: Iterable[Record], kind: Kind, version: Version) -> str:
    """A whole CSV file: the header row, then one row per record."""
    return csv_header(kind, version) + "".join(csv_row(r, kind, version) for r in records)


_SCALES = {"dec6": 6, "dec10": 10}
_WIDE = Context(prec=400)  # every digit of any finite float and its fraction


def _cell(value: Any, column_type: str, legacy: bool) -> str:
    if value is None:
        return ""
    if column_type == "ts" and isinstance(value, str):
        text = legacy_timestamp(value) if legacy else value
    elif isinstance(value, bool):
        text = ("1" if value else "0") if legacy else ("true" if value else "false")
    elif column_type in _SCALES and isinstance(value, int | float):
        text = _scaled(value, column_type)
    elif column_type == "json" and isinstance(value, str):
        text = _detail_text(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = _plain_float(value)
    else:
        text = to_json(value).decode()
    return '"' + text.replace('"', '""') + '"'


def _scaled(value: int | float, column_type: str) -> str:
    """``value`` with exactly the column's decimals, rounded half to even (``0.00321`` →
    ``0.003210``)."""
    scale = _SCALES[column_type]
    if isinstance(value, int):
        return f"{value}.{'0' * scale}"
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN, _WIDE)
    return format(abs(exact) if exact.is_zero() else exact, "f")


def _detail_text(value: str) -> str:
    """A string ``detail`` as its text; as a JSON string only where the text would read back
    as something else (an object, an array or a JSON string)."""
    return to_json(value).decode() if _is_document(value) else value


def _is_document(text: str) -> bool:
    try:
        return isinstance(loads(text.encode()), dict | list | str)
    except MalformedRecord:
        return False


def _plain_float(value: float) -> str:
    """The shortest exact digits of ``value``, never in exponent notation, always with a point."""
    text = repr(value)
    if "e" not in text:
        return text
    text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def read_csv(lines: Iterable[str]) -> Iterator[Record]:
    """Read a CSV file written under one of the four headers into canonical records.

    Raises ``RecordError`` with the row's index (0-based, header not counted) for a row that
    cannot be read, and ``MalformedRecord`` for a header that is none of the four layouts.
    """
    rows = _rows(lines)
    try:
        header = next(rows)
    except StopIteration:
        return
    except _NotCsv as exc:
        raise MalformedRecord(f"the CSV header row cannot be read: {exc}") from None
    names = [name or "" for name in header]
    kind, columns = _layout(names)
    index = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except _NotCsv as exc:
            raise MalformedRecord(f"the CSV row cannot be read: {exc}", index) from None
        if row == [None]:
            continue
        try:
            yield parse_record(_record(row, columns, names), kind)
        except RecordError as exc:
            raise exc.at(index) from None
        index += 1


class _NotCsv(ValueError):
    """Text that is not CSV (a stray quote, an unclosed quoted field)."""


_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def _rows(lines: Iterable[str]) -> Iterator[list[str | None]]:
    """Split CSV text into rows of fields: ``None`` for an unquoted empty field, else its text.

    (The standard ``csv`` module cannot tell ``,,`` from ``,"",`` before Python 3.12.) A row
    ends at a line end outside quotes; ``_NotCsv`` for a row that is not CSV.
    """
    text = ""
    quoted = False
    for line in lines:
        text += line
        quoted ^= line.count('"') % 2 == 1
        if not quoted:
            yield _fields(text)
            text = ""
    if text:
        raise _NotCsv("a quoted field is not closed at the end of the file")


def _fields(text: str) -> list[str | None]:
    end = len(text.rstrip("\r\n"))
    fields: list[str | None] = []
    position = 0
    while True:
        match = _FIELD.match(text, position, end)
        assert match is not None  # the second alternative matches the empty string
        quoted, plain = match.groups()
        fields.append(quoted.replace('""', '"') if quoted is not None else plain or None)
        position = match.end()
        if position == end:
            return fields
        if text[position] != ",":
            raise _NotCsv(f"unexpected {text[position]!r} after field {len(fields)}")
        position += 1


def _layout(header: list[str]) -> tuple[Kind, list[Column | None]]:
    names = set(header)
    if "event_type_id" in names:
        kind = Kind.EVENT
        legacy = "event_source_name" in names or "msisdn_msisdn" in names
    elif "traffic_type_id" in names:
        kind = Kind.USAGE
        legacy = "event_start_timestamp" in names
    else:
        raise MalformedRecord(
            "the CSV header row is neither events (no 'event_type_id') nor usage "
            "(no 'traffic_type_id')"
        )
    by_name = {column.name: column for column in _LAYOUTS[kind, legacy]}
    return kind, [by_name.get(name) for name in header]


def _record(row: list[str | None], columns: list[Column | None], header: list[str]) -> Record:
    if len(row) != len(header):
        raise MalformedRecord(f"has {len(row)} fields, the header has {len(header)}")
    tree: Record = {}
    documents: list[tuple[tuple[str, ...], Any]] = []
    for text, column, name in zip(row, columns, header, strict=True):
        if column is None:
            tree[name] = text
            continue
        if column.type == "json":  # a JSON document is data, not columns: it is never nulled
            documents.append((column.path, _document(text)))
            continue
        node = tree
        for key in column.path[:-1]:
            node = node.setdefault(key, {})
        node[column.path[-1]] = _value(text, column)
    tree = _nulled(tree, _REQUIRED_ENTITIES)
    for path, value in documents:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _document(text: str | None) -> Any:
    """``detail``: JSON when the cell holds an object, an array or a JSON string, else its text."""
    if text is None:
        return None
    try:
        value = loads(text.encode())
    except MalformedRecord:
        return text
    return value if isinstance(value, dict | list | str) else text


def _value(text: str | None, column: Column) -> Any:
    if text is None or (text == "" and column.type != "str"):
        return None
    digits = text.lstrip("-")
    if column.type in ("int", "num") and len(digits) > MAX_INTEGER_DIGITS and digits.isdigit():
        raise InvalidValue(".".join(column.path), f"has more than {MAX_INTEGER_DIGITS} digits")
    try:
        if column.type == "int":
            return int(text)
        if column.type == "num":
            return _number(text)
        if column.type in _SCALES:
            return _decimal(text)
        if column.type == "bool":
            return {"1": True, "true": True, "0": False, "false": False}[text.lower()]
    except (ValueError, KeyError):
        raise InvalidValue(
            ".".join(column.path), f"is {text!r}, not a valid {column.type}"
        ) from None
    return text


def _decimal(text: str) -> int | float:
    """A fixed-scale decimal: a whole number (``"1.000000"``, an SMS count) reads as an integer."""
    whole, _, fraction = text.partition(".")
    if fraction.strip("0") == "" and whole.lstrip("-").isdigit():
        return int(whole)
    return _number(text)


def _number(text: str) -> int | float:
    if text.lstrip("-").isdigit():
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_REQUIRED_ENTITIES = frozenset(("event_type", "organisation", "traffic_type", "volume"))


def _nulled(tree: Record, kept: frozenset[str] = frozenset()) -> Record:
    """An entity whose every column is empty is null, unless it is ``kept`` (the root's
    required entities: ``volume`` of only null amounts is still a volume)."""
    for key, value in tree.items():
        if isinstance(value, dict):
            inner = _nulled(value)
            empty = key not in kept and all(v is None for v in inner.values())
            tree[key] = None if empty else inner
    return tree
