"""Single sign-on with OpenID Connect (mozilla-django-oidc): on only when configured.

The provider is found by its discovery document (`OIDC_OP_DISCOVERY_URL`) or by explicit endpoints (an explicit
one wins). A sign-in runs the authorization code flow; the backend checks the ID token (signature, nonce, audience,
issuer) and, on every sign-in, makes the person's roles follow the provider's groups claim (`IDP_OIDC_GROUPS_CLAIM`)
through `IDP_OIDC_GROUP_MAP`: the `operators` group (and `is_staff`, for the admin console) and their team
memberships, added and removed. Groups the map does not name are ignored; a person with no mapped group signs in
with no team and sees no cell (the identity provider decides who may sign in, the groups decide what they see).

Local accounts stay (the demo users, break-glass): password sign-in is untouched, and a local account (one with a
usable password) is never taken over by a single sign-on with the same username.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from cells.access import OPERATORS_GROUP
from cells.audit import record_event
from cells.models import Team

log = logging.getLogger(__name__)

# What IDP_OIDC_GROUP_MAP maps a group to: the operator role, or a team by its slug.
OPERATOR_ROLE = "operators"
TEAM_PREFIX = "team:"
# endpoint -> (explicit setting, key of the discovery document)
ENDPOINTS = {
    "authorization": ("OIDC_OP_AUTHORIZATION_ENDPOINT", "authorization_endpoint"),
    "token": ("OIDC_OP_TOKEN_ENDPOINT", "token_endpoint"),
    "userinfo": ("OIDC_OP_USER_ENDPOINT", "userinfo_endpoint"),
    "jwks": ("OIDC_OP_JWKS_ENDPOINT", "jwks_uri"),
}
DISCOVERY_TTL = 3600.0  # seconds a discovery document is reused


class ProviderUnavailable(Exception):
    """The provider's discovery document cannot be read, or names no such endpoint."""


def _needed_endpoints() -> list[str]:
    symmetric = settings.OIDC_RP_SIGN_ALGO.startswith("HS")
    return [k for k in ENDPOINTS if not (k == "jwks" and symmetric)]


def enabled() -> bool:
    """A client id and a provider (its discovery URL, or every endpoint the flow needs)."""
    if not getattr(settings, "OIDC_RP_CLIENT_ID", ""):
        return False
    return bool(settings.OIDC_OP_DISCOVERY_URL
                or all(getattr(settings, ENDPOINTS[k][0], "") for k in _needed_endpoints()))


# -- the provider ------------------------------------------------------------------------------

_discovered: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


def discovery() -> dict:
    """The provider's discovery document ({} without OIDC_OP_DISCOVERY_URL), cached for DISCOVERY_TTL."""
    url = settings.OIDC_OP_DISCOVERY_URL
    if not url:
        return {}
    now = time.monotonic()
    with _lock:
        hit = _discovered.get(url)
    if hit and now - hit[0] < DISCOVERY_TTL:
        return hit[1]
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"cannot read the provider's discovery document {url}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProviderUnavailable(f"{url} is not a discovery document")
    with _lock:
        _discovered[url] = (now, doc)
    return doc


def reset() -> None:
    with _lock:
        _discovered.clear()


def endpoint(kind: str) -> str:
    setting, key = ENDPOINTS[kind]
    value = getattr(settings, setting, "") or discovery().get(key)
    if not value:
        raise ProviderUnavailable(f"no {kind} endpoint: set {setting}, or OIDC_OP_DISCOVERY_URL to a document with {key}")
    return value


# -- roles from groups -------------------------------------------------------------------------

@dataclass(frozen=True)
class Roles:
    operator: bool
    teams: frozenset[str]


def groups_of(claims: dict) -> list[str]:
    """The groups claim: a list of names (a single name is taken as a list of one)."""
    value = claims.get(settings.IDP_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def roles_from_groups(groups, group_map: dict[str, str]) -> Roles:
    """Pure: the roles the mapped groups give; groups the map does not name give nothing."""
    targets = {group_map[g] for g in groups if g in group_map}
    return Roles(operator=OPERATOR_ROLE in targets,
                 teams=frozenset(t[len(TEAM_PREFIX):] for t in targets if t.startswith(TEAM_PREFIX)))


def apply_roles(user, roles: Roles) -> dict:
    """Make the user's operator role and team memberships exactly `roles` (added and removed); audited when
    anything changed. A team the policy does not know is skipped (teams come from the policy's registry)."""
    operators, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    was_operator = user.groups.filter(pk=operators.pk).exists()
    teams = {t.slug: t for t in Team.objects.filter(slug__in=roles.teams)}
    if roles.teams - teams.keys():
        log.warning("IDP_OIDC_GROUP_MAP names teams that do not exist: %s", ", ".join(sorted(roles.teams - teams.keys())))
    before = set(user.teams.values_list("slug", flat=True))
    user.teams.set(teams.values())
    (user.groups.add if roles.operator else user.groups.remove)(operators)
    staff = roles.operator or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    changes = {"teamsAdded": sorted(teams.keys() - before), "teamsRemoved": sorted(before - teams.keys())}
    if was_operator != roles.operator:
        changes["operator"] = roles.operator
    if changes["teamsAdded"] or changes["teamsRemoved"] or "operator" in changes:
        what = [f"+team {t}" for t in changes["teamsAdded"]] + [f"-team {t}" for t in changes["teamsRemoved"]]
        if "operator" in changes:
            what.append("+operator" if roles.operator else "-operator")
        record_event(user, "portal.sso.roles",
                     f"{user.username}: roles from the identity provider's groups: {', '.join(what)}", **changes)
    return changes


# -- the backend -------------------------------------------------------------------------------

class SSOBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with lazy endpoints (discovery), ID token checks it leaves out (audience,
    issuer), users keyed by username, and roles from the groups claim."""

    def __init__(self, *args, **kwargs):
        # Nothing here may reach the network: Django builds every backend for each password sign-in too.
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: endpoint("token"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: endpoint("userinfo"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: endpoint("jwks"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = property(lambda self: settings.OIDC_RP_SIGN_ALGO)
    OIDC_RP_IDP_SIGN_KEY = property(lambda self: getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None))

    def authenticate(self, request, **kwargs):
        if request is None or not enabled() or "code" not in request.GET:
            return None  # a password sign-in, or SSO is off
        try:
            return super().authenticate(request, **kwargs)
        except (ProviderUnavailable, requests.RequestException, SuspiciousOperation, jwt.InvalidTokenError) as exc:
            log.warning("single sign-on refused: %s", exc)
            request.sso_error = "the identity provider's answer was not accepted" \
                if isinstance(exc, (SuspiciousOperation, jwt.InvalidTokenError)) else "the identity provider is unreachable"
            return None

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def retrieve_matching_jwk(self, token):
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        # OpenID Connect Core 10.1: a provider that publishes a single signing key may leave the kid out.
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        keys = [k for k in response.json().get("keys", []) if k.get("use", "sig") == "sig"]
        if len(keys) != 1:
            raise SuspiciousOperation("the ID token names no key (kid) and the provider publishes several")
        return jwt.PyJWK(keys[0])

    def get_username(self, claims) -> str:
        return str(claims.get("preferred_username") or claims.get("email") or "").strip()[:150]

    def verify_claims(self, claims) -> bool:
        return bool(self.get_username(claims))

    def _check_id_token(self, payload: dict) -> None:
        aud = payload.get("aud")
        if settings.OIDC_RP_CLIENT_ID not in ([aud] if isinstance(aud, str) else list(aud or [])):
            raise SuspiciousOperation("the ID token was issued for another client (aud)")
        issuer = discovery().get("issuer")
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation(f"the ID token's issuer {payload.get('iss')!r} is not {issuer!r}")

    def get_or_create_user(self, access_token, id_token, payload):
        self._check_id_token(payload)
        claims = {**payload, **self.get_userinfo(access_token, id_token, payload)}  # userinfo wins
        if not self.verify_claims(claims):
            raise SuspiciousOperation("the identity provider sent neither preferred_username nor email")
        username = self.get_username(claims)
        with transaction.atomic():
            user = self.UserModel.objects.select_for_update().filter(username=username).first()
            if user is None:
                user = self.UserModel.objects.create_user(username)  # no password: it signs in by SSO only
            elif user.has_usable_password():
                self.request.sso_error = f"{username} is a local account: sign in with its password"
                raise SuspiciousOperation(f"{username} is a local account; single sign-on does not take it over")
            user.email = str(claims.get("email") or user.email)[:254]
            user.first_name = str(claims.get("given_name") or user.first_name)[:150]
            user.last_name = str(claims.get("family_name") or user.last_name)[:150]
            user.save(update_fields=["email", "first_name", "last_name"])
            apply_roles(user, roles_from_groups(groups_of(claims), settings.IDP_OIDC_GROUP_MAP))
        return user


# -- the two views ----------------------------------------------------------------------------

class SSOAuthenticateView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: to the provider's authorization endpoint (404 while SSO is off)."""

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)  # the endpoint is resolved per request, where a failure can be shown

    def get(self, request):
        if not enabled():
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = endpoint("authorization")
        except ProviderUnavailable as exc:
            log.warning("single sign-on unavailable: %s", exc)
            messages.error(request, "Single sign-on is unavailable: the identity provider cannot be reached. "
                                    "Try again, or sign in with a local account.")
            return redirect(settings.LOGIN_URL)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class SSOCallbackView(OIDCAuthenticationCallbackView):
    """/oidc/callback/: the provider sends the browser back here with the code."""

    def get(self, request):
        if not enabled():
            raise Http404("single sign-on is not configured")
        return super().get(request)

    def login_failure(self):
        reason = getattr(self.request, "sso_error", "") or self.request.GET.get("error", "")[:80]
        messages.error(self.request, "Single sign-on did not sign you in" + (f" ({reason})" if reason else "")
                       + ". Try again, or sign in with a local account.")
        return redirect(settings.LOGIN_URL)
