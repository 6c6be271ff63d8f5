"""``deploy/grafana/streamer.json``: every query names only metrics the service exports (the
names its own registry exposes on ``/metrics``), and every metric it exports is on a panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from streamer.metrics import Metrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "streamer.json"

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}
"""The series each kind of metric family puts on ``/metrics`` (Prometheus text format)."""

PROMQL_FUNCTIONS = {"count", "histogram_quantile", "increase", "max", "rate", "sum", "vector"}
PROMQL_KEYWORDS = {"and", "bool", "or", "unless"}


def exported() -> dict[str, str]:
    """Every series name the service exposes → the family it belongs to."""
    names = {}
    for family in Metrics().registry.collect():
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = family.name
    return names


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) in a PromQL expression."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    bare = re.sub(r"\{[^}]*\}|\[[^]]*\]", "", bare)  # label matchers, ranges
    bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", bare)  # grouping labels
    bare = re.sub(r"\$\w+", "", bare)  # dashboard variables
    metrics, functions = set(), set()
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", bare):
        if match.group(2):
            functions.add(match.group(1))
        elif match.group(1) not in PROMQL_KEYWORDS:
            metrics.add(match.group(1))
    return metrics, functions


def test_the_suffixes_are_those_on_metrics() -> None:
    metrics = Metrics()
    metrics.delivered.labels("1").inc()
    metrics.pending.labels("1").set(3)
    metrics.batch_seconds.labels("1").observe(0.2)
    text = generate_latest(metrics.registry).decode()
    on_page = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    touched = {"streamer_records_delivered", "streamer_records_pending", "streamer_batch_seconds"}
    touched |= {"streamer_ingest_workers_lost"}  # no labels: on the page from the start, at 0
    assert on_page == {name for name, family in exported().items() if family in touched}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_parser_finds_metrics_and_functions() -> None:
    metrics, functions = names_in(
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{stream=~"$stream"}[5m])))'
        " / sum(rate(b_total[$__rate_interval])) or vector(0)"
    )
    assert metrics == {"a_bucket", "b_total"}
    assert functions == {"histogram_quantile", "sum", "rate", "vector"}


def test_every_query_names_a_metric_the_service_exports(dashboard: dict[str, Any]) -> None:
    known = exported()
    for where, expr in queries(dashboard):
        metrics, functions = names_in(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        assert metrics <= known.keys(), f"{where}: not exported: {metrics - known.keys()}"
        assert functions <= PROMQL_FUNCTIONS, f"{where}: unexpected {functions}"


def test_the_stream_variable_reads_an_exported_metric(dashboard: dict[str, Any]) -> None:
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "stream"]
    match = re.fullmatch(r"label_values\((\w+),\s*stream\)", variable["query"]["query"])
    assert match, variable["query"]
    assert match.group(1) in exported()


def test_every_exported_metric_is_on_a_panel(dashboard: dict[str, Any]) -> None:
    known = exported()
    shown = {known[m] for _, expr in queries(dashboard) for m in names_in(expr)[0]}
    assert shown == set(known.values())


def test_the_panels_cover_what_an_operator_watches(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Ingest rate by kind",
        "Delivery rate per stream",
        "Pending per stream",
        "Stream status",
        "Failed and retried per stream",
        "Dead letters per stream",
        "Batch latency",
    ):
        assert wanted in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
