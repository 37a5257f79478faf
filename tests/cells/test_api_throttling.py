"""The API throttles each client (DRF user/anon throttles, rates from settings, counted in the Django cache):
beyond the rate, 429 in the API's error shape with Retry-After. The default rates leave the suite unthrottled."""
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_beyond_the_rate_a_client_gets_429_with_retry_after(api, dev, settings):
    settings.IDP_API_THROTTLE_RATES = {"user": "3/minute", "anon": "off"}
    client = api(dev)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
    r = client.get("/api/me")
    assert r.status_code == 429
    assert 55 <= int(r["Retry-After"]) <= 60
    assert r.json()["error"] == "throttled" and "available in" in r.json()["detail"]


def test_each_user_has_their_own_budget(api, dev, ops, settings):
    settings.IDP_API_THROTTLE_RATES = {"user": "2/minute", "anon": "off"}
    for _ in range(2):
        api(dev).get("/api/me")
    assert api(dev).get("/api/me").status_code == 429
    assert api(ops).get("/api/me").status_code == 200


def test_token_clients_are_throttled_per_user(dev, settings):
    settings.IDP_API_THROTTLE_RATES = {"user": "2/minute", "anon": "off"}
    token = Token.objects.create(user=dev)
    statuses = [Client().get("/api/me", HTTP_AUTHORIZATION=f"Token {token.key}").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_scope_turned_off_never_throttles(api, dev, settings):
    settings.IDP_API_THROTTLE_RATES = {"user": "off", "anon": "off"}
    assert {api(dev).get("/api/me").status_code for _ in range(20)} == {200}
