"""The S3 CSV files: the four header rows, rows under them, and reading them back (FORMATS.md §4).

Writing: UTF-8 without BOM (``old``: every non-ASCII character becomes a space), every field
double-quoted, null as an empty quoted field, ``\\n`` line ends, one header row, one record kind
per file; booleans and timestamps follow the version; numbers never in exponent notation.

Reading: the header row tells the kind and whether the file is legacy (``old``/``migrated``) or
``new``; columns are matched by name, so reordered or added columns still read (an unknown
column becomes a root field holding its text). Each row is then parsed like any JSON record.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
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
    """``int``, ``num``, ``str``, ``ts`` (timestamp), ``bool`` or ``json``."""


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
    "volume num volume.total",
    "volume_tx num volume.tx",
    "volume_rx num volume.rx",
    "cost num cost",
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
    "cost num cost",
    "volume_total num volume.total",
    "volume_rx num volume.rx",
    "volume_tx num volume.tx",
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


def csv_header(kind: Kind, version: Version) -> str:
    """The exact header row (with its line end) for ``kind`` in ``version``."""
    return _HEADERS[kind, version is not Version.NEW]


def csv_row(record: Record, kind: Kind, version: Version) -> str:
    """One canonical record as a CSV row (with its line end) under ``csv_header``."""
    legacy = version is not Version.NEW
    cells = []
    for column in _LAYOUTS[kind, legacy]:
        value: Any = record
        for key in column.path:
            value = value.get(key)
            if value is None:
                break
        cells.append(_cell(value, column.type, legacy))
    row = ",".join(cells) + "\n"
    return ascii_only(row) if version is Version.OLD else row


def render_csv(records: Iterable[Record], kind: Kind, version: Version) -> str:
    """A whole CSV file: the header row, then one row per record."""
    return csv_header(kind, version) + "".join(csv_row(r, kind, version) for r in records)


def _cell(value: Any, column_type: str, legacy: bool) -> str:
    if value is None:
        return '""'
    if column_type == "ts" and isinstance(value, str):
        text = legacy_timestamp(value) if legacy else value
    elif isinstance(value, bool):
        text = ("1" if value else "0") if legacy else ("true" if value else "false")
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = _plain_float(value)
    else:
        text = to_json(value).decode()
    return '"' + text.replace('"', '""') + '"'


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
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise MalformedRecord(f"the CSV header row cannot be read: {exc}") from None
    kind, columns = _layout(header)
    index = 0
    try:
        for row in reader:
            if not row:
                continue
            try:
                yield parse_record(_record(row, columns, header), kind)
            except RecordError as exc:
                raise exc.at(index) from None
            index += 1
    except csv.Error as exc:
        raise MalformedRecord(f"the CSV row cannot be read: {exc}", index) from None


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


def _record(row: list[str], columns: list[Column | None], header: list[str]) -> Record:
    if len(row) != len(header):
        raise MalformedRecord(f"has {len(row)} fields, the header has {len(header)}")
    tree: Record = {}
    documents: list[tuple[tuple[str, ...], Any]] = []
    for text, column, name in zip(row, columns, header, strict=True):
        if column is None:
            tree[name] = text or None
            continue
        if column.type == "json":  # a JSON document is data, not columns: it is never nulled
            documents.append((column.path, _value(text, column)))
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


def _value(text: str, column: Column) -> Any:
    if text == "":
        return None
    digits = text.lstrip("-")
    if column.type in ("int", "num") and len(digits) > MAX_INTEGER_DIGITS and digits.isdigit():
        raise InvalidValue(".".join(column.path), f"has more than {MAX_INTEGER_DIGITS} digits")
    try:
        if column.type == "int":
            return int(text)
        if column.type == "num":
            return _number(text)
        if column.type == "bool":
            return {"1": True, "true": True, "0": False, "false": False}[text.lower()]
        if column.type == "json" and text[:1] in ("{", "["):  # a string is written as its text
            return loads(text.encode())
    except (ValueError, KeyError):
        raise InvalidValue(
            ".".join(column.path), f"is {text!r}, not a valid {column.type}"
        ) from None
    return text


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
