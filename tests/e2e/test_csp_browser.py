"""The Content-Security-Policy in a real browser (Debian's Chromium): the portal's pages, its htmx swaps, the Django
admin and the Swagger UI work under it, and Chromium reports no violation on any of them."""
from __future__ import annotations

import pytest

from cells import services
from cells.models import CellEnvironment

from .test_browser import chromium, open_page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile || document.location.pathname}:${e.lineNumber}`));
"""


def watched(page):
    """Collect CSP violations (the DOM event and Chromium's console messages) on every page `page` opens."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    page.context.add_init_script(WATCH)
    return found


def violations(page, found) -> list[str]:
    return found + page.evaluate("window.__cspViolations || []")


def test_the_portal_admin_and_api_docs_run_under_the_csp(open_page, live_server, dev, ops, test_policy):  # noqa: F811
    from playwright.sync_api import expect

    services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    services.request_app(dev, cell="payments", environment="prod", image="ghcr.io/acme/payments:1.0",
                         public_host="payments.prod.company.com")
    page = open_page(dev)
    found = watched(page)
    seen = []

    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("link", name="payments/prod")).to_be_visible()
    seen += violations(page, found)

    page.goto(f"{live_server.url}/cells/payments/prod/")
    expect(page.locator("svg.topology-wide")).to_be_visible()
    seen += violations(page, found)

    # the request form: an htmx swap on change, which sends the changed field's name (no eval)
    page.goto(f"{live_server.url}/request/mysql/?cell=payments&environment=staging")
    with page.expect_request(lambda r: "changed=tier" in r.url):
        page.get_by_label("Tier").select_option("C2")
    expect(page.get_by_label("DR profile")).to_have_value("bronze")
    expect(page.locator("#placement-preview .chosen-secondary")).to_be_visible()
    seen += violations(page, found)

    # the Swagger UI: its init script comes from its own URL
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("idp-multicloud API")
    expect(page.locator("#swagger-ui .opblock").first).to_be_visible()
    seen += violations(page, found)
    assert seen == [], seen

    ops.is_staff = True
    ops.save()
    admin = open_page(ops)
    found = watched(admin)
    ce = CellEnvironment.objects.get()
    for path in ("/admin/", "/admin/cells/cellenvironment/", f"/admin/cells/cellenvironment/{ce.pk}/change/",
                 "/admin/cells/team/", f"/admin/auth/user/{ops.pk}/change/"):
        response = admin.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        expect(admin.locator("#content")).to_be_visible()
        seen += violations(admin, found)
    assert seen == [], seen
