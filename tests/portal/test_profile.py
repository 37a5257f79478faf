"""The profile page: who I am, and my API token (created or replaced here, its key shown once)."""
import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cells.models import AuditEvent

pytestmark = pytest.mark.django_db


def key_shown(html: str) -> str | None:
    m = re.search(r'data-testid="new-token">(\w+)<', html)
    return m.group(1) if m else None


def test_signing_in_is_required(web):
    r = web().get("/profile/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_the_header_links_to_the_profile_and_it_says_role_and_teams(web, dev, test_policy):
    client = web(dev)
    assert 'href="/profile/"' in client.get("/").content.decode()
    html = client.get("/profile/").content.decode()
    assert "developer" in html and "team payments" in html
    assert "You have no API token yet." in html and "Create an API token" in html


def test_a_developer_creates_a_token_sees_it_once_and_it_works_on_the_api(web, dev, test_policy):
    client = web(dev)
    key = key_shown(client.post("/profile/").content.decode())
    assert key and Token.objects.get(user=dev).key == key
    me = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Token {key}")
    assert me.status_code == 200 and me.json()["username"] == "dev"
    later = client.get("/profile/").content.decode()
    assert key not in later and f"…{key[-4:]}" in later  # afterwards only a hint
    event = AuditEvent.objects.get(action="accounts.token.created")
    assert event.actor == dev and key not in event.message and key not in str(event.data)


def test_replacing_the_token_stops_the_old_one_at_once(web, ops, test_policy):
    client = web(ops)
    old = key_shown(client.post("/profile/").content.decode())
    new = key_shown(client.post("/profile/").content.decode())
    assert old != new
    assert APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Token {old}").status_code == 401
    assert APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Token {new}").status_code == 200
    assert AuditEvent.objects.filter(action="accounts.token.replaced").count() == 1


def test_creating_a_token_needs_the_csrf_token(dev, test_policy):
    client = Client(enforce_csrf_checks=True)
    client.force_login(dev)
    assert client.post("/profile/").status_code == 403
    assert not Token.objects.filter(user=dev).exists()


def test_the_api_docs_say_where_to_get_a_token(api, dev):
    schema = api(dev).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "[your profile page](/profile/)" in schema["info"]["description"]
