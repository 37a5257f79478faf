"""The portal as people use it, in Debian's Chromium: every page of each role checked by axe-core, the request
form's error summary and tier defaults, the cells list at 1024–1440 px. Screenshots go to test-artifacts/."""
from __future__ import annotations

import re

import pytest

from cells import services
from dr.models import FailoverRun

from tests.e2e.test_browser import chromium, open_page, shot  # noqa: F401 (fixtures)
from tests.helpers import settle

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "dr_profile": "gold", "size": "small", "storage_gb": 50, "ha": True}
APP = {"cell": "payments", "environment": "prod", "image": "ghcr.io/acme/payments:1.0", "public_host": "payments.prod.company.com"}


def violations(page) -> list[str]:
    """axe-core's WCAG 2.x A and AA violations of the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    return [f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
            for v in result.response["violations"]]


@pytest.fixture
def placed_cell(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    services.request_mysql(dev, **MYSQL)
    ce = services.request_app(dev, **APP).cell_env
    settle()
    return ce


def test_every_page_a_developer_and_an_operator_reach_has_no_accessibility_violation(open_page, live_server, dev, ops,
                                                                                    placed_cell):
    from dr import services as dr_services

    run = dr_services.start_run(ops, cell="payments", environment="prod", dry_run=True, reason="drill")
    FailoverRun.objects.filter(pk=run.pk).update(state="succeeded")
    pages = {
        dev: ["/", "/request/mysql/", "/request/app/", "/cells/payments/prod/", "/cells/payments/prod/decommission/",
              "/runs/", f"/runs/{run.pk}/", "/profile/"],
        ops: ["/", "/cells/payments/prod/", "/cells/payments/prod/failover/?kind=failover", "/runs/", "/audit/",
              "/policy/", "/profile/"],
    }
    found = {}
    for user, urls in pages.items():
        page = open_page(user)
        for url in urls:
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("networkidle")
            if problems := violations(page):
                found[f"{user.username} {url}"] = problems
    # a page with flash messages: the form sent again answers "unchanged" on the cell page
    page = open_page(dev)
    page.goto(f"{live_server.url}/request/mysql/?cell=payments&environment=prod")
    page.get_by_role("button", name="Request MySQL").click()
    page.wait_for_url(re.compile(r"/cells/payments/prod/$"))
    assert page.locator(".messages li").count() >= 1
    if problems := violations(page):
        found["dev flash messages"] = problems
    assert found == {}


def test_a_submit_with_several_errors_focuses_a_summary_that_links_to_each_field(open_page, live_server, dev, test_policy):
    from playwright.sync_api import expect

    page = open_page(dev)
    page.goto(f"{live_server.url}/request/mysql/?cell=payments")
    page.get_by_label("Storage (GB)").fill("")
    page.get_by_label("High availability (ha)").uncheck()
    page.get_by_role("button", name="Request MySQL").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("2 problems to fix")
    expect(summary).to_contain_text("tier C0 requires ha=true")
    shot(page, "request-mysql-error-summary")
    summary.get_by_role("link", name=re.compile("Storage")).click()
    expect(page.get_by_label("Storage (GB)")).to_be_focused()
    assert violations(page) == []


def test_changing_the_tier_keeps_the_storage_the_user_typed(open_page, live_server, dev, test_policy):
    from playwright.sync_api import expect

    page = open_page(dev)
    page.goto(f"{live_server.url}/request/mysql/?cell=payments")
    page.get_by_label("Storage (GB)").fill("500")
    page.get_by_label("Storage (GB)").press("Tab")
    page.get_by_label("Tier").select_option("C2")
    expect(page.locator("#defaults-note")).to_contain_text("Kept what you typed: Storage (GB) 500 GB")
    expect(page.get_by_label("Storage (GB)")).to_have_value("500")
    expect(page.get_by_label("DR profile")).to_have_value("bronze")
    page.get_by_label("Tier").select_option("C0")
    expect(page.get_by_label("DR profile")).to_have_value("gold")
    assert page.locator('#id_drProfile option[value="bronze"]').is_disabled()  # C0 forbids it
    expect(page.get_by_label("Storage (GB)")).to_have_value("500")
    shot(page, "request-mysql-tier-keeps-typed")


@pytest.mark.parametrize("width", [1024, 1280, 1440])
def test_the_cells_list_fits_the_window_without_scrolling(open_page, live_server, ops, placed_cell, width):
    from tests.portal.bulk import create_cell_environments

    create_cell_environments(30)
    page = open_page(ops, width=width)
    page.goto(f"{live_server.url}/")
    table = page.locator("#cell-table")
    scroll, client = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert scroll <= client, f"the cells table needs {scroll} px in {client} px at a {width} px window"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"home-operator-{width}")


def test_the_cells_list_updates_by_itself(open_page, live_server, dev, test_policy, settings):
    from playwright.sync_api import expect

    settings.IDP_SIMULATOR_READY_DELAY = 0
    services.request_mysql(dev, **MYSQL)
    page = open_page(dev)
    row = page.locator("#cell-table tbody tr").first
    expect(row).to_contain_text("provisioning")
    settle()  # the pipeline delivers and the simulator reports ready, with the page left open
    expect(row).to_contain_text("ready", timeout=15_000)
    expect(page.locator("#home-summary")).to_contain_text("0 in progress")


def test_an_operator_evacuates_a_region_and_follows_it_to_the_report(open_page, live_server, dev, ops, test_policy,
                                                                     settings):
    from playwright.sync_api import expect

    from dr import evacuations
    from dr.models import Evacuation
    from tests.dr.helpers import ready_cell

    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, "C0", "gold", env="prod", host="payments.prod.company.com")
    ready_cell(dev, "C1", "silver", env="staging", host="payments.staging.company.com")
    page = open_page(ops)
    page.get_by_role("link", name="Evacuate").click()
    page.get_by_label("Cloud").select_option("oci")
    page.get_by_label("Region").select_option("us-ashburn-1")
    plan = page.locator("#evacuation-plan")
    expect(plan).to_contain_text("2 cell environments would move in 2 waves")
    expect(page.locator("#scope-to-type")).to_have_text("oci/us-ashburn-1")
    shot(page, "evacuation-plan")
    page.get_by_label("Reason").fill("us-ashburn-1 is down")
    page.get_by_label("Type the scope to confirm").fill("oci/us-ashburn-1")
    page.get_by_role("button", name="Evacuate").click()
    page.wait_for_url(re.compile(r"/evacuations/\d+/$"))
    expect(page.locator("#evacuation-live")).to_contain_text("waiting for its wave")
    assert violations(page) == []
    evacuations.advance(Evacuation.objects.get().pk)  # what the worker does
    expect(page.locator("#evacuation-report")).to_contain_text("RTO p50 / p99", timeout=15_000)
    expect(page.locator("#evacuation-live")).to_contain_text("2 moved")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)  # an ended evacuation offers no action
    shot(page, "evacuation-report")
    assert violations(page) == []
