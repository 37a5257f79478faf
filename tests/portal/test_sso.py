"""Single sign-on against a real OpenID provider (oidc-provider-mock) on 127.0.0.1: the whole authorization code
flow, portal -> provider's authorization form -> callback -> signed in, with roles from the groups claim."""
import re
import threading
from urllib.parse import quote, urlsplit

import warnings

import httpx
import pytest
import werkzeug.serving
from django.contrib.auth.models import User
from django.test import Client

from cells.access import is_operator, visible_environments
from cells.models import AuditEvent, Team
from portal import sso

with warnings.catch_warnings():  # authlib (the provider's library) warns about its own deprecations on import
    import authlib.deprecate  # noqa: F401  (it turns its warnings on; they are turned off after it)

    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib")]

GROUP_MAP = {"idp-operators": "operators", "team-payments": "team:payments", "team-storefront": "team:storefront"}


@pytest.fixture
def provider(monkeypatch):
    """An OpenID provider on 127.0.0.1 (plain HTTP, so authlib is told transport security is not checked)."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    server.server_close()


@pytest.fixture
def sso_on(settings, provider):
    settings.OIDC_RP_CLIENT_ID = "idp-portal"
    settings.OIDC_RP_CLIENT_SECRET = "client-secret-for-tests"
    settings.OIDC_OP_DISCOVERY_URL = f"{provider}/.well-known/openid-configuration"
    settings.IDP_OIDC_GROUP_MAP = GROUP_MAP
    for slug in ("payments", "storefront"):
        Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    sso.reset()
    yield provider
    sso.reset()


def person(provider, sub, **claims):
    """What the provider says about `sub` (its users' claims)."""
    assert httpx.put(f"{provider}/users/{quote(sub)}", json=claims).status_code == 204


def sign_in(client, provider, sub, next_page="/notifications/"):
    """Click "Sign in with SSO", pick `sub` on the provider's authorization form, follow back to the portal."""
    login = client.get(f"/accounts/login/?next={quote(next_page)}")
    link = re.search(r'href="([^"]+)"[^>]*>Sign in with SSO<', login.content.decode())
    assert link, "the login page offers single sign-on"
    to_provider = client.get(link.group(1).replace("&amp;", "&"))
    assert to_provider.status_code == 302 and to_provider["Location"].startswith(f"{provider}/oauth2/authorize?")
    form = httpx.get(to_provider["Location"])
    assert form.status_code == 200 and 'name="sub"' in form.text
    answer = httpx.post(to_provider["Location"], data={"sub": sub})
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    assert (back.netloc, back.path) == ("testserver", "/oidc/callback/")
    return client.get(f"{back.path}?{back.query}", follow=True)


def signed_in_as(response) -> str | None:
    found = re.search(r'data-testid="username">([^<]+)<', response.content.decode())
    return found.group(1) if found else None


def roles(username):
    user = User.objects.get(username=username)
    return {"teams": sorted(user.teams.values_list("slug", flat=True)), "operator": is_operator(user),
            "staff": user.is_staff}


def test_sso_sign_in_gives_the_teams_and_operator_role_of_the_groups(sso_on):
    person(sso_on, "alice-sub", preferred_username="alice", email="alice@example.com",
           groups=["team-payments", "idp-operators", "some-unmapped-group"])
    page = sign_in(Client(), sso_on, "alice-sub")
    assert page.status_code == 200 and page.redirect_chain[-1][0] == "/notifications/"
    assert signed_in_as(page) == "alice"
    assert roles("alice") == {"teams": ["payments"], "operator": True, "staff": True}
    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.com" and not alice.has_usable_password()  # SSO only
    event = AuditEvent.objects.get(action="portal.sso.roles")
    assert event.data == {"teamsAdded": ["payments"], "teamsRemoved": [], "operator": True}


def test_the_next_sign_in_follows_the_groups_exactly(sso_on):
    person(sso_on, "alice-sub", preferred_username="alice", groups=["team-payments", "idp-operators"])
    client = Client()
    sign_in(client, sso_on, "alice-sub")
    Team.objects.get(slug="storefront").members.add(User.objects.get(username="alice"))  # added by hand meanwhile
    client.post("/accounts/logout/")
    person(sso_on, "alice-sub", preferred_username="alice", groups=["team-payments"])  # left the operators
    page = sign_in(client, sso_on, "alice-sub")
    assert signed_in_as(page) == "alice"
    assert roles("alice") == {"teams": ["payments"], "operator": False, "staff": False}
    assert b"role-operator" not in page.content
    person(sso_on, "alice-sub", preferred_username="alice", groups=["team-storefront"])  # moved teams
    sign_in(client, sso_on, "alice-sub")
    assert roles("alice") == {"teams": ["storefront"], "operator": False, "staff": False}


def test_a_person_with_no_mapped_group_signs_in_with_no_team(sso_on, placed):
    person(sso_on, "bob-sub", preferred_username="bob", groups=["marketing"])
    page = sign_in(Client(), sso_on, "bob-sub")
    assert signed_in_as(page) == "bob"
    assert roles("bob") == {"teams": [], "operator": False, "staff": False}
    assert b"no team" in page.content
    assert not visible_environments(User.objects.get(username="bob")).exists()  # sees no cell
    assert not AuditEvent.objects.filter(action="portal.sso.roles").exists()  # nothing changed


def test_the_username_falls_back_to_the_email(sso_on):
    person(sso_on, "carol-sub", email="carol@example.com", groups=["team-storefront"])
    assert signed_in_as(sign_in(Client(), sso_on, "carol-sub")) == "carol@example.com"
    assert roles("carol@example.com")["teams"] == ["storefront"]


def test_sso_never_takes_over_a_local_account_and_local_sign_in_stays(sso_on, dev):
    person(sso_on, "mallory-sub", preferred_username="dev", groups=["idp-operators"])
    client = Client()
    page = sign_in(client, sso_on, "mallory-sub")
    assert signed_in_as(page) is None and page.redirect_chain[-1][0] == "/accounts/login/"
    assert b"dev is a local account" in page.content
    assert roles("dev") == {"teams": ["payments"], "operator": False, "staff": False}
    # break-glass: the local password still signs in while SSO is on
    r = client.post("/accounts/login/", {"username": "dev", "password": "pw-for-tests-123", "next": "/notifications/"},
                    follow=True)
    assert signed_in_as(r) == "dev"


def test_an_unreachable_provider_is_a_message_not_an_error(settings):
    settings.OIDC_RP_CLIENT_ID = "idp-portal"
    settings.OIDC_OP_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"  # nothing listens
    sso.reset()
    r = Client().get("/oidc/authenticate/", follow=True)
    assert r.redirect_chain[-1][0] == "/accounts/login/"
    assert b"Single sign-on is unavailable" in r.content


def test_sso_is_off_until_configured(dev):
    client = Client()
    assert b"Sign in with SSO" not in client.get("/accounts/login/").content
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    r = client.post("/accounts/login/", {"username": "dev", "password": "pw-for-tests-123", "next": "/notifications/"},
                    follow=True)
    assert signed_in_as(r) == "dev"


def test_roles_come_only_from_mapped_groups():
    assert sso.roles_from_groups(["idp-operators", "x", "team-payments"], GROUP_MAP) == \
        sso.Roles(operator=True, teams=frozenset({"payments"}))
    assert sso.roles_from_groups([], GROUP_MAP) == sso.Roles(operator=False, teams=frozenset())
