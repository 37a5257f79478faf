"""The portal in a real browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright, against Django's live server.

Never a downloaded browser: `.ci/run` installs the `chromium` package; Playwright only drives it. Screenshots of the
main pages go to test-artifacts/screenshots/ (git-ignored) at 1280 px and at 400 px wide.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from cells import pipeline, services
from cells.models import Delivery, MySQLClaim

from tests.helpers import BASE, settle

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("IDP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "pw-for-tests-123"  # tests/conftest.py's users
TIMEOUT = 15_000  # ms


@pytest.fixture(scope="module")
def chromium():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM} (.ci/run: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(chromium, live_server):
    """open_page(user, width=1280) -> a signed-in Playwright page; every page is closed after the test."""
    contexts = []

    def _open(user, width: int = 1280):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(TIMEOUT)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("User name").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield _open
    for context in contexts:
        context.close()


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def shot_of(locator, name: str) -> Path:
    """A screenshot of one element (a panel of a long page), to look at closely."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    locator.screenshot(path=str(path))
    return path


def chosen(page, role: str) -> str:
    return page.locator(f"#placement-preview .chosen-{role} .site").inner_text().strip()


def test_a_developer_requests_a_mysql_and_the_preview_follows_the_tier(open_page, live_server, dev, test_policy):
    from playwright.sync_api import expect

    page = open_page(dev)
    expect(page.get_by_test_id("username")).to_have_text("dev")
    expect(page.locator(".teams")).to_contain_text("payments")
    shot(page, "home-empty-developer")
    page.get_by_role("link", name="Request MySQL", exact=True).first.click()
    expect(page.get_by_role("heading", name="Request a MySQL")).to_be_visible()

    # The tier's defaults are prefilled, and the preview shows C0/gold: the secondary on another cloud.
    expect(page.get_by_label("DR profile")).to_have_value("gold")
    expect(page.get_by_label("Storage (GB)")).to_have_value("50")
    expect(page.locator("#placement-preview .chosen-secondary .site")).to_contain_text("us-east-1")
    assert chosen(page, "primary").endswith("us-ashburn-1")
    shot(page, "request-mysql-c0-preview")

    # Change the tier: the preview follows (C2/bronze: cheapest, secondary on another cluster) and so do the defaults.
    page.get_by_label("Tier").focus()
    page.get_by_label("Tier").select_option("C2")
    expect(page.locator("#placement-preview .chosen-secondary .site")).to_contain_text("us-phoenix-1")
    expect(page.get_by_label("DR profile")).to_have_value("bronze")
    expect(page.get_by_label("Storage (GB)")).to_have_value("10")
    expect(page.get_by_label("High availability (ha)")).not_to_be_checked()
    expect(page.get_by_label("Tier")).to_be_focused()  # the field being changed keeps the focus
    shot(page, "request-mysql-c2-preview")

    # A rule of the policy, broken on purpose, shows next to its field while typing.
    page.get_by_label("Tier").select_option("C0")
    expect(page.get_by_label("DR profile")).to_have_value("gold")
    page.get_by_label("High availability (ha)").uncheck()
    expect(page.locator("#errors-ha")).to_contain_text("policy rule tiers.C0.gates.requireHA")
    shot(page, "request-mysql-policy-error")
    page.get_by_label("High availability (ha)").check()
    expect(page.locator("#errors-ha")).to_be_empty()

    # Keyboard only: focus the storage field, type, and submit with Enter.
    page.get_by_label("Storage (GB)").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("40")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/cells/payments/prod/$"))
    expect(page.locator(".messages")).to_contain_text("MySQL for payments/prod requested")
    assert MySQLClaim.objects.filter(storage_gb=40).count() == 2


def test_the_cell_page_shows_the_topology_and_a_claim_becomes_ready_without_reload(open_page, dev, test_policy, settings):
    from playwright.sync_api import expect

    services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small",
                           storage_gb=50, ha=True)
    services.request_app(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold",
                         image="ghcr.io/acme/payments:1.0", public_host="payments.prod.company.com")
    page = open_page(dev)
    page.get_by_role("link", name="payments/prod").click()
    topology = page.locator("svg.topology-wide")
    expect(topology).to_be_visible()
    expect(topology).to_contain_text("OCI · us-ashburn-1")
    expect(topology).to_contain_text("AWS · us-east-1")
    expect(topology).to_contain_text("REPLICATION · oci-goldengate")
    expect(page.locator("#cell-live")).to_have_attribute("data-polling", "true")
    row = page.locator('tr[data-claim="payments-prod-mysql-primary"]')
    expect(row).to_have_attribute("data-status", "pending")
    page.evaluate("window.__notReloaded = true")

    # The worker's part, from this thread: deliver the outbox, then read the (simulated) cluster state.
    settings.IDP_SIMULATOR_READY_DELAY = 0
    for d in Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id"):
        pipeline.deliver(d.pk)
    expect(row).to_have_attribute("data-status", "delivered")
    pipeline.observe_all()
    expect(row).to_have_attribute("data-status", "ready")
    # The databases reported their endpoints: the replication claim's new revision goes out, then turns ready.
    settle()
    expect(page.locator('tr[data-claim="payments-prod-replication"]')).to_have_attribute("data-status", "ready")
    expect(page.locator("#cell-live")).to_have_attribute("data-polling", "false")  # final: the poll answered 286
    expect(topology).to_contain_text("within RPO")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#manifests .highlight")).to_contain_text("CellMySQLClaim")
    shot(page, "cell-page")
    home = open_page(dev)
    shot(home, "home-developer")

    narrow = open_page(dev, width=400)
    narrow.goto(page.url)
    expect(narrow.locator("svg.topology-tall")).to_be_visible()
    expect(narrow.locator("svg.topology-wide")).to_be_hidden()
    shot(narrow, "cell-page-400")
    narrow.goto(narrow.url.split("/cells/")[0] + "/")
    shot(narrow, "home-developer-400")
    narrow.goto(narrow.url + "request/mysql/?cell=payments&environment=staging")
    expect(narrow.locator("#placement-preview .chosen-secondary")).to_be_visible()
    shot(narrow, "request-mysql-400")


def test_a_developer_is_blocked_from_another_teams_cell(open_page, live_server, dev, outsider, test_policy):
    from playwright.sync_api import expect

    services.request_mysql(outsider, cell="catalog", environment="prod", tier="C1", dr_profile="silver")
    page = open_page(dev)
    expect(page.get_by_role("link", name="catalog/prod")).to_have_count(0)
    response = page.goto(f"{live_server.url}/cells/catalog/prod/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("belongs to team 'storefront'")
    expect(page.locator("svg.topology-wide")).to_have_count(0)


def test_operator_pages_audit_log_and_policy_what_if(open_page, live_server, ops, dev, test_policy):
    from playwright.sync_api import expect

    services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold")
    page = open_page(ops)
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit-results")).to_contain_text("scheduler.placement.decided")
    page.get_by_label("Action").fill("cells.")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-results")).to_contain_text("cells.mysql.created")
    expect(page.locator("#audit-results")).not_to_contain_text("scheduler.placement.decided")
    shot(page, "audit-log")

    page.get_by_role("link", name="Policy").click()
    expect(page.get_by_test_id("active-version")).to_contain_text("test-1")
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True
    page.get_by_label("Candidate policy (YAML)").fill(yaml.safe_dump(doc, sort_keys=False))
    page.get_by_role("button", name="Check candidate").click()
    expect(page.get_by_test_id("whatif-summary")).to_contain_text("1 of 1 placement would change")
    expect(page.locator("#whatif-result")).to_contain_text("cordoned")
    shot(page, "policy-what-if")
    doc["tiers"]["C0"]["weights"]["cost"] = -1
    page.get_by_label("Candidate policy (YAML)").fill(yaml.safe_dump(doc, sort_keys=False))
    page.get_by_role("button", name="Check candidate").click()
    expect(page.get_by_test_id("whatif-problems")).to_contain_text("tiers.C0.weights.cost")
    shot(page, "policy-what-if-invalid")

    page.get_by_role("link", name="Cells").click()
    shot(page, "home-operator")
    wide = open_page(dev)
    response = wide.goto(f"{live_server.url}/audit/")
    assert response.status == 403


def test_an_operator_fails_over_a_cell_and_watches_the_timeline_finish(open_page, live_server, ops, dev, test_policy, settings):
    from playwright.sync_api import expect

    from dr.models import FailoverRun
    from tests.dr.helpers import HOST, drive, ready_cell

    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev)  # payments/prod, C1/silver (RPO 15 min), every claim ready on the sandbox
    page = open_page(ops)
    page.get_by_role("link", name="payments/prod").click()
    failover = page.locator("#failover")
    expect(failover.get_by_role("link", name="Failback…")).to_have_count(0)  # the primary writes

    # The confirmation opens in place and takes the focus; it says what will happen.
    failover.get_by_role("link", name="Failover…", exact=True).click()
    panel = page.locator("#failover-confirm")
    expect(panel.get_by_role("heading", name="Failover payments/prod?")).to_be_focused()
    expect(panel.get_by_test_id("confirm-to")).to_contain_text("secondary")
    expect(panel.get_by_test_id("confirm-lag")).to_contain_text("within RPO")
    expect(panel.get_by_test_id("confirm-lag")).to_contain_text("lag 0.8 s / RPO 15 min")
    expect(panel.get_by_test_id("confirm-fence")).to_contain_text("payments-prod-mysql-primary becomes read-only")
    expect(panel).to_contain_text(HOST)
    shot(page, "failover-confirm")
    shot_of(page.locator("#failover"), "failover-confirm-panel")

    # Forcing needs a reason: the service's message appears next to the field, in place.
    page.get_by_label("Force the run even if the replication lag is above the RPO").check()
    page.get_by_role("button", name="Start failover").click()
    expect(page.locator("#errors-reason")).to_contain_text("required when forcing")
    expect(page.locator("#confirm-error")).to_contain_text("Forcing needs a reason")
    shot_of(page.locator("#failover"), "failover-confirm-error")
    assert FailoverRun.objects.count() == 0

    # Keyboard: untick force, type the reason, submit.
    page.get_by_label("Force the run even if the replication lag is above the RPO").press("Space")
    page.get_by_label("Reason").fill("game day: evacuate us-ashburn-1")
    page.get_by_role("button", name="Start failover").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    live = page.locator("#run-live")
    expect(live).to_have_attribute("data-polling", "true")
    expect(page.locator(".messages")).to_contain_text("started")
    page.evaluate("window.__notReloaded = true")

    # The workers' part, from this thread, while the page polls every second.
    run = drive(FailoverRun.objects.get())
    assert run.state == "succeeded", run.error
    expect(live).to_have_attribute("data-state", "succeeded")
    expect(live).to_have_attribute("data-polling", "false")  # final: the poll answered 286
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator('#timeline [data-state="succeeded"]')).to_have_count(8)
    expect(page.locator('[data-step="switch_traffic"]')).to_contain_text("primary (")
    expect(page.get_by_test_id("report-rto")).to_contain_text("RTO met")
    expect(page.get_by_test_id("report-rpo")).to_contain_text("RPO met")
    shot(page, "failover-run-finished")

    # The cell now writes and serves on its secondary.
    page.get_by_role("link", name="payments/prod").first.click()
    topology = page.locator("svg.topology-wide")
    expect(topology).to_contain_text("SECONDARY · SERVES TRAFFIC")
    expect(topology).to_contain_text("WRITER · EPOCH 2")
    expect(page.get_by_test_id("writer")).to_have_text("secondary · epoch 2")
    expect(page.locator("#failover").get_by_role("link", name="Failback…")).to_be_visible()
    shot(page, "cell-page-after-failover")
    shot_of(page.locator("#cell-live .card").first, "topology-after-failover")
    shot_of(page.locator("#failover"), "failover-section-after-failover")

    narrow = open_page(ops, width=400)
    narrow.goto(f"{live_server.url}/runs/{run.pk}/")
    expect(narrow.locator("#timeline")).to_be_visible()
    shot(narrow, "failover-run-finished-400")
    narrow.goto(f"{live_server.url}/runs/")
    shot(narrow, "runs-400")
    narrow.goto(f"{live_server.url}/cells/payments/prod/")
    expect(narrow.locator("svg.topology-tall")).to_contain_text("secondary · epoch 2")
    shot_of(narrow.locator("svg.topology-tall"), "topology-after-failover-400")
    page.goto(f"{live_server.url}/audit/?action=step")
    expect(page.locator("#audit-results")).to_contain_text("step switch_traffic succeeded")
    shot(page, "audit-log-failover-steps")
    home = open_page(dev)
    expect(home.locator('td[data-label="Last failover"]')).to_contain_text("succeeded")
    shot(home, "home-after-failover")


def test_an_operator_approves_a_paused_switchover_and_a_developer_only_watches(open_page, live_server, ops, dev, test_policy, settings):
    from playwright.sync_api import expect

    from cells.models import SandboxObject
    from dr.models import FailoverRun
    from tests.dr.helpers import drive, ready_cell

    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, tier="C0", profile="gold")  # the policy pauses C0 switchovers before the traffic switch
    page = open_page(ops)
    page.goto(f"{live_server.url}/cells/payments/prod/")
    page.locator("#failover").get_by_role("link", name="Switchover…").click()
    expect(page.locator("#failover-confirm")).to_contain_text("approval")  # the plan includes the approval step
    page.get_by_role("button", name="Start switchover").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = drive(FailoverRun.objects.get())
    assert run.state == "waiting_approval"
    live = page.locator("#run-live")
    expect(live).to_have_attribute("data-state", "waiting_approval")
    expect(live).to_have_attribute("data-polling", "false")
    expect(page.locator('[data-step="approval"]')).to_contain_text("waiting for approval")
    shot(page, "failover-run-waiting-approval")

    watcher = open_page(dev)
    watcher.goto(page.url)
    expect(watcher.locator("#run-live")).to_contain_text("Only operators can approve, resume or abort a run.")
    expect(watcher.get_by_role("button", name="Approve the traffic switch")).to_have_count(0)

    page.get_by_role("button", name="Approve the traffic switch").click()
    expect(page.locator(".messages")).to_contain_text("approved")
    expect(live).to_have_attribute("data-polling", "true")
    drive(FailoverRun.objects.get())
    expect(live).to_have_attribute("data-state", "succeeded")
    expect(page.locator('[data-step="approval"]')).to_contain_text("Approved by")
    expect(page.locator('[data-step="reprotect"]')).to_contain_text("now replicates from")
    expect(page.get_by_test_id("report-rpo")).to_contain_text("0 s / target 60 s")

    # A failed run: the error, and the operator's way out.
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=600)
    page.goto(f"{live_server.url}/cells/payments/prod/failover/?kind=drill")
    page.get_by_role("button", name="Start drill (dry run)").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    drive(FailoverRun.objects.order_by("-pk").first())
    expect(page.locator("#run-live")).to_have_attribute("data-state", "failed")
    expect(page.get_by_test_id("run-error")).to_contain_text("above the RPO")
    shot(page, "drill-run-failed")
