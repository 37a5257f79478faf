"""The portal's forms: the contract fields and their types only.

Choices and defaults are read from the active policy (its tiers, DR profiles, sizes and the
user's cells); every policy *rule* (requireHA, allowedDrProfiles, environments, stickiness…)
is checked by cells.services, whose DomainError fields are put next to the form's fields.
Field names are the contract's (`drProfile`, `storageGB`, `publicHost`).
"""
from __future__ import annotations

from dataclasses import dataclass

from django import forms

from cells.api.serializers import HOST, IMAGE, TrafficSpecSerializer
from cells.errors import DomainError
from policy.loader import Policy

from .health import duration

# DomainError field paths (the API's JSON paths) -> form field names.
ERROR_FIELDS = {"traffic.publicHost": "publicHost", "app.image": "image", "traffic.mode": "trafficMode"}
TRAFFIC_MODES = list(TrafficSpecSerializer().fields["mode"].choices.items())
DEFAULT_TRAFFIC_MODE = TrafficSpecSerializer().fields["mode"].default


def _short(text: str, limit: int = 48) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def add_domain_error(form: forms.Form, exc: DomainError, names: dict[str, str] | None = None) -> None:
    """A service's error on a form: each field message next to its field (`names`: the error's JSON path -> the
    form's field), the others at the top with their path; a message already shown is not repeated."""
    if not exc.fields:
        form.add_error(None, exc.message)
        return
    for path, messages in exc.fields.items():
        name = (names or {}).get(path, path)
        for message in messages:
            name, text = (name, message) if name in form.fields else (None, f"{path}: {message}")
            if text not in form.errors.get(name or "__all__", []):  # the preview and the submit may both say it
                form.add_error(name, text)


class LimitedSelect(forms.Select):
    """A select whose options in `disabled` cannot be picked (e.g. the DR profiles the tier forbids)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled: set[str] = set()

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.disabled and not selected:  # a chosen one stays, with its error beside it
            option["attrs"]["disabled"] = True
        return option


class CellRequestForm(forms.Form):
    """The fields every request has: where (cell, environment) and how critical (tier, DR profile)."""

    kind = "mysql"
    preview_fields = ("cell", "environment", "tier", "drProfile")  # what the placement preview depends on

    cell = forms.ChoiceField(label="Cell", help_text="A cell your team owns.")
    environment = forms.ChoiceField(label="Environment", help_text="The cell's environments in the policy.")
    tier = forms.ChoiceField(label="Tier", help_text="How critical the cell is: sets the placement gates, the weights and the defaults.")
    drProfile = forms.ChoiceField(label="DR profile", widget=LimitedSelect,
                                  help_text="RPO, RTO, standby compute mode and where the secondary runs.")

    def __init__(self, data=None, *, policy: Policy, cells, **kwargs):
        super().__init__(data, **kwargs)
        spec = policy.spec
        self.policy = policy
        self.fields["cell"].choices = [(c.name, f"{c.name} · team {c.team.slug}") for c in cells]
        cell = self.data.get("cell") if self.is_bound else self.initial.get("cell")
        entry = spec.cells.get(cell)
        self.fields["environment"].choices = [(e, e) for e in (entry.environments if entry else [])]
        self.fields["tier"].choices = [(name, f"{name} — {_short(t.description, 30)}" if t.description else name)
                                       for name, t in spec.tiers.items()]
        tier = spec.tiers.get(self.data.get("tier") if self.is_bound else self.initial.get("tier"))
        allowed = tier.allowed_dr_profiles if tier else list(spec.dr_profiles)
        self.fields["drProfile"].choices = [
            (name, f"{name} — RPO {duration(p.rpo_seconds)} · RTO {duration(p.rto_seconds)}"
                   + ("" if name in allowed else " (not allowed for this tier)"))
            for name, p in spec.dr_profiles.items()]
        self.fields["drProfile"].widget.disabled = set(spec.dr_profiles) - set(allowed)
        for name, f in self.fields.items():
            f.widget.attrs["aria-describedby"] = f"help-{name} errors-{name}" if f.help_text else f"errors-{name}"

    def apply_domain_error(self, exc: DomainError) -> None:
        """Put the service's messages (with the policy rule they quote) next to their fields."""
        add_domain_error(self, exc, ERROR_FIELDS)

    def blocker_lines(self, blockers: dict) -> list[tuple[str, str, str]]:
        """'No valid placement' blamed on a field: (field name, its label, the message)."""
        return [(n, self.fields[n].label, m) for path, msgs in blockers.items()
                for n in [ERROR_FIELDS.get(path, path)] if n in self.fields for m in msgs]

    def error_summary(self) -> list[dict]:
        """Every error of the form, in the order of its fields (the form-wide ones first), for the summary at
        the top: each links to its field."""
        out = [{"name": "", "label": "", "message": m} for m in self.non_field_errors()]
        for name, f in self.fields.items():
            out += [{"name": name, "label": f.label, "message": m} for m in self.errors.get(name, [])]
        return out

    def preview_errors(self) -> dict:
        """Errors of the fields the preview depends on (and the form-wide ones): what to show while typing."""
        return {k: v for k, v in self.errors.items() if k in self.preview_fields or k == "__all__"}

    def placement_kwargs(self, partial: bool = False) -> dict:
        """The service's keyword arguments; `partial`: None for the fields that are not valid."""
        d = self.cleaned_data if not partial else {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
        return {"cell": d.get("cell"), "environment": d.get("environment"), "tier": d.get("tier"),
                "dr_profile": d.get("drProfile")}


class MySQLRequestForm(CellRequestForm):
    kind = "mysql"
    preview_fields = ("cell", "environment", "tier", "drProfile", "size", "storageGB", "ha")

    size = forms.ChoiceField(label="Size", help_text="vCPU and memory of each database instance.")
    storageGB = forms.IntegerField(label="Storage (GB)", min_value=1, max_value=65536)
    ha = forms.BooleanField(label="High availability (ha)", required=False,
                            help_text="Two instances per side; some tiers require it.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["size"].choices = [(name, f"{name} — {s.vcpu} vCPU, {s.memory_gb} GB")
                                       for name, s in self.policy.spec.sizes.items()]

    def placement_kwargs(self, partial: bool = False) -> dict:
        d = self.cleaned_data if not partial else {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
        return {**super().placement_kwargs(partial), "size": d.get("size"), "storage_gb": d.get("storageGB"),
                "ha": d.get("ha")}

    def service_kwargs(self) -> dict:
        return self.placement_kwargs()


class AppRequestForm(CellRequestForm):
    kind = "app"

    image = forms.RegexField(IMAGE, label="Container image", max_length=300,
                             help_text="e.g. ghcr.io/acme/payments:1.0",
                             error_messages={"invalid": "must be a container image like ghcr.io/acme/payments:1.0"})
    publicHost = forms.RegexField(HOST, label="Public host", max_length=253,
                                  help_text="The DNS name the traffic provider points at the active side.",
                                  error_messages={"invalid": "must be a DNS host name like payments.prod.company.com"})
    trafficMode = forms.ChoiceField(label="Traffic mode", choices=TRAFFIC_MODES, initial=DEFAULT_TRAFFIC_MODE)

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {**self.placement_kwargs(), "image": d["image"], "public_host": d["publicHost"], "traffic_mode": d["trafficMode"]}


# -- prefill: what the form holds before the user changes it ------------------------------------

def tier_defaults(policy: Policy, tier: str, kind: str) -> dict:
    """The tier's defaults from the active policy, as form values."""
    d = policy.spec.tiers[tier].defaults
    values = {"drProfile": d.dr_profile}
    if kind == "mysql":
        values.update(size=d.size, storageGB=d.storage_gb, ha=d.ha)
    return values


def _as_form_values(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        if isinstance(v, bool):
            if v:
                out[k] = "on"
        else:
            out[k] = str(v)
    return out


@dataclass
class DefaultsNote:
    """What a change of tier did to the form: the new tier's defaults applied, and the values the user typed kept."""

    tier: str
    applied: list[tuple[str, str]]  # (label, value)
    kept: list[tuple[str, str]]


def _typed(policy: Policy, previous_tier: str | None, data: dict, new_defaults: dict, kind: str) -> list[str]:
    """The fields whose value the user typed: it differs from the defaults of the tier the form was filled with.
    Kept only where the new tier allows it (a forbidden DR profile or ha off under requireHA gets the default)."""
    tiers = policy.spec.tiers
    if previous_tier not in tiers:
        return []
    old = _as_form_values(tier_defaults(policy, previous_tier, kind))
    new_tier = tiers[data["tier"]]
    typed = [k for k in new_defaults if data.get(k) != old.get(k)]
    if "drProfile" in typed and data.get("drProfile") not in new_tier.allowed_dr_profiles:
        typed.remove("drProfile")
    if "ha" in typed and new_tier.gates.require_ha and not data.get("ha"):
        typed.remove("ha")
    return typed


def _shown(form_class, name: str, value) -> tuple[str, str]:
    label = form_class.base_fields[name].label
    if isinstance(value, bool) or name == "ha":
        return label, "on" if value else "off"
    return label, f"{value} GB" if name == "storageGB" else str(value)


def prefill(policy: Policy, cells, params, trigger: str | None, kind: str,
            existing_values) -> tuple[dict, list[str], DefaultsNote | None]:
    """The form's data, the fields whose value the server chose, and what a change of tier did.

    First load (no drProfile in `params`: the whole form was not sent): everything from the request's ?cell=…, else defaults. When the
    cell or environment changes to one that is placed, its current values; when the tier changes, that tier's
    defaults for the fields the user has not typed (`defaultsOf`: the tier whose defaults the form holds).
    `existing_values(cell, env)` reads a placed cell environment's values. data["defaultsOf"] is the tier whose
    defaults the form now holds.
    """
    form_class = MySQLRequestForm if kind == "mysql" else AppRequestForm
    names = list(form_class.base_fields)
    first = "drProfile" not in params
    data = {k: params.get(k) for k in names if params.get(k) not in (None, "")}
    changed: set[str] = set()
    note = None
    cell_names = [c.name for c in cells]
    if data.get("cell") not in cell_names:
        data["cell"] = cell_names[0] if cell_names else ""
        changed.add("cell")
    envs = policy.spec.cells[data["cell"]].environments if data["cell"] in policy.spec.cells else []
    if data.get("environment") not in envs:
        data["environment"] = envs[0] if envs else ""
        changed.add("environment")
    if trigger == "cell":
        changed.add("environment")  # its choices are the new cell's
    defaults_of = params.get("defaultsOf") or data.get("tier")
    existing = existing_values(data["cell"], data["environment"]) if (first or trigger in ("cell", "environment")) and data["cell"] else None
    if existing:
        values = {k: v for k, v in existing.items() if k in names}
        if "ha" in names and "ha" in values and not values["ha"]:
            data.pop("ha", None)
        data.update(_as_form_values(values))
        changed.update(values)
        defaults_of = data.get("tier")
    elif first or trigger == "tier":
        if data.get("tier") not in policy.spec.tiers:
            data["tier"] = next(iter(policy.spec.tiers))
            changed.add("tier")
        values = tier_defaults(policy, data["tier"], kind)
        kept = _typed(policy, params.get("defaultsOf"), data, values, kind) if trigger == "tier" else []
        applied = {k: v for k, v in values.items() if k not in kept}
        before = dict(data)
        if "ha" in applied and not applied["ha"]:
            data.pop("ha", None)
        data.update(_as_form_values(applied))
        changed.update(applied)
        changed.add("drProfile")  # its options follow the tier (the forbidden ones are disabled)
        if trigger == "tier":
            note = DefaultsNote(
                data["tier"],
                applied=[_shown(form_class, k, v) for k, v in applied.items() if before.get(k) != data.get(k)],
                kept=[_shown(form_class, k, data.get(k) if k != "ha" else bool(data.get(k))) for k in kept])
        defaults_of = data["tier"]
    if kind == "app" and not data.get("trafficMode"):
        data["trafficMode"] = DEFAULT_TRAFFIC_MODE
    changed.discard(trigger or "")
    data["defaultsOf"] = defaults_of or ""
    return data, [n for n in names if n in changed], note


# -- operator pages ---------------------------------------------------------------------

DATETIME_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class AuditFilterForm(forms.Form):
    """Filters of the audit log: a cell, a user, an action prefix and a time range (UTC)."""

    cell = forms.CharField(required=False, max_length=64, label="Cell")
    user = forms.CharField(required=False, max_length=150, label="User")
    action = forms.CharField(required=False, max_length=80, label="Action",
                             help_text="A prefix: cells. (every cells event), dr. (failover events), change (every field change), "
                                       "change.update, step (every failover step), step fence …")
    since = forms.DateTimeField(required=False, label="From (UTC)", input_formats=DATETIME_INPUT,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    until = forms.DateTimeField(required=False, label="To (UTC)", input_formats=DATETIME_INPUT,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "must be after the start of the range")
        return data

    def filters(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")} if self.is_valid() else {}


class WhatIfForm(forms.Form):
    """A candidate policy, pasted or uploaded; nothing is changed by checking it."""

    MAX_BYTES = 1_000_000

    text = forms.CharField(required=False, label="Candidate policy (YAML)", strip=False,
                           widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "code"}))
    file = forms.FileField(required=False, label="…or upload a policy file")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > self.MAX_BYTES:
                self.add_error("file", f"is larger than {self.MAX_BYTES // 1000} kB")
                return data
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("file", "is not UTF-8 text")
                return data
        if not (data.get("text") or "").strip():
            raise forms.ValidationError("Paste a candidate policy or upload a file.")
        return data

    @property
    def source(self) -> str:
        upload = self.cleaned_data.get("file")
        return f"upload {upload.name}" if upload is not None else "pasted text"


# -- failover ----------------------------------------------------------------------------------

class FailoverForm(forms.Form):
    """Start a failover, switchover, failback or drill. dr.services.start_run checks every rule (a reason when
    forcing or inside the cool-down, failback only from the secondary…); its field errors go next to these fields."""

    kind = forms.ChoiceField(label="Run", choices=[("failover", "Failover"), ("switchover", "Switchover"),
                                                   ("failback", "Failback"), ("drill", "Drill (dry run)")],
                             widget=forms.HiddenInput)
    force = forms.BooleanField(label="Force the run even if the replication lag is above the RPO", required=False,
                               help_text="Accepts losing the writes not yet replicated. Needs a written reason; audited.")
    acknowledgeCooldown = forms.BooleanField(label="I acknowledge the cool-down and go ahead anyway", required=False,
                                             help_text="The cell failed over recently: a new run may bounce it back and forth. Needs a written reason.")
    reason = forms.CharField(label="Reason", required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why, in a sentence: recorded on the run and in the audit log. Required when forcing, inside the cool-down, and for an unplanned failover of a tier that asks for one (C0).")
    confirmName = forms.CharField(label="Type the cell's name to confirm", required=False, max_length=64,
                                  help_text="This tier asks for the cell's name before a run that changes anything.")

    FIELDS = {"type": "kind", "dryRun": "kind", "failback": "kind", "acknowledgeCooldown": "acknowledgeCooldown"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, f in self.fields.items():
            f.widget.attrs["aria-describedby"] = f"help-{name} errors-{name}" if f.help_text else f"errors-{name}"

    def service_kwargs(self, kind) -> dict:
        """dr.services.start_run's keyword arguments (kind is a portal.runs.Kind)."""
        d = self.cleaned_data
        kwargs = {**kind.service_kwargs(), "reason": d["reason"]}
        if kind.changes_anything:
            kwargs.update(force=d["force"], acknowledge_cooldown=d["acknowledgeCooldown"])
        return kwargs

    def apply_domain_error(self, exc: DomainError) -> None:
        """The service's field messages next to their fields (the error's own message goes at the top)."""
        for path, messages in exc.fields.items():
            name = self.FIELDS.get(path, path)
            for message in messages:
                if name in self.fields and name != "kind":
                    self.add_error(name, message)
                else:
                    self.add_error(None, f"{path}: {message}")


# -- evacuation ---------------------------------------------------------------------------------------

class EvacuationForm(forms.Form):
    """The scope of an evacuation (a cloud, and optionally a region or a cluster of it), why, and its
    confirmation: the scope typed again. dr.evacuations checks every rule; its field errors go next to these."""

    cloud = forms.ChoiceField(label="Cloud")
    region = forms.ChoiceField(label="Region", required=False, help_text="Empty: every region of the cloud.")
    cluster = forms.CharField(label="Cluster", required=False, max_length=128, help_text="Only this cluster (optional).")
    reason = forms.CharField(label="Reason", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="What happened to the scope: recorded on every run and in the audit log.")
    force = forms.BooleanField(label="Also move cells whose lag is above their RPO", required=False,
                               help_text="Accepts losing the writes not yet replicated on those cells.")
    confirmScope = forms.CharField(label="Type the scope to confirm", required=False, max_length=200)

    def __init__(self, *args, policy: Policy, **kwargs):
        super().__init__(*args, **kwargs)
        spec = policy.spec
        self.fields["cloud"].choices = [(c, c) for c in spec.providers]
        regions = sorted({c.region for entry in spec.cells.values() for c in entry.candidates
                          if not self.is_bound or c.cloud == self.data.get("cloud")})
        self.fields["region"].choices = [("", "every region")] + [(r, r) for r in regions]
        for name, f in self.fields.items():
            f.widget.attrs["aria-describedby"] = f"help-{name} errors-{name}" if f.help_text else f"errors-{name}"

    def scope_text(self) -> str:
        d = self.cleaned_data
        return "/".join(p for p in (d.get("cloud"), d.get("region"), d.get("cluster")) if p)

    def apply_domain_error(self, exc: DomainError) -> None:
        add_domain_error(self, exc)
