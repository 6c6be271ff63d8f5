"""The Helm chart in ``deploy/helm/streamer``, rendered offline by Helm's own Go code
(helm-python-sdk binds its SDK; no helm binary, no cluster, no network) and linted.

Every rendered manifest is validated against the Kubernetes schemas of the oldest and newest
versions checked here (kubernetes-validate, strict: unknown fields fail). The ServiceMonitor is
a Prometheus Operator custom resource, outside those schemas: its wiring to the Service is
checked instead.

The NATS dependency is never fetched: the official NATS chart lives in ``charts/`` only after
``helm dependency build``, and the SDK renders the parent chart alone when it is absent, so the
JetStream mode is rendered both with an external NATS (the condition off) and with the chart's
own (the condition on: only the NATS URL it implies is checked here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.settings_names import SETTINGS

CHART = Path(__file__).parents[2] / "deploy" / "helm" / "streamer"
JETSTREAM_VALUES = yaml.safe_load((CHART / "values-jetstream.yaml").read_text())
KUBERNETES_VERSIONS = ("1.29", "1.37")
RELEASE, NAMESPACE = "edge", "iot"
FULLNAME = f"{RELEASE}-streamer"
EXTERNAL_NATS = "nats://nats.messaging.svc:4222"

Manifests = dict[str, dict[str, Any]]
"""Rendered objects by ``Kind/name``."""


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values layered like repeated ``-f`` files: maps merge, anything else is replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


MONITORED = {"serviceMonitor": {"enabled": True}}
MODES: dict[str, dict[str, Any]] = {
    "embedded": merged(
        MONITORED,
        {
            "secret": {
                "bootstrapToken": "a-long-random-secret-for-the-test",
                "aws": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"},
            }
        },
    ),
    "jetstream, external NATS": merged(
        JETSTREAM_VALUES,
        MONITORED,
        {"nats": {"enabled": False}, "settings": {"STREAMER_NATS_URL": EXTERNAL_NATS}},
    ),
    "jetstream, the chart's NATS": merged(JETSTREAM_VALUES, MONITORED),
}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any]) -> Manifests:
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert not [path for path in rendered if "/charts/" in path], "a dependency was rendered"
    objects: Manifests = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                key = f"{doc['kind']}/{doc['metadata']['name']}"
                assert key not in objects, f"{key} rendered twice"
                objects[key] = doc
    return objects


@pytest.fixture(scope="module", params=list(MODES))
def mode(request: pytest.FixtureRequest, chart: helm.Chart) -> tuple[str, Manifests]:
    return request.param, render(chart, MODES[request.param])


def only(objects: Manifests, kind: str) -> dict[str, Any]:
    found = [doc for doc in objects.values() if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} rendered"
    return found[0]


def container(objects: Manifests) -> dict[str, Any]:
    containers = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def config(objects: Manifests) -> dict[str, str]:
    return only(objects, "ConfigMap")["data"]  # type: ignore[no-any-return]


def is_subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return small.items() <= big.items()


# --- every mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(mode: tuple[str, Manifests], version: str) -> None:
    _, objects = mode
    for key, doc in objects.items():
        if doc["kind"] == "ServiceMonitor":
            continue  # a custom resource: see test_the_service_monitor_scrapes_the_service
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{key} is not valid Kubernetes {version}: {where}: {exc.message}")


def test_the_pod_is_probed_drained_bounded_and_unprivileged(mode: tuple[str, Manifests]) -> None:
    _, objects = mode
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    main = container(objects)
    assert main["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    # SIGTERM → one shutdown budget for open requests, in-flight sends and closing.
    drain = float(config(objects)["STREAMER_SHUTDOWN_TIMEOUT_SECS"])
    prestop = int(main["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > prestop + drain
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= main["resources"][bound].keys()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert mounts == {"/var/lib/streamer", "/tmp"}
    assert config(objects)["STREAMER_DATA_DIR"] == "/var/lib/streamer"


def test_the_settings_are_the_services_own(mode: tuple[str, Manifests]) -> None:
    _, objects = mode
    data = config(objects)
    assert set(data) <= SETTINGS, f"not settings of the service: {set(data) - SETTINGS}"
    assert data["STREAMER_LISTEN"] == "0.0.0.0:8080"
    refs = {
        next(iter(source)): next(iter(source.values()))["name"]
        for source in container(objects)["envFrom"]
    }
    assert refs == {"configMapRef": FULLNAME, "secretRef": FULLNAME}
    secret = only(objects, "Secret")
    assert secret["metadata"]["name"] == FULLNAME
    assert "STREAMER_BOOTSTRAP_TOKEN" in secret["data"]
    assert "STREAMER_BOOTSTRAP_TOKEN" not in data


def test_the_service_and_the_budget_select_the_pods(mode: tuple[str, Manifests]) -> None:
    _, objects = mode
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = only(objects, "Service")
    assert is_subset(service["spec"]["selector"], pod_labels)
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    assert [p["name"] for p in container(objects)["ports"]] == ["http"]
    budget = only(objects, "PodDisruptionBudget")
    assert is_subset(budget["spec"]["selector"]["matchLabels"], pod_labels)
    assert budget["spec"]["maxUnavailable"] == 1


def test_the_service_monitor_scrapes_the_service(mode: tuple[str, Manifests]) -> None:
    _, objects = mode
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert is_subset(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


# --- one mode each ----------------------------------------------------------------------------


def test_the_embedded_mode_is_one_replica_on_a_volume(chart: helm.Chart) -> None:
    objects = render(chart, MODES["embedded"])
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [doc for doc in objects.values() if doc["kind"] == "HorizontalPodAutoscaler"]
    claim = only(objects, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    data = config(objects)
    assert data["STREAMER_LOG_BACKEND"] == "sqlite"
    assert "STREAMER_NATS_URL" not in data
    secret = only(objects, "Secret")["data"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secret.keys()


@pytest.mark.parametrize(
    ("name", "nats_url"),
    [
        ("jetstream, external NATS", EXTERNAL_NATS),
        ("jetstream, the chart's NATS", f"nats://{RELEASE}-nats.{NAMESPACE}.svc:4222"),
    ],
)
def test_the_jetstream_mode_is_replicas_on_nats(
    chart: helm.Chart, name: str, nats_url: str
) -> None:
    objects = render(chart, MODES[name])
    deployment = only(objects, "Deployment")
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    autoscaler = only(objects, "HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] == JETSTREAM_VALUES["replicaCount"] >= 2
    assert not [doc for doc in objects.values() if doc["kind"] == "PersistentVolumeClaim"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    data = config(objects)
    assert data["STREAMER_LOG_BACKEND"] == "nats"
    assert data["STREAMER_NATS_URL"] == nats_url


@pytest.mark.parametrize(
    ("release", "nats", "url"),
    [
        ("my-nats", {}, "nats://my-nats.iot.svc:4222"),
        (RELEASE, {"fullnameOverride": "bus"}, "nats://bus.iot.svc:4222"),
        (
            RELEASE,
            {"service": {"name": "msg"}, "config": {"nats": {"port": 4333}}},
            "msg.iot.svc:4333",
        ),
    ],
)
def test_the_nats_url_follows_the_nats_charts_naming(
    chart: helm.Chart, release: str, nats: dict[str, Any], url: str
) -> None:
    values = merged(JETSTREAM_VALUES, {"nats": nats})
    [configmap] = yaml.safe_load_all(
        chart.render(values, name=release, namespace=NAMESPACE)["streamer/templates/configmap.yaml"]
    )
    assert configmap["data"]["STREAMER_NATS_URL"].endswith(url)


def test_the_grace_period_follows_the_shutdown_timeout(chart: helm.Chart) -> None:
    objects = render(chart, {"settings": {"STREAMER_SHUTDOWN_TIMEOUT_SECS": "42.5"}})
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5 + 43 + 10


def test_an_existing_secret_replaces_the_charts_own(chart: helm.Chart) -> None:
    objects = render(chart, {"secret": {"existingSecret": "streamer-credentials"}})
    assert not [doc for doc in objects.values() if doc["kind"] == "Secret"]
    refs = [s["secretRef"]["name"] for s in container(objects)["envFrom"] if "secretRef" in s]
    assert refs == ["streamer-credentials"]


def test_a_nats_credentials_secret_is_mounted_owner_only(chart: helm.Chart) -> None:
    values = merged(
        MODES["jetstream, external NATS"],
        {
            "secret": {"natsCredsSecret": "nats-user"},
            "settings": {"STREAMER_NATS_CREDS_FILE": "/elsewhere"},
        },
    )
    objects = render(chart, values)
    for kubernetes in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(only(objects, "Deployment"), kubernetes, strict=True)
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["nats-creds"]["secret"] == {
        "secretName": "nats-user",
        "defaultMode": 0o400,
        "items": [{"key": "nats.creds", "path": "nats.creds"}],
    }
    mounts = {m["name"]: m for m in container(objects)["volumeMounts"]}
    assert mounts["nats-creds"]["readOnly"] is True
    path = config(objects)["STREAMER_NATS_CREDS_FILE"]
    assert path == f"{mounts['nats-creds']['mountPath']}/nats.creds"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "the embedded mode (STREAMER_LOG_BACKEND=sqlite) runs exactly one"),
        (
            {"autoscaling": {"enabled": True}},
            "the embedded mode (STREAMER_LOG_BACKEND=sqlite) cannot autoscale",
        ),
        (merged(JETSTREAM_VALUES, {"nats": {"enabled": False}}), "needs a NATS server"),
        ({"secret": {"aws": {"accessKeyId": "AKIDEXAMPLE"}}}, "secretAccessKey goes with"),
    ],
)
def test_what_cannot_work_is_refused_at_render_time(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize("values", [None, JETSTREAM_VALUES], ids=["embedded", "jetstream"])
def test_helm_lint_finds_nothing_but_the_unfetched_dependency(
    values: dict[str, Any] | None,
) -> None:
    report = helm.lint(CHART, values, kube_version="v1.29.0")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert [m["error"] for m in problems] == ["chart directory is missing these dependencies: nats"]


def test_the_chart_ships_this_version_of_the_service() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["appVersion"] == version("streamer")
    [nats] = meta["dependencies"]
    assert (nats["name"], nats["condition"]) == ("nats", "nats.enabled")
    assert re.fullmatch(r"\d+\.\d+\.\d+", nats["version"]), "the NATS chart is pinned"


def test_the_values_schema_knows_every_setting_the_chart_does_not_set_itself() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    allowed = set(schema["properties"]["settings"]["propertyNames"]["enum"])
    owned = {"STREAMER_LISTEN", "STREAMER_DATA_DIR"}  # the ConfigMap's own
    secret = {"STREAMER_BOOTSTRAP_TOKEN"}  # the Secret's
    assert allowed | owned | secret == SETTINGS
    assert not allowed & (owned | secret)


def test_a_misspelt_setting_is_refused(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError, match="STREAMER_RETRY_MAX_SEC'"):
        chart.render({"settings": {"STREAMER_RETRY_MAX_SEC": "5"}}, name=RELEASE)
