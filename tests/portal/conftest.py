"""Portal fixtures: signed-in browsers (Django test clients) per role, and placed cell environments."""
import pytest
from django.test import Client

from cells import services
from tests.helpers import settle

MYSQL = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)
APP = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", image="ghcr.io/acme/payments:1.0",
           public_host="payments.prod.company.com")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def web():
    """web(user) -> a Django test client signed in as `user` (None: anonymous)."""

    def _web(user=None):
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return _web


def htmx(target: str, trigger_name: str | None = None, current_url: str = "http://testserver/") -> dict:
    headers = {**HTMX, "HTTP_HX_TARGET": target, "HTTP_HX_CURRENT_URL": current_url}
    if trigger_name:
        headers["HTTP_HX_TRIGGER_NAME"] = trigger_name
    return headers


@pytest.fixture
def placed(dev, test_policy):
    """payments/prod (team payments) with MySQL and an app, nothing delivered yet."""
    services.request_mysql(dev, **MYSQL)
    return services.request_app(dev, **APP).cell_env


@pytest.fixture
def catalog(outsider, test_policy):
    """catalog/prod, owned by team storefront (the outsider's team)."""
    return services.request_mysql(outsider, cell="catalog", environment="prod", tier="C1", dr_profile="silver").cell_env


def deliver_everything(settings):
    """Run the pipeline in-process: deliver every pending outbox row, then read the (sandbox) cluster state."""
    settings.IDP_SIMULATOR_READY_DELAY = 0
    settle()
