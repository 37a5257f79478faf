"""The provisioning pipeline with real Celery workers, real Redis and real git: nothing lost, exactly once."""
import subprocess
import time

import pytest

from cells.models import Delivery, MySQLClaim

from .conftest import use_broker, wait_for

pytestmark = [pytest.mark.e2e]

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": 50, "ha": True}
APP = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "app": {"image": "ghcr.io/acme/payments:1.0"},
       "traffic": {"publicHost": "payments.prod.company.com", "mode": "active-passive"}}


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def all_statuses(client) -> set[str]:
    body = client.get("/api/status/payments/prod").json()
    claims = [body["data"]["primary"], body["data"]["secondary"], body["data"]["replication"]]
    if body["compute"]:
        claims += [body["compute"]["primary"], body["compute"]["secondary"]]
    return {c["status"] for c in claims}


def test_happy_path_reaches_ready(api, dev, test_policy, workers, settings):
    workers.start(concurrency=2)
    client = api(dev)
    assert client.post("/api/mysql", MYSQL, format="json").status_code == 201
    assert client.post("/api/app", APP, format="json").status_code == 201
    wait_for(lambda: all_statuses(client) == {"ready"}, timeout=40, what="every claim ready",
             state=lambda: client.get("/api/status/payments/prod").json())
    body = client.get("/api/status/payments/prod").json()
    assert body["data"]["primary"]["deliveredRevision"] == 1
    assert body["data"]["replication"]["lagSeconds"] is not None
    files = git(settings.IDP_GITOPS_REPO, "ls-files").split()
    assert len([f for f in files if "/_cluster/" not in f]) == 5  # the cell's objects, beside the platform package
    assert any(f.endswith("compositeresourcedefinition-cellmysqlclaims.platform.idp-multicloud.io.yaml") for f in files)


def test_broker_down_at_request_time_loses_nothing(api, dev, test_policy, workers, settings):
    use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    started = time.monotonic()
    r = api(dev).post("/api/mysql", MYSQL, format="json")
    assert r.status_code == 201
    assert time.monotonic() - started < 10  # answered, not stuck on the broker
    d = Delivery.objects.get()
    assert d.state == "pending" and d.enqueued_at is None
    use_broker(workers.env["CELERY_BROKER_URL"])
    workers.start()  # its beat runs the dispatcher
    wait_for(lambda: Delivery.objects.get().state == "done", timeout=40, what="the dispatcher to deliver the outbox row")
    assert MySQLClaim.objects.get(side="primary").delivered_revision == 1
    assert len(git(settings.IDP_GITOPS_REPO, "log", "--format=%H").split()) == 1


def held_in_commit(settings, tmp_path):
    """A GitOps repository whose commits stop for 30 s (a worker to kill there): (the file that says one is inside,
    the hook that holds it)."""
    repo = settings.IDP_GITOPS_REPO
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    marker = tmp_path / "in-commit"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 30\n")
    hook.chmod(0o755)
    return marker, hook


def test_worker_killed_mid_delivery_delivers_exactly_once(api, dev, test_policy, workers, settings, tmp_path):
    repo, (marker, hook) = settings.IDP_GITOPS_REPO, held_in_commit(settings, tmp_path)

    first = workers.start(name="doomed")
    assert api(dev).post("/api/mysql", MYSQL, format="json").status_code == 201
    wait_for(marker.exists, timeout=30, what="the worker to be inside git commit")
    assert Delivery.objects.get().state == "delivering"
    workers.kill(first)  # SIGKILL the whole worker, git included
    hook.unlink()

    workers.start(name="survivor")
    wait_for(lambda: Delivery.objects.get().state == "done", timeout=40, what="the delivery to complete after the crash")
    d = Delivery.objects.get()
    assert d.attempts == 2
    log = git(repo, "log", "--format=%s").splitlines()
    assert len(log) == 1 and log[0].startswith("payments/prod: apply 3 claim(s)")
    assert {c.delivered_revision for c in MySQLClaim.objects.all()} == {1}


def test_two_revisions_racing_the_newer_wins(api, dev, test_policy, workers, settings):
    workers.start(concurrency=2, name="a")
    workers.start(concurrency=2, name="b", beat=False)
    client = api(dev)
    for storage in (50, 60, 70, 80):
        assert client.post("/api/mysql", {**MYSQL, "storageGB": storage}, format="json").status_code in (200, 201)
    wait_for(lambda: Delivery.objects.exclude(state="done").count() == 0, timeout=40, what="all deliveries done")
    primary = MySQLClaim.objects.get(side="primary")
    assert (primary.revision, primary.delivered_revision) == (4, 4)
    path = settings.IDP_GITOPS_REPO / "clusters/oke-iad-1/cell-payments-prod/cellmysqlclaim-payments-prod-mysql-primary.yaml"
    assert "storageGB: 80" in path.read_text()


def test_failing_target_is_visible_and_retried(api, dev, test_policy, workers, settings, tmp_path):
    remote = tmp_path / "platform-gitops.git"
    workers.env["IDP_GITOPS_REMOTE"] = str(remote)  # not created yet: every push fails
    workers.start()
    client = api(dev)
    assert client.post("/api/mysql", MYSQL, format="json").status_code == 201

    def failed_with_reason():
        primary = client.get("/api/status/payments/prod").json()["data"]["primary"]
        return primary["status"] == "failed" and "git clone failed" in primary["statusMessage"]

    wait_for(failed_with_reason, timeout=30, what="the failure to be visible in the status")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    wait_for(lambda: all_statuses(client) <= {"delivered", "ready"}, timeout=60, what="the retry to deliver")
    assert Delivery.objects.get().attempts >= 2
    assert git(remote, "log", "--format=%s").startswith("payments/prod: apply 3 claim(s)")


def test_worker_killed_mid_group_commit_delivers_every_row_once(api, dev, test_policy, workers, settings, tmp_path):
    """Group commit: a worker takes every pending row of the repository and makes one commit. Killed inside that
    commit, the rows it took are taken again once their lease is over, and still make one commit between them."""
    repo, (marker, hook) = settings.IDP_GITOPS_REPO, held_in_commit(settings, tmp_path)
    client = api(dev)
    for environment in ("prod", "staging"):  # both in the outbox (and the broker) before any worker runs
        assert client.post("/api/mysql", {**MYSQL, "environment": environment}, format="json").status_code == 201

    first = workers.start(name="doomed")
    wait_for(marker.exists, timeout=30, what="the worker to be inside git commit")
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivering"}  # one worker took both
    workers.kill(first)
    hook.unlink()

    workers.start(name="survivor")
    wait_for(lambda: set(Delivery.objects.values_list("state", flat=True)) == {"done"}, timeout=40,
             what="both deliveries to complete after the crash")
    log = git(repo, "log", "--format=%s").splitlines()
    assert log == ["group commit: 2 deliveries, 6 claim(s) in 2 cell environment(s)"]
    assert {d.attempts for d in Delivery.objects.all()} == {2}
    assert len({d.result.split(":")[0] for d in Delivery.objects.all()}) == 1  # the same commit
    assert {c.delivered_revision for c in MySQLClaim.objects.all()} == {1} and MySQLClaim.objects.count() == 4
