"""CSV rows (FORMATS.md §4): a canonical record as one row under its layout's header.

Every non-null field double-quoted (a quote inside doubled), a null written as nothing between
the commas, ``\\n`` line ends; booleans and timestamps follow the version (``old``: every
non-ASCII character becomes a space); volumes at 6 decimals and ``cost`` at 10, as the platform
writes them; other numbers never in exponent notation; ``detail`` as compact JSON, or as its
text when it is a string.

A row is written in one pass of C (``schemas/_canonical.c``) from the record's canonical bytes,
for the rows it takes; the rest (a text ``detail``, Python's float form beside an integer beyond
64 bits, a record the reference cannot write) are written here, the reference the C pass is
held to (``tests/schemas/test_canonical.py``). Here a row reads only the record's columns:
msgspec reads them, in C, into structs made from the column tables (the rest of the record is
skipped), typed so that what most cells hold is known without looking: text or an integer,
written as it is. One ``attrgetter`` takes every column's value and one ``%`` writes them under
a template of the layout's cells; only legacy timestamps, booleans, decimals and ``detail`` are
written in Python, cell by cell. A record whose columns hold anything else (a number in a text
column, a text with a quote in it) is written cell by cell, read again without types when the
types refused it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec

from schemas._canonical import csv_layout as _c_layout
from schemas._canonical import csv_row as _c_row
from schemas.csv_columns import LAYOUTS, SCALES
from schemas.decode import loads
from schemas.errors import MalformedRecord
from schemas.kinds import Kind, Record, Version
from schemas.render import ascii_only, to_json
from schemas.timestamps import legacy_timestamp

__all__ = ["csv_row", "csv_row_stored"]


def csv_row(record: Record, kind: Kind, version: Version) -> str:
    """One canonical record as a CSV row (with its line end) under ``csv_header``."""
    return csv_row_stored(to_json(record), kind, version).decode()


def csv_row_stored(body: bytes, kind: Kind, version: Version) -> bytes:
    """``csv_row`` of the record whose canonical bytes are ``body``, as UTF-8: in one pass of C
    (``schemas/_canonical.c``) for the rows it takes, else as ``_reference_row`` writes it."""
    row = _c_row(body, _C_LAYOUTS[kind, version is not Version.NEW], version is Version.OLD)
    return _reference_row(body, kind, version).encode() if row is None else row


def _reference_row(body: bytes, kind: Kind, version: Version) -> str:
    """The row, written in Python: the reference the C pass is held to."""
    typed, loose = _READERS[kind]
    legacy = version is not Version.NEW
    layout = _LAYOUTS[kind, legacy]
    try:
        values = layout.cells(typed.filled(typed.decoder.decode(body)))
    except msgspec.ValidationError:
        row = _cells(layout.cells(loose.filled(loose.decoder.decode(body))), layout, legacy)
    else:
        plain = _ESCAPED_QUOTE not in body and _NONE not in body
        row = _templated(values, layout) if plain else _cells(values, layout, legacy)
    return ascii_only(row) if version is Version.OLD else row


_ESCAPED_QUOTE = b'\\"'
_NONE = b'"None"'
"""Two things a text may hold that the template cannot write: a quote (to be doubled), and
``None`` (what the template writes for a null before it becomes nothing)."""

_TYPES: dict[str, Any] = {
    "int": int | str | None,
    "str": int | str | None,
    "ts": str | None,
    "bool": bool | None,
    "num": int | float | None,
    "dec6": int | float | None,
    "dec10": int | float | None,
    "json": Any,
}
"""What a typed struct takes for a column of each type: text or an integer where a cell is
written as it is, what ``_WRITERS`` expect in the others."""


class _Reader:
    """The columns of one kind's records: a struct of every entity they read (typed or not),
    and the entities below it a level at a time: each one's parent (its place in the list
    ``filled`` builds), its name, and what ``filled`` puts in place of a null."""

    def __init__(self, kind: Kind, typed: bool) -> None:
        tree: dict[str, Any] = {}
        for legacy in (True, False):
            for column in LAYOUTS[kind, legacy]:
                node = tree
                for key in column.path[:-1]:
                    node = node.setdefault(key, {})
                node[column.path[-1]] = _TYPES[column.type] if typed else Any
        self.struct = _struct(kind.value, tree)
        self.decoder = msgspec.json.Decoder(self.struct)
        self.levels: list[tuple[list[int], list[str], list[Any]]] = []
        level, first = [self.struct], 0
        while level:
            parents, names, below = [], [], []
            for place, struct in enumerate(level, first):
                for name, inner in _entities(struct):
                    parents.append(place)
                    names.append(name)
                    below.append(inner)
            if below:
                self.levels.append((parents, names, [_empty(inner) for inner in below]))
            level, first = below, first + len(level)

    def filled(self, record: Any) -> Any:
        """``record`` (its own) with every null entity an entity of nulls."""
        found = [record]
        for parents, names, empties in self.levels:
            entities = list(map(getattr, map(found.__getitem__, parents), names))
            if None in entities:
                for index, entity in enumerate(entities):
                    if entity is None:
                        entities[index] = empties[index]
                        setattr(found[parents[index]], names[index], entities[index])
            found += entities
        return record


def _struct(name: str, tree: dict[str, Any]) -> Any:
    fields = [
        (key, _struct(key, inner) | None if isinstance(inner, dict) else inner, None)
        for key, inner in tree.items()
    ]
    return msgspec.defstruct(name, fields, gc=False)


def _entities(struct: Any) -> list[tuple[str, Any]]:
    """The fields of ``struct`` that are entities (``Struct | None``), with their structs."""
    return [
        (field.name, inner)
        for field in msgspec.structs.fields(struct)
        for inner in getattr(field.type, "__args__", ())
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct)
    ]


def _empty(struct: Any) -> Any:
    """An entity of nulls, its entities too: never null below, so never changed."""
    return struct(**{name: _empty(inner) for name, inner in _entities(struct)})


_READERS = {kind: (_Reader(kind, True), _Reader(kind, False)) for kind in Kind}


class _Layout(NamedTuple):
    """One layout as a row is written from a record's columns."""

    types: tuple[str, ...]
    cells: Callable[[Any], tuple[Any, ...]]
    """The value of every column of a filled record."""
    others: tuple[tuple[int, Callable[[Any], str]], ...]
    """The place of each column not written as it is, and what writes its cell."""
    template: str
    """The row: ``"%s"`` for a column written as it is, ``%s`` for the others."""


def _layout(kind: Kind, legacy: bool) -> _Layout:
    columns = LAYOUTS[kind, legacy]
    writers = _WRITERS[legacy]
    return _Layout(
        tuple(column.type for column in columns),
        attrgetter(*(".".join(column.path) for column in columns)),
        tuple(
            (index, writers[column.type])
            for index, column in enumerate(columns)
            if column.type in writers
        ),
        ",".join("%s" if column.type in writers else '"%s"' for column in columns) + "\n",
    )


def _templated(values: tuple[Any, ...], layout: _Layout) -> str:
    """The row of a typed record whose texts hold neither a quote nor ``"None"``."""
    cells = list(values)
    for index, write in layout.others:
        cells[index] = write(cells[index])
    return (layout.template % tuple(cells)).replace('"None"', "")


def _cells(values: tuple[Any, ...], layout: _Layout, legacy: bool) -> str:
    """The row of any record, cell by cell."""
    cells = zip(values, layout.types, strict=True)
    return ",".join([_cell(value, type_, legacy) for value, type_ in cells]) + "\n"


def _stamp(value: str | None) -> str:
    return "" if value is None else f'"{legacy_timestamp(value)}"'


def _bit(value: bool | None) -> str:
    return "" if value is None else '"1"' if value else '"0"'


def _boolean(value: bool | None) -> str:
    return "" if value is None else '"true"' if value else '"false"'


def _decimals(scale: int) -> Callable[[int | float | None], str]:
    def write(value: int | float | None) -> str:
        return "" if value is None else f'"{_scaled(value, scale)}"'

    return write


def _number(value: int | float | None) -> str:
    if value is None:
        return ""
    return f'"{value}"' if type(value) is int else f'"{_plain_float(value)}"'


def _detail(legacy: bool) -> Callable[[Any], str]:
    def write(value: Any) -> str:
        return _cell(value, "json", legacy)

    return write


_SHARED: dict[str, Callable[[Any], str]] = {
    "dec6": _decimals(6),
    "dec10": _decimals(10),
    "num": _number,
}
_WRITERS: dict[bool, dict[str, Callable[[Any], str]]] = {
    True: {**_SHARED, "ts": _stamp, "bool": _bit, "json": _detail(True)},
    False: {**_SHARED, "bool": _boolean, "json": _detail(False)},
}
"""By legacy or not: what writes a cell of a typed record for each column type not written as
it is (what a typed struct holds there: ``_TYPES``)."""


_LAYOUTS = {key: _layout(*key) for key in LAYOUTS}


def _nodes(kind: Kind, legacy: bool) -> list[tuple[str, int, int, int, str]]:
    """A layout as the C pass takes it: the tree of the fields the columns of either layout of
    ``kind`` read (an entity of either must be an object or null, as for ``_READERS``), a level
    at a time (the children of a node next to each other), each node as ``(name, column of this
    layout or -1, first child, children, column type)``; the first node is the record."""
    tree: dict[str, Any] = {}
    for other in (not legacy, legacy):  # the other layout's entities too: the readers have them
        for index, column in enumerate(LAYOUTS[kind, other]):
            node = tree
            for key in column.path[:-1]:
                node = node.setdefault(key, (-1, "", {}))[2]
            node[column.path[-1]] = (index, column.type, {}) if other == legacy else (-1, "", {})
    nodes: list[list[Any]] = [["", -1, 1, len(tree), ""]]
    level = [tree]
    while level:
        below = []
        for children in level:
            for name, (column, type_, inner) in children.items():
                nodes.append([name, column, 0, len(inner), type_])
                below.append(inner)
        first = len(nodes)
        for place, inner in enumerate(below, len(nodes) - len(below)):
            nodes[place][2] = first
            first += len(inner)
        level = below
    return [(n[0], n[1], n[2], n[3], n[4]) for n in nodes]


_C_LAYOUTS = {key: _c_layout(_nodes(*key), key[1]) for key in LAYOUTS}


_WIDE = Context(prec=400)  # every digit of any finite float and its fraction


def _cell(value: Any, column_type: str, legacy: bool) -> str:
    if value is None:
        return ""
    if column_type == "ts" and isinstance(value, str):
        text = legacy_timestamp(value) if legacy else value
    elif isinstance(value, bool):
        return _bit(value) if legacy else _boolean(value)
    elif column_type in SCALES and isinstance(value, int | float):
        text = _scaled(value, SCALES[column_type])
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


def _scaled(value: int | float, scale: int) -> str:
    """``value`` with exactly ``scale`` decimals, rounded half to even (``0.00321`` →
    ``0.003210``)."""
    if isinstance(value, int):
        return f"{value}.{'0' * scale}"
    text = repr(value)
    decimals = len(text) - text.find(".") - 1
    if decimals <= scale and "e" not in text and value:  # no rounding: zeros after the digits
        return text + "0" * (scale - decimals)
    exact = Decimal(text).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN, _WIDE)
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
