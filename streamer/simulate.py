"""Realistic event and usage records of a simulated fleet, in the canonical (``new``) form.

Deterministic for a given seed, so benchmarks and demos are repeatable. The values follow the
platform's lookups (FORMATS.md §3): event types, severities and sources, data and SMS traffic,
operators with their country codes, endpoints with and without prepaid balance.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Record

__all__ = ["Fleet"]

_EVENT_TYPES = (
    (1, "Update location", 0, "INFO", 0, "Network", False),
    (2, "Update GPRS location", 0, "INFO", 0, "Network", False),
    (3, "Create PDP Context", 0, "INFO", 0, "Network", False),
    (5, "Delete PDP Context", 0, "INFO", 0, "Network", False),
    (8, "SIM activation", 0, "INFO", 2, "API", False),
    (11, "Endpoint blocked", 1, "WARN", 1, "Policy Control", True),
    (18, "Quota threshold reached", 1, "WARN", 1, "Policy Control", True),
    (19, "Quota used up", 2, "CRITICAL", 1, "Policy Control", True),
    (49, "Device offline", 1, "WARN", 0, "Network", True),
    (52, "Data quota enabled", 0, "INFO", 2, "API", False),
)
_OPERATORS = (
    (1, "Telekom", "01", 74, "262", "Germany"),
    (3, "Vodafone", "02", 74, "262", "Germany"),
    (11, "Orange", "01", 75, "208", "France"),
    (20, "AT&T", "410", 226, "310", "United States"),
    (35, "Telefónica", "07", 199, "214", "Spain"),
)
_CURRENCIES = ((1, "EUR", "€"), (2, "USD", "$"))
_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


class Fleet:
    """A fleet of ``endpoints`` devices in ``organisations`` organisations producing records."""

    def __init__(self, seed: int = 0, endpoints: int = 1000, organisations: int = 3) -> None:
        self._random = random.Random(seed)
        self._endpoints = endpoints
        self._organisations = organisations
        self._next_id = 1_000_000_000 + seed * 1_000_000_000
        self._clock = _EPOCH

    def event(self) -> Record:
        """One event record, the clock advancing a little."""
        rnd = self._random
        type_id, type_name, sev_id, sev_name, src_id, src_name, alert = rnd.choice(_EVENT_TYPES)
        device = rnd.randrange(self._endpoints)
        return {
            "id": self._id(),
            "timestamp": self._tick(),
            "event_type": {"id": type_id, "description": type_name},
            "event_severity": {"id": sev_id, "description": sev_name},
            "event_source": {"id": src_id, "description": src_name},
            "organisation": self._organisation(device),
            "alert": alert,
            "description": f"{type_name} for endpoint {device}.",
            "endpoint": self._endpoint(device),
            "sim": self._sim(device),
            "imsi": {
                "id": 50_000 + device,
                "imsi": f"90143{device:010d}",
                "import_date": "2025-03-14T08:12:45Z",
            },
            "user": None,
            "detail": self._detail(type_id, device),
        }

    def usage(self) -> Record:
        """One usage record (data mostly, SMS sometimes), the clock advancing a little."""
        rnd = self._random
        device = rnd.randrange(self._endpoints)
        op_id, op_name, mnc, country_id, mcc, country = rnd.choice(_OPERATORS)
        currency_id, code, symbol = _CURRENCIES[device % 2]
        sms = rnd.random() < 0.1
        rx = 0 if sms else round(rnd.uniform(0, 2.5), 6)
        tx = 1 if sms else round(rnd.uniform(0, 0.5), 6)
        start = self._tick()
        endpoint = self._endpoint(device)
        endpoint["balance"] = self._balance(device, currency_id, code, symbol)
        return {
            "id": self._id(),
            "cost": round((0.09 if sms else 0.012) * (rx + tx), 8),
            "currency": {"id": currency_id, "code": code, "symbol": symbol},
            "volume": {"total": round(rx + tx, 6), "rx": rx, "tx": tx},
            "operator": {
                "id": op_id,
                "name": op_name,
                "mnc": mnc,
                "country": {"id": country_id, "mcc": mcc, "name": country},
            },
            "organisation": self._organisation(device),
            "tariff": {
                "id": 557,
                "name": "Global Data Plan",
                "ratezone": {"id": 1 + op_id % 4, "name": f"Zone {1 + op_id % 4}"},
            },
            "traffic_type": {"id": 6, "description": "SMS"}
            if sms
            else {"id": 5, "description": "Data"},
            "endpoint": endpoint,
            "imsi": f"90143{device:010d}",
            "imsi_id": 50_000 + device,
            "sim": self._sim(device),
            "start_timestamp": start,
            "end_timestamp": start if sms else self._tick(),
        }

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _tick(self) -> str:
        self._clock += timedelta(milliseconds=self._random.randrange(1, 2000))
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _organisation(self, device: int) -> dict[str, Any]:
        org = 1 + device % self._organisations
        return {"id": org, "name": f"Organisation {org}"}

    def _endpoint(self, device: int) -> dict[str, Any]:
        return {
            "id": device + 1,
            "name": f"tracker-{device:05d}",
            "ip_address": f"100.{64 + device // 65536 % 64}.{device // 256 % 256}.{device % 256}",
            "tags": "fleet,eu" if device % 3 else None,
            "imei": f"35{device:014d}" if device % 5 else None,
        }

    def _sim(self, device: int) -> dict[str, Any]:
        return {
            "id": 10_000 + device,
            "iccid": f"898831700000{device:08d}",
            "msisdn": f"4231{device:09d}",
            "production_date": "2024-06-01T10:00:00Z",
        }

    def _balance(self, device: int, currency_id: int, code: str, symbol: str) -> Any:
        if device % 4:
            return None
        return {
            "amount": round(self._random.uniform(0, 50), 2),
            "last_updated": "2026-10-30T12:00:00Z",
            "expiry_date": None if device % 8 else "2027-04-06T09:00:00Z",
            "currency": {"id": currency_id, "code": code, "symbol": symbol},
        }

    def _detail(self, type_id: int, device: int) -> dict[str, Any] | None:
        if type_id in (1, 2):
            return {
                "id": 6,
                "name": "Telefónica",
                "country": {"id": 199, "name": "Spain", "country_code": "34", "mcc": "214"},
                "tapcode": [{"id": 1, "tapcode": "ESPTE"}],
                "mnc": [{"id": 8, "mnc": "07"}],
            }
        if type_id in (3, 5):
            return {
                "pdp_context": {
                    "pdp_context_id": f"{device:08x}",
                    "apn": "em",
                    "rat_type": 6,
                    "ggsn_ip_address": "185.46.224.2",
                    "sgsn_ip_address": "212.183.1.9",
                    "ue_ip_address": self._endpoint(device)["ip_address"],
                    "tx_teid_control_plane": 19981,
                    "region": "eu-west-1",
                    "breakout_ip": "52.210.12.8",
                    "imeisv": f"35{device:014d}01",
                }
            }
        return None
