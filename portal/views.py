"""Portal pages: thin views over cells.services (changes), portal.queries (reads) and the active policy.

One URL, one view: a view answers the full page, or for an HTMX swap the partial named after
the element it replaces (portal.web.render_page). Access comes from cells.access and the
services (403/404 pages via portal.web.portal_view); no rule is written here.
"""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from cells import access, services
from cells.errors import DomainError, InvalidRequest
from cells.manifests import cell_environment_yaml
from dr import evacuations
from dr import services as dr_services
from policy.active import active_policy, last_error
from policy.loader import PolicyError, parse_policy

from . import queries, runs, tokens
from .explain import explanation_table
from .forms import (AppRequestForm, AuditFilterForm, EvacuationForm, FailoverForm, MySQLRequestForm, WhatIfForm,
                    prefill)
from .health import Health
from .preview import Preview, placement_preview
from .readiness import readiness_panel
from .topology import topology
from .web import is_fragment, portal_view, render_page

FORMS = {"mysql": MySQLRequestForm, "app": AppRequestForm}


# -- home ---------------------------------------------------------------------------------

@portal_view
def home(request):
    policy = active_policy()
    q, show = request.GET.get("q", "").strip(), request.GET.get("show", "")
    context = queries.home(request.user, policy, q=q, show=show, page=request.GET.get("page", 1))
    if is_fragment(request) and request.GET.get("version") == context["version"]:
        return HttpResponse(status=204)  # the live poll: nothing changed, nothing to swap
    params = request.GET.copy()
    params.pop("version", None)
    context.update(policy=policy, q=q, show=show, filters=queries.HOME_FILTERS,
                   poll_url=f"{request.path}?{params.urlencode()}" if params else request.path,
                   requestable=bool(context["unplaced_cells"]) or access.visible_cells(request.user).exists())
    return render_page(request, "home.html", context, fragments={"cell-table": "partials/cell-table.html"})


# -- request forms ----------------------------------------------------------------------------

def _fields(form, errors: dict) -> list[dict]:
    return [{"field": form[name], "name": name, "errors": errors.get(name, [])} for name in form.fields]


def _groups(kind: str, fields: list[dict]) -> list[tuple[str, list[dict]]]:
    """The form's fieldsets: where, how critical, and what (the kind's own fields)."""
    where, critical = ("cell", "environment"), ("tier", "drProfile")
    return [("Where", [f for f in fields if f["name"] in where]),
            ("How critical", [f for f in fields if f["name"] in critical]),
            ("Database" if kind == "mysql" else "Application and traffic",
             [f for f in fields if f["name"] not in where + critical])]


@portal_view
@require_http_methods(["GET", "POST"])
def request_form(request, kind: str):
    """Request a MySQL or an app. GET: the form with its placement preview (HTMX: the preview alone, with the
    fields the server re-filled out of band). POST: call the service; its errors go next to their fields."""
    policy = active_policy()
    cells = queries.requestable_cells(request.user, policy)
    context = {"kind": kind, "policy": policy, "cells": cells}
    if not cells:
        return render_page(request, "request.html", {**context, "form": None})
    if request.method == "POST":
        return _submit(request, FORMS[kind](request.POST, policy=policy, cells=cells), context)
    # The field the user changed (the form's hx-vals sends it): the server re-fills what depends on it.
    trigger = (request.GET.get("changed") or request.htmx.trigger_name) if is_fragment(request) else None
    data, refilled, defaults_note = prefill(policy, cells, request.GET, trigger, kind, queries.existing_request_values)
    check = FORMS[kind](data, policy=policy, cells=cells)
    preview = placement_preview(request.user, check, policy)
    form = FORMS[kind](initial=data, policy=policy, cells=cells)
    errors = check.preview_errors()
    fields = _fields(form, errors)
    context.update(form=form, preview=preview, fields=fields, groups=_groups(kind, fields),
                   form_errors=errors.get("__all__", []), defaults_of=data["defaultsOf"], defaults_note=defaults_note,
                   refilled=[f for f in fields if f["name"] in refilled],  # re-rendered out of band
                   checked=[f for f in fields if f["name"] not in refilled])  # only their errors are re-rendered
    return render_page(request, "request.html", context, fragments={"placement-preview": "partials/placement-preview.html"})


def _submit(request, form, context: dict):
    kind = context["kind"]
    status, preview = 400, Preview(invalid=True)
    if not form.is_valid():
        preview = placement_preview(request.user, form, context["policy"])  # the policy's errors too, at once
    else:
        service = services.request_mysql if kind == "mysql" else services.request_app
        try:
            outcome = service(request.user, **form.service_kwargs())
        except DomainError as exc:
            form.apply_domain_error(exc)
            status, preview = exc.status, Preview(error=exc)
            if exc.extra.get("explanation"):  # no valid placement: every candidate's verdict, and the field to change
                preview.table = explanation_table(exc.extra["explanation"])
                preview.blockers = form.blocker_lines(exc.fields)
        else:
            ce = outcome.cell_env
            done = "requested" if outcome.created else "updated" if outcome.changed else "unchanged: it was already as requested"
            messages.success(request, f"{'MySQL' if kind == 'mysql' else 'app'} for {ce} {done}.")
            for e in outcome.change_impact:  # the service says which changes the cloud cannot do online
                if not e["online"]:
                    messages.warning(request, f"{e['side']} ({e['cloud']}): {e['field']} {e['from']} → {e['to']} "
                                              f"is not an online change: {e['detail']}.")
            return redirect("cell", ce.cell.name, ce.environment)
    fields = _fields(form, form.errors)
    return render_page(request, "request.html", {**context, "form": form, "preview": preview, "fields": fields,
                                                 "groups": _groups(kind, fields), "error_summary": form.error_summary(),
                                                 "defaults_of": request.POST.get("defaultsOf", "")}, status=status)


# -- cell page ------------------------------------------------------------------------------

def _live_context(ce, policy) -> dict:
    claims = queries.load_claims(ce)
    deliveries = queries.deliveries(ce)
    repl = claims["replication"]
    rpo = queries.rpo_seconds(policy, ce.dr_profile, repl.expected_rpo_seconds if repl else None)
    picture, summary = topology(ce, claims, rpo), queries.cell_summary(ce, policy, claims)
    if picture.replication_note:  # after an unplanned failover the lag of the old direction means nothing
        summary.lag = Health("progress", "replication stopped", "warn", picture.replication_note)
    return {
        "ce": ce, "claims": claims, "claim_rows": queries.claim_rows(claims, ce), "deliveries": deliveries,
        "topology": picture, "summary": summary,
        "polling": queries.in_progress(claims, deliveries),
        "can_retry": ce.decommissioned_at is None and queries.delivery_failed(claims, deliveries),
    }


@portal_view
def cell(request, cell: str, environment: str):
    """A cell environment: topology, claims, deliveries, manifests, placement explanation, history.

    The `#cell-live` part polls this URL every 2 s while something is in progress; the poll
    answers 286 (stop polling) once every state is final."""
    ce = services.get_cell_environment(request.user, cell, environment)
    policy = active_policy()
    live = _live_context(ce, policy)
    if is_fragment(request) and request.htmx.target == "cell-live":
        return render_page(request, "cell.html", live, fragments={"cell-live": "partials/cell-live.html"},
                           stop_polling=not live["polling"])
    context = {
        **live,
        "policy": policy,
        "profile": policy.spec.dr_profiles.get(ce.dr_profile),
        "manifests": cell_environment_yaml(ce),
        "explanation": explanation_table(ce.placement.explanation),
        "decisions": queries.decisions(ce),
        "history": queries.cell_history(ce, live["claims"]),
        **_failover_section(ce, policy),
        **readiness_panel(ce, live["summary"].rpo_seconds),
    }
    return render_page(request, "cell.html", context)


def _failover_section(ce, policy) -> dict:
    recent = queries.cell_runs(ce)
    return {"runs": recent, "active_run": next((r.run for r in recent if r.run.is_active), None),
            "cooldown_until": dr_services.cooldown_until(policy, ce), "kinds": runs.KINDS}


@portal_view
@require_http_methods(["GET", "POST"])
def decommission(request, cell: str, environment: str):
    """GET: what decommissioning will do, and a confirmation button. POST: services.decommission."""
    ce = services.get_cell_environment(request.user, cell, environment)
    tier = active_policy().spec.tiers.get(ce.tier)
    confirm_by_name, name_error = bool(tier and tier.confirm_by_name), ""
    if request.method == "POST" and confirm_by_name and request.POST.get("confirmName", "").strip() != ce.cell.name:
        name_error = f"type {ce.cell.name} to confirm"
    elif request.method == "POST":
        services.decommission(request.user, cell=cell, environment=environment)
        messages.success(request, f"{ce} is being decommissioned: its objects leave the delivery target; its records stay for the audit.")
        return redirect("cell", cell, environment)
    claims = queries.load_claims(ce)
    return render_page(request, "decommission.html", {"ce": ce, "claim_rows": queries.claim_rows(claims),
                                                      "confirm_by_name": confirm_by_name, "name_error": name_error},
                       status=400 if name_error else 200)


@portal_view
@require_POST
def redeliver(request, cell: str, environment: str):
    ce, delivery = services.redeliver(request.user, cell=cell, environment=environment)
    if delivery is None:
        messages.info(request, "Nothing to deliver: the target already holds the current revisions.")
    else:
        messages.success(request, f"Delivery #{delivery.pk} queued for {ce}.")
    return redirect("cell", cell, environment)


@portal_view
@require_POST
def replace(request, cell: str, environment: str):
    note = request.POST.get("note", "").strip()[:2000]
    ce, moved = services.replace_cell(request.user, cell=cell, environment=environment, note=note)
    p = ce.placement
    if moved:
        messages.success(request, f"{ce} re-placed: primary {p.primary_key}, secondary {p.secondary_key} (decision #{p.pk}); the claims move.")
    else:
        messages.info(request, f"{ce} re-placed under the active policy: same placement (decision #{p.pk}).")
    return redirect("cell", cell, environment)


# -- failover runs ----------------------------------------------------------------------------

@portal_view
@require_http_methods(["GET", "POST"])
def failover(request, cell: str, environment: str):
    """GET ?kind=failover|switchover|failback|drill: what the run would do now (dr.services.preview) and its
    confirmation; HTMX: the #failover-confirm panel of the cell page. POST: dr.services.start_run, then the run's page.
    Its errors go next to their fields (400) or at the top (409: an active run, the cool-down)."""
    ce = services.get_cell_environment(request.user, cell, environment)
    access.require_operator(request.user, "start a failover run")
    form = FailoverForm(request.POST or None, initial={"kind": request.GET.get("kind")})
    kind = runs.KINDS.get(form["kind"].value()) or runs.KINDS["failover"]
    error, status = None, 200
    tier = active_policy().spec.tiers.get(ce.tier)
    confirm_by_name = bool(tier and tier.confirm_by_name and kind.changes_anything)
    if request.method == "POST":
        if form.is_valid() and confirm_by_name and form.cleaned_data["confirmName"].strip() != ce.cell.name:
            form.add_error("confirmName", f"type {ce.cell.name} to confirm")
        if form.is_valid():
            try:
                run = dr_services.start_run(request.user, cell=cell, environment=environment, **form.service_kwargs(kind))
            except DomainError as exc:
                if exc.status not in (400, 409):
                    raise
                form.apply_domain_error(exc)
                error, status = exc, exc.status
            else:
                messages.success(request, f"{runs.run_type_label(run)} #{run.pk} of {ce} started.")
                url = reverse("run", args=[run.pk])
                return HttpResponseClientRedirect(url) if is_fragment(request) else redirect(url)
        else:
            status = 400
    policy = active_policy()
    preview = runs.confirmation(kind, dr_services.preview(request.user, cell=cell, environment=environment, failback=kind.name == "failback"), policy, ce)
    context = {"ce": ce, "form": form, "kind": kind, "preview": preview, "error": error, "confirm_by_name": confirm_by_name,
               "fields": {f["name"]: f for f in _fields(form, form.errors)},
               "profile": policy.spec.dr_profiles.get(ce.dr_profile),
               "show_cooldown": kind.changes_anything and bool(preview.cooldown_until or form["acknowledgeCooldown"].value()
                                                               or (error and "cooldownUntil" in error.extra))}
    return render_page(request, "failover.html", context, fragments={"failover-confirm": "partials/failover-confirm.html"},
                       status=status)


@portal_view
def run_list(request):
    """The failover runs the user may see, newest first."""
    cell = request.GET.get("cell", "").strip()
    return render_page(request, "runs.html", {**queries.runs_page(request.user, request.GET.get("page", 1), cell), "cell": cell})


def _run_context(run) -> dict:
    ce, steps = run.cell_env, list(run.steps.order_by("index"))
    return {"run": run, "ce": ce, "health": runs.run_health(run.state), "type_label": runs.run_type_label(run),
            "steps": [runs.step_view(s, ce) for s in steps],
            "polling": runs.polling(run), "actions": runs.actions(run), "report": runs.report(run, steps),
            "sites": {side: ce.placement.site(side) for side in ("primary", "secondary")}}


@portal_view
def run_page(request, run_id: int):
    """A run: its header, the live timeline of its steps (#run-live polls every 1 s while a worker moves the run,
    answering 286 once it is final, failed or waiting for approval), the report and the actions its state allows."""
    context = _run_context(dr_services.get_run(request.user, run_id))
    return render_page(request, "run.html", context, fragments={"run-live": "partials/run-live.html"},
                       stop_polling=not context["polling"])


RUN_ACTIONS = {
    "approve": (lambda user, run_id, reason: dr_services.approve_run(user, run_id), "approved: the traffic switch goes ahead"),
    "resume": (lambda user, run_id, reason: dr_services.resume_run(user, run_id), "resumed: the failed step runs again"),
    "abort": (dr_services.abort_run, "aborting: what is safe to roll back is rolled back"),
}


@portal_view
@require_POST
def run_action(request, run_id: int, action: str):
    """Approve, resume (retry the failed step) or abort a run through dr.services; a refusal (409) is shown on the run page."""
    service, done = RUN_ACTIONS[action]
    try:
        service(request.user, run_id, request.POST.get("reason", "").strip()[:2000])
    except DomainError as exc:
        if exc.status != 409:
            raise
        context = {**_run_context(dr_services.get_run(request.user, run_id)), "error": exc, "failed_action": action}
        return render_page(request, "run.html", context, status=exc.status)
    messages.success(request, f"Run #{run_id} {done}.")
    return redirect("run", run_id)


# -- operator pages ---------------------------------------------------------------------------

def _before(value: str):
    """The audit log's paging cursor: an ISO 8601 date and time; anything else is a 400 naming it."""
    if not value:
        return None
    try:
        before = parse_datetime(value)
    except ValueError:  # well formed, but no such date (2024-13-45)
        before = None
    if before is None:
        raise InvalidRequest(f"before={value!r} is not a date and time",
                             {"before": ["must be an ISO 8601 date and time, e.g. 2026-11-30T10:00:00+00:00"]})
    return before


@portal_view
def audit(request):
    access.require_operator(request.user, "see the audit log")
    form = AuditFilterForm(request.GET or None)
    before = _before(request.GET.get("before", ""))
    result = queries.audit_log(**form.filters(), before=before)
    query = request.GET.copy()
    query.pop("before", None)
    context = {"form": form, "actions": queries.audit_actions(), "cells": queries.cell_names(),
               "query": query.urlencode(), **result}
    return render_page(request, "audit.html", context, fragments={"audit-results": "partials/audit-results.html"},
                       status=400 if form.is_bound and not form.is_valid() else 200)


@portal_view
@require_http_methods(["GET", "POST"])
def policy_page(request):
    """The active policy, its versions, and a what-if of a candidate policy (POST: nothing is changed)."""
    access.require_operator(request.user, "see the policy console")
    current = active_policy()
    # Start from the active policy: an operator edits it and checks the result.
    form = WhatIfForm(request.POST or None, request.FILES or None, initial={"text": current.text})
    whatif = None
    if request.method == "POST" and form.is_valid():
        try:
            candidate = parse_policy(form.cleaned_data["text"], source=form.source)
        except PolicyError as exc:
            whatif = {"problems": exc.problems, "source": form.source}
        else:
            rows = services.whatif_policy(candidate)
            whatif = {"candidate": candidate, "source": form.source, "changed": [r for r in rows if r["changed"]],
                      "total": len(rows), "same": candidate.digest == current.digest}
    error = last_error()
    context = {"policy": current, "file_problems": error.problems if error else [], "versions": queries.policy_versions(),
               "form": form, "whatif": whatif}
    return render_page(request, "policy.html", context, fragments={"whatif-result": "partials/whatif-result.html"},
                       status=400 if request.method == "POST" and not form.is_valid() else 200)


def healthz(request):
    """Liveness: the process answers. It checks nothing else (a database outage must not restart every pod);
    /readyz (portal/ops.py) checks the database, the broker and the policy."""
    return JsonResponse({"status": "ok"})


# -- profile ----------------------------------------------------------------------------------

@portal_view
@require_http_methods(["GET", "POST"])
def profile(request):
    """Who I am (role, teams) and my API token: create or replace it; its key is shown once, in this answer."""
    key = tokens.issue_token(request.user) if request.method == "POST" else None
    return render_page(request, "profile.html", {"token": tokens.token_info(request.user), "new_key": key})


# -- evacuations ---------------------------------------------------------------------------------

@portal_view
@require_http_methods(["GET", "POST"])
def evacuations_page(request):
    """Operators: the evacuations so far, and a new one: pick the scope, see the dry-run plan (HTMX), confirm by
    typing the scope, start. POST goes to dr.evacuations.start; its errors go next to the fields."""
    access.require_operator(request.user, "evacuate a region")
    policy = active_policy()
    data = request.POST if request.method == "POST" else request.GET
    form = EvacuationForm(data if "cloud" in data else None, policy=policy)
    plan, error, status = None, None, 200
    if form.is_bound and request.method == "POST" and form.is_valid() \
            and form.cleaned_data["confirmScope"].strip() != form.scope_text():
        form.add_error("confirmScope", f"type {form.scope_text()} to confirm")
    if form.is_bound and form.is_valid():
        try:
            if request.method == "POST":
                evac, _ = evacuations.start(request.user, {**form.cleaned_data, "dryRun": False})
                messages.success(request, f"Evacuation #{evac.pk} of {evac.scope} started.")
                url = reverse("evacuation", args=[evac.pk])
                return HttpResponseClientRedirect(url) if is_fragment(request) else redirect(url)
            _, plan = evacuations.start(request.user, {**form.cleaned_data, "dryRun": True})
        except DomainError as exc:
            form.apply_domain_error(exc)
            error, status = exc, exc.status
            plan = exc.extra.get("plan")  # "nothing to evacuate": the plan says why each cell cannot move
    elif form.is_bound:
        status = 400
    context = {"form": form, "plan": plan, "error": error, "scope_text": form.scope_text() if form.is_bound else "",
               "evacuations": list(evacuations.visible(request.user)[:20]),
               "fields": {f["name"]: f for f in _fields(form, form.errors)}}
    return render_page(request, "evacuations.html", context, fragments={"evacuation-plan": "partials/evacuation-plan.html"},
                       status=status)


@portal_view
def evacuation_page(request, evacuation_id: int):
    """An evacuation's progress (live while it runs): waves, per-cell states with failures first, the report."""
    evac = evacuations.get(request.user, evacuation_id)
    context = {"evac": evac, "d": evacuations.detail(evac), "live": evac.state in ("running", "paused")}
    return render_page(request, "evacuation.html", context, fragments={"evacuation-live": "partials/evacuation-live.html"},
                       stop_polling=not context["live"])


@portal_view
@require_POST
def evacuation_action(request, evacuation_id: int, action: str):
    reason = request.POST.get("reason", "")
    {"pause": evacuations.pause, "resume": evacuations.resume,
     "abort": lambda user, pk: evacuations.abort(user, pk, reason)}[action](request.user, evacuation_id)
    messages.success(request, f"Evacuation #{evacuation_id}: {action} done.")
    return redirect("evacuation", evacuation_id)
