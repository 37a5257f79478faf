"""Contract tests for the goldengate probe: the real `oci` Monitoring client against a local OCI server
(tests/dr/ocifake.py: signed requests checked), and the deployment's REST API against a local server."""
from __future__ import annotations

import base64
import json
import socket
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import oci
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from cells.rendering import goldengate_names
from dr.errors import ProviderError, TransientProviderError
from dr.replication.goldengate import GoldenGateProbe, GoldenGateRest


DEPLOYMENT = "ocid1.goldengatedeployment.oc1.iad.test"
COMPARTMENT = "ocid1.compartment.oc1..gg"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
CELL_ENV = SimpleNamespace(cell=SimpleNamespace(name="payments"), environment="prod")
EXTRACT, REPLICAT = goldengate_names("payments", "prod")


@pytest.fixture
def fake(oci_server):
    oci_server.reset()
    return oci_server


def monitoring(cfg, endpoint):
    return oci.monitoring.MonitoringClient(cfg, service_endpoint=endpoint, retry_strategy=oci.retry.NoneRetryStrategy(),
                                           circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())


def probe_for(cfg, fake, **kwargs):
    return GoldenGateProbe(monitoring(cfg[0], fake.endpoint), deployment_id=DEPLOYMENT, compartment_id=COMPARTMENT,
                           clock=lambda: NOW, **kwargs)


def series(fake, replicat=None, extract=None):
    """Datapoints as (seconds before NOW, value)."""
    if replicat is not None:
        fake.add_series("ReplicatLag", {"deploymentId": DEPLOYMENT, "deploymentName": "dr", "ReplicatName": REPLICAT},
                        [(NOW - timedelta(seconds=ago), v) for ago, v in replicat])
    if extract is not None:
        fake.add_series("ExtractLag", {"deploymentId": DEPLOYMENT, "deploymentName": "dr", "ExtractName": EXTRACT},
                        [(NOW - timedelta(seconds=ago), v) for ago, v in extract])


def test_contract_goldengate_fresh_datapoints_give_lag_seconds(oci_cfg, fake):
    series(fake, replicat=[(240, 9.0), (120, 4.0), (60, 2.0)], extract=[(60, 1.0)])
    # Another cell's Replicat in the same deployment must not be read.
    fake.add_series("ReplicatLag", {"deploymentId": DEPLOYMENT, "ReplicatName": "ROTHER"}, [(NOW - timedelta(seconds=30), 500.0)])
    reading = probe_for(oci_cfg, fake).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 2.0  # the latest 1-minute max, not the worst of the window
    assert reading.measured_at == NOW - timedelta(seconds=60)
    assert reading.detail["source"] == "monitoring" and reading.detail["replicat"] == REPLICAT
    calls = fake.calls("POST")
    assert len(calls) == 2
    for call, (metric, dim, name) in zip(calls, [("ReplicatLag", "ReplicatName", REPLICAT), ("ExtractLag", "ExtractName", EXTRACT)]):
        assert call["path"] == "/20180401/metrics/actions/summarizeMetricsData"
        assert call["query"] == {"compartmentId": COMPARTMENT}
        assert call["signed"], call["signatureProblem"]
        body = call["body"]
        assert body["namespace"] == "oci_goldengate" and body["resolution"] == "1m"
        assert body["query"] == f'{metric}[1m]{{deploymentId = "{DEPLOYMENT}", {dim} = "{name}"}}.max()'
        assert datetime.fromisoformat(body["endTime"].replace("Z", "+00:00")) == NOW
        assert datetime.fromisoformat(body["startTime"].replace("Z", "+00:00")) == NOW - timedelta(minutes=10)


def test_contract_goldengate_an_extract_behind_counts_even_when_replicat_is_idle(oci_cfg, fake):
    series(fake, replicat=[(60, 0.0)], extract=[(60, 75.0)])
    assert probe_for(oci_cfg, fake).lag(CELL_ENV, "primary", "secondary").seconds == 75.0


def test_contract_goldengate_no_datapoint_is_unknown_never_zero(oci_cfg, fake):
    series(fake, extract=[(60, 0.0)])
    reading = probe_for(oci_cfg, fake).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None
    assert f"no ReplicatLag datapoint for {REPLICAT}" in reading.detail["unknown"]


def test_contract_goldengate_stale_datapoint_is_unknown(oci_cfg, fake):
    series(fake, replicat=[(400, 0.0)], extract=[(30, 0.0)])
    reading = probe_for(oci_cfg, fake).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None
    assert "stale: last datapoint 400s old (limit 180s)" in reading.detail["unknown"]
    assert probe_for(oci_cfg, fake, stale_seconds=600).lag(CELL_ENV, "primary", "secondary").seconds == 0.0


def test_contract_goldengate_monitoring_errors(oci_cfg, fake):
    series(fake, replicat=[(60, 1.0)], extract=[(60, 1.0)])
    probe = probe_for(oci_cfg, fake)
    fake.fail(429, "TooManyRequests")
    with pytest.raises(TransientProviderError):
        probe.lag(CELL_ENV, "primary", "secondary")
    fake.fail(503, "ServiceUnavailable")
    reading = probe.lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and "503" in reading.detail["unknown"]
    fake.fail(404, "NotAuthorizedOrNotFound")
    with pytest.raises(ProviderError, match="404") as err:
        probe.lag(CELL_ENV, "primary", "secondary")
    assert not isinstance(err.value, TransientProviderError)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = GoldenGateProbe(monitoring(oci_cfg[0], f"http://127.0.0.1:{port}"), deployment_id=DEPLOYMENT,
                           compartment_id=COMPARTMENT, clock=lambda: NOW)
    reading = down.lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and "unreachable" in reading.detail["unknown"]


# -- the REST exact check ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gg_rest_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gg_rest(gg_rest_server):
    gg_rest_server.clear()
    return gg_rest_server


def answer_status(server, kind, name, status="running", lag="0", since=2):
    def handler(request):
        expected = "Basic " + base64.b64encode(b"ggmonitor:s3cret").decode()
        if request.headers.get("Authorization") != expected:
            return Response("{}", status=401, content_type="application/json")
        body = {"$schema": "api:standardResponse", "links": [], "messages": [],
                "response": {"$schema": f"ogg:{kind}Status", "lag": lag, "sinceLagReported": since, "status": status,
                             "lastStarted": "2026-11-26T11:00:00.000Z"}}
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request(f"/services/v2/{kind}s/{name}/info/status", method="GET").respond_with_handler(handler)


def test_contract_goldengate_rest_gives_the_live_lag(oci_cfg, fake, gg_rest):
    series(fake, replicat=[(60, 12.0)], extract=[(60, 3.0)])  # Monitoring still shows the minute before the fence
    answer_status(gg_rest, "replicat", REPLICAT, lag="0", since=1)
    answer_status(gg_rest, "extract", EXTRACT, lag=0, since=2)
    rest = GoldenGateRest(gg_rest.url_for("/"), "ggmonitor", "s3cret")
    reading = probe_for(oci_cfg, fake, rest=rest).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 0.0 and reading.detail["source"] == "rest"
    assert reading.measured_at == NOW - timedelta(seconds=2)
    assert reading.detail["monitoring"]["ReplicatLag"]["value"] == 12.0
    assert sorted(r.path for r, _ in gg_rest.log) == [f"/services/v2/extracts/{EXTRACT}/info/status",
                                                      f"/services/v2/replicats/{REPLICAT}/info/status"]


def test_contract_goldengate_rest_stopped_replicat_is_unknown(oci_cfg, fake, gg_rest):
    series(fake, replicat=[(60, 0.0)], extract=[(60, 0.0)])
    answer_status(gg_rest, "replicat", REPLICAT, status="abended", lag="0")
    answer_status(gg_rest, "extract", EXTRACT)
    rest = GoldenGateRest(gg_rest.url_for("/"), "ggmonitor", "s3cret")
    reading = probe_for(oci_cfg, fake, rest=rest).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and f"replicat {REPLICAT} is abended" in reading.detail["unknown"]


def test_contract_goldengate_rest_unreachable_keeps_the_monitoring_reading(oci_cfg, fake, gg_rest):
    series(fake, replicat=[(60, 5.0)], extract=[(60, 1.0)])
    answer_status(gg_rest, "replicat", REPLICAT)
    answer_status(gg_rest, "extract", EXTRACT)
    rest = GoldenGateRest(gg_rest.url_for("/"), "ggmonitor", "wrong-password")
    reading = probe_for(oci_cfg, fake, rest=rest).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 5.0 and reading.detail["source"] == "monitoring"
    assert "HTTP 401" in reading.detail["rest"]["error"] and "wrong-password" not in json.dumps(reading.detail)


def test_contract_goldengate_rest_credentials_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("IDP_GOLDENGATE_USER", raising=False)
    assert GoldenGateRest.from_env() is None
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("IDP_GOLDENGATE_USER", "ggmonitor")
    monkeypatch.setenv("IDP_GOLDENGATE_PASSWORD_FILE", str(secret))
    rest = GoldenGateRest.from_env()
    assert (rest.user, rest.password, rest.url) == ("ggmonitor", "s3cret", None)
    monkeypatch.delenv("IDP_GOLDENGATE_PASSWORD_FILE")
    monkeypatch.delenv("IDP_GOLDENGATE_PASSWORD", raising=False)
    with pytest.raises(ProviderError, match="no IDP_GOLDENGATE_PASSWORD"):
        GoldenGateRest.from_env()


# -- settings from the policy ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_contract_goldengate_ids_come_from_the_policy_tool_settings(oci_cfg, fake, settings):
    from django.conf import settings as django_settings

    settings.IDP_POLICY_FILE = django_settings.BASE_DIR / "policy" / "policy.yaml"
    series(fake, replicat=[(60, 1.0)], extract=[(60, 1.0)])
    probe = GoldenGateProbe(monitoring(oci_cfg[0], fake.endpoint), clock=lambda: NOW)
    probe.lag(CELL_ENV, "primary", "secondary")
    call = fake.calls("POST")[0]
    assert call["query"] == {"compartmentId": "ocid1.compartment.oc1..demo-platform-dr"}
    assert 'deploymentId = "ocid1.goldengatedeployment.oc1.iad.demo-platform-dr"' in call["body"]["query"]


@pytest.mark.django_db
def test_contract_goldengate_missing_settings_are_a_clear_error(use_policy):
    from tests.helpers import BASE

    doc = json.loads(json.dumps(BASE))
    for tool in doc.get("replicationTools", {}).values():
        tool.pop("settings", None)
    use_policy(doc)
    probe = GoldenGateProbe(None, tool=next(iter(doc["replicationTools"])), clock=lambda: NOW)
    with pytest.raises(ProviderError, match="settings lacks deploymentId, compartmentId"):
        probe.lag(CELL_ENV, "primary", "secondary")


def test_contract_goldengate_names_match_the_replication_claim():
    """The probe queries the Replicat the rendered claim names (its label and spec.goldengate)."""
    from cells.rendering import render_replication_claim
    from tests.cells.test_rendering import replication_ctx

    claim = render_replication_claim({**replication_ctx("oci-goldengate"), "cell": "payments", "environment": "prod"})
    assert claim["spec"]["goldengate"]["replicatName"] == REPLICAT
    assert claim["metadata"]["labels"]["platform.idp-multicloud.io/replicat-name"] == REPLICAT
    assert claim["metadata"]["annotations"]["platform.idp-multicloud.io/lag-metric"] == "oci_goldengate ReplicatLag"
    assert len(REPLICAT) == 8 and REPLICAT.startswith("R") and EXTRACT == "E" + REPLICAT[1:]


def test_contract_goldengate_is_registered():
    from django.utils.module_loading import import_string

    from dr.providers import ADAPTERS

    assert import_string(ADAPTERS["probe"]["goldengate"]) is GoldenGateProbe
