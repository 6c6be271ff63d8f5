"""Two small valid canonical records, one of each kind, for tests that change one field."""

from __future__ import annotations

from schemas import Record

__all__ = ["EVENT", "USAGE"]

EVENT: Record = {
    "id": 69535,
    "timestamp": "2020-11-10T08:59:19Z",
    "alert": True,
    "description": "Data quota enabled.",
    "event_type": {"id": 52, "description": "Data quota enabled"},
    "event_source": {"id": 2, "description": "API"},
    "event_severity": {"id": 0, "description": "INFO"},
    "organisation": {"id": 2, "name": "Organisation_Name"},
    "endpoint": {"id": 1, "name": "Monitoring201", "tags": None, "ip_address": "10.199.6.39"},
    "sim": {"id": 110, "iccid": "8988317000000000000", "production_date": None},
    "imsi": {"id": 110, "imsi": "901430000000114", "import_date": None},
    "user": None,
    "detail": None,
}

USAGE: Record = {
    "id": 1618839102882,
    "cost": 0.0015,
    "currency": {"id": 1, "code": "EUR", "symbol": "€"},
    "volume": {"total": 0.5, "rx": 0.25, "tx": 0.25},
    "operator": {"id": 4, "name": "Op", "mnc": "01", "country": {"id": 74, "mcc": "262"}},
    "organisation": {"id": 2, "name": "Org"},
    "tariff": {"id": 3, "name": "T", "ratezone": {"id": 9, "name": "Zone 1"}},
    "traffic_type": {"id": 5, "description": "Data"},
    "endpoint": {"id": 1234, "name": "Test", "balance": None},
    "imsi": "901430000000114",
    "imsi_id": 1234,
    "sim": {"id": 1234, "iccid": "8988303000000123456"},
    "start_timestamp": "2021-04-19T13:31:42Z",
    "end_timestamp": "2021-04-19T13:32:42Z",
}
