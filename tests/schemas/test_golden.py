"""Byte for byte what the format layer wrote when the golden corpus was made (``golden.py``):
every rendering, CSV row and reader's error of every generated record, old, migrated and new."""

from __future__ import annotations

import gzip

import orjson

from schemas import Kind
from tests.schemas.golden import CORPUS, outputs


def test_every_output_is_byte_identical_to_the_golden_corpus() -> None:
    with gzip.open(CORPUS, "rb") as lines:
        corpus = [orjson.loads(line) for line in lines]
    assert len(corpus) > 2000
    for index, entry in enumerate(corpus):
        kind = Kind(entry.pop("kind"))
        raw = entry.pop("input").encode()
        assert outputs(raw, kind) == entry, (index, raw)
