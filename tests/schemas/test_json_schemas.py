"""The JSON Schemas in ``schemas/json/`` (full shape, one per kind and version).

Each schema must accept what ``render`` writes in its own version and refuse what it writes in
any other version (FORMATS.md §2.1). The fixtures are the seed's own examples
(``shared/seeds/003_8465d06a0dffd09b.txt``), with the parts it elides (``...``) filled in with
realistic values.
"""

from __future__ import annotations

import copy
from functools import cache
from itertools import permutations
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import NULLABLE_ROOTS, Kind, Record, Version, dumps, json_schema, parse_record

EVENT, USAGE = Kind.EVENT, Kind.USAGE
OLD, MIGRATED, NEW = Version.OLD, Version.MIGRATED, Version.NEW
PAIRS = [(kind, version) for kind in Kind for version in Version]

# --- helpers -------------------------------------------------------------------------------------

DELETE: Any = object()
"""A mutation value: remove the key instead of setting it."""


def _mutated(record: Record, path: str, value: Any) -> Record:
    """A deep copy of ``record`` with the dotted ``path`` set to ``value`` (or removed)."""
    out = copy.deepcopy(record)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return out


@cache
def _validator(kind: Kind, version: Version) -> Draft202012Validator:
    return Draft202012Validator(json_schema(kind, version))


def _errors(instance: Record, kind: Kind, version: Version) -> list[str]:
    found = _validator(kind, version).iter_errors(instance)
    return [f"{'.'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in found]


def _delivered(record: Record, kind: Kind, version: Version) -> Record:
    """What a stream of ``version`` receives: parsed, rendered, serialised and read back."""
    canonical = parse_record(copy.deepcopy(record), kind)
    rendered: Record = orjson.loads(dumps(canonical, kind, version))
    return rendered


def _subschemas(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [found for item in node for found in _subschemas(item)]
    if not isinstance(node, dict):
        return []
    return [node, *(found for value in node.values() for found in _subschemas(value))]


# --- the seed's examples -----------------------------------------------------------------------

# "New event types added ...": the seed prints every timestamp of this example as `{}`, a
# placeholder; real timestamps are substituted here. They are written in the new (ISO) form
# because the example's `"alert": true` is the new system's boolean. As printed, the example is
# in no single version (see test_cloudconnect_example_as_printed_mixes_versions).
CLOUDCONNECT_EVENT: Record = {
    "timestamp": "2023-06-14T09:12:45Z",  # `{}` in the seed
    "alert": True,
    "description": "Data quota enabled.",
    "id": 69535,
    "event_type": {"description": "Data quota enabled", "id": 52},
    "event_source": {"name": "API", "id": 2},
    "event_severity": {"description": "INFO", "id": 0},
    "organisation": {"name": "Organisation_Name", "id": 2},
    "endpoint": {
        "name": "Monitoring201",
        "tags": "Monitoring",
        "ip_address": "10.199.6.39",
        "imei": None,
        "id": 1,
    },
    "sim": {
        "iccid": 8988317000000000000,
        "production_date": "2019-10-02T07:45:11Z",  # `{}` in the seed
        "id": 110,
    },
    "imsi": {
        "imsi": 901430000000114,
        "import_date": "2019-11-19T10:22:03Z",  # `{}` in the seed
        "id": 110,
    },
}

_SEVERITY = {"id": 0, "description": "INFO"}
_ORGANISATION = {"id": 2, "name": "Organisation_Name"}
_PDP_DELETED = {"id": 5, "description": "Delete PDP Context"}
_PDP_DETAIL = {
    "id": 2,
    "name": "Telekom",
    "country": {"id": 74, "name": "Germany", "mcc": "262"},
    "pdp_context": {"pdp_context_id": 1, "gtp_version": 1, "apn": "em", "ue_ip_address": None},
}
_OPERATOR = {
    "id": 2,
    "name": "Telekom",
    "mnc": "01",
    "country": {"id": 74, "mcc": "262", "name": "Germany"},
}
_TARIFF = {"id": 1, "name": "Standard Tariff", "ratezone": {"id": 1, "name": "Zone 1"}}
_VOLUME = {"total": 0.015, "rx": 0.01, "tx": 0.005}
_OLD_EURO = {"id": 1, "code": "EUR", "symbol": " "}  # the seed: the old system writes € as " "
_EURO = {"id": 1, "code": "EUR", "symbol": "€"}

# KeenIO, "Event Message Format", old streamer (reduced shape, no null roots).
KEEN_OLD_EVENT: Record = {
    "id": 1234,
    "alert": 0,
    "description": "PDP Context deleted.",
    "detail": _PDP_DETAIL,
    "endpoint": {"id": 1234, "name": "Test"},
    "event_severity": _SEVERITY,
    "event_source": {"id": 0, "name": "Network"},
    "event_type": _PDP_DELETED,
    "organisation": _ORGANISATION,
    "sim": {"id": 1234, "iccid": "8988303000000123456"},
    "timestamp": "2020-11-10 08:59:19",
}

# KeenIO, "Event Message Format", new streamer (the Webhook shape).
KEEN_NEW_EVENT: Record = {
    "id": 1234,
    "alert": False,
    "description": "PDP Context deleted.",
    "detail": _PDP_DETAIL,
    "endpoint": {
        "id": 1234,
        "imei": "1234",
        "ip_address": "10.10.10.10",
        "name": "Test",
        "tags": None,
    },
    "event_severity": _SEVERITY,
    "event_source": {"id": 0, "description": "Network"},
    "event_type": _PDP_DELETED,
    "imsi": {"id": 1234, "import_date": "2017-05-03T20:36:28Z", "imsi": "123456789012345"},
    "organisation": _ORGANISATION,
    "sim": {
        "iccid": "8988303000000123456",
        "id": 1234,
        "msisdn": "123456789012345",
        "production_date": "2017-05-03T20:36:28Z",
    },
    "timestamp": "2020-11-10T08:59:19Z",
    "user": None,
}

# KeenIO, "Message Format Usage Data", old streamer (with KeenIO's own `keen` object).
KEEN_OLD_USAGE: Record = {
    "cost": 0.0015,
    "id": 1618839102882,
    "operator": _OPERATOR,
    "organisation": _ORGANISATION,
    "tariff": _TARIFF,
    "traffic_type": {"id": 5, "name": "Data"},
    "endpoint": {
        "id": 1234,
        "balance": {
            "amount": 15.0,
            "last_updated": "2020-05-29 15:38:36",
            "expiry_date": "2025-04-06 09:00:00",
            "currency": _OLD_EURO,
        },
    },
    "volume": _VOLUME,
    "start_timestamp": "2021-04-19 13:31:42",
    "keen": {"timestamp": "2021-04-19 13:31:42"},
    "sim": {"id": 1234, "iccid": "8988303000000123456"},
    "currency": _OLD_EURO,
    "end_timestamp": "2021-04-19 13:31:42",
}

# KeenIO, "Message Format Usage Data", new streamer (the Webhook shape).
KEEN_NEW_USAGE: Record = {
    "cost": 0.14776475,
    "currency": _EURO,
    "end_timestamp": "2021-02-22T13:05:45Z",
    "endpoint": {
        "id": 1234,
        "imei": "1234567890123456",
        "ip_address": "10.10.10.10",
        "name": "Test",
        "balance": {
            "amount": 15.0,
            "last_updated": "2020-05-29T15:38:36Z",
            "expiry_date": "2025-04-06T09:00:00Z",
            "currency": _EURO,
        },
    },
    "id": 1234,
    "imsi": "123456789012345",
    "imsi_id": 1234,
    "operator": _OPERATOR,
    "organisation": _ORGANISATION,
    "sim": {
        "iccid": "8988303000000123456",
        "id": 1234,
        "msisdn": "123456789012345",
        "production_date": "2017-05-03T20:36:28Z",
    },
    "start_timestamp": "2021-02-22T13:04:41Z",
    "tariff": _TARIFF,
    "traffic_type": {"id": 5, "description": "Data"},
    "volume": _VOLUME,
}

# The old usage example's comments: "balance not present when not set", "expiry_date not
# existing when not set".
KEEN_OLD_USAGE_NO_EXPIRY = _mutated(KEEN_OLD_USAGE, "endpoint.balance.expiry_date", DELETE)
KEEN_OLD_USAGE_NO_BALANCE = _mutated(KEEN_OLD_USAGE, "endpoint.balance", DELETE)

SEED_EXAMPLES = [
    pytest.param(EVENT, CLOUDCONNECT_EVENT, id="cloudconnect-event"),
    pytest.param(EVENT, KEEN_OLD_EVENT, id="keen-old-event"),
    pytest.param(EVENT, KEEN_NEW_EVENT, id="keen-new-event"),
    pytest.param(USAGE, KEEN_OLD_USAGE, id="keen-old-usage"),
    pytest.param(USAGE, KEEN_OLD_USAGE_NO_EXPIRY, id="keen-old-usage-no-expiry"),
    pytest.param(USAGE, KEEN_OLD_USAGE_NO_BALANCE, id="keen-old-usage-no-balance"),
    pytest.param(USAGE, KEEN_NEW_USAGE, id="keen-new-usage"),
]

# --- records that differ in every version ------------------------------------------------------

# Canonical records with everything that a version writes its own way: an alert, an
# event_source / traffic_type, a null root, a non-ASCII character, timestamps in every entity.
RICH: dict[Kind, Record] = {
    EVENT: {
        "id": 69536,
        "timestamp": "2023-06-14T09:12:45.250Z",
        "event_type": {"id": 52, "description": "Data quota enabled"},
        "event_severity": _SEVERITY,
        "event_source": {"id": 2, "description": "API"},
        "organisation": _ORGANISATION,
        "alert": True,
        "description": "Data quota of 500 MB enabled for 5 €.",
        "endpoint": {
            "id": 1,
            "name": "Monitoring201",
            "ip_address": "10.199.6.39",
            "tags": "Monitoring",
            "imei": "357701000000000",
        },
        "sim": {
            "id": 110,
            "iccid": "89883170000000000001",
            "msisdn": "423663920000110",
            "production_date": "2019-10-02T07:45:11Z",
        },
        "imsi": {"id": 110, "imsi": "901430000000114", "import_date": "2019-11-19T10:22:03Z"},
        "user": None,
        "detail": {"volume": 500, "price": "5 €"},
    },
    USAGE: {
        "id": 1618839102882,
        "start_timestamp": "2021-04-19T13:31:42Z",
        "end_timestamp": "2021-04-19T13:33:07.125Z",
        "cost": 0.0015,
        "currency": _EURO,
        "volume": _VOLUME,
        "operator": _OPERATOR,
        "organisation": _ORGANISATION,
        "tariff": _TARIFF,
        "traffic_type": {"id": 5, "description": "Data"},
        "endpoint": {
            "id": 1234,
            "name": "Test",
            "ip_address": "10.10.10.10",
            "tags": "Monitoring",
            "imei": "1234567890123456",
            "balance": {
                "amount": 15.0,
                "last_updated": "2020-05-29T15:38:36Z",
                "expiry_date": "2025-04-06T09:00:00Z",
                "currency": _EURO,
            },
        },
        "sim": {
            "id": 1234,
            "iccid": "8988303000000123456",
            "msisdn": "123456789012345",
            "production_date": "2017-05-03T20:36:28Z",
        },
        "imsi": "123456789012345",
        "imsi_id": None,
    },
}

# --- the schemas themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "version"), PAIRS)
def test_schema_is_valid_draft_2020_12(kind: Kind, version: Version) -> None:
    schema = json_schema(kind, version)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://streamer.dev/schemas/{kind}.{version}.schema.json"
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize(("kind", "version"), PAIRS)
def test_schema_leaves_unknown_fields_open(kind: Kind, version: Version) -> None:
    closed = [
        node
        for node in _subschemas(json_schema(kind, version))
        if node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False
    ]
    assert closed == []


# --- the seed's examples -------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize(("kind", "example"), SEED_EXAMPLES)
def test_seed_example_rendered_in_each_version_is_valid(
    kind: Kind, example: Record, version: Version
) -> None:
    assert _errors(_delivered(example, kind, version), kind, version) == []


@pytest.mark.parametrize(
    ("kind", "version", "example"),
    [
        pytest.param(EVENT, OLD, KEEN_OLD_EVENT, id="keen-old-event"),
        pytest.param(EVENT, NEW, KEEN_NEW_EVENT, id="keen-new-event"),
        pytest.param(USAGE, OLD, KEEN_OLD_USAGE, id="keen-old-usage"),
        pytest.param(USAGE, NEW, KEEN_NEW_USAGE, id="keen-new-usage"),
    ],
)
def test_seed_example_as_printed_is_valid_in_its_version(
    kind: Kind, version: Version, example: Record
) -> None:
    # KeenIO's old shape is a subset of the full old shape (old omits absent roots anyway, and
    # its `keen` object is an unknown field); KeenIO's new shape is the full new shape.
    assert _errors(example, kind, version) == []


def test_cloudconnect_example_as_printed_mixes_versions() -> None:
    # The seed prints this new-system example (boolean alert) with the old `event_source.name`,
    # numeric iccid / imsi and no `user` / `detail`: only the parser makes it a valid `new` record.
    errors = _errors(CLOUDCONNECT_EVENT, EVENT, NEW)
    assert {error.split(":")[0] for error in errors} == {
        "$",
        "event_source",
        "sim.iccid",
        "imsi.imsi",
    }
    assert len(errors) == 5  # `$` twice: `user` and `detail` are missing
    assert _errors(_delivered(CLOUDCONNECT_EVENT, EVENT, NEW), EVENT, NEW) == []


# --- every version refuses every other version's rendering ---------------------------------------


@pytest.mark.parametrize(("kind", "version"), PAIRS)
def test_rich_record_rendered_in_its_version_is_valid(kind: Kind, version: Version) -> None:
    assert _errors(_delivered(RICH[kind], kind, version), kind, version) == []


@pytest.mark.parametrize(("written", "read"), list(permutations(Version, 2)))
@pytest.mark.parametrize("kind", list(Kind))
def test_rendering_in_one_version_is_invalid_in_another(
    kind: Kind, written: Version, read: Version
) -> None:
    assert _errors(_delivered(RICH[kind], kind, written), kind, read) != []


# --- hand-written cases: one change to a valid rendering -----------------------------------------

LEGACY = (OLD, MIGRATED)
UPDATED = (MIGRATED, NEW)  # the versions that write null roots and unset balance values
TIMESTAMPS = {
    EVENT: ("timestamp", "sim.production_date", "imsi.import_date"),
    USAGE: (
        "start_timestamp",
        "end_timestamp",
        "sim.production_date",
        "endpoint.balance.last_updated",
        "endpoint.balance.expiry_date",
    ),
}
OTHER_FORM = {
    OLD: "2020-11-10T08:59:19Z",
    MIGRATED: "2020-11-10T08:59:19Z",
    NEW: "2020-11-10 08:59:19",
}
REQUIRED = {
    EVENT: ("id", "timestamp", "event_type", "event_type.id", "organisation", "organisation.id"),
    USAGE: (
        "id",
        "start_timestamp",
        "end_timestamp",
        "volume",
        "traffic_type",
        "traffic_type.id",
        "organisation",
        "organisation.id",
    ),
}
OTHER_NAME = {
    (EVENT, OLD): ("event_source.description", "API"),
    (EVENT, MIGRATED): ("event_source.description", "API"),
    (EVENT, NEW): ("event_source.name", "API"),
    (USAGE, OLD): ("traffic_type.description", "Data"),
    (USAGE, MIGRATED): ("traffic_type.description", "Data"),
    (USAGE, NEW): ("traffic_type.name", "Data"),
}

INVALID = [
    # alert: a boolean in new, 0/1 in old and migrated
    (EVENT, NEW, "alert", 1),
    (EVENT, NEW, "alert", "true"),
    *((EVENT, version, "alert", True) for version in LEGACY),
    *((EVENT, version, "alert", 2) for version in LEGACY),
    # null roots: never in old (not even unknown fields); always present in migrated and new
    *((kind, OLD, name, None) for kind in Kind for name in NULLABLE_ROOTS[kind]),
    (EVENT, OLD, "description", None),
    (USAGE, OLD, "some_new_field", None),
    *(
        (kind, ver, name, DELETE)
        for kind in Kind
        for ver in UPDATED
        for name in NULLABLE_ROOTS[kind]
    ),
    # balance and its expiry date: omitted in old when unset, present (maybe null) otherwise
    (USAGE, OLD, "endpoint.balance", None),
    (USAGE, OLD, "endpoint.balance.expiry_date", None),
    *((USAGE, version, "endpoint.balance", DELETE) for version in UPDATED),
    *((USAGE, version, "endpoint.balance.expiry_date", DELETE) for version in UPDATED),
    # required fields
    *((kind, version, path, DELETE) for kind, version in PAIRS for path in REQUIRED[kind]),
    # event_source / traffic_type: the other version's field name
    *((kind, version, *OTHER_NAME[kind, version]) for kind, version in PAIRS),
    # timestamps: the other version's form everywhere, and forms of neither
    *((kind, ver, path, OTHER_FORM[ver]) for kind, ver in PAIRS for path in TIMESTAMPS[kind]),
    (EVENT, NEW, "timestamp", "2020-11-10T08:59:19.5Z"),
    (EVENT, NEW, "timestamp", "2020-11-10T08:59:19+00:00"),
    (EVENT, MIGRATED, "timestamp", "2020-11-10 08:59:19.123"),
    (USAGE, OLD, "end_timestamp", "2021-04-19"),
    # types: digit identifiers are strings, ids 64-bit integers, amounts numbers
    *((EVENT, version, "sim.iccid", 8988303000000123456) for version in Version),
    (USAGE, NEW, "imsi", 123456789012345),
    (USAGE, MIGRATED, "endpoint.imei", 1234567890123456),
    (EVENT, NEW, "id", "69536"),
    (EVENT, OLD, "id", 2**63),
    (EVENT, MIGRATED, "endpoint.id", "1"),
    (EVENT, NEW, "detail", "quota enabled"),
    (USAGE, MIGRATED, "cost", "0.0015"),
    (USAGE, NEW, "volume.total", True),
    # old is ASCII, in known and unknown fields, values and keys alike
    (EVENT, OLD, "description", "Data quota enabled for 5 €."),
    (USAGE, OLD, "currency.symbol", "€"),
    (EVENT, OLD, "some_new_field", {"note": "5 €"}),
    (EVENT, OLD, "some_new_field", {"Zähler": 1}),
    (USAGE, OLD, "some_new_field", ["ok", "€"]),
]

VALID = [
    # unknown fields, at the root and nested, in every version
    *((kind, version, "some_new_field", {"a": [1, "x", None]}) for kind, version in PAIRS),
    *((kind, version, "endpoint.some_new_field", 1) for kind, version in PAIRS),
    # a null root: null in migrated and new, omitted in old
    *((kind, ver, name, None) for kind in Kind for ver in UPDATED for name in NULLABLE_ROOTS[kind]),
    *(
        (kind, OLD, name, DELETE)
        for kind in Kind
        for name in NULLABLE_ROOTS[kind]
        if RICH[kind][name] is not None
    ),
    # nested nulls are fine in old (the seed's `"tags": null`); unset optional values elsewhere
    (EVENT, OLD, "endpoint.tags", None),
    (EVENT, NEW, "alert", None),
    (USAGE, OLD, "endpoint.balance", DELETE),
    (USAGE, OLD, "endpoint.balance.expiry_date", DELETE),
    (USAGE, MIGRATED, "endpoint.balance", None),
    (USAGE, NEW, "endpoint.balance.expiry_date", None),
    # UTF-8 outside old; milliseconds in new; 20-digit ICCIDs
    (USAGE, MIGRATED, "currency.symbol", "€"),
    (EVENT, NEW, "timestamp", "2020-11-10T08:59:19.123Z"),
    (EVENT, MIGRATED, "sim.iccid", "89883030000001234567"),
]


def _cases(cases: list[tuple[Kind, Version, str, Any]]) -> list[Any]:
    return [
        pytest.param(kind, version, path, value, id=f"{kind}-{version}-{path}={_label(value)}")
        for kind, version, path, value in cases
    ]


def _label(value: Any) -> str:
    return "<deleted>" if value is DELETE else repr(value)


@pytest.mark.parametrize(("kind", "version", "path", "value"), _cases(INVALID))
def test_one_wrong_value_is_invalid(kind: Kind, version: Version, path: str, value: Any) -> None:
    rendered = _delivered(RICH[kind], kind, version)
    assert _errors(rendered, kind, version) == []
    assert _errors(_mutated(rendered, path, value), kind, version) != []


@pytest.mark.parametrize(("kind", "version", "path", "value"), _cases(VALID))
def test_one_allowed_variation_is_valid(
    kind: Kind, version: Version, path: str, value: Any
) -> None:
    assert (
        _errors(_mutated(_delivered(RICH[kind], kind, version), path, value), kind, version) == []
    )
