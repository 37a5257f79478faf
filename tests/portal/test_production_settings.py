"""Production behind TLS: Django's deploy check is clean, a weak secret key is refused, HTTPS is enforced (HSTS, the
redirect, secure cookies) except for the probes, and a Content-Security-Policy allows no inline script, inline
style or eval — the portal's pages carry none."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from cells import services
from cells.models import CellEnvironment

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **extra) -> dict:
    """The environment of a production install: no DJANGO_* or IDP_* inherited from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IDP_", "DATABASE_URL"))}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "DJANGO_ALLOWED_HOSTS": "idp.company.com",
                "IDP_DATA_DIR": str(tmp_path), **extra})
    return env


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_the_deploy_check_is_clean_in_production(tmp_path):
    proc = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout, proc.stdout + proc.stderr
    assert "WARNINGS" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("key", ["short-key", "x" * 64, "django-insecure-" + secrets.token_urlsafe(48)])
def test_a_weak_secret_key_is_refused_in_production(tmp_path, key):
    proc = run(["manage.py", "check"], production_env(tmp_path, DJANGO_SECRET_KEY=key))
    assert proc.returncode != 0
    assert "DJANGO_SECRET_KEY is too weak for production" in proc.stderr


def test_production_defaults_enforce_https(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, getattr(s, 'SECURE_PROXY_SSL_HEADER', None))")
    assert run(["-c", code], production_env(tmp_path)).stdout.split() == ["True", "31536000", "True", "True", "True", "None"]
    behind = run(["-c", code], production_env(tmp_path, DJANGO_BEHIND_PROXY="1")).stdout
    assert "('HTTP_X_FORWARDED_PROTO', 'https')" in behind
    dev = run(["-c", code], production_env(tmp_path, DJANGO_DEBUG="1", DJANGO_SECRET_KEY="")).stdout.split()
    assert dev[:2] == ["False", "0"]


@pytest.mark.django_db
def test_plain_http_is_redirected_except_for_the_probes(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    r = client.get("/accounts/login/")
    assert (r.status_code, r["Location"]) == (301, "https://testserver/accounts/login/")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)  # reachable: its answer depends on the broker
    secure = client.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=|\son[a-z]+\s*=\s*[\"']|javascript:|hx-on|hx-vals=[\"']js:", re.I)


@pytest.fixture
def placed(dev, test_policy):
    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    services.request_app(dev, cell="payments", environment="prod", image="ghcr.io/acme/payments:1.0",
                         public_host="payments.prod.company.com")


@pytest.mark.django_db
def test_every_page_carries_a_strict_csp_and_no_inline_script_or_style(dev, ops, placed):
    ops.is_staff = True
    ops.save()
    pages = {dev: ["/", "/cells/payments/prod/", "/request/app/", "/request/mysql/", "/runs/", "/api/docs/",
                   "/cells/payments/prod/decommission/"],
             ops: ["/audit/", "/policy/", "/cells/payments/prod/failover/?kind=switchover", "/admin/",
                   "/admin/cells/cellenvironment/", f"/admin/cells/cellenvironment/{CellEnvironment.objects.get().pk}/change/"]}
    anonymous = Client().get("/accounts/login/")
    for response, url in [(anonymous, "/accounts/login/")] + [
            (_signed_in(user).get(url), url) for user, urls in pages.items() for url in urls]:
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
        html = response.content.decode()
        if url.startswith("/admin/"):
            continue  # Django's admin: its own templates (checked in a browser: tests/e2e/test_csp_browser.py)
        assert not INLINE_SCRIPT.findall(html), (url, INLINE_SCRIPT.findall(html))
        assert not INLINE_STYLE.findall(html), (url, INLINE_STYLE.findall(html))


@pytest.mark.django_db
def test_the_swagger_ui_loads_its_init_script_from_its_own_url(dev):
    client = _signed_in(dev)
    html = client.get("/api/docs/").content.decode()
    src = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"', html).group(1)
    script = client.get(src.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
