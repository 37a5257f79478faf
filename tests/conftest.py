import pytest
import yaml
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from cells.access import OPERATORS_GROUP
from cells.models import Team
from policy import active

from tests.helpers import BASE


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    active.reset()
    yield
    active.reset()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """API throttles count in the cache: each test starts with none of its requests counted."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def use_policy(settings, tmp_path):
    """Make `doc` (a dict or YAML text) the active policy file; returns its path."""

    def _use(doc=None, name="policy.yaml"):
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc if doc is not None else BASE, sort_keys=False))
        settings.IDP_POLICY_FILE = path
        active.reset()
        return path

    return _use


@pytest.fixture
def test_policy(use_policy):
    """The small test policy (tests/helpers.py) is active."""
    return use_policy()


def _user(username, teams=(), operator=False):
    user = User.objects.create_user(username, password="pw-for-tests-123")
    for slug in teams:
        team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
        team.members.add(user)
    if operator:
        user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    return user


@pytest.fixture
def dev(db):
    """A developer in the team that owns `payments`."""
    return _user("dev", ["payments"])


@pytest.fixture
def teammate(db):
    return _user("teammate", ["payments"])


@pytest.fixture
def outsider(db):
    """A developer of another team (storefront)."""
    return _user("outsider", ["storefront"])


@pytest.fixture
def ops(db):
    return _user("ops", operator=True)


def _client(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated as `user` (None: anonymous)."""
    return _client


@pytest.fixture(autouse=True)
def _isolated_pipeline(settings, tmp_path):
    """Each test delivers into its own git repository; in-process sends go to an in-memory broker."""
    from portal.celery import app

    settings.IDP_GITOPS_REPO = tmp_path / "gitops"
    settings.IDP_DELIVERY_TARGET = "gitops"
    settings.IDP_STATUS_SOURCE = "simulator"
    settings.IDP_SANDBOX_PROVIDERS = ["*"]
    previous = app.conf.broker_url
    app.conf.broker_url = "memory://"
    yield
    app.conf.broker_url = previous
