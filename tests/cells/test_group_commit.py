"""Group commit: the worker that holds the GitOps repository delivers every pending delivery in one commit, and each
Delivery row still records its own outcome. Real git, real PostgreSQL."""
import subprocess

import pytest
import yaml

from cells import manifests, pipeline, services
from cells.models import ClaimStatus, Delivery, MySQLClaim
from tests.helpers import policy_doc

pytestmark = pytest.mark.django_db

MYSQL = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)
ENVIRONMENTS = ("prod", "staging", "qa", "perf")
PRIMARY = "clusters/oke-iad-1/cell-payments-{env}/cellmysqlclaim-payments-{env}-mysql-primary.yaml"


@pytest.fixture
def test_policy(use_policy):
    """The test policy, with payments in four environments (four cell environments to group)."""
    doc = policy_doc()
    doc["cells"]["payments"]["environments"] = list(ENVIRONMENTS)
    return use_policy(doc)


def git(repo, *args, stdin=None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          input=stdin).stdout


def commit_count(repo) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def cell_files(repo, sha="HEAD") -> list[str]:
    return sorted(f for f in git(repo, "ls-tree", "-r", "--name-only", sha).split() if "/_cluster/" not in f)


def request_environments(dev, environments=ENVIRONMENTS) -> list[Delivery]:
    for env in environments:
        services.request_mysql(dev, **{**MYSQL, "environment": env})
    return list(Delivery.objects.order_by("id"))


def test_one_call_delivers_every_pending_delivery_in_one_commit(dev, test_policy, settings):
    first, *others = request_environments(dev)
    repo = settings.IDP_GITOPS_REPO

    assert pipeline.deliver(first.pk).startswith("commit ")

    assert commit_count(repo) == 1
    assert len(cell_files(repo)) == 3 * len(ENVIRONMENTS)  # every delivery's files, in that one commit
    sha = git(repo, "rev-parse", "HEAD").strip()
    rows = list(Delivery.objects.order_by("id"))
    assert {r.state for r in rows} == {Delivery.State.DONE}
    assert {r.result.split(":")[0] for r in rows} == {f"commit {sha[:12]}"}  # each row names the commit
    assert all(f"group commit of {len(ENVIRONMENTS)} deliveries" in r.result for r in rows)
    assert {r.attempts for r in rows} == {1}
    assert set(MySQLClaim.objects.values_list("status", "delivered_revision")) == {(ClaimStatus.DELIVERED, 1)}
    # The tasks of the other rows come later, find them done and make no commit of their own.
    for d in others:
        assert pipeline.deliver(d.pk).startswith("not taken")
    assert commit_count(repo) == 1


def test_a_delivery_that_fails_to_render_fails_alone(dev, test_policy, settings, monkeypatch):
    request_environments(dev, ("prod", "staging", "qa"))
    render = manifests.render_mysql

    def broken_for_staging(ce, claim):
        if ce.environment == "staging":
            raise ValueError("template blew up")
        return render(ce, claim)

    monkeypatch.setattr(manifests, "render_mysql", broken_for_staging)
    prod, staging, qa = Delivery.objects.order_by("id")

    assert pipeline.deliver(staging.pk) == "failed: ValueError: template blew up"

    repo = settings.IDP_GITOPS_REPO
    assert commit_count(repo) == 1
    assert not any("/cell-payments-staging/" in f for f in cell_files(repo))
    assert {d.pk: d.state for d in Delivery.objects.all()} == {
        prod.pk: Delivery.State.DONE, staging.pk: Delivery.State.FAILED, qa.pk: Delivery.State.DONE}
    staging.refresh_from_db()
    assert staging.last_error == "ValueError: template blew up" and staging.result == ""
    failed = MySQLClaim.objects.get(cell_env__environment="staging", side="primary")
    assert failed.status == ClaimStatus.FAILED and failed.delivered_revision == 0
    assert MySQLClaim.objects.get(cell_env__environment="qa", side="primary").status == ClaimStatus.DELIVERED
    message = git(repo, "log", "-1", "--format=%B")
    assert f"Delivery: {prod.pk} " in message and f"Delivery: {qa.pk} " in message
    assert f"Delivery: {staging.pk} " not in message


def test_deliver_batch_delivers_exactly_these_rows_in_one_commit(dev, test_policy, settings):
    prod, staging, qa, perf = request_environments(dev)
    repo = settings.IDP_GITOPS_REPO

    out = pipeline.deliver_batch([qa.pk, prod.pk, prod.pk])

    assert commit_count(repo) == 1
    assert out["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert (out["delivered"], out["failed"], out["retrying"], out["notTaken"]) == ([prod.pk, qa.pk], [], [], [])
    assert {f.split("/")[2] for f in cell_files(repo)} == {"cell-payments-prod", "cell-payments-qa"}
    states = dict(Delivery.objects.values_list("pk", "state"))
    assert (states[staging.pk], states[perf.pk]) == (Delivery.State.PENDING, Delivery.State.PENDING)
    assert Delivery.objects.get(pk=staging.pk).attempts == 0
    # Asked again: already done, nothing to commit.
    again = pipeline.deliver_batch([prod.pk, qa.pk])
    assert (again["commit"], again["notTaken"]) == (None, [prod.pk, qa.pk])
    assert commit_count(repo) == 1


def test_an_older_revision_in_a_batch_never_overwrites_a_newer_file(dev, test_policy, settings, monkeypatch):
    services.request_mysql(dev, **MYSQL)
    services.request_mysql(dev, **{**MYSQL, "storage_gb": 60})  # revision 2 of both MySQL claims
    first, second = Delivery.objects.order_by("id")
    fresh = {c.pk: c for c in MySQLClaim.objects.all()}
    claims = pipeline._claims

    def second_read_before_the_update(delivery, *args):
        """The later row renders revision 1: a worker that read the claims before the update."""
        out = claims(delivery, *args)
        if delivery.pk != second.pk:
            return out
        for c in out:
            if c.pk in fresh:
                c.revision, c.storage_gb = 1, 50
        return out

    monkeypatch.setattr(pipeline, "_claims", second_read_before_the_update)

    pipeline.deliver_batch([first.pk, second.pk])

    repo = settings.IDP_GITOPS_REPO
    assert commit_count(repo) == 1
    primary = yaml.safe_load((repo / PRIMARY.format(env="prod")).read_text())
    assert primary["spec"]["storageGB"] == 60
    assert primary["metadata"]["annotations"]["platform.idp-multicloud.io/revision"] == "2"
    assert "holds revision 2 > 1" in Delivery.objects.get(pk=second.pk).result
    assert {(c.revision, c.delivered_revision) for c in MySQLClaim.objects.all()} == {(2, 2)}  # only grows


@pytest.mark.parametrize("note", ["drain\n\nSigned-off-by: evil <evil@example.com>\nRequested-by: root\n---\n",
                                  "drain\r\nCo-authored-by: evil\u2028Reviewed-by: evil\x0bApproved-by: evil"])
def test_a_group_commit_names_each_delivery_in_one_line_trailers(dev, test_policy, settings, note):
    deliveries = request_environments(dev, ("prod", "staging", "qa"))
    Delivery.objects.filter(pk=deliveries[1].pk).update(reason=note[:200])  # free text, as a re-place note

    pipeline.deliver(deliveries[0].pk)

    message = git(settings.IDP_GITOPS_REPO, "log", "-1", "--format=%B").strip()
    subject, *rest = message.splitlines()
    assert subject == "group commit: 3 deliveries, 9 claim(s) in 3 cell environment(s)"
    trailers = git(settings.IDP_GITOPS_REPO, "interpret-trailers", "--parse", stdin=message).splitlines()
    assert trailers == message.split("\n\n")[-1].splitlines()  # the last paragraph, one line per trailer
    assert trailers == [
        f"Delivery: {d.pk} payments/{env} apply requested-by=dev claims=payments-{env}-mysql-primary@1,"
        f"payments-{env}-mysql-secondary@1,payments-{env}-replication@1"
        for d, env in zip(deliveries, ("prod", "staging", "qa"))]
    body = message.split("\n\n")[1].splitlines()
    assert len(body) == 3 and body[0] == "payments/prod: apply 3 claim(s) — MySQL requested"
    assert body[1].startswith("payments/staging: apply 3 claim(s) — drain ") and "evil" in body[1]
    assert not [line for line in message.splitlines() if line.split(":", 1)[0] in
                ("Signed-off-by", "Co-authored-by", "Reviewed-by", "Approved-by", "Requested-by", "---")]


def test_a_transient_target_error_sends_every_row_of_the_group_again(dev, test_policy, settings, tmp_path, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    settings.IDP_GITOPS_REMOTE = str(tmp_path / "remote.git")  # not there yet: cloning fails
    first, second = request_environments(dev, ("prod", "staging"))
    sent = []
    monkeypatch.setattr(pipeline, "send", lambda pk, countdown=None: sent.append((pk, countdown)))

    with django_capture_on_commit_callbacks(execute=True):
        out = pipeline.deliver_batch([first.pk, second.pk])
    # No worker task may be left for a row a group took: each is sent again after its backoff, once recorded.
    assert sent == [(first.pk, 2.0), (second.pk, 2.0)]
    with pytest.raises(pipeline.RetryLater):  # deliver(): the caller's own row is retried by its task
        pipeline.deliver(first.pk)

    assert out["retrying"] == [first.pk, second.pk] and out["commit"] is None
    for d in Delivery.objects.all():
        assert d.state == Delivery.State.PENDING and "git clone failed" in d.last_error and d.next_attempt_at
    # The second row's backoff is not over: the first row's retry does not take it before its time.
    assert Delivery.objects.get(pk=first.pk).attempts == 2 and Delivery.objects.get(pk=second.pk).attempts == 1

    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", settings.IDP_GITOPS_REMOTE], check=True)
    Delivery.objects.update(next_attempt_at=None)  # the backoff is over
    assert pipeline.deliver(first.pk).startswith("commit ")
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.DONE}
    assert commit_count(settings.IDP_GITOPS_REMOTE) == 1


def test_a_decommission_and_a_request_in_one_group_end_as_if_delivered_one_by_one(dev, test_policy, settings):
    request_environments(dev, ("prod", "staging"))
    pipeline.deliver(Delivery.objects.order_by("id").first().pk)
    services.decommission(dev, cell="payments", environment="staging")
    services.request_mysql(dev, **{**MYSQL, "environment": "qa"})
    repo = settings.IDP_GITOPS_REPO

    pipeline.deliver(Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id").first().pk)

    assert commit_count(repo) == 2
    assert {f.split("/")[2] for f in cell_files(repo)} == {"cell-payments-prod", "cell-payments-qa"}
    assert set(MySQLClaim.objects.filter(cell_env__environment="staging").values_list("status", flat=True)) == {"deleted"}
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.DONE}


def test_the_kubernetes_target_applies_a_group_one_delivery_at_a_time(dev, test_policy, settings, monkeypatch):
    """Server-side apply has no commit: the group goes through the same entry point, each delivery applied (and
    failing) on its own. A field another manager owns fails the staging row alone."""
    from cells.delivery.kubernetes import KubernetesTarget
    from tests.cells.test_delivery_kubernetes import CONTEXTS, FakeKube, _api_client, claim

    fakes = {"oci": FakeKube(), "aws": FakeKube()}
    for fake in fakes.values():
        fake.thread.start()
    clients = {cloud: _api_client(fake.url) for cloud, fake in fakes.items()}
    try:
        settings.IDP_DELIVERY_TARGET = "kubernetes"  # the rows name the target they are for
        monkeypatch.setattr(pipeline, "get_target", lambda: KubernetesTarget(CONTEXTS, api_clients=clients))
        staging_path = ("/apis/platform.idp-multicloud.io/v1alpha1/namespaces/cell-payments-staging/"
                        "cellmysqlclaims/payments-staging-mysql-primary")
        fakes["oci"].seed(staging_path, claim(1, name="payments-staging-mysql-primary",
                                              namespace="cell-payments-staging", environment="staging"))
        fakes["oci"].edit_by(staging_path, ".spec.storageGB", 75, manager="kubectl-edit")
        prod, staging, qa = request_environments(dev, ("prod", "staging", "qa"))

        assert pipeline.deliver(prod.pk).startswith("applied: ")

        rows = {d.pk: d for d in Delivery.objects.all()}
        assert (rows[prod.pk].state, rows[staging.pk].state, rows[qa.pk].state) == ("done", "failed", "done")
        assert "kubectl-edit" in rows[staging.pk].last_error
        assert "payments-qa-mysql-primary" in rows[qa.pk].result and "payments-prod" not in rows[qa.pk].result
        patched = {r.path.rsplit("/", 1)[-1] for fake in fakes.values() for r in fake.calls("PATCH")}
        assert {"payments-prod-mysql-primary", "payments-qa-mysql-primary", "payments-qa-replication"} <= patched
        assert MySQLClaim.objects.get(cell_env__environment="qa", side="primary").delivered_revision == 1
    finally:
        for api_client in clients.values():
            api_client.close()
        for fake in fakes.values():
            fake.server.shutdown()
            fake.server.server_close()
