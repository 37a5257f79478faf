"""Repeated failed sign-ins lock the user name out from that address (django-axes): the right password is refused
too, the sign-in page says why and for how long. API tokens are not passwords: they keep working."""
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"  # tests/conftest.py's users


@pytest.fixture(autouse=True)
def _limits(settings):
    from datetime import timedelta

    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=10)


def sign_in(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def fail(client, username, times, **extra):
    for _ in range(times):
        r = sign_in(client, username, "not-the-password", **extra)
    return r


def test_the_right_password_is_refused_after_repeated_failures(dev):
    client = Client()
    r = fail(client, "dev", 2)
    assert r.status_code == 200 and "did not match" in r.content.decode()
    r = fail(client, "dev", 1)  # the third failure locks
    assert r.status_code == 429
    r = sign_in(client, "dev", PASSWORD)
    assert r.status_code == 429
    assert r["Retry-After"] == "600"
    html = r.content.decode()
    assert "Too many failed sign-ins (3)" in html and "blocked for 10 minutes, even with the right password" in html
    assert 'data-testid="locked-out"' in html and 'name="password"' in html  # the sign-in page, with the form
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still signed out


def test_the_lockout_is_for_that_user_from_that_address(dev, teammate):
    fail(Client(), "dev", 3)
    assert sign_in(Client(), "teammate", PASSWORD).status_code == 302  # another user from the same address
    assert sign_in(Client(), "dev", PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 302  # dev from elsewhere


def test_an_operator_unlocks_by_deleting_the_access_attempts(dev):
    from axes.models import AccessAttempt

    fail(Client(), "dev", 3)
    assert sign_in(Client(), "dev", PASSWORD).status_code == 429
    AccessAttempt.objects.filter(username="dev").delete()
    assert sign_in(Client(), "dev", PASSWORD).status_code == 302


def test_a_success_before_the_limit_forgets_the_failures(dev):
    client = Client()
    fail(client, "dev", 2)
    assert sign_in(client, "dev", PASSWORD).status_code == 302
    fail(Client(), "dev", 2)
    assert sign_in(Client(), "dev", PASSWORD).status_code == 302


def test_the_admin_sign_in_is_locked_too(ops):
    ops.is_staff = True
    ops.save()
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "ops", "password": "nope"})
    r = client.post("/admin/login/", {"username": "ops", "password": PASSWORD})
    assert r.status_code == 429


def test_api_tokens_keep_working_while_the_user_is_locked_out(dev, test_policy):
    from rest_framework.authtoken.models import Token

    fail(Client(), "dev", 3)
    assert sign_in(Client(), "dev", PASSWORD).status_code == 429
    token = Token.objects.create(user=dev)
    r = Client().get("/api/me", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert r.status_code == 200 and r.json()["username"] == "dev"


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(dev, settings):
    settings.DJANGO_BEHIND_PROXY = True
    # a client that forges X-Forwarded-For gets the proxy's appended address counted anyway
    for forged in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        sign_in(Client(), "dev", "nope", HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.7")
    assert sign_in(Client(), "dev", PASSWORD, HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7").status_code == 429
    assert sign_in(Client(), "dev", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302
