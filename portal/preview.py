"""The live placement preview of the request forms: where a request would land and why.

Asks cells.services.preview_placement (which applies the policy's rules and runs the
scheduler, storing nothing); a DomainError it raises is put next to the form's fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cells import services
from cells.errors import DomainError, Forbidden, InvalidRequest, NoPlacement
from policy.loader import Policy

from .explain import ExplanationTable, explanation_table
from .forms import DEFAULT_TRAFFIC_MODE, CellRequestForm


@dataclass
class Preview:
    table: ExplanationTable | None = None
    existing: object | None = None  # the placed CellEnvironment a request would keep
    error: DomainError | None = None
    invalid: bool = False  # the form's own fields are not valid yet
    profile: object | None = None  # the DR profile of the request (policy data)
    profile_name: str = ""
    compute: dict | None = None  # app requests: per side {compute_mode, replicas}
    blockers: list = field(default_factory=list)  # no valid placement: [(field name, label, message)]

    @property
    def ok(self) -> bool:
        return self.table is not None and self.table.ok


def placement_preview(user, form: CellRequestForm, policy: Policy) -> Preview:
    """The placement the form's values would get. Every error comes at once: while a field is invalid, the
    policy's rules are still checked on the others (and their messages put next to them)."""
    form.is_valid()
    if form.preview_errors():
        _check_policy(user, form)
        return Preview(invalid=True)
    try:
        decision, existing, blockers = services.preview_placement(user, kind=form.kind, **form.placement_kwargs())
    except DomainError as exc:
        form.apply_domain_error(exc)
        return Preview(error=exc)
    if not decision.ok:
        form.apply_domain_error(NoPlacement(decision.summary, blockers))
    if existing is not None and existing.decommissioned_at is not None:
        existing = None  # a request places a decommissioned cell environment afresh
    req = decision.explanation.get("request", {})
    name = req.get("drProfile", "")
    preview = Preview(table=explanation_table(decision.explanation), existing=existing,
                      profile=policy.spec.dr_profiles.get(name), profile_name=name,
                      blockers=form.blocker_lines(blockers))
    if form.kind == "app":
        spec = services.CellSpec(req["cell"], req["environment"], req["tier"], name, req["size"], req["storageGB"], req["ha"])
        d = form.cleaned_data  # image and host may still be empty: the compute modes do not depend on them
        preview.compute = services.application_values(policy, spec, d.get("image") or "", d.get("publicHost") or "",
                                                      d.get("trafficMode") or DEFAULT_TRAFFIC_MODE)
    return preview


def _check_policy(user, form: CellRequestForm) -> None:
    """The policy's rules on the fields that are valid (an invalid one takes the tier's default meanwhile);
    nothing to check without a valid cell, environment and tier."""
    kwargs = form.placement_kwargs(partial=True)
    if not all(kwargs.get(k) for k in ("cell", "environment", "tier")):
        return
    try:
        services.preview_placement(user, kind=form.kind, **kwargs)
    except (InvalidRequest, Forbidden) as exc:
        form.apply_domain_error(exc)
