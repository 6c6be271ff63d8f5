"""Protocol-faithful fakes of Datadog's intakes and Keen's batch events API, on loopback.

Both are ``Receiver``s (``tests/receivers.py``): they listen only on 127.0.0.1, record every
request (the body as aiohttp's server decoded it, i.e. after undoing ``Content-Encoding:
gzip``) and take replies queued with ``script()`` first, for failure injection. Any other
request is answered as the real API answers it, written from the APIs' public documentation
rather than from the connectors:

- Datadog: ``DD-API-KEY`` checked (missing 401, wrong 403, ``{"errors": [...]}``);
  ``POST /api/v2/series`` (a ``{"series": [...]}`` of metric objects with ``type``, ``points``
  of ``{timestamp, value}`` and valid ``tags``; 413 above 500 kB compressed or 5 MiB
  decompressed) and ``POST /api/v2/logs`` (an array of at most 1000 objects with valid
  ``ddtags``; 413 from 5 MB uncompressed), both answered 202; ``GET /api/v1/validate``.
- Keen: ``Authorization`` checked against the write key (401 ``InvalidApiKeyError``);
  ``POST /3.0/projects/{project_id}/events`` with ``{collection: [event, ...]}`` answered 200
  with one ``{"success": ...}`` result per event, refusing invalid property names
  (``InvalidPropertyNameError``), non-object events (``InvalidEventError``) and bad collection
  names (``InvalidCollectionNameError``) per event, as Keen does.

The limits are attributes, so a test can lower one to make the fake answer 413 sooner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.receivers import Received, Receiver, Reply

__all__ = [
    "DATADOG_API_KEY",
    "KEEN_PROJECT",
    "KEEN_WRITE_KEY",
    "FakeDatadog",
    "FakeKeen",
    "ProtocolReceiver",
    "valid_tag",
]

DATADOG_API_KEY = "0123456789abcdef0123456789abcdef"
KEEN_PROJECT = "5f6e0c1d2b3a49587766e5d4"
KEEN_WRITE_KEY = "write-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_MAX_BODY = 64 * 1024 * 1024  # read what a client sends; the fakes judge the size themselves


class ProtocolReceiver(Receiver):
    """A ``Receiver`` that answers like an API unless a reply was scripted."""

    def answer(self, request: web.Request, body: bytes) -> Reply:
        """The API's own answer to ``request``; must not depend on earlier requests (except
        where a fake says so, e.g. ``FakeKeen.failures_left``)."""
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request = request.clone(client_max_size=_MAX_BODY)
        body = await request.read()
        # The receiver answers with ``default`` once the script is used up. It reads the
        # (already read) body and picks its reply without yielding to the event loop, so a
        # concurrent request cannot replace ``default`` in between.
        self.default = self.answer(request, body)
        return await super()._handle(request)


def _json(status: int, document: Any) -> Reply:
    return Reply(status, json.dumps(document).encode(), {"Content-Type": "application/json"})


# --- Datadog ---------------------------------------------------------------------------------

_TAG = re.compile(r"[^\W\d_][\w\-:./]*")
_METRIC = re.compile(r"[a-zA-Z][a-zA-Z0-9_.]*")


def valid_tag(text: object) -> bool:
    """Datadog's tag rules: starts with a letter; letters, digits, ``_ - : . /`` only; lower
    case; at most 200 characters; no trailing ``:``; no ``__`` run or trailing ``_``."""
    return (
        isinstance(text, str)
        and _TAG.fullmatch(text) is not None
        and text == text.lower()
        and len(text) <= 200
        and not text.endswith((":", "_"))
        and "__" not in text
    )


class FakeDatadog(ProtocolReceiver):
    """Datadog's series API, logs intake and key validation; see the module docstring."""

    def __init__(self, api_key: str = DATADOG_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_series_compressed = 512_000
        self.max_series_bytes = 5_242_880
        self.max_log_entries = 1000
        self.max_log_bytes = 5_000_000

    def answer(self, request: web.Request, body: bytes) -> Reply:
        route = (request.method, request.path)
        if route not in {
            ("POST", "/api/v2/series"),
            ("POST", "/api/v2/logs"),
            ("GET", "/api/v1/validate"),
        }:
            return _json(404, {"errors": ["Not found"]})
        key = request.headers.get("DD-API-KEY")
        if key is None:
            return _json(401, {"errors": ["Unauthorized"]})
        if key != self.api_key:
            return _json(403, {"errors": ["Forbidden"]})
        if request.method == "GET":
            return _json(200, {"valid": True})
        if request.path == "/api/v2/series":
            return self._series(request, body)
        return self._logs(body)

    def _series(self, request: web.Request, body: bytes) -> Reply:
        compressed = int(request.headers.get("Content-Length", len(body)))
        if compressed > self.max_series_compressed or len(body) >= self.max_series_bytes:
            return _json(413, {"errors": ["Payload too large"]})
        try:
            document = orjson.loads(body)
        except ValueError:
            return _json(400, {"errors": ["Malformed JSON"]})
        series = document.get("series") if isinstance(document, dict) else None
        if not isinstance(series, list) or not series:
            return _json(400, {"errors": ["series is required"]})
        problems = [p for item in series for p in _series_problems(item)]
        if problems:
            return _json(400, {"errors": problems[:10]})
        return _json(202, {"errors": []})

    def _logs(self, body: bytes) -> Reply:
        if len(body) >= self.max_log_bytes:
            return _json(413, {"errors": ["Payload too large"]})
        try:
            document = orjson.loads(body)
        except ValueError:
            return _json(400, {"errors": ["Malformed JSON"]})
        logs = document if isinstance(document, list) else [document]
        if len(logs) > self.max_log_entries:
            return _json(400, {"errors": [f"more than {self.max_log_entries} entries"]})
        for log in logs:
            if not isinstance(log, dict):
                return _json(400, {"errors": ["a log must be a JSON object"]})
            tags = log.get("ddtags", "")
            if not isinstance(tags, str) or not all(map(valid_tag, filter(None, tags.split(",")))):
                return _json(400, {"errors": [f"invalid ddtags {tags!r}"]})
        return _json(202, {})

    # --- what was accepted ----------------------------------------------------------------

    def accepted(self, path: str) -> list[Received]:
        """The requests to ``path`` that Datadog accepted (answered 2xx)."""
        return [r for r in self.requests if r.path == path and 200 <= r.reply.status < 300]

    def series(self) -> list[dict[str, Any]]:
        """Every accepted series, in arrival order."""
        return [s for r in self.accepted("/api/v2/series") for s in r.json()["series"]]

    def logs(self) -> list[dict[str, Any]]:
        """Every accepted log entry, in arrival order."""
        return [log for r in self.accepted("/api/v2/logs") for log in r.json()]


def _series_problems(item: object) -> list[str]:
    if not isinstance(item, dict):
        return ["a series must be a JSON object"]
    problems = []
    metric = item.get("metric")
    if not isinstance(metric, str) or not _METRIC.fullmatch(metric) or len(metric) > 200:
        problems.append(f"invalid metric name {metric!r}")
    if item.get("type", 0) not in (0, 1, 2, 3):
        problems.append(f"invalid type {item.get('type')!r}")
    points = item.get("points")
    if not isinstance(points, list) or not points:
        problems.append("points are required")
    else:
        for point in points:
            ok = (
                isinstance(point, dict)
                and type(point.get("timestamp")) is int
                and type(point.get("value")) in (int, float)
            )
            if not ok:
                problems.append(f"invalid point {point!r}")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(map(valid_tag, tags)):
        problems.append(f"invalid tags {tags!r}")
    return problems


# --- Keen ------------------------------------------------------------------------------------

_KEEN_PROPERTIES = frozenset({"timestamp", "addons", "id", "location", "created_at"})


@dataclass(frozen=True, slots=True)
class KeenError:
    name: str
    description: str

    def result(self) -> dict[str, Any]:
        return {"success": False, "error": {"name": self.name, "description": self.description}}


class FakeKeen(ProtocolReceiver):
    """Keen's batch events API for one project; see the module docstring.

    ``failing`` maps an event ``id`` to the per-event error Keen reports for it while the
    entry is there (a transient failure, e.g. ``KeenError("InternalServerError", ...)``).
    ``failures_left`` optionally limits that: an id in both is reported failed that many more
    times, counting only requests the fake answers itself (not scripted replies), and then
    leaves both maps, as a Keen that recovered on its own.
    ``max_request_bytes``, when set, answers 413 to larger requests.
    """

    def __init__(self, project_id: str = KEEN_PROJECT, write_key: str = KEEN_WRITE_KEY) -> None:
        super().__init__()
        self.project_id = project_id
        self.write_key = write_key
        self.failing: dict[int, KeenError] = {}
        self.failures_left: dict[int, int] = {}
        self.max_request_bytes: int | None = None

    @property
    def path(self) -> str:
        return f"/3.0/projects/{self.project_id}/events"

    def answer(self, request: web.Request, body: bytes) -> Reply:
        if request.method != "POST" or request.path != self.path:
            return _json(
                404, {"message": "Resource not found", "error_code": "ResourceNotFoundError"}
            )
        if request.headers.get("Authorization") != self.write_key:
            message = "The API key you provided is invalid for this project."
            return _json(401, {"message": message, "error_code": "InvalidApiKeyError"})
        if self.max_request_bytes is not None and len(body) > self.max_request_bytes:
            message = "Request entity too large."
            return _json(413, {"message": message, "error_code": "RequestEntityTooLarge"})
        try:
            document = orjson.loads(body)
        except ValueError:
            return _json(400, {"message": "Malformed JSON.", "error_code": "InvalidJSONError"})
        if not isinstance(document, dict) or not all(
            isinstance(v, list) for v in document.values()
        ):
            message = "The body must map collection names to arrays of events."
            return _json(400, {"message": message, "error_code": "InvalidBatchError"})
        return _json(
            200,
            {name: [self._result(name, e) for e in events] for name, events in document.items()},
        )

    def _result(self, collection: str, event: object) -> dict[str, Any]:
        if (
            not collection
            or len(collection) > 64
            or collection.startswith("$")
            or not collection.isascii()
        ):
            return KeenError(
                "InvalidCollectionNameError", f"Invalid collection name: {collection!r}"
            ).result()
        if not isinstance(event, dict):
            return KeenError("InvalidEventError", "An event must be a JSON object.").result()
        for name in _property_names(event):
            if "." in name or name.startswith("$") or not name or len(name) > 256:
                description = f"Property name {name!r} is invalid: no '.', no leading '$'."
                return KeenError("InvalidPropertyNameError", description).result()
        keen = event.get("keen", {})
        if not isinstance(keen, dict) or not set(keen) <= _KEEN_PROPERTIES:
            return KeenError("InvalidEventError", "Unknown keen.* property.").result()
        event_id = event.get("id")
        failure = self.failing.get(event_id) if isinstance(event_id, int) else None
        if failure is not None and event_id in self.failures_left and not self._script:
            # ``answer`` runs just before the reply is picked: an empty script means it is used.
            self.failures_left[event_id] -= 1
            if self.failures_left[event_id] <= 0:
                del self.failures_left[event_id], self.failing[event_id]
        return failure.result() if failure else {"success": True}

    def accepted(self) -> list[Received]:
        """The batch requests Keen answered with per-event results (200)."""
        return [r for r in self.requests if r.path == self.path and r.reply.status == 200]

    def stored(self, collection: str) -> list[dict[str, Any]]:
        """Every event Keen stored in ``collection`` (its result a success), in arrival order."""
        stored = []
        for request in self.accepted():
            results = json.loads(request.reply.body)[collection]
            events = request.json()[collection]
            stored += [e for e, r in zip(events, results, strict=True) if r["success"]]
        return stored


def _property_names(value: object) -> list[str]:
    """Every property name in ``value``, nested objects (and objects in arrays) included, at
    any depth (walked without recursion: Keen is not bound by Python's stack)."""
    names: list[str] = []
    waiting = [value]
    while waiting:
        item = waiting.pop()
        if isinstance(item, dict):
            names += item
            waiting += item.values()
        elif isinstance(item, list):
            waiting += item
    return names
