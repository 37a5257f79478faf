"""The provisioning pipeline in-process, against real git repositories: outbox, delivery, revisions, deletion, status."""
import subprocess

import pytest
import yaml

from tests.helpers import settle

from cells import pipeline, services
from cells.models import Application, ClaimStatus, Delivery, MySQLClaim, ReplicationClaim, SandboxObject

pytestmark = pytest.mark.django_db

MYSQL = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def commits(repo) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def cell_files(repo) -> list[str]:
    """The files of cell environments (the platform package under _cluster/ is shared by every cell)."""
    return sorted(f for f in git(repo, "ls-files").split() if "/_cluster/" not in f)


def run_all_pending():
    for d in Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id"):
        pipeline.deliver(d.pk)


def test_a_request_writes_an_outbox_row_in_its_transaction(dev, test_policy):
    outcome = services.request_mysql(dev, **MYSQL)
    d = Delivery.objects.get()
    assert (d.state, d.action, d.cell_env, d.actor) == ("pending", "apply", outcome.cell_env, dev)
    assert [(i["type"], i["revision"]) for i in d.items] == [("mysqlclaim", 1), ("mysqlclaim", 1), ("replicationclaim", 1)]


def test_a_rejected_request_writes_no_outbox_row(dev, test_policy):
    with pytest.raises(Exception):
        services.request_mysql(dev, **{**MYSQL, "ha": False})
    assert Delivery.objects.count() == 0


def test_delivery_commits_one_file_per_object_at_predictable_paths(dev, test_policy, settings):
    services.request_mysql(dev, **MYSQL)
    d = Delivery.objects.get()
    assert pipeline.deliver(d.pk).startswith("commit ")
    repo = settings.IDP_GITOPS_REPO
    files = cell_files(repo)
    assert files == [
        "clusters/eks-use1-1/cell-payments-prod/cellmysqlclaim-payments-prod-mysql-secondary.yaml",
        "clusters/eks-use1-1/cell-payments-prod/replicationclaim-payments-prod-replication.yaml",
        "clusters/oke-iad-1/cell-payments-prod/cellmysqlclaim-payments-prod-mysql-primary.yaml",
    ]
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("payments/prod: apply 3 claim(s) — MySQL requested")
    assert "Requested-by: dev" in message and f"Delivery: {d.pk}" in message
    primary = yaml.safe_load((repo / files[2]).read_text())
    assert primary["spec"]["storageGB"] == 50
    assert primary["metadata"]["annotations"]["platform.idp-multicloud.io/revision"] == "1"
    claim = MySQLClaim.objects.get(side="primary")
    assert (claim.status, claim.revision, claim.delivered_revision) == ("delivered", 1, 1)
    assert Delivery.objects.get().state == "done"


def test_delivering_twice_changes_nothing(dev, test_policy, settings):
    services.request_mysql(dev, **MYSQL)
    d = Delivery.objects.get()
    pipeline.deliver(d.pk)
    assert pipeline.deliver(d.pk).startswith("not taken")
    Delivery.objects.filter(pk=d.pk).update(state="pending")  # as if the message came twice
    assert pipeline.deliver(d.pk).startswith("nothing to deliver")
    assert len(commits(settings.IDP_GITOPS_REPO)) == 1  # no empty commit


def test_the_newer_revision_wins_when_deliveries_run_out_of_order(dev, test_policy, settings):
    services.request_mysql(dev, **MYSQL)
    services.request_mysql(dev, **{**MYSQL, "storage_gb": 60})
    services.request_mysql(dev, **{**MYSQL, "storage_gb": 70})
    first, second, third = Delivery.objects.order_by("id")
    pipeline.deliver(third.pk)   # delivers the current rows: revision 3 of the MySQL claims
    pipeline.deliver(second.pk)  # older: nothing left to deliver
    pipeline.deliver(first.pk)   # the replication claim, untouched by the updates
    claim = MySQLClaim.objects.get(side="primary")
    assert (claim.revision, claim.delivered_revision) == (3, 3)
    path = settings.IDP_GITOPS_REPO / "clusters/oke-iad-1/cell-payments-prod/cellmysqlclaim-payments-prod-mysql-primary.yaml"
    assert yaml.safe_load(path.read_text())["spec"]["storageGB"] == 70
    assert ReplicationClaim.objects.get().delivered_revision == 1


def test_the_target_never_overwrites_a_newer_revision(dev, test_policy, settings):
    from cells.delivery import get_target
    from cells.manifests import render_mysql

    outcome = services.request_mysql(dev, **MYSQL)
    services.request_mysql(dev, **{**MYSQL, "storage_gb": 60})
    run_all_pending()
    stale = MySQLClaim.objects.get(side="primary")
    stale.revision, stale.storage_gb = 1, 50  # a worker that rendered before the update
    result = get_target().apply(render_mysql(outcome.cell_env, stale), revision=1, message="stale")
    assert result.changed is False and "holds revision 2 > 1" in result.detail


def test_an_unreachable_remote_fails_visibly_and_is_retried(dev, test_policy, settings, tmp_path):
    remote = tmp_path / "remote.git"
    settings.IDP_GITOPS_REMOTE = str(remote)  # does not exist yet
    services.request_mysql(dev, **MYSQL)
    d = Delivery.objects.get()
    with pytest.raises(pipeline.RetryLater) as retry:
        pipeline.deliver(d.pk)
    assert retry.value.countdown == 2
    d.refresh_from_db()
    assert (d.state, d.attempts) == ("pending", 1) and "git clone failed" in d.last_error
    claim = MySQLClaim.objects.get(side="primary")
    assert claim.status == ClaimStatus.FAILED and "retrying in 2s" in claim.status_message

    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    assert pipeline.deliver(d.pk).startswith("commit ")
    assert MySQLClaim.objects.get(side="primary").status == ClaimStatus.DELIVERED
    assert commits(remote)[0].startswith("payments/prod: apply 3 claim(s)")  # pushed to the remote


def test_permanent_failures_stop_after_the_last_attempt(dev, test_policy, settings, tmp_path):
    settings.IDP_GITOPS_REMOTE = str(tmp_path / "missing.git")
    settings.IDP_DELIVERY_MAX_ATTEMPTS = 2
    services.request_mysql(dev, **MYSQL)
    d = Delivery.objects.get()
    with pytest.raises(pipeline.RetryLater):
        pipeline.deliver(d.pk)
    assert pipeline.deliver(d.pk).startswith("failed: git clone failed")
    assert Delivery.objects.get().state == "failed"


def test_decommission_removes_the_objects_and_keeps_the_records(api, dev, test_policy, settings):
    services.request_mysql(dev, **MYSQL)
    services.request_app(dev, cell="payments", environment="prod", image="ghcr.io/acme/p:1", public_host="p.example.com")
    run_all_pending()
    repo = settings.IDP_GITOPS_REPO
    assert len(cell_files(repo)) == 5
    r = api(dev).delete("/api/cells/payments/prod")
    assert r.status_code == 202
    assert {c["status"] for c in r.json()["data"].values() if c} == {"deleting"}
    run_all_pending()
    assert cell_files(repo) == []
    assert "decommission" in commits(repo)[0]
    assert set(MySQLClaim.objects.values_list("status", flat=True)) == {"deleted"}
    assert Application.objects.count() == 2
    assert api(dev).delete("/api/cells/payments/prod").status_code == 202  # idempotent
    assert Delivery.objects.filter(action="delete").count() == 1


def test_a_decommissioned_environment_can_be_requested_again(dev, test_policy, settings):
    services.request_mysql(dev, **MYSQL)
    run_all_pending()
    services.decommission(dev, cell="payments", environment="prod")
    run_all_pending()
    services.request_mysql(dev, **MYSQL)
    run_all_pending()
    claim = MySQLClaim.objects.get(side="primary")
    assert (claim.status, claim.revision, claim.delivered_revision) == ("delivered", 2, 2)
    assert len(cell_files(settings.IDP_GITOPS_REPO)) == 3


def test_other_teams_cannot_decommission(api, dev, outsider, test_policy):
    services.request_mysql(dev, **MYSQL)
    assert api(outsider).delete("/api/cells/payments/prod").status_code == 403


def test_replace_moves_the_files_to_the_new_cluster(dev, ops, use_policy, settings):
    from tests.helpers import policy_doc

    use_policy()
    services.request_mysql(dev, **MYSQL)
    run_all_pending()
    doc = policy_doc()
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True
    use_policy(doc)
    services.replace_cell(ops, cell="payments", environment="prod", note="drain")
    run_all_pending()
    files = cell_files(settings.IDP_GITOPS_REPO)
    assert not any(f.startswith("clusters/oke-iad-1/") for f in files)
    assert ReplicationClaim.objects.get().delivered_revision == 2


def test_simulator_reports_ready_once_the_composed_resources_are(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    services.request_mysql(dev, **MYSQL)
    services.request_app(dev, cell="payments", environment="prod", image="ghcr.io/acme/p:1", public_host="p.example.com")
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=12.5)
    settle()
    assert set(MySQLClaim.objects.values_list("status", flat=True)) == {"ready"}
    repl = ReplicationClaim.objects.get()
    assert (repl.status, repl.lag_seconds) == ("ready", 12.5) and repl.lag_measured_at
    secondary = Application.objects.get(side="secondary")
    assert secondary.status == "ready" and secondary.observed["runningReplicas"] == 1


def test_sandbox_waits_for_the_delay_and_can_be_told_to_fail(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 3600
    services.request_mysql(dev, **MYSQL)
    run_all_pending()
    SandboxObject.objects.create(name="payments-prod-mysql-secondary", fail_message="quota exceeded in us-east-1")
    pipeline.observe_all()
    primary, secondary = MySQLClaim.objects.get(side="primary"), MySQLClaim.objects.get(side="secondary")
    assert primary.status == "delivered" and primary.status_message.startswith("Ready=False: Creating")
    assert secondary.status == "failed" and secondary.status_message == "Synced=False: ReconcileError quota exceeded in us-east-1"


def test_cold_secondary_is_observed_as_defined_but_not_synced(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    services.request_app(dev, cell="payments", environment="prod", tier="C2", dr_profile="bronze",
                         image="ghcr.io/acme/p:1", public_host="p.example.com")
    run_all_pending()
    pipeline.observe_all()
    secondary = Application.objects.get(side="secondary")
    assert secondary.status == "ready"
    assert (secondary.observed["sync"], secondary.observed["health"], secondary.observed["runningReplicas"]) == (
        "OutOfSync", "Missing", 0)


def test_dispatcher_sends_rows_the_broker_never_got(dev, test_policy):
    from datetime import timedelta

    from django.utils import timezone

    services.request_mysql(dev, **MYSQL)
    Delivery.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert pipeline.dispatch() == 1
    assert Delivery.objects.get().enqueued_at is not None
    assert pipeline.dispatch() == 0  # sent: not again until the lease runs out


def test_status_shows_desired_and_delivered_revisions_and_errors(api, dev, test_policy):
    services.request_mysql(dev, **MYSQL)
    run_all_pending()
    services.request_mysql(dev, **{**MYSQL, "storage_gb": 99})
    body = api(dev).get("/api/status/payments/prod").json()
    primary = body["data"]["primary"]
    assert (primary["revision"], primary["deliveredRevision"], primary["status"]) == (2, 1, "pending")
    assert body["deliveries"][0]["state"] == "pending" and body["deliveries"][1]["state"] == "done"
