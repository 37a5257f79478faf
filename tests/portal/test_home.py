"""The home page: who sees which cell environments, their health at a glance, the empty states, the query count."""
import re

import pytest
from django.contrib.auth.models import User

from cells.models import ClaimStatus, MySQLClaim, ReplicationClaim

from .bulk import create_cell_environments
from .conftest import deliver_everything, htmx

pytestmark = pytest.mark.django_db


def rows(html: str) -> list[str]:
    """The cell environments listed, as cell/env."""
    return [f"{c}/{e}" for c, e in re.findall(r'class="cell-link" href="/cells/([a-z0-9-]+)/([a-z0-9-]+)/"', html)]


def test_signing_in_is_required(web):
    r = web().get("/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_an_expired_session_on_an_htmx_swap_redirects_the_whole_page(web, placed):
    r = web().get("/cells/payments/prod/", **htmx("cell-live"))
    assert r.status_code == 200 and r["HX-Redirect"].startswith("/accounts/login/?next=")


def test_the_header_says_who_i_am_and_my_teams(web, dev, test_policy):
    html = web(dev).get("/").content.decode()
    assert 'data-testid="username">dev<' in html
    assert "team payments" in html and ">developer<" in html


def test_a_developer_sees_their_teams_cell_environments_only(web, dev, placed, catalog):
    html = web(dev).get("/").content.decode()
    assert rows(html) == ["payments/prod"]


def test_another_team_sees_its_own(web, outsider, placed, catalog):
    assert rows(web(outsider).get("/").content.decode()) == ["catalog/prod"]


def test_an_operator_sees_every_team(web, ops, placed, catalog):
    html = web(ops).get("/").content.decode()
    assert rows(html) == ["catalog/prod", "payments/prod"]
    assert ">operator<" in html


def test_each_row_tells_tier_profile_placement_and_health_in_words(web, dev, placed, settings):
    html = web(dev).get("/").content.decode()
    row = html[html.index("payments</strong>/prod"):html.index("</tr>", html.index("payments</strong>/prod"))]
    assert ">C0<" in row and ">gold<" in row
    assert "OCI" in row and "us-ashburn-1" in row and "AWS" in row and "us-east-1" in row
    assert "provisioning (0 of 3 ready)" in row and "status-warn" in row  # data: 2 MySQL + replication
    assert "not measured yet" in row and "RPO 60 s" in row
    assert "Last failover" in html and "—" in row

    deliver_everything(settings)
    html = web(dev).get("/").content.decode()
    row = html[html.index("payments</strong>/prod"):html.index("</tr>", html.index("payments</strong>/prod"))]
    assert row.count("✓</span> ready") == 2  # data and compute
    assert "serving primary" in row
    assert "within RPO" in row and "lag 0.8 s / RPO 60 s" in row


def test_lag_above_the_rpo_and_a_failed_claim_need_attention(web, dev, placed, settings):
    deliver_everything(settings)
    ReplicationClaim.objects.update(lag_seconds=75)
    MySQLClaim.objects.filter(side="secondary").update(status=ClaimStatus.FAILED)
    html = web(dev).get("/").content.decode()
    assert "above RPO" in html and "lag 75 s / RPO 60 s" in html
    assert "failed (1 of 3)" in html and "status-bad" in html
    assert "1 needs attention" in html
    assert rows(web(dev).get("/?show=attention").content.decode()) == ["payments/prod"]
    assert rows(web(dev).get("/?show=progress").content.decode()) == []


def test_search_filters_and_answers_the_table_alone_to_htmx(web, ops, placed, catalog):
    r = web(ops).get("/?q=cata", **htmx("cell-table"))
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and html.startswith('<div id="cell-table"')
    assert rows(html) == ["catalog/prod"]
    assert "HX-Request" in r["Vary"]


def test_a_team_without_cell_environments_is_shown_how_to_request_one(web, dev, test_policy):
    html = web(dev).get("/").content.decode()
    assert "No cell environments yet" in html
    assert 'href="/request/mysql/?cell=payments"' in html and 'href="/request/app/?cell=payments"' in html


def test_a_user_without_a_team_is_told_how_to_get_one(web, test_policy):
    loner = User.objects.create_user("loner", password="pw-for-tests-123")
    html = web(loner).get("/").content.decode()
    assert "not a member of a team that owns a cell" in html


def test_the_home_page_makes_a_fixed_number_of_queries_with_1000_cell_environments(
        web, ops, dev, test_policy, django_assert_max_num_queries):
    create_cell_environments(1000)
    client, dev_client = web(ops), web(dev)
    client.get("/")  # warm: the policy version row, the session
    with django_assert_max_num_queries(13):  # 13: the navigation's unread notifications count is one
        html = client.get("/").content.decode()
    assert "1000 total" in html and "Page 1 of 10" in html
    assert len(rows(html)) == 100
    assert "50 need attention" in html or "need attention" in html
    with django_assert_max_num_queries(13):
        html = client.get("/?page=10&show=attention").content.decode()
    with django_assert_max_num_queries(13):
        html = dev_client.get("/").content.decode()  # the same cells belong to team payments
    assert len(rows(html)) == 100


def test_cells_needing_attention_come_first_then_those_in_progress(web, ops, placed, catalog, settings):
    deliver_everything(settings)  # both ready: by name, catalog first
    assert rows(web(ops).get("/").content.decode()) == ["catalog/prod", "payments/prod"]
    MySQLClaim.objects.filter(cell_env=placed, side="secondary").update(status=ClaimStatus.FAILED)
    assert rows(web(ops).get("/").content.decode()) == ["payments/prod", "catalog/prod"]  # attention first
    MySQLClaim.objects.filter(cell_env=placed).update(status=ClaimStatus.READY)
    MySQLClaim.objects.filter(cell_env=catalog, side="primary").update(status=ClaimStatus.DELIVERING)
    assert rows(web(ops).get("/").content.decode()) == ["catalog/prod", "payments/prod"]  # then in progress


def test_the_list_updates_live_and_answers_204_while_nothing_changed(web, ops, placed, catalog, settings):
    client = web(ops)
    html = client.get("/?q=pay").content.decode()
    table = re.search(r'<div id="cell-table"[^>]*>', html).group(0)
    assert 'hx-trigger="every 5s"' in table and 'hx-get="/?q=pay"' in table
    version = re.search(r'data-version="(\w+)"', table).group(1)
    r = client.get("/", {"q": "pay", "version": version}, **htmx("cell-table"))
    assert r.status_code == 204  # the poll: nothing to swap
    deliver_everything(settings)
    r = client.get("/", {"q": "pay", "version": version}, **htmx("cell-table"))
    html = r.content.decode()
    assert r.status_code == 200 and html.startswith('<div id="cell-table"') and rows(html) == ["payments/prod"]
    assert re.search(r'data-version="(\w+)"', html).group(1) != version
    assert 'id="home-summary" aria-label="Summary" hx-swap-oob="true"' in html  # the counts follow out of band
