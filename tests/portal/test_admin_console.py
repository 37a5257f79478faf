"""The Django admin is the operators' console: every page it offers opens for an operator, what the services own
is read-only (for superusers too), and API token keys never appear on any of its pages."""
import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse
from rest_framework.authtoken.models import Token

from cells import services
from cells.models import CellEnvironment, MySQLClaim, SandboxObject
from dr import services as dr_services
from dr.models import Evacuation, EvacuationItem
from tests.helpers import settle

pytestmark = pytest.mark.django_db

MYSQL = dict(cell="payments", environment="prod", tier="C1", dr_profile="silver")
APP = dict(cell="payments", environment="prod", image="ghcr.io/acme/payments:1.0", public_host="payments.prod.company.com")


@pytest.fixture
def console(dev, ops, test_policy):
    """A placed and delivered cell environment, a drill run, tokens, a failed sign-in: a row in most tables."""
    ops.is_staff = True
    ops.save()
    services.request_mysql(dev, **MYSQL)
    services.request_app(dev, **APP)
    settle()
    dr_services.start_run(ops, cell="payments", environment="prod", dry_run=True)
    evac = Evacuation.objects.create(cloud="oci", region="us-ashburn-1", reason="console drill", state="paused",
                                     requested_by=ops, waves=1)
    EvacuationItem.objects.create(evacuation=evac, cell_env=CellEnvironment.objects.get(), tier="C1", wave=0)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=2)
    Client().post("/accounts/login/", {"username": "dev", "password": "wrong password"})  # an axes access attempt
    return {"dev": Token.objects.create(user=dev).key, "ops": Token.objects.create(user=ops).key}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def admin_pages():
    """(model, changelist URL, change URL of its first row or None) for every model the admin shows."""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        first = model_admin.get_queryset(_request()).first() if model.objects.exists() else None
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(first.pk)]) if first else None
        yield model, changelist, change


def _request():
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True)
    return request


def test_an_operator_opens_every_page_of_the_console(console, ops):
    client = signed_in(ops)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "You don’t have permission to view or edit anything" not in index.content.decode()
    opened = []
    for model, changelist, change in admin_pages():
        r = client.get(changelist)
        assert r.status_code == 200, (model, r.status_code)
        assert changelist in index.content.decode(), f"{model} is missing from the operator's admin index"
        if change:
            r = client.get(change)
            assert r.status_code == 200, (model, change, r.status_code)
            opened.append(model._meta.label)
    assert {"cells.CellEnvironment", "cells.MySQLClaim", "cells.Application", "cells.ApiToken", "dr.FailoverRun",
            "dr.Evacuation", "scheduler.PlacementDecision", "auth.User", "axes.AccessAttempt"} <= set(opened)


def test_a_fresh_install_gives_the_operators_group_its_console_permissions(db):
    from django.contrib.auth.models import Group

    codenames = set(Group.objects.get(name="operators").permissions.values_list("codename", flat=True))
    assert {"view_cellenvironment", "view_failoverrun", "view_failoverstep", "view_evacuationitem",
            "view_placementdecision", "change_team",
            "change_sandboxobject", "delete_accessattempt"} <= codenames
    assert not {"change_cellenvironment", "change_mysqlclaim", "change_failoverrun"} & codenames


def test_an_operator_runs_the_services_from_the_console(console, ops):
    ce = CellEnvironment.objects.get()
    r = signed_in(ops).post(reverse("admin:cells_cellenvironment_changelist"),
                            {"action": "redeliver_action", "index": 0, "_selected_action": [ce.pk]}, follow=True)
    assert r.status_code == 200
    messages = [(m.level_tag, str(m)) for m in r.context["messages"]]
    assert len(messages) == 1 and messages[0][0] == "info", messages
    assert messages[0][1] == "payments/prod: nothing to deliver" or messages[0][1].endswith("queued"), messages


def test_a_developer_with_staff_status_gets_no_service_actions(console, dev):
    dev.is_staff = True
    dev.save()
    from django.contrib.auth.models import Permission

    dev.user_permissions.add(Permission.objects.get(codename="view_cellenvironment"))
    r = signed_in(dev).get(reverse("admin:cells_cellenvironment_changelist"))
    assert r.status_code == 200
    assert "replace_action" not in r.content.decode()


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123")


def test_a_superuser_cannot_hand_edit_what_the_services_own(console, root):
    ce = CellEnvironment.objects.get()
    client = signed_in(root)
    url = reverse("admin:cells_cellenvironment_change", args=[ce.pk])
    page = client.get(url).content.decode()
    assert 'name="epoch"' not in page and 'name="writer_side"' not in page
    r = client.post(url, {"epoch": 99, "writer_side": "secondary", "active_side": "secondary"})
    assert r.status_code == 403
    ce.refresh_from_db()
    assert (ce.epoch, ce.writer_side, ce.active_side) == (1, "primary", "primary")

    claim = MySQLClaim.objects.get(side="primary")
    delivered = claim.delivered_revision
    url = reverse("admin:cells_mysqlclaim_change", args=[claim.pk])
    assert 'name="delivered_revision"' not in client.get(url).content.decode()
    assert client.post(url, {"delivered_revision": 99, "revision": 99}).status_code == 403
    claim.refresh_from_db()
    assert (claim.revision, claim.delivered_revision) == (1, delivered)


def test_no_admin_page_shows_an_api_token_key(console, root):
    client = signed_in(root)
    pages = ["/admin/"]
    for model, changelist, change in admin_pages():
        pages.append(changelist)
        if change:
            pages += [change, change.replace("/change/", "/history/")]
    token_pages = [p for p in pages if p.startswith("/admin/cells/apitoken/") and p.endswith("/change/")]
    assert token_pages, "API tokens are listed in the admin"
    # revoking one goes through its delete page; the admin's action log then names it without its key
    delete = token_pages[0].replace("/change/", "/delete/")
    pages.append(delete)
    r = client.post(delete, {"post": "yes"}, follow=True)
    assert r.status_code == 200
    assert Token.objects.count() == 1
    pages.append("/admin/")
    for url in pages:
        r = client.get(url)
        assert r.status_code in (200, 302), (url, r.status_code)
        html = r.content.decode()
        for who, key in console.items():
            assert key not in html, f"{who}'s API token key is shown on {url}"


def test_drf_token_admin_is_not_registered():
    from rest_framework.authtoken.models import TokenProxy

    assert not admin.site.is_registered(TokenProxy)
    with pytest.raises(NoReverseMatch):
        reverse("admin:authtoken_tokenproxy_changelist")


def test_an_operator_steers_an_evacuation_from_the_console_and_a_developer_cannot(console, ops, dev):
    evac = Evacuation.objects.get()
    url = reverse("admin:dr_evacuation_changelist")
    r = signed_in(ops).post(url, {"action": "resume", "index": 0, "_selected_action": [evac.pk]}, follow=True)
    assert [str(m) for m in r.context["messages"]] == [f"evacuation #{evac.pk}: resumed"]
    evac.refresh_from_db()
    assert evac.state == "running"
    page = signed_in(ops).get(reverse("admin:dr_evacuation_change", args=[evac.pk])).content.decode()
    assert "payments" in page and "console drill" in page  # its cells, inline, and why it was started
    assert f"payments/prod in evacuation #{evac.pk} (pending)" in page and "EvacuationItem object" not in page
    dev.is_staff = True
    dev.save()
    from django.contrib.auth.models import Permission

    dev.user_permissions.add(Permission.objects.get(codename="view_evacuation"))
    r = signed_in(dev).get(url)
    assert r.status_code == 200 and '"abort"' not in r.content.decode()  # no steering for a developer
