"""The columns of the four S3 CSV layouts (FORMATS.md §4): events and usage, each legacy
(``old``/``migrated``) and ``new``; each column's name, the field it holds and its type."""

from __future__ import annotations

from typing import NamedTuple

from schemas.kinds import Kind, Version

__all__ = ["HEADERS", "LAYOUTS", "SCALES", "Column", "csv_header"]


class Column(NamedTuple):
    name: str
    path: tuple[str, ...]
    type: str
    """``int``, ``num``, ``dec6``/``dec10`` (decimals at that scale), ``str``, ``ts`` (timestamp),
    ``bool`` or ``json``."""


SCALES = {"dec6": 6, "dec10": 10}
"""The decimals a fixed-scale column is written with."""


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

LAYOUTS: dict[tuple[Kind, bool], tuple[Column, ...]] = {
    (Kind.EVENT, True): _EVENT_LEGACY,
    (Kind.EVENT, False): _EVENT_NEW,
    (Kind.USAGE, True): _USAGE_LEGACY,
    (Kind.USAGE, False): _USAGE_NEW,
}
HEADERS = {
    key: ",".join(f'"{column.name}"' for column in columns) + "\n"
    for key, columns in LAYOUTS.items()
}


def csv_header(kind: Kind, version: Version) -> str:
    """The exact header row (with its line end) for ``kind`` in ``version``."""
    return HEADERS[kind, version is not Version.NEW]
