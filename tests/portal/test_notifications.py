"""/notifications/: the notices of the cells a person can see, the unread count in the navigation, marking read."""
import re

import pytest

from dr import notices
from dr.models import NoticeEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def told(placed, catalog):
    """One notice for payments/prod (team payments), one for catalog/prod (storefront), one with no cell."""
    return {
        "payments": notices.emit(NoticeEvent.CLAIM_FAILED, "payments/prod: payments-prod-mysql-secondary failed: quota",
                                 cell_env=placed),
        "catalog": notices.emit(NoticeEvent.CLAIM_FAILED, "catalog/prod: catalog-prod-mysql-primary failed: quota",
                                cell_env=catalog),
        "operators": notices.evacuation_started("evac-1", "oci/us-ashburn-1")[0],
    }


def shown(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-notice="(\d+)"', response.content.decode())}


def unread_badge(response) -> str | None:
    found = re.search(r'data-testid="notifications"[^>]*>Notifications(?: <span class="nav-count">([^<]+)<)?',
                      response.content.decode())
    return found.group(1) if found else "no link"


def test_a_developer_sees_the_notices_of_their_teams_cells_only(web, dev, told):
    r = web(dev).get("/notifications/")
    assert r.status_code == 200
    assert shown(r) == {told["payments"].pk}
    assert b"quota" in r.content and b"catalog/prod" not in r.content


def test_an_operator_sees_every_notice(web, ops, told):
    assert shown(web(ops).get("/notifications/")) == {n.pk for n in told.values()}


def test_anonymous_is_sent_to_sign_in(web, told):
    r = web().get("/notifications/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/?next=/notifications/")
    assert web().post("/notifications/read/").status_code == 302


def test_the_navigation_counts_unread_notices_and_marking_read_clears_them(web, dev, outsider, told):
    client = web(dev)
    assert unread_badge(client.get("/notifications/")) == "1"
    r = client.post("/notifications/read/", {"notice": told["payments"].pk}, follow=True)
    assert r.redirect_chain[-1][0] == "/notifications/"
    assert unread_badge(r) is None and b'class="unread"' not in r.content
    assert unread_badge(web(outsider).get("/notifications/")) == "1"  # read is per person


def test_mark_all_read_and_the_unread_filter(web, ops, told):
    client = web(ops)
    assert unread_badge(client.get("/notifications/")) == "3"
    assert shown(client.get("/notifications/?show=unread")) == {n.pk for n in told.values()}
    client.post("/notifications/read/", {"show": "unread"})
    assert shown(client.get("/notifications/?show=unread")) == set()
    assert unread_badge(client.get("/notifications/")) is None
    assert shown(client.get("/notifications/")) == {n.pk for n in told.values()}  # read, still listed


def test_a_developer_cannot_mark_another_team_s_notice(web, dev, outsider, told):
    web(dev).post("/notifications/read/", {"notice": [told["catalog"].pk, "junk"]})
    assert notices.unread_count(outsider) == 1
    assert notices.unread_count(dev) == 1
