"""The live placement preview of the request forms: where a request would land and why.

Asks cells.services.preview_placement (which applies the policy's rules and runs the
scheduler, storing nothing); a DomainError it raises is put next to the form's fields.
"""
from __future__ import annotations

from dataclasses import dataclass

from cells import services
from cells.errors import DomainError, NoPlacement
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

    @property
    def ok(self) -> bool:
        return self.table is not None and self.table.ok


def placement_preview(user, form: CellRequestForm, policy: Policy) -> Preview:
    form.is_valid()
    if form.preview_errors():
        return Preview(invalid=True)
    try:
        decision, existing = services.preview_placement(user, kind=form.kind, **form.placement_kwargs())
    except NoPlacement as exc:
        return Preview(table=explanation_table(exc.extra.get("explanation", {})), error=exc)
    except DomainError as exc:
        form.apply_domain_error(exc)
        return Preview(error=exc)
    if existing is not None and existing.decommissioned_at is not None:
        existing = None  # a request places a decommissioned cell environment afresh
    req = decision.explanation.get("request", {})
    name = req.get("drProfile", "")
    preview = Preview(table=explanation_table(decision.explanation), existing=existing,
                      profile=policy.spec.dr_profiles.get(name), profile_name=name)
    if form.kind == "app":
        spec = services.CellSpec(req["cell"], req["environment"], req["tier"], name, req["size"], req["storageGB"], req["ha"])
        d = form.cleaned_data  # image and host may still be empty: the compute modes do not depend on them
        preview.compute = services.application_values(policy, spec, d.get("image") or "", d.get("publicHost") or "",
                                                      d.get("trafficMode") or DEFAULT_TRAFFIC_MODE)
    return preview
