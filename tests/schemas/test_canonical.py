"""The one-pass reader in C (``schemas._canonical``) against the reference (``loads`` and
``parse_record``): for every record it takes, the same canonical bytes and routing facts; every
record it does not take is the reference's (an error, or a form it leaves to the reference).

The inputs are the golden corpus (every version, legacy forms, one field replaced, removed or
added), generated records written in other ways (whitespace, escapes, legacy versions, odd
values, numbers of every size), and byte-level edge cases. Where the C pass must take a
record (the forms producers send every day), the tests say so: a pass that declined everything
would agree with the reference and prove nothing.
"""

from __future__ import annotations

import gzip
import json
import random
from array import array
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    Canonical,
    Kind,
    RecordError,
    Shape,
    Version,
    canonical,
    canonical_json,
    dumps,
    loads,
    loads_stored,
)
from schemas import parse_record as reference_parse
from schemas._canonical import canonical as c_pass
from schemas._canonical import canonical_lines as c_lines
from schemas._canonical import csv_row as c_row
from schemas._canonical import render as c_render
from schemas.csv_rows import _C_LAYOUTS as C_LAYOUTS
from schemas.csv_rows import _reference_row as reference_row
from schemas.render import to_json
from tests.schemas.golden import CORPUS, _legacy, _mutated
from tests.schemas.hostile import HOSTILE, _nested
from tests.schemas.samples import EVENT, USAGE
from tests.schemas.strategies import records

_WANT = {None: 0, Version.NEW: 1, Version.MIGRATED: 2, Version.OLD: 2}


def reference(raw: bytes, kind: Kind, version: Version | None = None) -> Canonical | str:
    """What the reference makes of ``raw``: the canonical bytes and routing facts, or the
    error's text."""
    try:
        record = reference_parse(loads(raw), kind, version)
    except RecordError as exc:
        return f"{type(exc).__name__}: {exc}"
    alert = record.get("alert")
    return (
        to_json(record),
        kind is Kind.USAGE,
        record["organisation"]["id"],
        record["event_type"]["id"] if kind is Kind.EVENT else 0,
        -1 if alert is None else int(alert),
    )


def agrees(raw: bytes, kind: Kind, version: Version | None = None) -> bool:
    """Assert the C pass gives what the reference gives, if it takes ``raw``; say whether it
    took it."""
    taken = c_pass(raw, kind is Kind.USAGE, _WANT[version])
    if taken is not None:
        assert taken == reference(raw, kind, version), raw
    return taken is not None


def test_every_record_of_the_golden_corpus_reads_the_same_and_most_are_taken() -> None:
    with gzip.open(CORPUS, "rb") as lines:
        corpus = [orjson.loads(line) for line in lines]
    taken = 0
    for entry in corpus:
        kind, raw = Kind(entry["kind"]), entry["input"].encode()
        taken += agrees(raw, kind)
        for version in Version:
            agrees(raw, kind, version)
    valid = sum("error" not in entry for entry in corpus)
    assert valid > 2500
    # The rest write timestamps with offsets or fractions other than milliseconds, or hold both
    # an integer beyond 64 bits and a float whose forms differ: left to the reference.
    assert taken > 0.8 * valid


@pytest.mark.parametrize("want", [0, 1, 2])
def test_a_body_of_lines_reads_as_its_lines_do_one_by_one(want: int) -> None:
    with gzip.open(CORPUS, "rb") as lines:
        corpus = [orjson.loads(line) for line in lines]
    endings = [b"\n", b"\r\n", b"\r", b"\n \t\n", b"\r\n\r\n"]
    for kind in Kind:
        usage = kind is Kind.USAGE
        raws = [
            e["input"].encode()
            for e in corpus
            if e["kind"] == kind.value and "\n" not in e["input"] and "\r" not in e["input"]
        ]
        # every input, and those the pass takes alone (so most bodies are read whole)
        raws += [raw for raw in raws if c_pass(raw, usage, want) is not None]
        whole = 0
        for start in range(0, len(raws), 7):
            chunk = raws[start : start + 7]
            ending = endings[start % len(endings)]
            one_by_one = [c_pass(raw, usage, want) for raw in chunk]
            read = c_lines(ending.join(chunk) + ending * (start % 2), usage, want)
            if None in one_by_one:
                assert read is None
                continue
            whole += 1
            assert read is not None
            bodies, organisations, event_types, alerts = read
            taken = [t for t in one_by_one if t is not None]
            assert bodies == [t[0] for t in taken]
            assert array("q", organisations).tolist() == [t[2] for t in taken]
            assert array("q", event_types).tolist() == ([] if usage else [t[3] for t in taken])
            assert array("b", alerts).tolist() == ([] if usage else [t[4] for t in taken])
        assert whole > 10


def test_a_carriage_return_ends_a_line_as_splitlines_ends_it() -> None:
    good = orjson.dumps(EVENT)
    inside = good.replace(b",", b",\r", 1)
    assert c_pass(inside, False, 0) is not None  # white space to JSON, a line's end to NDJSON
    assert c_lines(inside + b"\n" + good, False, 0) is None
    assert c_lines(good + b"\n" + inside, False, 0) is None
    assert c_lines(good + b"\r" + good + b"\r\n\r\n" + good, False, 0) is not None


_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_SETTINGS
@given(st.data())
def test_generated_records_read_the_same_however_they_are_written(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(Kind))
    record = data.draw(records(kind))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    written = to_json(record)
    try:
        orjson.dumps(record)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: may be left to the reference
        agrees(written, kind)
    else:
        assert agrees(written, kind), "a canonical record must be taken"
        assert canonical(written, kind)[0] == written
    spaced = json.dumps(record, ensure_ascii=False, indent=None, separators=(" , ", " : "))
    escaped = json.dumps(record, ensure_ascii=True)
    for raw in (
        f" \t{spaced} ".encode(),
        escaped.encode(),
        to_json(_legacy(record, kind, rng)),
        to_json(_mutated(record, rng)),
        to_json(_mutated(_legacy(record, kind, rng), rng)),
    ):
        agrees(raw, kind)
        agrees(raw, kind, Version.NEW)
        agrees(raw, kind, Version.OLD)


_FINITE = st.floats(allow_nan=False, allow_infinity=False)


@_SETTINGS
@given(
    st.lists(st.one_of(_FINITE, st.integers(-(2**70), 2**70)), min_size=1, max_size=4),
    st.sampled_from(["plain", "exponent", "repr"]),
)
def test_numbers_of_every_size_and_form_read_the_same(
    numbers: list[float | int], form: str
) -> None:
    def text(number: float | int) -> str:
        if form == "exponent" and isinstance(number, float):
            return f"{number:.17e}"
        return repr(number) if form == "repr" else json.dumps(number)

    values = ",".join(text(n) for n in numbers)
    volume = ",".join(
        f'"{k}":{text(n)}' for k, n in zip(("rx", "tx", "total"), numbers, strict=False)
    )
    usage = orjson.dumps(USAGE)[:-1] + f',"x":[{values}],"volume":{{{volume}}}}}'.encode()
    agrees(usage.replace(b'"volume":{', b'"volume_was":{', 1), Kind.USAGE)
    assert agrees(orjson.dumps(EVENT)[:-1] + f',"x":[{values}]}}'.encode(), Kind.EVENT) or any(
        type(n) is int and not -(2**63) <= n < 2**64 for n in numbers
    )


def _event(**fields: Any) -> bytes:
    return to_json({**EVENT, **fields})


def _usage(**fields: Any) -> bytes:
    return to_json({**USAGE, **fields})


def _extra(raw: bytes, record: bytes | None = None) -> bytes:
    return (record or orjson.dumps(EVENT))[:-1] + b',"x":' + raw + b"}"


TAKEN: dict[str, tuple[bytes, Kind]] = {
    "the sample event": (orjson.dumps(EVENT), Kind.EVENT),
    "the sample usage": (orjson.dumps(USAGE), Kind.USAGE),
    "whitespace everywhere": (
        b' {\t"x" : [ 1 , { } , [ ] ] ,' + orjson.dumps(EVENT)[1:],
        Kind.EVENT,
    ),
    "an escaped key naming a known field": (
        orjson.dumps(EVENT).replace(b'"description"', b'"d\\u0065scription"', 1),
        Kind.EVENT,
    ),
    "escapes of every kind": (
        _extra(b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u00e9\\ud83d\\ude00"'),
        Kind.EVENT,
    ),
    "raw characters that stay raw": (_extra('"\x7f\u2028\u2029€😀\ufffe"'.encode()), Kind.EVENT),
    "legacy timestamps": (_event(timestamp="2020-02-29 23:59:59"), Kind.EVENT),
    "milliseconds": (_event(timestamp="2020-11-10T08:59:19.120Z"), Kind.EVENT),
    "alerts as 0 and 1": (_event(alert=1), Kind.EVENT),
    "a name renamed": (_event(event_source={"name": "Network", "id": 0}), Kind.EVENT),
    "a name beside a description": (
        _event(event_source={"name": 5, "description": "kept", "id": 0}),
        Kind.EVENT,
    ),
    "digit identifiers as numbers": (
        _event(sim={"iccid": 89883170000000000001, "msisdn": 4915100000000}),
        Kind.EVENT,
    ),
    "the keen object": (_usage(keen={"timestamp": "x"}), Kind.USAGE),
    "a balance without expiry": (
        _usage(endpoint={"id": 1, "balance": {"amount": 1.5}}),
        Kind.USAGE,
    ),
    "an endpoint without balance": (_usage(endpoint={"id": 1}), Kind.USAGE),
    "an integer beyond 64 bits": (_extra(b"123456789012345678901234567890"), Kind.EVENT),
    "an integer beyond 64 bits and a plain float": (
        _extra(b"[18446744073709551616,1.5]"),
        Kind.EVENT,
    ),
    "100 digits": (_extra(b"7" * 100), Kind.EVENT),
    "64 levels": (_extra(_nested(63, b"1")), Kind.EVENT),
    "floats orjson writes otherwise": (
        _extra(b"[1.50,1E5,0.00001,9.9e-6,1e16,1e-400,-0.0]"),
        Kind.EVENT,
    ),
}

DECLINED: dict[str, tuple[bytes, Kind]] = {
    "a duplicate known key": (orjson.dumps(EVENT)[:-1] + b',"id":7}', Kind.EVENT),
    "a duplicate unknown key": (_extra(b'{"a":1,"a":2}'), Kind.EVENT),
    "minus zero": (_extra(b"-0"), Kind.EVENT),
    "an infinite number": (_extra(b"1e400"), Kind.EVENT),
    "a lone surrogate": (_extra(b'"\\ud800"'), Kind.EVENT),
    "a lone low surrogate": (_extra(b'"\\udc00x"'), Kind.EVENT),
    "invalid UTF-8": (_extra(b'"\xff"'), Kind.EVENT),
    "an overlong form": (_extra(b'"\xc0\xaf"'), Kind.EVENT),
    "a surrogate in UTF-8": (_extra(b'"\xed\xa0\x80"'), Kind.EVENT),
    "a raw control character": (_extra(b'"\x01"'), Kind.EVENT),
    "101 digits": (_extra(b"7" * 101), Kind.EVENT),
    "65 levels": (_extra(_nested(64, b"1")), Kind.EVENT),
    "an alert of 2": (_event(alert=2), Kind.EVENT),
    "an alert of 1.0": (_event(alert=1.0), Kind.EVENT),
    "a name that is no text": (_event(event_source={"name": 5, "id": 0}), Kind.EVENT),
    "an event type in usage": (_usage(event_type={"id": 1}), Kind.USAGE),
    "usage read as an event": (orjson.dumps(USAGE), Kind.EVENT),
    "a day that is not": (_event(timestamp="2021-02-29T00:00:00Z"), Kind.EVENT),
    "hour 24": (_event(timestamp="2020-11-10T24:00:00Z"), Kind.EVENT),
    "an offset": (_event(timestamp="2020-11-10T08:59:19+01:00"), Kind.EVENT),
    "a long fraction": (_event(timestamp="2020-11-10T08:59:19.1234Z"), Kind.EVENT),
    "an organisation beyond 64 bits": (_event(organisation={"id": 2**63}), Kind.EVENT),
    "a required field null": (_event(event_type=None), Kind.EVENT),
    "a required field absent": (
        orjson.dumps({k: v for k, v in EVENT.items() if k != "id"}),
        Kind.EVENT,
    ),
    "text after the record": (orjson.dumps(EVENT) + b" x", Kind.EVENT),
    "an array": (b"[" + orjson.dumps(EVENT) + b"]", Kind.EVENT),
    "a digit identifier below zero": (_event(sim={"iccid": -1}), Kind.EVENT),
    "wide and a float orjson writes otherwise": (
        _extra(b"[18446744073709551616,1e-07]"),
        Kind.EVENT,
    ),
    **{name: (case.body, Kind.EVENT) for name, case in HOSTILE.items()},
}


@pytest.mark.parametrize("name", list(TAKEN))
def test_the_c_pass_takes_the_forms_it_is_for(name: str) -> None:
    raw, kind = TAKEN[name]
    assert agrees(raw, kind)


@pytest.mark.parametrize("name", list(DECLINED))
def test_the_c_pass_leaves_the_rest_to_the_reference(name: str) -> None:
    raw, kind = DECLINED[name]
    assert not agrees(raw, kind)


@pytest.mark.parametrize("version", [None, *Version])
def test_the_version_asked_for_is_the_references(version: Version | None) -> None:
    for raw in (orjson.dumps(EVENT), _event(timestamp="2020-11-10 08:59:19")):
        agrees(raw, Kind.EVENT, version)
    assert agrees(orjson.dumps(EVENT), Kind.EVENT, Version.NEW)
    assert not agrees(orjson.dumps(EVENT), Kind.EVENT, Version.OLD)


def test_a_body_reads_the_same_through_either_path() -> None:
    good, legacy = orjson.dumps(EVENT), _event(timestamp="2020-11-10T08:59:19+01:00")
    bad = _event(alert=2)
    ndjson = [good, b"", legacy, b"  ", bad, good]
    read = list(canonical_json(ndjson, Kind.EVENT))
    assert [isinstance(item, RecordError) for item in read] == [False, False, True, False]
    assert read[0] == read[3] == canonical(good, Kind.EVENT)
    assert read[1] == reference(legacy, Kind.EVENT)
    assert isinstance(read[2], RecordError)
    assert read[2].index == 2
    first_declined = list(canonical_json([legacy, good], Kind.EVENT))
    assert first_declined == [reference(legacy, Kind.EVENT), canonical(good, Kind.EVENT)]
    array = list(canonical_json([b"[" + good + b",", bad + b"]"], Kind.EVENT))
    assert array[0] == canonical(good, Kind.EVENT)
    assert isinstance(array[1], RecordError)
    assert array[1].index == 1
    pretty = json.dumps(EVENT, indent=2).encode().splitlines()
    assert list(canonical_json(pretty, Kind.EVENT)) == [canonical(good, Kind.EVENT)]


def written(body: bytes, kind: Kind, version: Version, shape: Shape) -> bytes | str:
    """What the reference writes for a stored record (or the error's name)."""
    try:
        return dumps(loads_stored(body), kind, version, shape)
    except Exception as exc:  # the reference's failure, to compare
        return type(exc).__name__


def renders_alike(body: bytes, kind: Kind) -> int:
    """Assert the C renderer writes what the reference writes in every legacy rendering it
    takes; say how many it took."""
    taken = 0
    for version in (Version.OLD, Version.MIGRATED):
        for shape in Shape:
            fast = c_render(body, kind is Kind.USAGE, version is Version.OLD, shape is Shape.KEEN)
            if fast is not None:
                assert fast == written(body, kind, version, shape), (body, version, shape)
                taken += 1
    return taken


def stored_corpus() -> list[tuple[bytes, Kind]]:
    """The canonical bytes of every golden input the reference reads."""
    with gzip.open(CORPUS, "rb") as lines:
        corpus = [orjson.loads(line) for line in lines]
    stored = []
    for entry in corpus:
        kind = Kind(entry["kind"])
        read = reference(entry["input"].encode(), kind)
        if not isinstance(read, str):
            stored.append((read[0], kind))
    assert len(stored) > 2500
    return stored


def test_every_record_of_the_golden_corpus_renders_the_same_and_most_in_c() -> None:
    stored = stored_corpus()
    taken = sum(renders_alike(body, kind) for body, kind in stored)
    assert taken > 0.9 * 4 * len(stored)


@_SETTINGS
@given(st.data())
def test_generated_records_render_the_same(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(Kind))
    record = data.draw(records(kind))
    body = to_json(record)
    try:
        orjson.dumps(record)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: may be left to the reference
        renders_alike(body, kind)
    else:
        assert renders_alike(body, kind) >= 2, body  # migrated, both shapes, always
    mutated = _mutated(record, random.Random(data.draw(st.integers(0, 2**32))))
    renders_alike(to_json(mutated), kind)


RENDERED: dict[str, tuple[bytes, Kind]] = {
    "keen fields in the producer's order, reversed": (
        to_json(
            {**EVENT, "endpoint": {"name": "x", "ip": "1", "id": 1}, "sim": {"iccid": "8", "id": 2}}
        ),
        Kind.EVENT,
    ),
    "a usage balance unset": (
        to_json({**USAGE, "endpoint": {"balance": None, "id": 1}}),
        Kind.USAGE,
    ),
    "a usage balance without expiry": (
        to_json({**USAGE, "endpoint": {"balance": {"expiry_date": None, "amount": 1}, "id": 1}}),
        Kind.USAGE,
    ),
    "an event endpoint with a balance": (
        to_json({**EVENT, "endpoint": {"id": 1, "balance": {"expiry_date": None}}}),
        Kind.EVENT,
    ),
    "text beyond ASCII in values": (to_json({**EVENT, "description": "München € 😀"}), Kind.EVENT),
    "escapes": (to_json({**EVENT, "description": 'a "q" \\ \n\u0001'}), Kind.EVENT),
}


@pytest.mark.parametrize("name", list(RENDERED))
def test_the_c_renderer_takes_the_forms_it_is_for(name: str) -> None:
    body, kind = RENDERED[name]
    assert renders_alike(body, kind) == 4


@pytest.mark.parametrize(
    "body",
    [
        to_json({**EVENT, "x_ü": 1}),  # a key beyond ASCII: two keys could become one in old
        to_json({**EVENT, "x": [2**64, 1e-07]}),  # Python's float form beside a wide integer
        to_json({**EVENT, "event_source": {"id": 1, "name": "a", "description": "b"}}),
    ],
)
def test_the_c_renderer_leaves_the_rest_to_the_reference(body: bytes) -> None:
    assert renders_alike(body, Kind.EVENT) < 4


def rows_alike(body: bytes, kind: Kind) -> int:
    """Assert the C pass writes the CSV row the reference writes, in every version it takes;
    say how many it took."""
    taken = 0
    for version in Version:
        fast = c_row(body, C_LAYOUTS[kind, version is not Version.NEW], version is Version.OLD)
        if fast is not None:
            try:
                expected: bytes | str = reference_row(body, kind, version).encode()
            except Exception as exc:  # the reference's failure, to compare
                expected = type(exc).__name__
            assert fast == expected, (body, version)
            taken += 1
    return taken


def test_every_record_of_the_golden_corpus_has_the_same_csv_rows_and_most_in_c() -> None:
    stored = stored_corpus()
    taken = sum(rows_alike(body, kind) for body, kind in stored)
    assert taken > 0.8 * 3 * len(stored)


@_SETTINGS
@given(st.data())
def test_generated_records_have_the_same_csv_rows(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(Kind))
    record = data.draw(records(kind))
    rows_alike(to_json(record), kind)
    mutated = _mutated(record, random.Random(data.draw(st.integers(0, 2**32))))
    rows_alike(to_json(mutated), kind)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (orjson.dumps(EVENT), Kind.EVENT),
        (orjson.dumps(USAGE), Kind.USAGE),
        (
            to_json({**EVENT, "description": 'a "q", \\ and\nlines', "detail": {"a": [1, "x"]}}),
            Kind.EVENT,
        ),
        (
            to_json(
                {**EVENT, "sim": None, "alert": True, "organisation": {"id": 1, "name": "Zürich"}}
            ),
            Kind.EVENT,
        ),
        (
            to_json({**USAGE, "cost": 0.0, "volume": {"total": 5, "rx": 0.00005, "tx": -1.5}}),
            Kind.USAGE,
        ),
    ],
)
def test_the_c_pass_writes_the_rows_it_is_for(body: bytes, kind: Kind) -> None:
    assert rows_alike(body, kind) == 3


_DUPLICATED = (
    b'{"timestamp":"2020-11-10T08:59:19Z","endpoint":{"id":1,"id":2,"id":3},"zz":1,"zz":2}'
)


@pytest.mark.parametrize(
    ("old", "keen"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_a_body_with_duplicate_keys_is_rendered_by_the_reference(old: bool, keen: bool) -> None:
    assert c_render(_DUPLICATED, False, old, keen) is None
    for version in Version:
        assert c_row(_DUPLICATED, C_LAYOUTS[Kind.EVENT, version is not Version.NEW], old) is None


def test_a_body_that_is_no_json_is_written_by_the_reference() -> None:
    for broken in (b',"zz":}', b',"zz":nope}', b',"zz":"\xff"}'):
        body = orjson.dumps(EVENT)[:-1] + broken
        assert c_render(body, False, True, False) is None
        assert c_row(body, C_LAYOUTS[Kind.EVENT, False], False) is None


def test_a_version_the_c_pass_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="want"):
        c_pass(orjson.dumps(EVENT), False, 3)
