"""Contract tests for cells.delivery.kubernetes.KubernetesTarget.

The real kubernetes client talks HTTP to a real local server (stdlib ThreadingHTTPServer on
127.0.0.1) that plays the Kubernetes API for custom objects: it checks method, path, query,
content type, bearer token and body, keeps objects by path, enforces a body
metadata.resourceVersion as a precondition (409 on mismatch), refuses an apply that changes a field
another field manager owns (409 with FieldManagerConflict causes, as the API server's fieldmanager
answers) and records every request.
No kube-apiserver can run here; only the pipeline test at the end uses the Django database.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kubernetes import client as k8s

from cells.delivery.base import DeliveryError, ObjectRef, TransientDeliveryError
from cells.delivery.kubernetes import KubernetesTarget
from cells import platform
from cells.rendering import render_application, render_mysql_claim

LABEL = "platform.idp-multicloud.io/"
TOKEN = "s3cr3t-test-token-9f8e7d6c5b4a"
CONTEXTS = {"oci": "oci-mgmt", "aws": "aws-mgmt"}

CLAIM_PATH = ("/apis/platform.idp-multicloud.io/v1alpha1/namespaces/cell-payments-prod/"
              "cellmysqlclaims/payments-prod-mysql-primary")
APP_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/payments-prod-secondary"
XRD_PATH = "/apis/apiextensions.crossplane.io/v2/compositeresourcedefinitions/cellmysqlclaims.platform.idp-multicloud.io"

_ROUTE = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/(?:namespaces/(?P<ns>[^/]+)/)?"
                    r"(?P<plural>[^/]+)/(?P<name>[^/]+)$")


# --------------------------------------------------------------- the fake API server


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: dict | None


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _apply_conflict(conflicts: list[tuple[str, str]]) -> dict:
    """The Status of an SSA conflict, shaped as k8s.io/apiserver fieldmanager NewConflictError builds it
    (apierrors.NewApplyConflict): reason Conflict, one metav1.StatusCause of type FieldManagerConflict per
    field, and the message of getConflictMessage. `conflicts` is (printed manager, field path)."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {manager}", "field": field}
              for manager, field in conflicts]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: conflict with {conflicts[0][0]}: {conflicts[0][1]}"
    else:
        lines = []
        for manager in sorted({m for m, _ in conflicts}):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {field}" for m, field in conflicts if m == manager]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return {**_status(409, "Conflict", message), "details": {"causes": causes}}


def _get_path(obj: dict, field: str):
    """The value at a fieldpath like .spec.size (None when absent)."""
    for key in field.strip(".").split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _merge(live: dict, applied: dict) -> dict:
    """Rough SSA merge: maps merge field by field (other managers' fields stay), the rest is replaced."""
    out = copy.deepcopy(live)
    for key, value in applied.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKube:
    """A Kubernetes API server for custom objects, on 127.0.0.1, for one management cluster."""

    def __init__(self, token: str = TOKEN, field_manager: str = "idp-multicloud"):
        self.token = token
        self.field_manager = field_manager
        self.objects: dict[str, dict] = {}
        self.requests: list[Request] = []
        self.failures: list[tuple[str, int, str, str]] = []  # (method, code, reason, message), used once
        self.after_get = None  # hook(path): simulate another writer between our GET and PATCH
        self.owners: dict[str, dict[str, str]] = {}  # path -> {field: manager} owned by other field managers
        self._rv = 100
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

            def do_DELETE(self):
                fake._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    # helpers for tests
    def next_rv(self) -> str:
        with self._lock:
            self._rv += 1
            return str(self._rv)

    def seed(self, path: str, obj: dict, status: dict | None = None) -> dict:
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = self.next_rv()
        if status is not None:
            stored["status"] = status
        self.objects[path] = stored
        return stored

    def edit_by(self, path: str, field: str, value, manager: str, operation: str = "Update") -> None:
        """Another client changes `field` of the live object and becomes its field manager. The manager is
        recorded as the API server prints it (printManager): an Update names the manager and apiVersion."""
        live = self.objects[path]
        *parents, leaf = field.strip(".").split(".")
        target = live
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
        live["metadata"]["resourceVersion"] = self.next_rv()
        printed = f'"{manager}" using {live["apiVersion"]}' if operation == "Update" else f'"{manager}"'
        self.owners.setdefault(path, {})[field] = printed

    def fail_next(self, method: str, code: int, reason: str, message: str) -> None:
        self.failures.append((method, code, reason, message))

    def calls(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if method is None or r.method == method]

    # HTTP
    def _send(self, h: BaseHTTPRequestHandler, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        try:
            body = yaml.safe_load(raw) if raw else None  # JSON is YAML: accept either
        except yaml.YAMLError:
            body = None
        headers = {k.lower(): v for k, v in h.headers.items()}
        self.requests.append(Request(method, split.path, query, headers, body))

        if headers.get("authorization") != f"Bearer {self.token}":
            return self._send(h, 401, _status(401, "Unauthorized", "Unauthorized"))
        for i, (m, code, reason, message) in enumerate(self.failures):
            if m == method:
                del self.failures[i]
                return self._send(h, code, _status(code, reason, message))
        route = _ROUTE.match(split.path)
        if not route:
            return self._send(h, 404, _status(404, "NotFound", "the server could not find the requested resource"))
        path, r = split.path, route.groupdict()
        what = f'{r["plural"]}.{r["group"]} "{r["name"]}"'
        live = self.objects.get(path)

        if method == "GET":
            if live is None:
                return self._send(h, 404, _status(404, "NotFound", f"{what} not found"))
            answer = copy.deepcopy(live)
            if self.after_get:  # before answering: the client's next request must not overtake the other writer
                self.after_get(path)
            self._send(h, 200, answer)
            return None
        if method == "DELETE":
            if self.objects.pop(path, None) is None:
                return self._send(h, 404, _status(404, "NotFound", f"{what} not found"))
            return self._send(h, 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        # PATCH: only server-side apply, by our field manager, never forced
        if headers.get("content-type") != "application/apply-patch+yaml":
            return self._send(h, 415, _status(415, "UnsupportedMediaType", "expected application/apply-patch+yaml"))
        if query.get("fieldManager") != self.field_manager or query.get("force") != "false":
            return self._send(h, 400, _status(400, "BadRequest", f"bad apply query {query}"))
        meta = (body or {}).get("metadata") or {}
        if (not isinstance(body, dict) or body.get("apiVersion") != f'{r["group"]}/{r["version"]}'
                or meta.get("name") != r["name"] or meta.get("namespace") != r["ns"]):
            return self._send(h, 400, _status(400, "BadRequest", "body does not match the request path"))
        applied = copy.deepcopy(body)
        precondition = applied["metadata"].pop("resourceVersion", None)
        if precondition is not None and (live is None or live["metadata"]["resourceVersion"] != precondition):
            # apierrors.NewConflict: reason Conflict, details name/group/kind, no causes
            return self._send(h, 409, {**_status(409, "Conflict", f"Operation cannot be fulfilled on {what}: the "
                                                 "object has been modified; please apply your changes to the "
                                                 "latest version and try again"),
                                       "details": {"name": r["name"], "group": r["group"], "kind": r["plural"]}})
        # force=false: setting a field another manager owns to a different value is a conflict
        conflicts = [(manager, field) for field, manager in self.owners.get(path, {}).items()
                     if _get_path(applied, field) is not None
                     and _get_path(applied, field) != _get_path(live or {}, field)]
        if conflicts:
            return self._send(h, 409, _apply_conflict(conflicts))
        base = {k: v for k, v in (live or {}).items() if k != "status"}  # apply never writes status
        stored = _merge(base, applied)
        if live is not None and "status" in live:
            stored["status"] = live["status"]
        stored["metadata"]["resourceVersion"] = self.next_rv()
        self.objects[path] = stored
        return self._send(h, 201 if live is None else 200, stored)


def _api_client(url: str, token: str = TOKEN) -> k8s.ApiClient:
    cfg = k8s.Configuration(host=url, api_key={"BearerToken": token}, api_key_prefix={"BearerToken": "Bearer"})
    cfg.retries = 0  # fail fast on connection errors
    return k8s.ApiClient(cfg)


@pytest.fixture
def servers():
    """Two management clusters: oci and aws."""
    fakes = {"oci": FakeKube(), "aws": FakeKube()}
    for fake in fakes.values():
        fake.thread.start()
    clients = {cloud: _api_client(fake.url) for cloud, fake in fakes.items()}
    yield fakes, clients
    for api_client in clients.values():
        api_client.close()
    for fake in fakes.values():
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


@pytest.fixture
def target(servers):
    return KubernetesTarget(CONTEXTS, api_clients=servers[1])


@pytest.fixture
def oci(servers):
    return servers[0]["oci"]


@pytest.fixture
def aws(servers):
    return servers[0]["aws"]


# --------------------------------------------------------------------- objects


def claim(revision: int = 3, **over) -> dict:
    ctx = {
        "name": "payments-prod-mysql-primary", "namespace": "cell-payments-prod", "cell": "payments",
        "environment": "prod", "team": "payments-team", "side": "primary", "tier": "C0", "drProfile": "gold",
        "size": "small", "storageGB": 50, "ha": True, "cloud": "oci", "region": "us-ashburn-1",
        "cluster": "oke-iad-1", "revision": revision, "decisionId": 17, "policyVersion": "2025.1",
    }
    return render_mysql_claim({**ctx, **over})


def application(revision: int = 3, **over) -> dict:
    ctx = {
        "name": "payments-prod-secondary", "namespace": "payments", "cell": "payments", "environment": "prod",
        "team": "payments-team", "side": "secondary", "image": "ghcr.io/acme/payments:1.0",
        "publicHost": "payments.prod.company.com", "trafficMode": "active-passive", "computeMode": "warm",
        "replicas": 2, "cloud": "aws", "region": "us-east-1", "cluster": "eks-use1-1", "revision": revision,
        "repoURL": "https://git.example.com/acme/deploy.git", "path": "charts/payments", "targetRevision": "main",
    }
    return render_application({**ctx, **over})


def platform_xrd() -> dict:
    """A cluster-scoped object: the platform package's XRD, as delivered to the OCI management cluster."""
    return platform.for_cluster("oke-iad-1", "oci")[0]


# ----------------------------------------------------------------------- apply


def test_contract_first_apply_sends_one_server_side_apply_patch(target, oci, aws):
    obj = claim()
    result = target.apply([obj], revision=3, message="create payments")

    assert result.changed is True
    assert "applied" in result.detail and "payments-prod-mysql-primary" in result.detail
    get, patch = oci.requests
    assert (get.method, get.path) == ("GET", CLAIM_PATH)
    assert (patch.method, patch.path) == ("PATCH", CLAIM_PATH)
    assert patch.headers["content-type"] == "application/apply-patch+yaml"
    assert patch.query == {"fieldManager": "idp-multicloud", "force": "false"}
    assert patch.headers["authorization"] == f"Bearer {TOKEN}"
    assert patch.body == obj  # the rendered object as is: no resourceVersion on create
    assert oci.objects[CLAIM_PATH]["spec"] == obj["spec"]
    assert aws.requests == []  # an oci object never reaches the aws cluster


def test_contract_same_revision_again_sends_no_patch(target, oci):
    target.apply([claim()], revision=3, message="create")
    result = target.apply([claim()], revision=3, message="again")

    assert result.changed is False
    assert "unchanged" in result.detail
    assert [r.method for r in oci.requests] == ["GET", "PATCH", "GET"]


def test_contract_fields_added_by_controllers_do_not_force_a_reapply(target, oci):
    target.apply([claim()], revision=3, message="create")
    live = oci.objects[CLAIM_PATH]
    live["spec"]["resourceRef"] = {"apiVersion": "platform.idp-multicloud.io/v1alpha1", "kind": "XCellMySQL",
                                   "name": "payments-prod-mysql-primary-x7k2p"}  # Crossplane writes this
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied"] = "{}"
    live["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}

    assert target.apply([claim()], revision=3, message="again").changed is False
    assert not oci.calls("PATCH")[1:]


def test_contract_drift_at_the_same_revision_is_reapplied(target, oci):
    target.apply([claim()], revision=3, message="create")
    oci.objects[CLAIM_PATH]["spec"]["size"] = "large"  # someone edited the live object

    assert target.apply([claim()], revision=3, message="again").changed is True
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "small"


def test_contract_newer_revision_applies_with_the_live_resource_version(target, oci):
    target.apply([claim(3)], revision=3, message="create")
    live_rv = oci.objects[CLAIM_PATH]["metadata"]["resourceVersion"]
    newer = claim(4, size="medium")
    before = copy.deepcopy(newer)

    result = target.apply([newer], revision=4, message="resize")

    assert result.changed is True
    patch = oci.calls("PATCH")[-1]
    assert patch.path == CLAIM_PATH
    assert patch.body["metadata"]["resourceVersion"] == live_rv  # optimistic-concurrency precondition
    assert patch.body["spec"]["size"] == "medium"
    assert newer == before  # the caller's object is not mutated
    stored = oci.objects[CLAIM_PATH]
    assert stored["metadata"]["annotations"][LABEL + "revision"] == "4"
    assert stored["metadata"]["resourceVersion"] != live_rv


def test_contract_older_revision_never_overwrites_a_newer_live_object(target, oci):
    target.apply([claim(5, size="large")], revision=5, message="newer first")
    result = target.apply([claim(4, size="small")], revision=4, message="stale writer")

    assert result.changed is False
    assert "skipped" in result.detail and "5 > 4" in result.detail
    assert len(oci.calls("PATCH")) == 1
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "large"


def test_contract_concurrent_writer_between_get_and_apply_gives_a_transient_409(target, oci):
    oci.seed(CLAIM_PATH, claim(3))

    def other_writer(path):  # another controller updates the object right after our GET
        oci.objects[path]["metadata"]["resourceVersion"] = oci.next_rv()
        oci.after_get = None

    oci.after_get = other_writer
    with pytest.raises(TransientDeliveryError) as err:
        target.apply([claim(4, size="medium")], revision=4, message="resize")

    assert "409" in str(err.value) and "the object has been modified" in str(err.value)
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "small"  # nothing was overwritten


def test_contract_a_field_another_manager_owns_fails_permanently_on_the_first_attempt(target, oci):
    oci.seed(CLAIM_PATH, claim(3))
    oci.edit_by(CLAIM_PATH, ".spec.size", "large", manager="kubectl-edit")  # someone ran kubectl edit

    with pytest.raises(DeliveryError) as err:
        target.apply([claim(4, size="medium")], revision=4, message="resize")

    assert not isinstance(err.value, TransientDeliveryError)  # no retry can take the field back
    text = str(err.value)
    assert "HTTP 409" in text and "field manager conflict" in text
    assert '"kubectl-edit" using platform.idp-multicloud.io/v1alpha1' in text and ".spec.size" in text
    assert "CellMySQLClaim cell-payments-prod/payments-prod-mysql-primary" in text and "'oci-mgmt'" in text
    assert "must release" in text and "--force-conflicts" in text  # how to resolve
    assert 'Apply failed with 1 conflict: conflict with "kubectl-edit"' in text  # the server's own words
    patch = oci.calls("PATCH")[-1]
    assert len(oci.calls("PATCH")) == 1 and patch.query["force"] == "false"  # never forced
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "large"  # the other manager's value stands
    assert TOKEN not in text


def test_contract_conflicts_with_several_managers_name_each_manager_and_field(target, oci):
    oci.seed(CLAIM_PATH, claim(3))
    oci.edit_by(CLAIM_PATH, ".spec.size", "large", manager="kubectl-edit")
    oci.edit_by(CLAIM_PATH, ".spec.storageGB", 60, manager="kubectl-client-side-apply")

    with pytest.raises(DeliveryError) as err:
        target.apply([claim(4, size="medium", storageGB=80)], revision=4, message="resize")

    text = str(err.value)
    assert not isinstance(err.value, TransientDeliveryError)
    assert '.spec.size owned by "kubectl-edit" using platform.idp-multicloud.io/v1alpha1' in text
    assert '.spec.storageGB owned by "kubectl-client-side-apply" using platform.idp-multicloud.io/v1alpha1' in text
    assert "Apply failed with 2 conflicts" in text


def test_contract_a_resource_version_conflict_stays_transient_even_with_other_managers(target, oci):
    oci.seed(CLAIM_PATH, claim(3))
    oci.edit_by(CLAIM_PATH, ".spec.ha", True, manager="kubectl-edit")  # owned, but we set the same value

    def other_writer(path):  # the object changes between our GET and our apply
        oci.objects[path]["metadata"]["resourceVersion"] = oci.next_rv()
        oci.after_get = None

    oci.after_get = other_writer
    with pytest.raises(TransientDeliveryError) as err:
        target.apply([claim(4, size="medium")], revision=4, message="resize")
    assert "the object has been modified" in str(err.value) and "field manager" not in str(err.value)

    assert target.apply([claim(4, size="medium")], revision=4, message="retry").changed is True  # the retry wins
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "medium"


@pytest.mark.django_db
def test_a_field_manager_conflict_fails_the_delivery_once_with_the_message_visible(
        servers, dev, test_policy, monkeypatch):
    from cells import pipeline, services
    from cells.models import ClaimStatus, Delivery, MySQLClaim

    fakes, clients = servers
    oci = fakes["oci"]
    monkeypatch.setattr(pipeline, "get_target", lambda: KubernetesTarget(CONTEXTS, api_clients=clients))
    oci.seed(CLAIM_PATH, claim(1))
    oci.edit_by(CLAIM_PATH, ".spec.storageGB", 75, manager="kubectl-edit")
    services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small",
                           storage_gb=50, ha=True)
    d = Delivery.objects.get()

    assert pipeline.deliver(d.pk).startswith("failed: ")  # no RetryLater: not retried

    d.refresh_from_db()
    assert (d.state, d.attempts, d.next_attempt_at) == (Delivery.State.FAILED, 1, None)
    assert '.spec.storageGB owned by "kubectl-edit"' in d.last_error and "--force-conflicts" in d.last_error
    primary = MySQLClaim.objects.get(side="primary")
    assert primary.status == ClaimStatus.FAILED and "kubectl-edit" in primary.status_message
    assert "retrying" not in primary.status_message
    assert [r.path for r in oci.calls("PATCH")].count(CLAIM_PATH) == 1  # one attempt at the claim, no retry
    assert pipeline.deliver(d.pk).startswith("not taken")  # a failed row is never picked up again


def test_contract_each_cloud_goes_to_its_own_management_cluster(target, oci, aws):
    result = target.apply([claim(), application()], revision=3, message="both sides")

    assert result.changed is True
    assert [(r.method, r.path) for r in oci.requests] == [("GET", CLAIM_PATH), ("PATCH", CLAIM_PATH)]
    assert [(r.method, r.path) for r in aws.requests] == [("GET", APP_PATH), ("PATCH", APP_PATH)]
    assert aws.objects[APP_PATH]["spec"]["destination"]["name"] == "eks-use1-1"


def test_contract_cluster_scoped_platform_objects_use_the_cluster_path(target, oci):
    xrd = platform_xrd()
    assert target.apply([xrd], revision=platform.PACKAGE_REVISION, message="platform").changed is True

    assert [(r.method, r.path) for r in oci.requests] == [("GET", XRD_PATH), ("PATCH", XRD_PATH)]
    assert oci.objects[XRD_PATH]["spec"]["scope"] == "Namespaced"


def test_contract_unknown_cloud_is_a_permanent_error(target, oci, aws):
    with pytest.raises(DeliveryError) as err:
        target.apply([claim(cloud="gcp")], revision=3, message="gcp")

    assert not isinstance(err.value, TransientDeliveryError)
    assert "'gcp'" in str(err.value) and "['aws', 'oci']" in str(err.value)
    assert oci.requests == [] and aws.requests == []


def test_contract_object_whose_revision_is_above_the_apply_is_refused(target, oci):
    with pytest.raises(DeliveryError):
        target.apply([claim(5)], revision=4, message="mismatch")
    assert oci.requests == []


def test_contract_each_object_is_guarded_by_its_own_revision(target, oci, aws):
    oci.seed(CLAIM_PATH, claim(3))
    # One delivery carries a claim at revision 2 (stale: the cluster holds 3) and an application at 4.
    result = target.apply([claim(2, size="medium"), application(4)], revision=4, message="mixed")
    assert "skipped" in result.detail and result.changed is True
    assert oci.objects[CLAIM_PATH]["spec"]["size"] == "small"
    assert [r.method for r in aws.requests] == ["GET", "PATCH"]


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("code,reason,message", [
    (409, "Conflict", 'Operation cannot be fulfilled on cellmysqlclaims.platform.idp-multicloud.io '
                      '"payments-prod-mysql-primary": the object has been modified; please apply your changes to '
                      'the latest version and try again'),
    (429, "TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    (503, "ServiceUnavailable", "the server is currently unable to handle the request"),
])
def test_contract_conflict_throttling_and_5xx_are_transient(target, oci, code, reason, message):
    oci.fail_next("PATCH", code, reason, message)
    with pytest.raises(TransientDeliveryError) as err:
        target.apply([claim()], revision=3, message="apply")

    text = str(err.value)
    assert f"HTTP {code}" in text and message in text
    assert "CellMySQLClaim cell-payments-prod/payments-prod-mysql-primary" in text and "'oci-mgmt'" in text


@pytest.mark.parametrize("code,reason,message", [
    (403, "Forbidden", 'cellmysqlclaims.platform.idp-multicloud.io "payments-prod-mysql-primary" is forbidden: '
                       'User "system:serviceaccount:idp:controller" cannot patch resource "cellmysqlclaims"'),
    (422, "Invalid", 'CellMySQLClaim.platform.idp-multicloud.io "payments-prod-mysql-primary" is invalid: '
                     'spec.size: Unsupported value: "huge"'),
])
def test_contract_forbidden_and_invalid_are_permanent_with_the_server_message_and_no_token(
        target, oci, code, reason, message):
    oci.fail_next("PATCH", code, reason, message)
    with pytest.raises(DeliveryError) as err:
        target.apply([claim()], revision=3, message="apply")

    text = str(err.value)
    assert not isinstance(err.value, TransientDeliveryError)
    assert f"HTTP {code}" in text and message in text
    assert "CellMySQLClaim cell-payments-prod/payments-prod-mysql-primary" in text
    assert "'oci-mgmt'" in text and "oke-iad-1" in text
    assert oci.calls("PATCH")[0].headers["authorization"] == f"Bearer {TOKEN}"  # the token was sent...
    assert TOKEN not in text and TOKEN not in repr(err.value)  # ...and never echoed


def test_contract_an_echoed_token_is_redacted(target, oci):
    oci.fail_next("GET", 401, "Unauthorized", f"bad credentials: Bearer {TOKEN}")
    with pytest.raises(DeliveryError) as err:
        target.read(ObjectRef.of(claim()))

    assert "HTTP 401" in str(err.value) and TOKEN not in str(err.value)


def test_contract_connection_refused_is_transient(servers):
    fake = FakeKube()  # bound but never served: take its port, then close it
    url = fake.url
    fake.server.server_close()
    api_client = _api_client(url)
    try:
        target = KubernetesTarget(CONTEXTS, api_clients={"oci": api_client})
        with pytest.raises(TransientDeliveryError) as err:
            target.apply([claim()], revision=3, message="apply")
    finally:
        api_client.close()
    assert "'oci-mgmt'" in str(err.value) and TOKEN not in str(err.value)


# ----------------------------------------------------------------- delete/read


def test_contract_delete_removes_and_tolerates_already_absent(target, oci, aws):
    target.apply([claim(), application()], revision=3, message="create")
    refs = [ObjectRef.of(claim()), ObjectRef.of(application())]

    result = target.delete(refs, message="decommission")
    assert result.changed is True and "deleted" in result.detail
    assert CLAIM_PATH not in oci.objects and APP_PATH not in aws.objects
    assert ("DELETE", CLAIM_PATH) in [(r.method, r.path) for r in oci.requests]

    again = target.delete(refs, message="decommission again")
    assert again.changed is False and "already absent" in again.detail


def test_contract_read_returns_the_live_object_with_its_status(target, oci, aws):
    status = {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "True"}]}
    oci.seed(CLAIM_PATH, claim(), status=status)

    live = target.read(ObjectRef.of(claim()))
    assert live["status"] == status
    assert live["spec"] == claim()["spec"]
    assert oci.requests[-1].method == "GET" and oci.requests[-1].path == CLAIM_PATH
    assert target.read(ObjectRef.of(application())) is None  # 404 -> None
    assert aws.requests[-1].path == APP_PATH


def test_contract_from_settings_reads_contexts_and_kubeconfig(settings):
    settings.IDP_KUBE_CONTEXTS = {"oci": "oci-mgmt"}
    settings.IDP_KUBECONFIG = "/nonexistent/kubeconfig"
    target = KubernetesTarget.from_settings()
    assert target.contexts == {"oci": "oci-mgmt"} and target.kubeconfig == "/nonexistent/kubeconfig"

    # the client is built lazily; a missing kubeconfig is a permanent error naming the context
    with pytest.raises(DeliveryError) as err:
        target.read(ObjectRef.of(claim()))
    assert not isinstance(err.value, TransientDeliveryError) and "'oci-mgmt'" in str(err.value)
