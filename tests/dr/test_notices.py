"""Notifications: each event told once, at its transition; sent to a real webhook server and by e-mail to the cell's
team; retried with backoff; never in the way of a failover step (webhook or broker down)."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from cells import pipeline
from cells.models import CellEnvironment, SandboxObject
from dr import notices, notify, services
from dr.models import FailoverRun, Notice, NoticeDelivery, NoticeEvent
from portal.celery import app as celery_app
from tests.helpers import policy_doc

from .helpers import drive, ready_cell, settle

pytestmark = pytest.mark.django_db

HOOK_PATH = "/services/T000/B000/hook-secret-token"


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    settings.IDP_PUBLIC_URL = "https://idp.example.com"


@pytest.fixture
def hook(settings, httpserver):
    """A Slack-compatible webhook receiver: a real HTTP server on localhost."""
    settings.IDP_NOTIFY_WEBHOOK_URL = httpserver.url_for(HOOK_PATH)
    return httpserver


@pytest.fixture
def eager():
    """Tasks run in-process when sent (as a worker would run them, retries included)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def told(event=None):
    qs = Notice.objects.all()
    return list(qs.filter(event=event) if event else qs)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """committed() -> a block whose after-commit work runs at its end, as if it had committed (cells' signals)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def lag(committed, seconds):
    SandboxObject.objects.update_or_create(name="payments-prod-replication", defaults={"lag_seconds": seconds})
    with committed():
        pipeline.observe_all()


# -- channels ---------------------------------------------------------------------------------

def test_the_webhook_receives_text_and_the_structured_fields(dev, ops, test_policy, hook):
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    hook.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    delivery = NoticeDelivery.objects.get(notice__event=NoticeEvent.RUN_FAILED)
    assert notify.deliver(delivery.pk) == "webhook answered HTTP 200"
    assert notify.deliver(delivery.pk).startswith("not taken")  # sent once, however often the task runs
    (request, _), = hook.log
    body = request.get_json()
    url = f"https://idp.example.com/runs/{run.pk}/"
    assert body == {
        "text": f"payments/prod: failover #{run.pk} failed at step check_lag: {run.error.split(': ', 1)[1]}\n{url}",
        "event": "run.failed", "cell": "payments", "environment": "prod", "runId": run.pk, "url": url,
        "runType": "failover", "state": "failed", "step": "check_lag", "error": run.error.split(": ", 1)[1],
        "noticeId": delivery.notice_id,
    }
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.detail) == ("sent", 1, "webhook answered HTTP 200")


def test_a_500_is_retried_with_backoff_until_the_webhook_takes_it(dev, test_policy, hook, eager,
                                                                    django_capture_on_commit_callbacks):
    ce = ready_cell(dev)
    hook.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("upstream broke", status=500)
    hook.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("ok")
    with django_capture_on_commit_callbacks(execute=True):
        notice = notices.evacuation_started("evac-1", "oci/us-ashburn-1", [ce])[0]
    assert len(hook.log) == 2
    delivery = notice.deliveries.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert delivery.sent_at is not None


def test_a_webhook_that_keeps_failing_stops_at_the_max_attempts(dev, test_policy, hook, eager, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.IDP_NOTIFY_MAX_ATTEMPTS = 3
    ce = ready_cell(dev)
    hook.expect_request(HOOK_PATH, method="POST").respond_with_data("", status=503)
    with django_capture_on_commit_callbacks(execute=True):
        notice = notices.evacuation_started("evac-2", "aws/us-east-1", [ce])[0]
    delivery = notice.deliveries.get()
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "webhook answered HTTP 503 (attempt 3)"
    assert len(hook.log) == 3


def test_a_refusal_is_not_retried(dev, test_policy, hook):
    ce = ready_cell(dev)
    hook.expect_request(HOOK_PATH, method="POST").respond_with_data("invalid_payload", status=400)
    delivery = notices.evacuation_ended("evac-3", "gcp", [ce])[0].deliveries.get()
    notify.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_error) == \
        ("failed", 1, "webhook refused the notice: HTTP 400: invalid_payload (attempt 1)")


def test_email_goes_to_the_cell_s_team_members_only(dev, teammate, outsider, ops, test_policy, settings, committed):
    settings.IDP_NOTIFY_EMAIL = True
    settings.DEFAULT_FROM_EMAIL = "idp@example.com"
    for user in (dev, teammate, outsider, ops):
        User.objects.filter(pk=user.pk).update(email=f"{user.username}@example.com")
    no_address = User.objects.create_user("noaddress")
    dev.teams.first().members.add(no_address)
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-mysql-secondary", fail_message="quota exceeded")
    with committed():
        settle()
    notice, = told(NoticeEvent.CLAIM_FAILED)
    assert notify.deliver(notice.deliveries.get(channel="email").pk) == "e-mailed 2 recipient(s)"
    message, = mail.outbox
    assert sorted(message.to) == ["dev@example.com", "teammate@example.com"]
    assert message.from_email == "idp@example.com"
    assert message.subject == ("[idp-multicloud] payments/prod: payments-prod-mysql-secondary failed: Synced=False: "
                               "ReconcileError quota exceeded")
    assert "https://idp.example.com/cells/payments/prod/" in message.body


def test_a_notice_without_a_cell_is_mailed_to_the_operators(dev, ops, test_policy, settings):
    settings.IDP_NOTIFY_EMAIL = True
    User.objects.filter(pk__in=[dev.pk, ops.pk]).update(email="x@example.com")
    User.objects.filter(pk=ops.pk).update(email="ops@example.com")
    notice, = notices.evacuation_started("evac-4", "oci/us-phoenix-1")
    notify.deliver(notice.deliveries.get().pk)
    assert mail.outbox[0].to == ["ops@example.com"]


def test_nobody_to_mail_is_recorded_as_skipped(dev, test_policy, settings):
    settings.IDP_NOTIFY_EMAIL = True
    ce = ready_cell(dev)
    delivery = notices.evacuation_started("evac-5", "oci", [ce])[0].deliveries.get()
    notify.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.detail) == ("skipped", "no member of the team has an e-mail address")
    assert mail.outbox == []


# -- each event once, at its transition -------------------------------------------------------------

def test_a_run_waiting_for_approval_then_succeeding_is_told_once_each(dev, ops, test_policy):
    ready_cell(dev, tier="C0", profile="gold")
    run = drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    assert run.state == "waiting_approval"
    drive(run)  # nothing moves while it waits
    waiting, = told(NoticeEvent.RUN_WAITING_APPROVAL)
    assert waiting.run == run and "waits for an operator's approval" in waiting.text
    run = drive(services.approve_run(ops, run.pk))
    assert run.state == "succeeded"
    done, = told(NoticeEvent.RUN_SUCCEEDED)
    assert done.text.startswith(f"payments/prod: switchover #{run.pk} succeeded: the secondary side serves and writes")
    assert done.payload["rtoSeconds"] == run.rto_seconds
    assert {n.event for n in told()} == {"run.waiting_approval", "run.succeeded"}


def test_a_failed_run_is_told_each_time_it_fails(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    failed, = told(NoticeEvent.RUN_FAILED)
    assert (failed.run, failed.payload["step"]) == (run, "check_lag")
    assert "replication lag 1200s is above the RPO of 900s" in failed.text
    assert told(NoticeEvent.RUN_SUCCEEDED) == []


def test_a_drill_that_succeeds_is_told_as_a_drill(dev, ops, test_policy):
    ready_cell(dev)
    drive(services.start_run(ops, cell="payments", environment="prod", dry_run=True))
    done, = told(NoticeEvent.RUN_SUCCEEDED)
    assert done.payload["runType"] == "drill" and "drill succeeded" in done.text


def test_a_failed_claim_is_told_on_the_transition_only(dev, test_policy, committed):
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-mysql-secondary", fail_message="quota exceeded")
    with committed():
        settle()
        pipeline.observe_all()  # still failed: nothing new to tell
    notice, = told(NoticeEvent.CLAIM_FAILED)
    assert (notice.cell_env.cell.name, notice.payload["claim"]) == ("payments", "payments-prod-mysql-secondary")
    SandboxObject.objects.filter(name="payments-prod-mysql-secondary").delete()
    with committed():
        pipeline.observe_all()
    assert len(told(NoticeEvent.CLAIM_FAILED)) == 1


def test_a_delivery_that_gives_up_tells_its_claims_failed(dev, test_policy, settings, committed):
    from cells import services as cell_services
    from cells.models import Delivery

    cell_services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    delivery = Delivery.objects.get()
    settings.IDP_GITOPS_REPO = "/dev/null/not-a-directory"  # the target cannot be written: a permanent error
    with committed():
        pipeline.deliver(delivery.pk)
    assert Delivery.objects.get().state == "failed"
    assert sorted(n.payload["claim"] for n in told(NoticeEvent.CLAIM_FAILED)) == [
        "payments-prod-mysql-primary", "payments-prod-mysql-secondary", "payments-prod-replication"]


def test_lag_above_the_rpo_is_told_when_it_crosses_not_on_every_probe(dev, test_policy, committed):
    ready_cell(dev)  # silver: RPO 900 s
    lag(committed, 1200)
    lag(committed, 1300)
    notice, = told(NoticeEvent.LAG_ABOVE_RPO)
    assert (notice.payload["lagSeconds"], notice.payload["rpoSeconds"]) == (1200, 900)
    assert notice.text.startswith("payments/prod: replication lag 1200s is above the RPO of 900s")
    lag(committed, 30)  # back within: nothing to tell
    assert len(told(NoticeEvent.LAG_ABOVE_RPO)) == 1
    lag(committed, 1000)  # above again: a new episode
    assert len(told(NoticeEvent.LAG_ABOVE_RPO)) == 2


def test_an_overdue_drill_is_told_once_per_overdue_period(dev, use_policy, settings):
    settings.IDP_DRILL_OVERDUE_GRACE = 600
    doc = policy_doc()
    doc["failover"] = {"drillIntervalSeconds": {"C1": 3600}}
    use_policy(doc)
    ready_cell(dev)
    started = services.run_scheduled_drills()
    assert told(NoticeEvent.DRILL_OVERDUE) == []  # a new cell: not due yet
    CellEnvironment.objects.update(created_at=timezone.now() - timedelta(days=2))
    FailoverRun.objects.filter(pk__in=started).update(requested_at=timezone.now() - timedelta(days=1))
    services.run_scheduled_drills()
    services.run_scheduled_drills()
    overdue, = told(NoticeEvent.DRILL_OVERDUE)
    assert "has never had a successful drill" in overdue.text
    for pk in FailoverRun.objects.filter(type="drill").values_list("pk", flat=True):
        drive(FailoverRun.objects.get(pk=pk))
    services.run_scheduled_drills()  # a drill just succeeded: not overdue
    assert len(told(NoticeEvent.DRILL_OVERDUE)) == 1
    FailoverRun.objects.filter(type="drill").update(finished_at=timezone.now() - timedelta(hours=3))
    services.run_scheduled_drills()  # a new overdue period
    assert len(told(NoticeEvent.DRILL_OVERDUE)) == 2
    assert "the last successful drill was at" in told(NoticeEvent.DRILL_OVERDUE)[0].text


def test_evacuation_events_are_defined_for_the_evacuation_issue(dev, test_policy):
    ce = ready_cell(dev)
    started = notices.evacuation_started("evac-7", "oci/us-ashburn-1", [ce], detail="region down")
    assert notices.evacuation_started("evac-7", "oci/us-ashburn-1", [ce]) == []  # told once
    ended = notices.evacuation_ended("evac-7", "oci/us-ashburn-1")  # no cell named: for operators
    assert [n.event for n in started + ended] == ["evacuation.started", "evacuation.ended"]
    assert started[0].payload["evacuationId"] == "evac-7" and ended[0].cell_env is None


# -- never in the way ------------------------------------------------------------------------------

def test_a_webhook_that_is_down_never_fails_the_run(dev, ops, test_policy, settings, eager,
                                                     django_capture_on_commit_callbacks):
    settings.IDP_NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:9{HOOK_PATH}"  # nothing listens
    settings.IDP_NOTIFY_MAX_ATTEMPTS = 2
    ready_cell(dev)
    with django_capture_on_commit_callbacks(execute=True):
        run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "succeeded"
    delivery = NoticeDelivery.objects.get(notice__event=NoticeEvent.RUN_SUCCEEDED)
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.last_error.startswith("webhook unreachable: ConnectionError")
    assert "hook-secret-token" not in delivery.last_error and "/services/" not in delivery.last_error


def broker(url):
    """Point the Celery app at another broker (its producer pools are made for the first broker it used)."""
    celery_app.conf.broker_url = url
    celery_app._pool = celery_app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_never_fails_the_run_and_the_beat_sends_later(dev, ops, test_policy, hook):
    ready_cell(dev)
    previous = celery_app.conf.broker_url
    broker("redis://127.0.0.1:9/0")  # nothing listens there
    try:
        run = drive(services.start_run(ops, cell="payments", environment="prod"))
    finally:
        broker(previous)
    assert run.state == "succeeded"
    delivery = NoticeDelivery.objects.get(notice__event=NoticeEvent.RUN_SUCCEEDED)
    assert (delivery.state, delivery.enqueued_at) == ("pending", None)  # stored, never handed to a worker
    NoticeDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert notify.resend() == 1
    hook.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    notify.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == "sent" and hook.log[0][0].get_json()["event"] == "run.succeeded"


def test_a_notice_that_cannot_be_stored_does_not_stop_its_caller(dev, test_policy, monkeypatch):
    ce = ready_cell(dev)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Notice.objects, "create", broken)
    assert notices.evacuation_started("evac-8", "oci", [ce]) == []
    assert CellEnvironment.objects.filter(pk=ce.pk).exists()  # the caller's transaction is usable


def test_payloads_carry_no_secret(dev, ops, test_policy, hook, settings, committed):
    settings.OIDC_RP_CLIENT_SECRET = "oidc-client-secret"
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    drive(services.start_run(ops, cell="payments", environment="prod"))
    lag(committed, 1500)
    for notice in told():
        text = str(notice.payload) + notice.text
        assert "hook-secret-token" not in text and "oidc-client-secret" not in text
        assert set(notice.payload) >= {"text", "event", "cell", "environment", "runId", "url", "noticeId"}
