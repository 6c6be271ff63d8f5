"""The platform's own published examples, verbatim where the source prints them whole.

Each sample names its source. Text in ``<…>`` is the source's own placeholder. Where the stored
copy of a page is cut short, the sample says which values are not from the page.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["EVENTS", "PUBLISHED_CSV_CELLS", "REQUEST_BODIES", "USAGE", "Sample"]


class Sample(NamedTuple):
    name: str
    source: str
    text: str
    """The record as the source prints it (JSON text)."""


QUOTA_THRESHOLD = Sample(
    "quota threshold reached (type 18, severity 'Warn', detail object)",
    "https://docs.emnify.com/system-events/event-types/data-quota-management",
    """{
 "timestamp": "2021-10-27T09:06:50.000Z",
 "alert": true,
 "description": "Endpoint quota threshold reached, volume is below 80%.",
 "id": 17357540123,
 "event_type": {
 "id": 18,
 "description": "Quota threshold reached"
 },
 "event_source": {
 "id": 1,
 "description": "Policy Control"
 },
 "event_severity": {
 "id": 1,
 "description": "Warn"
 },
 "organisation": {
 "id": 6713,
 "name": "Test Org"
 },
 "endpoint": {
 "id": 86473615,
 "imei": "250642987889789",
 "ip_address": "202.37.156.180",
 "name": "Factory Test Sim 2",
 "tags": null
 },
 "sim": {
 "iccid": "56816736458812006983",
 "id": 1467960,
 "production_date": "2020-12-23T13:02:11.000Z"
 },
 "imsi": {
 "id": 20616184,
 "import_date": "2020-12-23T13:02:11.000Z",
 "imsi": "58834171155367"
 },
 "detail": {
 "quota": {
 "threshold_percentage": 80,
 "threshold_volume": 0.8,
 "volume": -0.00120000000000009
 }
 }
}""",
)

GENERIC_THROTTLING = Sample(
    "generic event (type 0, severity 'Warn', no detail)",
    "https://docs.emnify.com/system-events/event-types",
    """{
"timestamp": "2021-10-27T11:59:29.000Z",
"alert": true,
"description": "Disconnecting data access for endpoint to apply throttling action.",
"id": 543839962673704,
"event_type": {
"id": 0,
"description": "Generic"
},
"event_source": {
"id": 1,
"description": "Policy Control"
},
"event_severity": {
"id": 1,
"description": "Warn"
},
"organisation": {
"id": 891418,
"name": "Sample Corp"
},
"endpoint": {
"id": 55214676,
"imei": "908525440918796",
"ip_address": "27.187.78.212",
"name": "Test Sim 2",
"tags": null
},
"sim": {
"iccid": "7772229804214642989",
"id": 7053671,
"production_date": "2020-12-23T13:02:11.000Z"
},
"imsi": {
"id": 51595711,
"import_date": "2020-12-23T13:02:11.000Z",
"imsi": "37807012732326"
}
}""",
)

QUOTA_ASSIGNED = Sample(
    "data quota assigned (type 56, detail as a string)",
    # The page describes the event ("The event description reads: 'Data quota got assigned
    # with a volume of 50.000000 MB with daily refill till 2025-05-27T22:56:1…'"); its JSON is
    # not in the stored copy. The envelope follows the page's other examples, and ``detail``
    # is a string, as the platform sends it for event types 56 and 58.
    "https://docs.emnify.com/system-events/event-types/data-quota-management",
    """{
 "timestamp": "2025-05-26T22:56:10.000Z",
 "alert": false,
 "description":
   "Data quota got assigned with a volume of 50.000000 MB with daily refill till 2025-05-27",
 "id": 17357540999,
 "event_type": {"id": 56, "description": "Data quota assigned"},
 "event_source": {"id": 2, "description": "API"},
 "event_severity": {"id": 0, "description": "Info"},
 "organisation": {"id": 6713, "name": "Test Org"},
 "endpoint": {"id": 86473615, "imei": "250642987889789", "ip_address": "202.37.156.180",
              "name": "Factory Test Sim 2", "tags": null},
 "sim": null,
 "imsi": null,
 "user": null,
 "detail": "Data quota got assigned with a volume of 50.000000 MB"
}""",
)

USAGE = Sample(
    "1NCE data usage record (05_Data_Usage_Record)",
    # Verbatim up to ``cost``; the stored copy of the page is cut inside ``volume``, so the
    # volume is the one of the platform's real S3 file quoted in issue 13 (0.003210 MB).
    "https://help.1nce.com/dev-hub/docs/data-streamer-usage-records",
    """{
    "imsi": "<imsi>",
    "organisation": {
        "name": "8100xxxx",
        "id": 1234
    },
    "start_timestamp": "2021-08-09T12:59:05Z",
    "sim": {
        "msisdn": "<msisdn>",
        "iccid": "<icc>",
        "id": 123456,
        "production_date": "2018-04-17T15:01:50Z"
    },
    "currency": {
        "id": 1,
        "symbol": "€",
        "code": "EUR"
    },
    "operator": {
      "id": 2,
      "name": "T-Mobile",
      "mnc": "01",
      "country": {
        "id": 74,
        "mcc": "262",
        "name": "Germany"
      }
\t},
    "tariff": {
        "ratezone": {
            "name": "Rate Zone 2 (EU - DE)",
            "id": 2067
        },
        "name": "1NCE Production 01",
        "id": 398
    },
    "imsi_id": 1234567,
    "traffic_type": {
        "description": "Data",
        "id": 5
    },
    "id": 1234567890,
    "end_timestamp": "2021-08-09T12:51:20Z",
    "endpoint": {
        "tags": null,
        "ip_address": "<ip_address>",
        "name": "<name>",
        "imei": "<imei>",
        "id": 12345678,
\t\t\t\t"balance": null
    },
    "cost": 0.001176,
    "volume": {"total": 0.00321, "rx": 0.002469, "tx": 0.000741}
}""",
)

EVENTS = [QUOTA_THRESHOLD, GENERIC_THROTTLING, QUOTA_ASSIGNED]

PUBLISHED_CSV_CELLS = {
    # The platform's real S3 usage file (legacy layout), as quoted in issue 13: a null written
    # as nothing between the commas, volumes at 6 decimals and cost at 10.
    "null": ',"10.0.0.1",,"3593390759100000",',
    "volume": '"0.003210"',
    "cost": '"0.0032100000"',
    "small cost": '"0.0007410000"',
}

REQUEST_BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    # name: (source, path, body); seed 002 is the BICS API changelog, seed 001 its emnify twin.
    # Seed 002 prints its ARNs with placeholders (<your-account_id>, <bucket-role-name>):
    # filled in here with a 12-digit account and a role name, as a user would.
    "v1 S3": (
        "seeds/002 (BICS API changelog, 'AWS Trust Relationship')",
        "/api/v1/data_stream",
        {
            "stream_historic_data": 0,
            "data_stream_type": {"description": "Usage Data & Events", "id": 3},
            "api_type": {"description": "AWS S3", "id": 8},
            "api_username": "arn:aws:iam::123456789012:role/bucket-role-name",
            "api_parameter": "eu-west-1/bucket-name",
        },
    ),
    "v1 Kinesis": (
        "seeds/002 (BICS API changelog, 'AWS Trust Relationship')",
        "/api/v1/data_stream",
        {
            "stream_historic_data": 0,
            "data_stream_type": {"description": "Usage Data & Events", "id": 3},
            "api_type": {"description": "AWS Kinesis", "id": 4},
            "api_username": "arn:aws:iam::123456789012:role/kinesis-role-name",
            "api_parameter": "eu-west-1/kinesis-stream-name",
        },
    ),
    "v2 Datadog": (
        "seeds/001 (emnify changelog, 'Datadog integration')",
        "/api/v2/data_stream",
        {
            "data_stream_type": {"id": 2},
            "destination": {
                "connection_type": "Datadog",
                "credentials": {
                    "api_key": "0123456789abcdef0123456789abcdef01234567",
                    "region": "US",
                },
                "format": "Json",
            },
        },
    ),
}
