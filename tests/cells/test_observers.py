"""Reading observed state the way the clusters report it: Crossplane conditions, Argo CD health and sync."""
import pytest

from cells.models import Application, ReplicationClaim
from cells.observers.base import application_state, conditions_state
from cells.observers.kubernetes import KubernetesStatus


def claim(*conditions):
    return {"status": {"conditions": [dict(zip(("type", "status", "reason", "message"), c)) for c in conditions]}}


def test_crossplane_claim_ready_when_ready_and_synced():
    obs = conditions_state(claim(("Synced", "True", "ReconcileSuccess", ""), ("Ready", "True", "Available", "")))
    assert obs.ready and not obs.failed


def test_crossplane_claim_failed_when_not_synced():
    obs = conditions_state(claim(("Synced", "False", "ReconcileError", "cannot create DB: quota"), ("Ready", "False", "Creating", "")))
    assert not obs.ready and "ReconcileError cannot create DB: quota" in obs.failed


def test_crossplane_claim_in_progress():
    obs = conditions_state(claim(("Synced", "True", "", ""), ("Ready", "False", "Creating", "")))
    assert not obs.ready and not obs.failed and obs.message == "Ready=False: Creating"


def test_missing_object_is_not_ready():
    assert conditions_state(None).message == "not found in the cluster"


def test_argocd_application_states():
    app = lambda h, s: {"status": {"health": {"status": h, "message": "crash loop"}, "sync": {"status": s}}}  # noqa: E731
    assert application_state(app("Healthy", "Synced"), cold=False).ready
    assert application_state(app("Degraded", "Synced"), cold=False).failed == "health Degraded: crash loop"
    assert application_state(app("Progressing", "OutOfSync"), cold=False).message == "health Progressing, sync OutOfSync"
    cold = application_state(app("Missing", "OutOfSync"), cold=True)
    assert cold.ready and "cold standby" in cold.message


class Reader:
    def __init__(self, obj):
        self.obj = obj

    def read(self, ref):
        return self.obj


@pytest.mark.django_db
def test_kubernetes_status_reads_replication_lag(dev, test_policy):
    from cells import services
    from cells.delivery import ObjectRef

    services.request_mysql(dev, cell="payments", environment="prod", tier="C0")
    repl = ReplicationClaim.objects.get()
    ref = ObjectRef("platform.idp-multicloud.io/v1alpha1", "ReplicationClaim", repl.name, "cell-payments-prod", "eks-use1-1", "aws")
    obj = {**claim(("Synced", "True", "", ""), ("Ready", "True", "", "")), }
    obj["status"].update(lagSeconds=4.5, lagMeasuredAt="2026-11-26T10:00:00Z")
    obs = KubernetesStatus(reader=Reader(obj)).observe(repl, [ref])
    assert obs.ready and obs.lag_seconds == 4.5 and obs.lag_measured_at.year == 2026


@pytest.mark.django_db
def test_kubernetes_status_treats_a_cold_secondary_as_standing_by(dev, test_policy):
    from cells import services
    from cells.delivery import ObjectRef

    services.request_app(dev, cell="payments", environment="prod", tier="C2", dr_profile="bronze",
                         image="ghcr.io/acme/p:1", public_host="p.example.com")
    app = Application.objects.get(side="secondary")
    ref = ObjectRef("argoproj.io/v1alpha1", "Application", app.name, "argocd", app.cluster, app.cloud)
    obs = KubernetesStatus(reader=Reader({"status": {"health": {"status": "Missing"}, "sync": {"status": "OutOfSync"}}})).observe(app, [ref])
    assert obs.ready and obs.detail["sync"] == "OutOfSync"
