"""The platform's own examples (seed 003, "old, migrated and new Data Streamer formats").

Where the seed prints a value, these tests hold the code to it exactly; the seed wins over
FORMATS.md.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from schemas import (
    Kind,
    Record,
    RecordError,
    Shape,
    Version,
    WrongType,
    csv_header,
    dumps,
    parse_json,
    parse_record,
    render,
)

OLD, MIGRATED, NEW = Version.OLD, Version.MIGRATED, Version.NEW
LEGACY = [OLD, MIGRATED]

# A canonical event and usage record built from the values the seed prints.
EVENT: Record = {
    "id": 1234,
    "timestamp": "2020-11-10T08:59:19Z",
    "alert": False,
    "description": "CloudConnect Transit Gateway breakout 132 is available",
    "event_type": {"id": 5, "description": "Delete PDP Context"},
    "event_source": {"id": 0, "description": "Network"},
    "event_severity": {"id": 0, "description": "INFO"},
    "organisation": {"id": 2, "name": "Organisation_Name"},
    "endpoint": {
        "id": 1234,
        "imei": "1234567890123456",
        "ip_address": "10.10.10.10",
        "name": "Test",
        "tags": None,
    },
    "sim": None,
    "imsi": {"id": 1234, "import_date": "2017-05-03T20:36:28Z", "imsi": "123456789012345"},
    "user": None,
    "detail": {"pdp_context": {"id": 1}},
}

USAGE: Record = {
    "cost": 0.0015,
    "id": 1618839102882,
    "currency": {"id": 1, "symbol": "€", "code": "EUR"},
    "operator": {"id": 2, "name": "Operator", "mnc": "01", "country": {"id": 74, "mcc": "262"}},
    "organisation": {"id": 2, "name": "Organisation_Name"},
    "tariff": {"id": 3, "name": "Tariff", "ratezone": {"id": 4, "name": "Zone"}},
    "traffic_type": {"id": 5, "description": "Data"},
    "endpoint": {
        "id": 1234,
        "imei": "1234567890123456",
        "ip_address": "10.10.10.10",
        "name": "Test",
        "tags": None,
        "balance": {
            "amount": 15.0,
            "last_updated": "2020-05-29T15:38:36Z",
            "expiry_date": "2025-04-06T09:00:00Z",
            "currency": {"id": 1, "symbol": "€", "code": "EUR"},
        },
    },
    "volume": {"total": 0.5, "rx": 0.25, "tx": 0.25},
    "imsi": "123456789012345",
    "imsi_id": 1234,
    "sim": {
        "id": 1234,
        "iccid": "8988303000000123456",
        "msisdn": "123456789012345",
        "production_date": "2017-05-03T20:36:28Z",
    },
    "start_timestamp": "2021-04-19T13:31:42Z",
    "end_timestamp": "2021-04-19T13:31:42Z",
}


def rendered(record: Record, kind: Kind, version: Version, shape: Shape = Shape.FULL) -> Any:
    """What goes on the wire, read back as plain JSON."""
    return orjson.loads(dumps(copy.deepcopy(record), kind, version, shape))


def with_changes(record: Record, **changes: Any) -> Record:
    out = copy.deepcopy(record)
    out.update(changes)
    return out


# --- timestamp format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "stamp"),
    [
        (OLD, "2020-11-10 08:59:19"),
        (MIGRATED, "2020-11-10 08:59:19"),
        (NEW, "2020-11-10T08:59:19Z"),
    ],
)
def test_event_timestamp_format(version: Version, stamp: str) -> None:
    out = rendered(EVENT, Kind.EVENT, version)
    assert out["timestamp"] == stamp
    import_date = "2017-05-03T20:36:28Z" if version is NEW else "2017-05-03 20:36:28"
    assert out["imsi"]["import_date"] == import_date


@pytest.mark.parametrize("version", LEGACY)
def test_legacy_timestamps_drop_milliseconds(version: Version) -> None:
    record = with_changes(EVENT, timestamp="2020-11-10T08:59:19.987Z")
    assert rendered(record, Kind.EVENT, version)["timestamp"] == "2020-11-10 08:59:19"
    assert rendered(record, Kind.EVENT, NEW)["timestamp"] == "2020-11-10T08:59:19.987Z"


@pytest.mark.parametrize(
    ("version", "balance_stamps"),
    [
        (OLD, ("2020-05-29 15:38:36", "2025-04-06 09:00:00")),
        (MIGRATED, ("2020-05-29 15:38:36", "2025-04-06 09:00:00")),
        (NEW, ("2020-05-29T15:38:36Z", "2025-04-06T09:00:00Z")),
    ],
)
def test_usage_timestamp_formats(version: Version, balance_stamps: tuple[str, str]) -> None:
    out = rendered(USAGE, Kind.USAGE, version)
    stamp = "2021-04-19T13:31:42Z" if version is NEW else "2021-04-19 13:31:42"
    assert (out["start_timestamp"], out["end_timestamp"]) == (stamp, stamp)
    balance = out["endpoint"]["balance"]
    assert (balance["last_updated"], balance["expiry_date"]) == balance_stamps


@pytest.mark.parametrize(
    "stamp", ["2020-11-10 08:59:19", "2020-11-10T08:59:19Z", "2020-11-10T08:59:19+00:00"]
)
def test_both_timestamp_forms_read_the_same(stamp: str) -> None:
    record = parse_record(with_changes(EVENT, timestamp=stamp))
    assert record["timestamp"] == "2020-11-10T08:59:19Z"


# --- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "alert", "text"),
    [
        (OLD, False, b'"alert":0'),
        (OLD, True, b'"alert":1'),
        (MIGRATED, False, b'"alert":0'),
        (MIGRATED, True, b'"alert":1'),
        (NEW, False, b'"alert":false'),
        (NEW, True, b'"alert":true'),
    ],
)
def test_alert_format(version: Version, alert: bool, text: bytes) -> None:
    record = with_changes(EVENT, alert=alert)
    assert text in dumps(record, Kind.EVENT, version)
    value = render(record, Kind.EVENT, version)["alert"]
    assert type(value) is (bool if version is NEW else int)
    assert parse_record(rendered(record, Kind.EVENT, version))["alert"] is alert


# --- null root entities -----------------------------------------------------------------------


def test_old_omits_null_root_entities() -> None:
    out = rendered(EVENT, Kind.EVENT, OLD)
    assert "sim" not in out
    assert "user" not in out
    # nested nulls stay: the seed's old example keeps "tags": null inside endpoint
    assert out["endpoint"]["tags"] is None
    assert out["endpoint"]["imei"] == "1234567890123456"
    assert out["description"] == "CloudConnect Transit Gateway breakout 132 is available"


@pytest.mark.parametrize("version", [MIGRATED, NEW])
def test_migrated_and_new_write_null_root_entities(version: Version) -> None:
    out = rendered(EVENT, Kind.EVENT, version)
    assert "sim" in out
    assert out["sim"] is None
    assert "user" in out
    assert out["user"] is None
    assert out["endpoint"]["tags"] is None


@pytest.mark.parametrize("version", list(Version))
def test_omitted_root_entities_read_back_as_null(version: Version) -> None:
    record = parse_record(rendered(EVENT, Kind.EVENT, version))
    assert record["sim"] is None
    assert record["user"] is None


# --- renamed fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "source"),
    [
        (OLD, {"id": 0, "name": "Network"}),
        (MIGRATED, {"id": 0, "name": "Network"}),
        (NEW, {"id": 0, "description": "Network"}),
    ],
)
def test_event_source_name_or_description(version: Version, source: Record) -> None:
    assert rendered(EVENT, Kind.EVENT, version)["event_source"] == source
    assert parse_record(rendered(EVENT, Kind.EVENT, version))["event_source"] == {
        "id": 0,
        "description": "Network",
    }


@pytest.mark.parametrize(
    ("version", "traffic"),
    [
        (OLD, {"id": 5, "name": "Data"}),
        (MIGRATED, {"id": 5, "name": "Data"}),
        (NEW, {"id": 5, "description": "Data"}),
    ],
)
def test_traffic_type_name_or_description(version: Version, traffic: Record) -> None:
    assert rendered(USAGE, Kind.USAGE, version)["traffic_type"] == traffic
    assert parse_record(rendered(USAGE, Kind.USAGE, version))["traffic_type"] == {
        "id": 5,
        "description": "Data",
    }


# --- character encoding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "currency"),
    [
        (OLD, {"id": 1, "symbol": " ", "code": "EUR"}),
        (MIGRATED, {"id": 1, "symbol": "€", "code": "EUR"}),
        (NEW, {"id": 1, "symbol": "€", "code": "EUR"}),
    ],
)
def test_currency_symbol_encoding(version: Version, currency: Record) -> None:
    out = rendered(USAGE, Kind.USAGE, version)
    assert out["currency"] == currency
    assert out["endpoint"]["balance"]["currency"] == currency


def test_old_is_pure_ascii_and_each_non_ascii_character_is_one_space() -> None:
    record = with_changes(EVENT, description="5 € für 😀!")
    data = dumps(record, Kind.EVENT, OLD)
    assert data.isascii()
    assert orjson.loads(data)["description"] == "5   f r  !"
    assert orjson.loads(dumps(record, Kind.EVENT, MIGRATED))["description"] == "5 € für 😀!"


def test_old_keys_beyond_ascii_that_become_one_stay_one() -> None:
    record = with_changes(EVENT, x_extra={"ä": 1, "ö": 2, "note": "für"})
    data = dumps(record, Kind.EVENT, OLD)
    assert data.isascii()
    assert b'"x_extra":{" ":2,"note":"f r"}' in data


def test_old_texts_with_escapes_are_spaced_too() -> None:
    record = with_changes(EVENT, description='"5 €"\n\tfür')
    assert orjson.loads(dumps(record, Kind.EVENT, OLD))["description"] == '"5  "\n\tf r'


# --- KeenIO -----------------------------------------------------------------------------------

KEEN_EVENT_KEYS = {
    "id",
    "alert",
    "description",
    "detail",
    "endpoint",
    "event_severity",
    "event_source",
    "event_type",
    "organisation",
    "sim",
    "timestamp",
}


@pytest.mark.parametrize("version", LEGACY)
def test_keen_event_is_reduced(version: Version) -> None:
    record = with_changes(
        EVENT,
        sim={"id": 1234, "iccid": "8988303000000123456", "msisdn": "1", "production_date": None},
        user={"id": 7, "name": "N", "username": "u"},
        description="PDP Context deleted.",
    )
    out = rendered(record, Kind.EVENT, version, Shape.KEEN)
    assert set(out) == KEEN_EVENT_KEYS  # no imsi, no user
    assert out["endpoint"] == {"id": 1234, "name": "Test"}
    assert out["sim"] == {"id": 1234, "iccid": "8988303000000123456"}
    assert out["alert"] == 0
    assert out["event_source"] == {"id": 0, "name": "Network"}
    assert out["timestamp"] == "2020-11-10 08:59:19"
    assert out["detail"] == {"pdp_context": {"id": 1}}


def test_keen_event_migrated_keeps_null_roots_old_omits_them() -> None:
    record = with_changes(EVENT, sim=None, detail=None, endpoint=None)
    migrated = rendered(record, Kind.EVENT, MIGRATED, Shape.KEEN)
    assert set(migrated) == KEEN_EVENT_KEYS
    assert migrated["sim"] is None
    assert migrated["detail"] is None
    old = rendered(record, Kind.EVENT, OLD, Shape.KEEN)
    assert set(old) == KEEN_EVENT_KEYS - {"sim", "detail", "endpoint"}


@pytest.mark.parametrize("kind", list(Kind))
def test_keen_new_is_the_webhook_shape(kind: Kind) -> None:
    record = EVENT if kind is Kind.EVENT else USAGE
    assert dumps(record, kind, NEW, Shape.KEEN) == dumps(record, kind, NEW)
    assert set(rendered(record, kind, NEW, Shape.KEEN)) >= {"imsi", "sim", "endpoint"}


KEEN_USAGE_KEYS = {
    "cost",
    "currency",
    "end_timestamp",
    "endpoint",
    "id",
    "operator",
    "organisation",
    "start_timestamp",
    "sim",
    "tariff",
    "traffic_type",
    "volume",
}


@pytest.mark.parametrize("version", LEGACY)
def test_keen_usage_is_reduced(version: Version) -> None:
    out = rendered(USAGE, Kind.USAGE, version, Shape.KEEN)
    extra = {"keen"} if version is OLD else set()
    assert set(out) == KEEN_USAGE_KEYS | extra  # no imsi, no imsi_id
    symbol = " " if version is OLD else "€"
    assert out["endpoint"] == {
        "id": 1234,
        "balance": {
            "amount": 15.0,
            "last_updated": "2020-05-29 15:38:36",
            "expiry_date": "2025-04-06 09:00:00",
            "currency": {"id": 1, "symbol": symbol, "code": "EUR"},
        },
    }
    assert out["sim"] == {"id": 1234, "iccid": "8988303000000123456"}
    assert out["traffic_type"] == {"id": 5, "name": "Data"}
    assert out["start_timestamp"] == out["end_timestamp"] == "2021-04-19 13:31:42"


def test_keen_old_usage_adds_keen_timestamp_migrated_does_not() -> None:
    old = rendered(USAGE, Kind.USAGE, OLD, Shape.KEEN)
    assert old["keen"] == {"timestamp": "2021-04-19 13:31:42"}
    assert old["keen"]["timestamp"] == old["start_timestamp"]
    assert "keen" not in rendered(USAGE, Kind.USAGE, MIGRATED, Shape.KEEN)
    assert "keen" not in rendered(USAGE, Kind.USAGE, OLD)  # KeenIO only


def test_keen_old_usage_reads_back_without_the_keen_object() -> None:
    record = parse_record(rendered(USAGE, Kind.USAGE, OLD, Shape.KEEN))
    assert "keen" not in record
    assert record["start_timestamp"] == "2021-04-19T13:31:42Z"


@pytest.mark.parametrize(
    ("version", "endpoint"),
    [
        (OLD, {"id": 1234}),  # old: balance not present when not set
        (MIGRATED, {"id": 1234, "balance": None}),
    ],
)
def test_keen_usage_unset_balance(version: Version, endpoint: Record) -> None:
    record = copy.deepcopy(USAGE)
    record["endpoint"]["balance"] = None
    assert rendered(record, Kind.USAGE, version, Shape.KEEN)["endpoint"] == endpoint


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (OLD, {"amount": 15.0, "last_updated": "2020-05-29 15:38:36"}),  # expiry_date omitted
        (MIGRATED, {"amount": 15.0, "last_updated": "2020-05-29 15:38:36", "expiry_date": None}),
        (NEW, {"amount": 15.0, "last_updated": "2020-05-29T15:38:36Z", "expiry_date": None}),
    ],
)
@pytest.mark.parametrize("shape", list(Shape))
def test_unset_expiry_date(version: Version, expected: Record, shape: Shape) -> None:
    record = copy.deepcopy(USAGE)
    record["endpoint"]["balance"]["expiry_date"] = None
    balance = rendered(record, Kind.USAGE, version, shape)["endpoint"]["balance"]
    balance.pop("currency")
    assert balance == expected


# --- S3 CSV headers, copied character for character from the seed ------------------------------

EVENTS_OLD_AND_MIGRATED = '"id","timestamp","event_type_id","event_type_description","event_severity_id","event_severity_description","organisation_id","organisation_name","description","alert","event_source_id","event_source_name","endpoint_id","endpoint_name","endpoint_imei","endpoint_ip_address","endpoint_tags","sim_id","sim_iccid","msisdn_msisdn","sim_production_date","imsi_id","imsi_imsi","user_id","user_username","user_name"'  # noqa: E501
EVENTS_NEW = '"id","timestamp","event_source_id","event_source_description","event_severity_id","event_severity_description","event_type_id","event_type_description","organisation_id","organisation_name","user_id","user_username","user_name","alert","description","endpoint_id","endpoint_name","endpoint_ip_address","endpoint_tags","endpoint_imei","sim_id","sim_iccid","sim_msisdn","sim_production_date","imsi_id","imsi_imsi","imsi_import_date","detail"'  # noqa: E501
USAGE_OLD_AND_MIGRATED = '"id","event_start_timestamp","event_stop_timestamp","organisation_id","organisation_name","endpoint_id","sim_id","iccid","imsi","operator_id","operator_name","country_id","operator_country_name","traffic_type_id","traffic_type_description","volume","volume_tx","volume_rx","cost","currency_id","currency_code","currency_symbol","ratezone_tariff_id","ratezone_tariff_name","ratezone_id","ratezone_name","endpoint_name","endpoint_ip_address","endpoint_tags","endpoint_imei","msisdn_msisdn","sim_production_date","operator_mncs","country_mcc"'  # noqa: E501
USAGE_NEW = '"id","start_timestamp","end_timestamp","cost","volume_total","volume_rx","volume_tx","operator_id","operator_name","operator_mnc","operator_country_id","operator_country_mcc","operator_country_name","organisation_id","organisation_name","tariff_id","tariff_name","tariff_ratezone_id","tariff_ratezone_name","traffic_type_id","traffic_type_description","endpoint_id","endpoint_name","endpoint_ip_address","endpoint_tags","endpoint_imei","endpoint_balance_amount","endpoint_balance_last_updated","endpoint_balance_expiry_date","endpoint_balance_currency_id","endpoint_balance_currency_code","endpoint_balance_currency_symbol","imsi","imsi_id","sim_id","sim_iccid","sim_msisdn","sim_production_date","currency_id","currency_code","currency_symbol"'  # noqa: E501
SEED_HEADERS = {
    (Kind.EVENT, OLD): EVENTS_OLD_AND_MIGRATED,
    (Kind.EVENT, NEW): EVENTS_NEW,
    (Kind.USAGE, OLD): USAGE_OLD_AND_MIGRATED,
    (Kind.USAGE, NEW): USAGE_NEW,
}
COLUMNS = {
    (Kind.EVENT, OLD): 26,
    (Kind.EVENT, NEW): 28,
    (Kind.USAGE, OLD): 34,
    (Kind.USAGE, NEW): 41,
}


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("kind", list(Kind))
def test_csv_header_is_the_seeds(kind: Kind, version: Version) -> None:
    seed = SEED_HEADERS[kind, NEW if version is NEW else OLD]  # old and migrated share one
    assert csv_header(kind, version) == seed + "\n"
    assert seed.count(",") + 1 == COLUMNS[kind, NEW if version is NEW else OLD]


# --- the CloudConnect example, as printed ---------------------------------------------------------

CLOUDCONNECT = b"""[
  {
    "timestamp": {},
    "alert": true,
    "description": "Data quota enabled.",
    "id": 69535,
    "event_type": {
      "description": "Data quota enabled",
      "id": 52
    },
    "event_source": {
      "name": "API",
      "id": 2
    },
    "event_severity": {
      "description": "INFO",
      "id": 0
    },
    "organisation": {
      "name": "Organisation_Name",
      "id": 2
    },
    "endpoint": {
      "name": "Monitoring201",
      "tags": "Monitoring",
      "ip_address": "10.199.6.39",
      "imei": null,
      "id": 1
    },
    "sim": {
      "iccid": 8988317000000000000,
      "production_date": {},
      "id": 110
    },
    "imsi": {
      "imsi": 901430000000114,
      "import_date": {},
      "id": 110
    }
  }
]
"""


def test_cloudconnect_example_as_printed_names_the_timestamp() -> None:
    """Its ``{}`` timestamps are placeholders of the documentation: a typed error, not a crash."""
    (error,) = parse_json(CLOUDCONNECT.splitlines(keepends=True))
    assert isinstance(error, WrongType)
    assert (error.field, error.index) == ("timestamp", 0)
    assert "timestamp" in str(error)


@pytest.mark.parametrize(
    ("filled", "field"),
    [
        ([b'"timestamp": {}'], "sim.production_date"),
        ([b'"timestamp": {}', b'"production_date": {}'], "imsi.import_date"),
    ],
)
def test_cloudconnect_example_names_each_placeholder(filled: list[bytes], field: str) -> None:
    data = CLOUDCONNECT
    for placeholder in filled:
        data = data.replace(placeholder, placeholder[:-2] + b'"2020-11-10 08:59:19"')
    (error,) = parse_json([data])
    assert isinstance(error, RecordError)
    assert (type(error), error.field) == (WrongType, field)


@pytest.mark.parametrize(
    ("stamp", "canonical"),
    [
        (b'"2020-11-10 08:59:19"', "2020-11-10T08:59:19Z"),
        (b'"2020-11-10T08:59:19Z"', "2020-11-10T08:59:19Z"),
        (b'"2020-11-10T08:59:19.250Z"', "2020-11-10T08:59:19.250Z"),
    ],
)
def test_cloudconnect_example_with_real_timestamps(stamp: bytes, canonical: str) -> None:
    (record,) = parse_json([CLOUDCONNECT.replace(b"{}", stamp)])
    assert isinstance(record, dict)
    assert record["timestamp"] == canonical
    assert record["sim"] == {
        "iccid": "8988317000000000000",
        "production_date": canonical,
        "id": 110,
    }
    assert record["imsi"] == {"imsi": "901430000000114", "import_date": canonical, "id": 110}
    assert record["event_source"] == {"description": "API", "id": 2}
    assert record["event_type"] == {"description": "Data quota enabled", "id": 52}
    assert record["alert"] is True
    assert record["endpoint"]["imei"] is None
    assert record["user"] is None
    assert record["detail"] is None
    # and it renders in every version, the digit identifiers as exact strings
    for version in Version:
        out = rendered(record, Kind.EVENT, version)
        assert out["sim"]["iccid"] == "8988317000000000000"
        assert out["imsi"]["imsi"] == "901430000000114"
