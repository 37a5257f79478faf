"""The simulator judges what was delivered by Argo CD's and Crossplane's rules: it fails the backwards activation
that the old rendering delivered, needs the platform package, and renders the exact objects each run delivers."""
import pytest
import yaml

from cells import platform, rendering, services
from cells.delivery import get_target
from cells.models import Application, MySQLClaim
from dr.models import FailoverRun
from tests.cells.test_rendering import app_ctx
from tests.dr.helpers import drive, ready_cell, settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


def delivered_app(settings, side):
    app = Application.objects.get(side=side)
    (ref,) = app.delivered_refs
    path = settings.IDP_GITOPS_REPO / f"clusters/{ref['cluster']}/argocd/application-{ref['name']}.yaml"
    return yaml.safe_load(path.read_text())


def shape(app: dict) -> tuple[str, str, bool]:
    params = {p["name"]: p["value"] for p in app["spec"]["source"]["helm"]["parameters"]}
    return (app["metadata"]["labels"]["platform.idp-multicloud.io/role"], params["replicaCount"],
            "automated" in app["spec"]["syncPolicy"])


def test_the_backwards_activation_fails_under_the_simulator(dev, ops, test_policy, monkeypatch):
    ready_cell(dev, tier="C1", profile="silver")  # pilot secondary
    real = rendering.render_application

    def side_based(ctx, manifests_dir=None):  # the old rule: a secondary is never "active"
        obj = real(ctx, manifests_dir)
        if ctx["side"] == "secondary":
            obj["spec"]["syncPolicy"].pop("automated", None)
            for p in obj["spec"]["source"]["helm"]["parameters"]:
                if p["name"] == "replicaCount":
                    p["value"] = "0"
        return obj

    monkeypatch.setattr(rendering, "render_application", side_based)
    run = services_start(ops, "failover")
    with pytest.raises(AssertionError, match="still running"):
        drive(run, timeout=3)
    step = run.steps.get(name="activate_compute")
    assert step.state != "succeeded"
    # Argo CD calls it Synced and Healthy (0 of 0 pods), but the new writer runs nothing: the step never passes.
    observed = step.output["health"]["observed"]
    assert (observed["declaredReplicas"], observed["runningReplicas"], observed["automated"]) == (0, 0, False)
    assert "needs 2" in step.output["health"]["message"]


def services_start(ops, kind, **flags) -> FailoverRun:
    from dr import services as dr_services

    return dr_services.start_run(ops, cell="payments", environment="prod", type=kind, **flags)


def test_failover_switchover_and_failback_deliver_the_writer_and_standby_shapes(dev, ops, test_policy, settings):
    ready_cell(dev, tier="C1", profile="silver")
    assert (shape(delivered_app(settings, "primary")), shape(delivered_app(settings, "secondary"))) == (
        ("writer", "2", True), ("standby", "0", True))
    run = drive(services_start(ops, "failover"))
    assert run.state == "succeeded", run.error
    # The new writer runs its tier's replicas with automated sync; the old one is a pilot standby.
    assert shape(delivered_app(settings, "secondary")) == ("writer", "2", True)
    assert shape(delivered_app(settings, "primary")) == ("standby", "0", True)
    assert Application.objects.get(side="secondary").observed["runningReplicas"] == 2
    run = drive(services_start(ops, "failover", failback=True, acknowledge_cooldown=True, reason="primary back"))
    assert run.state == "succeeded", run.error
    assert shape(delivered_app(settings, "primary")) == ("writer", "2", True)
    assert shape(delivered_app(settings, "secondary")) == ("standby", "0", True)
    run = drive(services_start(ops, "switchover", acknowledge_cooldown=True, reason="planned move"))
    assert run.state == "succeeded", run.error
    assert shape(delivered_app(settings, "secondary")) == ("writer", "2", True)
    assert shape(delivered_app(settings, "primary")) == ("standby", "0", True)


def test_a_cold_standby_is_scaled_to_zero_before_sync_turns_off(dev, ops, test_policy, settings):
    ready_cell(dev, tier="C2", profile="bronze")
    run = drive(services_start(ops, "failover"))
    assert run.state == "succeeded", run.error
    assert shape(delivered_app(settings, "primary")) == ("standby", "0", False)
    assert run.steps.get(name="standby_old_compute").output.get("scaledToZeroFirst") is True
    assert Application.objects.get(side="primary").observed["runningReplicas"] == 0


def test_claims_wait_for_the_platform_package_and_its_composition(dev, test_policy, settings):
    settings.IDP_PLATFORM_PACKAGE = "external"
    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    settle()
    claim = MySQLClaim.objects.get(side="primary")
    assert claim.status == "delivered" and "no CompositeResourceDefinition serves" in claim.status_message
    from policy.active import active_policy

    platform.install(get_target(), active_policy())
    settle()
    claim.refresh_from_db()
    assert claim.status == "ready", claim.status_message
    assert claim.observed["composition"] == "cellmysql-oci"


def test_a_claim_no_composition_matches_is_reported_as_crossplane_does(dev, test_policy, settings):
    settings.IDP_PLATFORM_PACKAGE = "external"
    target = get_target()
    from policy.active import active_policy

    platform.install(target, active_policy())
    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    claim = MySQLClaim.objects.get(side="primary")
    comp = settings.IDP_GITOPS_REPO / f"clusters/{claim.cluster}/_cluster/composition-cellmysql-{claim.cloud}.yaml"
    target.git("rm", "-q", "--", str(comp.relative_to(settings.IDP_GITOPS_REPO)))
    target.git("commit", "-q", "-m", "remove a composition")
    settle()
    claim.refresh_from_db()
    assert claim.status == "failed" and "cannot select Composition" in claim.status_message


def test_argo_cds_rules_sync_only_automated_apps_or_on_request():
    from cells.simulator import argocd

    app = rendering.render_application(app_ctx(computeMode="cold", replicas=0))
    state: dict = {}
    status = argocd.reconcile(app, state, now=0.0, delay=5)
    assert (status["sync"]["status"], status["health"]["status"]) == ("OutOfSync", "Missing")
    state["syncRequested"] = True  # argocd app sync
    status = argocd.reconcile(app, state, now=1.0, delay=5)
    assert (status["sync"]["status"], status["health"]["status"]) == ("Synced", "Healthy")  # 0 of 0 pods
    writer = rendering.render_application(app_ctx(computeMode="active", replicas=3))
    status = argocd.reconcile(writer, state, now=2.0, delay=5)
    assert (status["sync"]["status"], status["health"]["status"], status["simulator"]["runningReplicas"]) == (
        "Synced", "Progressing", 0)
    status = argocd.reconcile(writer, state, now=7.0, delay=5)
    assert (status["health"]["status"], status["simulator"]["runningReplicas"]) == ("Healthy", 3)


def test_the_sync_command_syncs_a_cold_application_once(dev, test_policy, settings):
    from django.core.management import call_command

    from cells import pipeline

    ready_cell(dev, tier="C2", profile="bronze")
    cold = Application.objects.get(side="secondary")
    assert (cold.observed["sync"], cold.observed["health"]) == ("OutOfSync", "Missing")
    call_command("sandbox", "sync", cold.name)
    pipeline.observe_claim(cold)
    cold.refresh_from_db()
    assert (cold.observed["sync"], cold.observed["health"], cold.status) == ("Synced", "Healthy", "ready")


def test_the_package_goes_to_a_cluster_once_per_revision(dev, test_policy, settings):
    from tests.helpers import settle as deliver_all

    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    deliver_all()
    target = get_target()
    claim = MySQLClaim.objects.get(side="primary")
    assert platform.installed(target, claim.cluster, claim.cloud)
    commits = target.git("rev-list", "--count", "HEAD").stdout.strip()
    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver", storage_gb=500)
    deliver_all()
    log = target.git("log", "--name-only", "--format=", f"HEAD~{int(target.git('rev-list', '--count', 'HEAD').stdout) - int(commits)}..HEAD").stdout
    assert "_cluster/" not in log  # the resize delivered the claims only
