"""The lane index and the warm rows, alone: what a read finds after appends, cooling and trims."""

from __future__ import annotations

import pytest

from schemas import Kind
from streamer.log.base import Entry, Row
from streamer.log.segments import Lanes, Segment


def _segment(first: int, size: int, organisations: int) -> tuple[Segment, list[Row]]:
    entries = [
        Entry(Kind.EVENT if i % 3 else Kind.USAGE, i % organisations, i % 5, i % 2, b"%d" % i)
        for i in range(first, first + size)
    ]
    segment = Segment(entries)
    segment.first = first
    return segment, [Row(first + i, *entry) for i, entry in enumerate(entries)]


def _read_all(lanes: Lanes, lane: tuple[int, Kind]) -> tuple[list[int], list[Row]]:
    """The offsets planned for the database, and the warm rows, of every record of ``lane``."""
    plan, warm = lanes.read(lane, 0, 10**9)
    return [offset for _, offsets in plan for offset in offsets], warm


@pytest.mark.parametrize("warm_bytes", [0, 2_000, 10**9])
def test_reads_find_the_newest_rows_in_memory_and_plan_the_rest(warm_bytes: int) -> None:
    """Over many appends, with the oldest warm rows let go of as memory fills, a read gives
    the warm rows of its lane as appended and plans each older record exactly once; a trim
    (to a segment's start, as the log trims) forgets what it cuts, warm or not."""
    lanes = Lanes(warm_bytes)
    appended: list[Row] = []
    firsts = [1]
    for size in [7, 1, 30, 12, 5, 40, 3, 25, 9, 18] * 3:
        segment, rows = _segment(firsts[-1], size, organisations=4)
        lanes.add(segment)
        appended += rows
        firsts.append(firsts[-1] + size)
    for keep_from in (0, firsts[7], firsts[20], firsts[-1]):
        lanes.trim(keep_from)
        for organisation in range(4):
            for kind in (Kind.EVENT, Kind.USAGE):
                expected = [
                    row
                    for row in appended
                    if row.organisation == organisation
                    and row.kind == kind
                    and row.offset >= keep_from
                ]
                cold, warm = _read_all(lanes, (organisation, kind))
                assert cold + [row.offset for row in warm] == [row.offset for row in expected]
                assert warm == expected[len(cold) :]
                if warm_bytes == 10**9:
                    assert not cold
    assert lanes.warm_size == 0


def test_an_append_nobody_reads_soon_lets_go_of_every_warm_row() -> None:
    lanes = Lanes(10**9)
    lanes.read_soon = {0, 1}.__contains__
    read, rows = _segment(1, 10, organisations=2)
    lanes.add(read)
    unread = Segment([Entry(Kind.USAGE, 7, None, None, b"7")])
    unread.first = 11
    lanes.add(unread)
    assert lanes.warm_size == 0
    assert _read_all(lanes, (0, Kind.EVENT))[1] == []
    again, more = _segment(12, 10, organisations=2)
    lanes.add(again)
    cold, warm = _read_all(lanes, (1, Kind.EVENT))
    expected = [row for row in rows + more if row.organisation == 1 and row.kind == Kind.EVENT]
    assert cold == [row.offset for row in expected if row.offset < 12]
    assert warm == [row for row in expected if row.offset >= 12]
