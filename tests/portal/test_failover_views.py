"""Failover in the portal: the cell page's Failover section and confirmation, the run page with its live timeline and
actions, the runs list, the topology after a failover, the home page's last failover, failover steps in the audit log.

Runs are started, approved, resumed and aborted through the pages (which call dr.services) and driven in-process as
workers would (tests/dr/helpers.py drive()).
"""
import re

import pytest

from cells.models import CellEnvironment, SandboxObject
from dr.models import FailoverRun

from tests.dr.helpers import HOST, drive, ready_cell, settle

from .bulk import create_cell_environments
from .conftest import htmx

pytestmark = pytest.mark.django_db

CELL = "/cells/payments/prod/"
CONFIRM = CELL + "failover/"


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


@pytest.fixture
def ready(dev, test_policy):
    """payments/prod (C1/silver: RPO 15 min) with every claim ready on the sandbox."""
    return ready_cell(dev)


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start:]


def failover_section(html: str) -> str:
    return html[html.index('id="failover"'):html.index('id="placement"')]


def run_id(response) -> int:
    return int(re.search(r"/runs/(\d+)/$", response["Location"] if response.has_header("Location")
                         else response["HX-Redirect"]).group(1))


def start(web, user, kind="failover", **data):
    return web(user).post(CONFIRM, {"kind": kind, **data})


# -- the cell page's Failover section -------------------------------------------------------------

def test_an_operator_sees_the_run_buttons_and_a_developer_sees_none(web, ops, dev, ready):
    ops_section = failover_section(web(ops).get(CELL).content.decode())
    for kind in ("failover", "switchover", "drill"):
        assert f'data-kind="{kind}"' in ops_section and f'href="{CONFIRM}?kind={kind}"' in ops_section
    assert 'data-kind="failback"' not in ops_section  # the primary is the writer: nothing to fail back
    assert 'id="failover-confirm"' in ops_section
    dev_section = failover_section(web(dev).get(CELL).content.decode())
    assert "data-kind=" not in dev_section and "failover-confirm" not in dev_section
    assert "No failover, switchover or drill has run" in dev_section


def test_the_confirmation_states_what_will_happen_with_the_lag_against_the_rpo(web, ops, ready):
    r = web(ops).get(CONFIRM, {"kind": "failover"})
    assert r.status_code == 200
    panel = section(r.content.decode(), "failover-confirm")
    assert re.search(r'data-testid="confirm-to"><strong>secondary</strong>', panel)
    assert "within RPO" in panel and "lag 0.8 s / RPO 15 min" in panel
    assert "<code>payments-prod-mysql-primary</code> becomes read-only" in panel and "epoch goes 1 → 2" in panel
    assert f"<code>{HOST}</code> moves from the primary to the secondary" in panel
    assert "secondary ready" in panel
    assert 'name="force"' in panel and 'name="reason"' in panel and 'name="csrfmiddlewaretoken"' in panel
    assert 'name="acknowledgeCooldown"' not in panel  # no recent failover: no cool-down
    assert "<code>fence</code>" in panel and "<code>switch_traffic</code>" in panel  # the runbook's own plan


def test_the_confirmation_is_an_htmx_panel_of_the_cell_page(web, ops, ready):
    r = web(ops).get(CONFIRM, {"kind": "switchover"}, **htmx("failover-confirm", current_url="http://testserver" + CELL))
    html = r.content.decode()
    assert r.status_code == 200 and "HX-Request" in r["Vary"]
    assert html.lstrip().startswith("<section id=\"failover-confirm\"") and "<html" not in html
    assert "autofocus" in html  # keyboard users land on the panel's heading
    assert "Switchover payments/prod?" in html and "<code>catch_up</code>" in html and "<code>reprotect</code>" in html


def test_a_lag_above_the_rpo_is_said_before_the_operator_confirms(web, ops, ready):
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    settle()  # the status observer reads the (sandbox) lag into the replication claim
    panel = section(web(ops).get(CONFIRM).content.decode(), "failover-confirm")
    assert "above RPO" in panel and "lag 20 min / RPO 15 min" in panel
    assert "The lag is above the RPO" in panel and "unless you force it" in panel


def test_starting_a_failover_through_the_form_creates_the_run_and_opens_its_page(web, ops, ready):
    r = start(web, ops, "failover", reason="region us-ashburn-1 is down")
    assert r.status_code == 302
    run = FailoverRun.objects.get()
    assert r["Location"] == f"/runs/{run.pk}/"
    assert (run.type, run.state, run.from_side, run.to_side, run.requested_by.username) == \
        ("failover", "pending", "primary", "secondary", "ops")
    assert run.host == HOST and run.reason == "region us-ashburn-1 is down"


def test_starting_from_the_htmx_panel_redirects_the_browser_to_the_run(web, ops, ready):
    r = web(ops).post(CONFIRM, {"kind": "drill"}, **htmx("failover-confirm"))
    run = FailoverRun.objects.get()
    assert r.status_code == 200 and r["HX-Redirect"] == f"/runs/{run.pk}/"
    assert (run.type, run.simulates) == ("drill", "failover")


def test_forcing_without_a_reason_shows_the_field_error(web, ops, ready):
    r = start(web, ops, "failover", force="on", reason="")
    html = r.content.decode()
    assert r.status_code == 400
    assert "Not accepted." in html and "Forcing needs a reason" in html
    errors = re.search(r'id="errors-reason".*?</div>', html, re.S).group(0)
    assert "required when forcing" in errors
    assert FailoverRun.objects.count() == 0
    # The same answer in the HTMX panel: swapped in place (base.html lets htmx swap 400s).
    r = web(ops).post(CONFIRM, {"kind": "failover", "force": "on"}, **htmx("failover-confirm"))
    assert r.status_code == 400 and r.content.decode().lstrip().startswith('<section id="failover-confirm"')


def test_a_second_run_while_one_is_active_is_a_conflict_shown_at_the_top(web, ops, ready):
    first = run_id(start(web, ops, "failover"))
    r = start(web, ops, "switchover")
    html = r.content.decode()
    assert r.status_code == 409
    assert "Refused: conflicts with the cell's state." in html and f"already has an active run #{first}" in html
    assert f'href="/runs/{first}/"' in html
    assert FailoverRun.objects.count() == 1
    # The cell page says so too.
    assert f"Run <a href=\"/runs/{first}/\">#{first}</a> is pending" in web(ops).get(CELL).content.decode()


def test_the_cool_down_needs_an_acknowledgement_with_a_reason(web, ops, ready):
    drive(FailoverRun.objects.get(pk=run_id(start(web, ops, "failover"))))
    html = web(ops).get(CELL).content.decode()
    assert 'data-kind="failback"' in failover_section(html)  # the secondary is the writer now
    assert 'data-testid="cooldown"' in html
    panel = section(web(ops).get(CONFIRM, {"kind": "failback"}).content.decode(), "failover-confirm")
    assert "In its cool-down until" in panel and 'name="acknowledgeCooldown"' in panel
    assert re.search(r'data-testid="confirm-to"><strong>primary</strong>', panel)
    r = start(web, ops, "failback")
    assert r.status_code == 409 and "is in its cool-down until" in r.content.decode()
    assert 'name="acknowledgeCooldown"' in r.content.decode()
    r = start(web, ops, "failback", acknowledgeCooldown="on", reason="primary region recovered")
    assert r.status_code == 302
    run = FailoverRun.objects.get(pk=run_id(r))
    assert (run.type, run.acknowledged_cooldown, run.to_side) == ("failback", True, "primary")


def test_a_developer_gets_no_confirmation_and_403_on_post(web, dev, ready):
    assert web(dev).get(CONFIRM, {"kind": "failover"}).status_code == 403
    r = start(web, dev, "failover", reason="please")
    assert r.status_code == 403 and "only operators may start a failover run" in r.content.decode()
    assert FailoverRun.objects.count() == 0


def test_another_teams_developer_cannot_reach_the_confirmation(web, outsider, ready):
    assert web(outsider).get(CONFIRM).status_code == 403


# -- the run page ------------------------------------------------------------------------------------

def test_the_run_page_polls_every_second_until_the_run_is_final(web, ops, ready):
    rid = run_id(start(web, ops, "failover", reason="drill for real"))
    client = web(ops)
    html = client.get(f"/runs/{rid}/").content.decode()
    assert 'data-polling="true"' in html and 'hx-trigger="every 1s"' in html
    assert html.count('data-state="pending"') >= 8  # every step of the plan, not started yet
    r = client.get(f"/runs/{rid}/", **htmx("run-live"))
    assert r.status_code == 200 and r.content.decode().lstrip().startswith('<div id="run-live"')
    drive(FailoverRun.objects.get(pk=rid))
    r = client.get(f"/runs/{rid}/", **htmx("run-live"))
    assert r.status_code == 286  # final: htmx stops polling
    live = r.content.decode()
    assert 'data-polling="false"' in live and 'data-state="succeeded"' in live
    assert "✓</span> succeeded" in live
    # Steps, summarised in words.
    assert "lag 0.8 s / RPO 15 min — within RPO" in live
    assert re.search(r"<dt>Fenced</dt><dd>yes — payments-prod-mysql-primary", live)
    assert re.search(rf"<dt>Traffic</dt><dd>{re.escape(HOST)}: primary \([^)]*\) → secondary \([^)]*\)", live)
    assert "<dt>Writer</dt><dd>secondary" in live
    # The report: RTO and data loss against the DR profile's targets, and the epochs.
    report = section(live, "run-report")
    assert "RTO met" in report and "target 30 min" in report
    assert "RPO met" in report and "0.8 s / target 15 min" in report
    assert "1 → 2" in report


def test_the_run_page_header_says_who_what_and_why(web, ops, ready):
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    rid = run_id(start(web, ops, "failover", force="on", reason="the primary region is on fire"))
    html = web(ops).get(f"/runs/{rid}/").content.decode()
    assert '<a href="/cells/payments/prod/">payments/prod</a>' in html
    assert "Failover (unplanned)" in html and "primary <span" in html and "→ secondary" in html
    assert "Forced above the RPO</strong> by ops" in html and "the primary region is on fire" in html
    assert f"/api/failover/{rid}" in html


def test_approve_through_the_run_page(web, ops, dev, test_policy):
    ready_cell(dev, tier="C0", profile="gold")  # the policy pauses C0 switchovers before the traffic switch
    rid = run_id(start(web, ops, "switchover"))
    run = drive(FailoverRun.objects.get(pk=rid))
    assert run.state == "waiting_approval"
    client = web(ops)
    assert client.get(f"/runs/{rid}/", **htmx("run-live")).status_code == 286  # waits for a person: no polling
    html = client.get(f"/runs/{rid}/").content.decode()
    assert "Approve the traffic switch" in html and "waiting for approval" in html
    assert "Approve the traffic switch" not in web(dev).get(f"/runs/{rid}/").content.decode()
    assert web(dev).post(f"/runs/{rid}/approve/").status_code == 403
    r = client.post(f"/runs/{rid}/approve/")
    assert r.status_code == 302 and r["Location"] == f"/runs/{rid}/"
    run.refresh_from_db()
    assert (run.state, run.approved_by.username) == ("running", "ops")
    assert 'data-polling="true"' in client.get(f"/runs/{rid}/").content.decode()
    assert drive(run).state == "succeeded"
    r = client.post(f"/runs/{rid}/approve/")  # again: the service refuses, the page says why
    assert r.status_code == 409 and "Approve refused." in r.content.decode() and "not waiting for approval" in r.content.decode()


def test_resume_retries_the_failed_step_through_the_run_page(web, ops, ready):
    knob = SandboxObject.objects.create(name="promote:payments-prod-mysql-secondary", fail_message="permanent: disk full")
    rid = run_id(start(web, ops, "failover"))
    run = drive(FailoverRun.objects.get(pk=rid))
    assert (run.state, run.changed_nothing) == ("failed", False)  # the fence ran: the run holds the cell
    client = web(ops)
    assert client.get(f"/runs/{rid}/", **htmx("run-live")).status_code == 286
    html = client.get(f"/runs/{rid}/").content.decode()
    assert "Failed at promote" in html and "disk full" in html
    assert "Resume: retry “promote”" in html and "Abort…" in html
    knob.delete()
    r = client.post(f"/runs/{rid}/resume/")
    assert r.status_code == 302
    run.refresh_from_db()
    assert run.state == "running"
    assert drive(run).state == "succeeded"


def test_a_run_stopped_by_its_lag_check_offers_nothing_to_resume_the_cell_is_free(web, ops, ready):
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    rid = run_id(start(web, ops, "failover"))
    run = drive(FailoverRun.objects.get(pk=rid))
    assert (run.state, run.changed_nothing) == ("failed", True)
    html = web(ops).get(f"/runs/{rid}/").content.decode()
    assert "Failed at check_lag" in html and "above the RPO of 900s" in html
    assert "Resume:" not in html and "Abort…" not in html
    assert web(ops).get(CONFIRM, {"kind": "failover"}).status_code == 200  # a new run may start


def test_abort_through_the_run_page_rolls_back(web, ops, ready):
    SandboxObject.objects.create(name="promote:payments-prod-mysql-secondary", fail_message="permanent: disk full")
    rid = run_id(start(web, ops, "failover"))
    drive(FailoverRun.objects.get(pk=rid))
    r = web(ops).post(f"/runs/{rid}/abort/", {"reason": "the secondary's disk will not recover soon"})
    assert r.status_code == 302
    run = FailoverRun.objects.get(pk=rid)
    assert run.state == "aborting"
    run = drive(run)
    assert run.state == "aborted"
    html = web(ops).get(f"/runs/{rid}/").content.decode()
    assert "Aborted; rolled back" in html and "Abort…" not in html and "Resume:" not in html


def test_abort_after_the_traffic_switch_is_refused_with_the_services_message(web, ops, ready):
    # A switchover that fails at reprotect, after the traffic moved.
    SandboxObject.objects.create(name="reprotect:payments-prod-mysql-primary", fail_message="permanent: replication user locked")
    rid = run_id(start(web, ops, "switchover"))
    run = drive(FailoverRun.objects.get(pk=rid))
    assert (run.state, run.traffic_switched_at is not None) == ("failed", True)
    html = web(ops).get(f"/runs/{rid}/").content.decode()
    assert "Abort…" not in html and "cannot be rolled back" in html and "Resume: retry “reprotect”" in html
    r = web(ops).post(f"/runs/{rid}/abort/")
    html = r.content.decode()
    assert r.status_code == 409
    assert "Abort refused." in html and "switched traffic at" in html and "run a failback" in html
    assert FailoverRun.objects.get(pk=rid).state == "failed"


def test_developers_see_their_teams_runs_but_no_actions(web, ops, dev, outsider, ready):
    SandboxObject.objects.create(name="promote:payments-prod-mysql-secondary", fail_message="permanent: disk full")
    rid = run_id(start(web, ops, "failover"))
    drive(FailoverRun.objects.get(pk=rid))
    html = web(dev).get(f"/runs/{rid}/").content.decode()
    assert "Failed at promote" in html and "Only operators can approve, resume or abort a run." in html
    assert "Resume:" not in html and "Abort…" not in html
    for action in ("resume", "abort"):
        assert web(dev).post(f"/runs/{rid}/{action}/").status_code == 403
    assert FailoverRun.objects.get(pk=rid).state == "failed"
    assert web(outsider).get(f"/runs/{rid}/").status_code == 404
    assert f'data-run="{rid}"' in failover_section(web(dev).get(CELL).content.decode())


def test_run_actions_need_post(web, ops, ready):
    rid = run_id(start(web, ops, "drill"))
    for action in ("approve", "resume", "abort"):
        assert web(ops).get(f"/runs/{rid}/{action}/").status_code == 405


# -- lists ----------------------------------------------------------------------------------------

def test_the_runs_list_shows_visible_runs_newest_first_and_is_in_the_nav(web, ops, dev, outsider, ready):
    first = run_id(start(web, ops, "drill"))
    drive(FailoverRun.objects.get(pk=first))
    second = run_id(start(web, ops, "failover"))
    html = web(dev).get("/runs/").content.decode()
    assert 'href="/runs/"' in html  # the nav
    rows = re.findall(r'data-run="(\d+)" data-state="(\w+)"', html)
    assert rows == [(str(second), "pending"), (str(first), "succeeded")]
    assert "Drill (dry run) of a failover" in html and "payments/prod" in html
    assert "data-run=" not in web(outsider).get("/runs/").content.decode()
    assert "No run yet" in web(outsider).get("/runs/").content.decode()
    assert re.findall(r'data-run="(\d+)"', web(ops).get("/runs/", {"cell": "catalog"}).content.decode()) == []


def test_the_cell_page_lists_the_last_runs_with_rto_and_data_loss(web, ops, ready):
    rid = run_id(start(web, ops, "failover"))
    drive(FailoverRun.objects.get(pk=rid))
    html = failover_section(web(ops).get(CELL).content.decode())
    row = re.search(rf'<tr data-run="{rid}".*?</tr>', html, re.S).group(0)
    assert "Failover (unplanned)" in row and "✓</span> succeeded" in row and "ops" in row
    assert "RTO met" in row and "target 30 min" in row and "RPO met" in row and "0.8 s / target 15 min" in row
    assert f'href="/runs/{rid}/"' in row
    assert 'data-testid="last-failover">—<' not in html


# -- the topology and the home page after a failover ------------------------------------------------

def svg(html: str) -> str:
    return re.search(r'<svg class="topology-wide".*?</svg>', html, re.S).group(0)


def test_the_topology_shows_the_writer_its_epoch_and_where_traffic_points(web, dev, ready):
    picture = svg(web(dev).get(CELL).content.decode())
    assert re.search(r'DATABASE · <tspan class="db-role writer">WRITER · EPOCH 1</tspan>', picture)
    assert "READ-ONLY · EPOCH 0" in picture
    assert "primary · epoch 1" in picture and "PRIMARY · SERVES TRAFFIC" in picture


def test_after_a_failover_the_picture_shows_the_secondary_writing_and_serving(web, ops, dev, ready):
    drive(FailoverRun.objects.get(pk=run_id(start(web, ops, "failover"))))
    html = web(dev).get(CELL).content.decode()
    picture = svg(html)
    assert "SECONDARY · SERVES TRAFFIC" in picture and "PRIMARY · STANDBY" in picture
    sides = picture.split("PRIMARY · STANDBY")[1]  # the primary's box, then the secondary's
    primary, secondary = sides.split("SECONDARY · SERVES TRAFFIC")
    assert "READ-ONLY · EPOCH 1" in primary and "pilot light" in primary  # fenced, compute back to standby
    assert "WRITER · EPOCH 2" in secondary and "active · 2 replicas" in secondary
    assert "secondary · epoch 2" in picture
    assert "replication stopped" in picture  # an unplanned failover does not reprotect
    assert 'data-testid="writer">secondary · epoch 2<' in html and 'data-testid="active-side">secondary<' in html


def test_after_a_switchover_replication_runs_the_other_way(web, ops, dev, ready):
    drive(FailoverRun.objects.get(pk=run_id(start(web, ops, "switchover"))))
    picture = svg(web(dev).get(CELL).content.decode())
    assert 'd="M582,249 H304"' in picture  # the arrow points from the secondary (writer) to the primary
    assert "replication stopped" not in picture


def test_the_home_page_shows_the_last_failover(web, ops, dev, ready):
    rid = run_id(start(web, ops, "failover"))
    drive(FailoverRun.objects.get(pk=rid))
    html = web(dev).get("/").content.decode()
    cell = re.search(r'<td data-label="Last failover">.*?</td>', html, re.S).group(0)
    assert f'href="/runs/{rid}/"' in cell and "Failover" in cell and "succeeded" in cell and "<time" in cell


def test_the_home_page_keeps_a_fixed_number_of_queries_with_runs(web, ops, test_policy, django_assert_max_num_queries):
    create_cell_environments(1000)
    client = web(ops)
    # the first page (attention first, then in progress, then by name): give each of its cells two runs
    shown = re.findall(r'class="cell-link" href="/cells/([a-z0-9-]+)/([a-z0-9-]+)/"', client.get("/").content.decode())
    envs = [CellEnvironment.objects.get(cell__name=c, environment=e) for c, e in shown]
    FailoverRun.objects.bulk_create([
        FailoverRun(cell_env=ce, type="drill" if i % 2 else "failover", state="succeeded", from_side="primary",
                    to_side="secondary", rpo_target_seconds=60, rto_target_seconds=300)
        for i, ce in enumerate(envs) for _ in range(2)])
    client.get("/")
    with django_assert_max_num_queries(12):
        html = client.get("/").content.decode()
    assert len(re.findall(r'class="run-link"', html)) == 100  # the first page's cells all have a run


# -- the audit log ------------------------------------------------------------------------------------

def test_the_audit_log_lists_failover_steps_and_filters_them(web, ops, dev, catalog, ready):
    rid = run_id(start(web, ops, "failover"))
    drive(FailoverRun.objects.get(pk=rid))
    client = web(ops)
    html = client.get("/audit/").content.decode()
    assert "<code>step fence succeeded</code>" in html and "<code>step switch_traffic succeeded</code>" in html
    assert f'href="/runs/{rid}/#step-2"' in html and "dr.failover.started" in html
    html = section(client.get("/audit/", {"action": "step"}).content.decode(), "audit-results")
    steps = re.findall(r"<code>(step [\w ]+)</code>", html)
    assert len(steps) == 8 and html.count('class="kind kind-step"') == 8  # every step of the failover
    assert "dr.failover.started" not in html
    assert re.findall(r"<code>(step [\w ]+)</code>", client.get("/audit/", {"action": "step fence"}).content.decode()) \
        == ["step fence succeeded"]
    assert "kind-step" not in client.get("/audit/", {"cell": "catalog"}).content.decode()
    assert client.get("/audit/", {"cell": "payments", "user": "ops", "action": "step"}).content.decode().count("kind-step") == 8
    assert "kind-step" not in client.get("/audit/", {"user": "dev"}).content.decode()
    assert "kind-step" not in client.get("/audit/", {"until": "2020-01-01T00:00"}).content.decode()
    assert '<option value="step fence">' in client.get("/audit/").content.decode()


def test_every_step_the_runbook_declares_has_a_summary():
    """Each step is declared once (dr.runbook.STEPS, dr.rollback.ROLLBACK_STEPS); the portal summarises each by name."""
    from dr.rollback import ROLLBACK_STEPS
    from dr.runbook import STEPS
    from portal.runs import SUMMARIES

    assert set(SUMMARIES) == set(STEPS) | set(ROLLBACK_STEPS)


def test_the_confirmation_runs_the_real_precheck_and_offers_no_start_when_it_would_fail(web, ops, dev, test_policy, settings):
    """A cell with a database but no application: the precheck would stop the run, so Start is disabled and says why."""
    from cells import services as cell_services
    from tests.helpers import settle

    cell_services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    settle()
    panel = section(web(ops).get(CONFIRM, {"kind": "failover"}).content.decode(), "failover-confirm")
    assert "secondary ready" not in panel
    blocked = re.search(r'data-testid="start-blocked">(.*?)</p>', panel, re.S).group(1)
    assert "no application on the secondary side" in blocked and "no public host" in blocked
    assert re.search(r"<button type=\"submit\" disabled", panel)
    drill = section(web(ops).get(CONFIRM, {"kind": "drill"}).content.decode(), "failover-confirm")
    assert 'data-testid="start-blocked"' not in drill  # a dry run changes nothing: it may show the same problems


@pytest.fixture
def c0_cell(dev, use_policy):
    """payments/prod on a C0 tier that asks for the cell's name and a reason for an unplanned failover."""
    import copy

    from tests.helpers import BASE

    doc = copy.deepcopy(BASE)
    doc["tiers"]["C0"].update(confirmByName=True, unplannedFailoverNeedsReason=True)
    use_policy(doc)
    return ready_cell(dev, tier="C0", profile="gold")


def test_a_c0_failover_needs_the_cell_name_typed_and_a_reason(web, ops, c0_cell):
    panel = section(web(ops).get(CONFIRM, {"kind": "failover"}).content.decode(), "failover-confirm")
    assert 'name="confirmName"' in panel
    r = start(web, ops, "failover", reason="region down", confirmName="paymnets")
    assert r.status_code == 400 and "type payments to confirm" in r.content.decode()
    r = start(web, ops, "failover", confirmName="payments")  # the name, but no reason
    assert r.status_code == 400 and "unplannedFailoverNeedsReason" in r.content.decode()
    assert not FailoverRun.objects.exists()
    r = start(web, ops, "failover", confirmName="payments", reason="region down")
    assert r.status_code == 302 and FailoverRun.objects.count() == 1
    drill = section(web(ops).get(CONFIRM, {"kind": "drill"}).content.decode(), "failover-confirm")
    assert 'name="confirmName"' not in drill  # a dry run changes nothing


def test_the_api_refuses_an_unplanned_c0_failover_without_a_reason(api, ops, c0_cell):
    r = api(ops).post("/api/failover", {"cell": "payments", "environment": "prod", "host": HOST}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["fields"]
    r = api(ops).post("/api/failover", {"cell": "payments", "environment": "prod", "host": HOST, "type": "switchover"},
                      format="json")
    assert r.status_code == 202  # a planned switchover needs none


def test_decommissioning_a_c0_cell_needs_its_name_typed(web, dev, c0_cell):
    url = CELL + "decommission/"
    assert 'name="confirmName"' in web(dev).get(url).content.decode()
    r = web(dev).post(url, {"confirmName": "payment"})
    assert r.status_code == 400 and "type payments to confirm" in r.content.decode()
    from cells.models import CellEnvironment

    assert CellEnvironment.objects.get().decommissioned_at is None
    assert web(dev).post(url, {"confirmName": "payments"}).status_code == 302
    assert CellEnvironment.objects.get().decommissioned_at is not None
