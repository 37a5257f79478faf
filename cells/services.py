"""The domain services: every state change of a cell goes through here.

The API, the portal, the admin, the management commands and the Celery tasks
call these functions; each takes the acting user, checks access, owns its
transaction and records an audit entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.db import IntegrityError, transaction
from django.utils import timezone

from policy import app_rules
from policy.active import active_policy, record_version
from policy.loader import Policy
from policy.names import SIDES, other_side
from scheduler.engine import Decision, PlacementRequest, place
from scheduler.models import PlacementDecision

from . import access, changes, pipeline, text
from .audit import acting, record_event  # noqa: F401 (the services' callers use them from here too)
from .errors import Conflict, InvalidRequest, NoPlacement, NotFound
from .models import (PUBLIC_HOST_CONSTRAINT, Application, Cell, CellEnvironment, ClaimStatus, Delivery,
                     MySQLClaim, ReplicationClaim, Side)
from .reads import CompiledRead
from .registry import ensure_cell

DEFAULT_TRAFFIC_MODE = "active-passive"


# A request after the tier's defaults and the policy's rules: the scheduler's request without capabilities yet.
CellSpec = PlacementRequest


@dataclass
class Outcome:
    cell_env: CellEnvironment
    created: bool  # the claims of this request did not exist before
    changed: bool  # something was created or updated
    # Per side and changed field: is it an online change on that side's cloud (cells.changes)?
    change_impact: list[dict] = field(default_factory=list)


# -- validation against the policy -------------------------------------------------

def resolve_spec(policy: Policy, *, cell: str, environment: str, tier: str | None, dr_profile: str | None,
                 size: str | None = None, storage_gb: int | None = None, ha: bool | None = None,
                 existing: CellEnvironment | None = None) -> CellSpec:
    """Apply the tier's defaults and the policy's rules; raise InvalidRequest with field messages."""
    spec = policy.spec
    entry = spec.cells.get(cell)
    if entry is None:
        raise InvalidRequest(
            f"cell '{cell}' is not registered",
            {"cell": [f"cell '{cell}' is not registered in the policy ({policy.version}); an operator registers it "
                      f"by adding it under `cells:` in policy/policy.yaml with its team and candidates"]},
        )
    if environment not in entry.environments:
        raise InvalidRequest(
            f"environment '{environment}' is not defined for cell '{cell}'",
            {"environment": [f"cell '{cell}' has environments {', '.join(entry.environments)} "
                             f"(policy rule cells.{cell}.environments)"]},
        )
    tier = tier or (existing.tier if existing else None)
    if tier is None:
        raise InvalidRequest("tier is required", {"tier": [f"required; one of {', '.join(spec.tiers)}"]})
    if tier not in spec.tiers:
        raise InvalidRequest(f"unknown tier '{tier}'", {"tier": [f"unknown tier '{tier}'; one of {', '.join(spec.tiers)}"]})
    t = spec.tiers[tier]
    dr_profile = dr_profile or (existing.dr_profile if existing else t.defaults.dr_profile)
    errors: dict[str, list[str]] = {}
    if dr_profile not in spec.dr_profiles:
        errors["drProfile"] = [f"unknown DR profile '{dr_profile}'; one of {', '.join(spec.dr_profiles)}"]
    elif dr_profile not in t.allowed_dr_profiles:
        errors["drProfile"] = [f"tier {tier} allows DR profiles {', '.join(t.allowed_dr_profiles)} "
                               f"(policy rule tiers.{tier}.allowedDrProfiles)"]
    size = size or t.defaults.size
    if size not in spec.sizes:
        errors["size"] = [f"unknown size '{size}'; one of {', '.join(spec.sizes)}"]
    storage_gb = t.defaults.storage_gb if storage_gb is None else storage_gb
    ha = t.defaults.ha if ha is None else ha
    if t.gates.require_ha and not ha:
        errors["ha"] = [f"tier {tier} requires ha=true (policy rule tiers.{tier}.gates.requireHA)"]
    if errors:
        raise InvalidRequest("the request breaks the policy", errors)
    return CellSpec(cell, environment, tier, dr_profile, size, storage_gb, ha)


def required_capabilities(policy: Policy, cs: CellSpec, kind: str) -> tuple[str, ...]:
    """Capabilities a claim of `kind` ('mysql' or 'app') needs on both sides."""
    spec = policy.spec
    caps = list(spec.claim_capabilities.app if kind == "app" else spec.claim_capabilities.mysql)
    if kind == "mysql" and cs.ha:
        caps += spec.claim_capabilities.mysql_ha
    tool = spec.dr_profiles[cs.dr_profile].replication_tool
    caps += spec.replication_tools[tool].required_capabilities
    return tuple(dict.fromkeys(caps))


def placement_request(cs: CellSpec, caps: tuple[str, ...]) -> PlacementRequest:
    return replace(cs, required_capabilities=caps)


def _schedule(policy: Policy, cs: CellSpec, caps: tuple[str, ...], kind: str | None = None) -> Decision:
    decision = place(policy, placement_request(cs, caps))
    if not decision.ok:
        raise NoPlacement(f"no valid placement for {cs.cell}/{cs.environment}: {decision.summary}",
                          placement_blockers(policy, cs, kind, decision) if kind else None,
                          explanation=decision.explanation)
    return decision


def placement_blockers(policy: Policy, cs: CellSpec, kind: str, decision: Decision) -> dict[str, list[str]]:
    """Which field of a request 'no valid placement' comes from: the first one whose change would place it
    (ha, then the DR profile, then the tier); the cell's candidates when no change of the request would."""
    def places(**change) -> Decision | None:
        alt = replace(cs, **change)
        d = place(policy, placement_request(alt, required_capabilities(policy, alt, kind)))
        return d if d.ok else None

    tiers, why = policy.spec.tiers, decision.summary
    if kind == "mysql":
        room = sorted({c.max_storage_gb for c in policy.spec.cells[cs.cell].candidates if c.max_storage_gb < cs.storage_gb},
                      reverse=True)
        fits = next((gb for gb in room if places(storage_gb=gb)), None)
        if fits:
            return {"storageGB": [f"no candidate pair of cell {cs.cell} can hold {cs.storage_gb} GB ({why}); "
                                  f"up to {fits} GB would place"]}
        vcpu = policy.spec.sizes[cs.size].vcpu
        smaller = [name for name, size in policy.spec.sizes.items() if size.vcpu < vcpu and places(size=name)]
        if smaller:
            return {"size": [f"no candidate pair of cell {cs.cell} has the capacity for size {cs.size} ({why}); "
                             f"{' and '.join(smaller)} would place"]}
    if kind == "mysql" and cs.ha and not tiers[cs.tier].gates.require_ha and (d := places(ha=False)):
        return {"ha": [f"no candidate pair of cell {cs.cell} offers high availability ({why}); "
                       f"without ha it would place {d.summary}"]}
    profiles = [p for p in tiers[cs.tier].allowed_dr_profiles if p != cs.dr_profile and places(dr_profile=p)]
    if profiles:
        return {"drProfile": [f"DR profile {cs.dr_profile} has no valid placement for cell {cs.cell} ({why}); "
                              f"{' and '.join(profiles)} would place"]}
    other_tiers = [name for name, t in tiers.items() if name != cs.tier and places(
        tier=name, dr_profile=cs.dr_profile if cs.dr_profile in t.allowed_dr_profiles else t.defaults.dr_profile,
        ha=cs.ha or t.gates.require_ha)]
    if other_tiers:
        return {"tier": [f"tier {cs.tier}'s gates leave no valid placement for cell {cs.cell} ({why}); "
                         f"{' and '.join(other_tiers)} would place"]}
    return {"cell": [f"no candidate of cell {cs.cell} can host this request under policy {policy.version} ({why}); "
                     f"an operator adds candidates under cells.{cs.cell}.candidates"]}


def _store_decision(actor, policy: Policy, decision: Decision, cs: CellSpec, reason: str, note: str = "") -> PlacementDecision:
    p, s = decision.primary, decision.secondary
    return PlacementDecision.objects.create(
        cell=cs.cell, environment=cs.environment, policy_version=policy.version, policy=record_version(policy),
        reason=reason, note=note, request=decision.explanation["request"], explanation=decision.explanation,
        primary_cloud=p.cloud, primary_region=p.region, primary_cluster=p.cluster,
        secondary_cloud=s.cloud, secondary_region=s.region, secondary_cluster=s.cluster,
        actor=actor if getattr(actor, "pk", None) else None,
    )


def _check_placement_fits(policy: Policy, cell_env: CellEnvironment, caps: tuple[str, ...]) -> None:
    """A sticky placement made for one kind of claim must also offer what the next kind needs."""
    providers = policy.spec.providers
    d = cell_env.placement
    for side in SIDES:
        cloud = getattr(d, f"{side}_cloud")
        offered = providers[cloud].capabilities if cloud in providers else []
        missing = [c for c in caps if c not in offered]
        if missing:
            raise Conflict(
                f"{cell_env} is placed on {cloud} ({side}), which lacks {', '.join(missing)}; "
                f"an operator can re-place the cell (POST /api/cells/{cell_env.cell.name}/{cell_env.environment}/replace)",
                placement={"decisionId": d.pk},
            )


def _locked_cell(policy: Policy, user, name: str) -> Cell:
    cell = ensure_cell(policy, name)
    access.require_cell_access(user, cell)
    # Serialise concurrent requests for one cell: the same request twice never makes two placements.
    return Cell.objects.select_for_update(of=("self",)).select_related("team").get(pk=cell.pk)


# Every request reads its cell environment: compiled once per process (cells.reads); "<environment>" is no slug.
_read_placed = CompiledRead(lambda cell_id, env: CellEnvironment.objects.select_related("placement", "cell__team")
                            .filter(cell_id=cell_id, environment=env)[:1], -1, "<environment>")


def _cell_environment(cell: Cell, environment: str) -> CellEnvironment | None:
    return next(iter(_read_placed(cell.pk, environment)), None)


def _ensure_cell_environment(actor, policy: Policy, cell: Cell, cs: CellSpec, caps: tuple[str, ...],
                             existing: CellEnvironment | None, kind: str) -> CellEnvironment:
    """The cell environment with its placement: the existing one (sticky) or a new decision."""
    if existing is not None and existing.decommissioned_at is not None:
        return _revive(actor, policy, existing, cs, caps, kind)
    if existing is not None:
        if (existing.tier, existing.dr_profile) != (cs.tier, cs.dr_profile):
            raise Conflict(
                f"{existing} is {existing.tier}/{existing.dr_profile}; changing the tier or DR profile of a placed "
                f"cell is an operator re-place, not a request",
                fields={"tier": [f"is {existing.tier}"], "drProfile": [f"is {existing.dr_profile}"]},
            )
        _check_placement_fits(policy, existing, caps)
        return existing
    decision = _schedule(policy, cs, caps, kind)
    stored = _store_decision(actor, policy, decision, cs, PlacementDecision.Reason.INITIAL)
    entry = policy.spec.cells[cs.cell]
    cell_env = CellEnvironment.objects.create(
        cell=cell, environment=cs.environment, tier=cs.tier, dr_profile=cs.dr_profile, placement=stored,
        traffic_provider=entry.traffic_provider or policy.spec.defaults.traffic_provider, created_by=actor,
    )
    record_event(actor, "scheduler.placement.decided", decision.summary, cell_env, decisionId=stored.pk,
                 policyVersion=policy.version)
    return cell_env


def _all_claims(cell_env: CellEnvironment) -> list:
    return [*cell_env.mysqlclaims.all(), *cell_env.replicationclaims.all(), *cell_env.applications.all()]


def _revive(actor, policy: Policy, cell_env: CellEnvironment, cs: CellSpec, caps: tuple[str, ...],
            kind: str) -> CellEnvironment:
    """A request for a decommissioned cell environment places it afresh and delivers all its claims again."""
    decision = _schedule(policy, cs, caps, kind)
    stored = _store_decision(actor, policy, decision, cs, PlacementDecision.Reason.INITIAL, note="re-created after decommission")
    cell_env.placement, cell_env.tier, cell_env.dr_profile = stored, cs.tier, cs.dr_profile
    cell_env.decommissioned_at = None
    cell_env.active_side = Side.PRIMARY
    _save_holding_host(cell_env)  # live again: it takes its public host back, unless another one holds it now
    claims = _all_claims(cell_env)
    for claim in claims:
        for key, value in (stored.site(claim.side).items() if hasattr(claim, "side") else ()):
            setattr(claim, key, value)
        _new_revision(claim)
    pipeline.enqueue(cell_env, claims, actor, "re-created after decommission")
    record_event(actor, "cells.environment.recreated", decision.summary, cell_env, decisionId=stored.pk)
    return cell_env


def _update_fields(obj, values: dict) -> bool:
    """Set changed fields and bump the revision; True if anything changed."""
    changed = {k: v for k, v in values.items() if getattr(obj, k) != v}
    if not changed:
        return False
    for k, v in changed.items():
        setattr(obj, k, v)
    _new_revision(obj)
    return True


def _new_revision(obj) -> None:
    """A changed claim is a new desired revision, pending until delivered."""
    obj.revision += 1
    obj.status, obj.status_message = ClaimStatus.PENDING, ""
    obj.save()


# -- requests ---------------------------------------------------------------------

def request_mysql(actor, *, cell: str, environment: str, tier: str | None = None, dr_profile: str | None = None,
                  size: str | None = None, storage_gb: int | None = None, ha: bool | None = None) -> Outcome:
    """A MySQL claim per side and the replication between them. Idempotent."""
    policy = active_policy()
    with acting(actor):
        cell_row = _locked_cell(policy, actor, cell) if cell in policy.spec.cells else None
        existing = _cell_environment(cell_row, environment) if cell_row else None
        # A decommissioned environment's databases are gone; a live one's storage is allocated.
        live_claims = list(existing.mysqlclaims.all()) if existing is not None and existing.decommissioned_at is None else []
        if storage_gb is None and live_claims:
            storage_gb = max(c.storage_gb for c in live_claims)  # omitted: keep it (the tier default may be less)
        cs = resolve_spec(policy, cell=cell, environment=environment, tier=tier, dr_profile=dr_profile,
                          size=size, storage_gb=storage_gb, ha=ha, existing=existing)
        check_storage_grows(live_claims, cs.storage_gb)  # before anything is stored
        caps = required_capabilities(policy, cs, "mysql")
        cell_env = _ensure_cell_environment(actor, policy, cell_row, cs, caps, existing, "mysql")
        profile = policy.spec.dr_profiles[cs.dr_profile]
        # A live environment is the one placed (sticky): its claims were read above, under the cell's lock.
        claims = {c.side: c for c in (live_claims or cell_env.mysqlclaims.all())}
        values = {"size": cs.size, "storage_gb": cs.storage_gb, "ha": cs.ha}
        if not claims:
            for side in SIDES:
                claims[side] = MySQLClaim.objects.create(
                    cell_env=cell_env, side=side, name=f"{cell}-{environment}-mysql-{side}",
                    **cell_env.placement.site(side), **values,
                )
            ReplicationClaim.objects.create(
                cell_env=cell_env, name=f"{cell}-{environment}-replication", source=claims["primary"],
                target=claims["secondary"], tool=profile.replication_tool, expected_rpo_seconds=profile.rpo_seconds,
            )
            record_event(actor, "cells.mysql.created", f"MySQL claims and {profile.replication_tool} replication requested",
                         cell_env, **_camel(values))
            pipeline.enqueue(cell_env, [*claims.values(), *cell_env.replicationclaims.all()], actor, "MySQL requested")
            return Outcome(cell_env, created=True, changed=True)
        # A revived environment gets new databases: nothing changes on a live one, so no impact to report.
        impact = [entry for side in SIDES if live_claims
                  for entry in changes.impact(side, claims[side].cloud, _camel(_mysql_values(claims[side])),
                                              _camel(values))]
        changed = [claims[side] for side in SIDES if _update_fields(claims[side], values)]
        if changed:
            offline = [f"{e['side']} {e['field']} on {e['cloud']}" for e in impact if not e["online"]]
            message = "MySQL claims updated" + (f"; not online: {', '.join(offline)}" if offline else "")
            record_event(actor, "cells.mysql.updated", message, cell_env, **_camel(values), changeImpact=impact)
            pipeline.enqueue(cell_env, changed, actor, "MySQL updated")
        return Outcome(cell_env, created=False, changed=bool(changed), change_impact=impact)


def _mysql_values(claim: MySQLClaim) -> dict:
    return {"size": claim.size, "storage_gb": claim.storage_gb, "ha": claim.ha}


def check_storage_grows(claims, storage_gb: int) -> None:
    """Allocated storage only grows: refuse a request below what a live claim holds (400 on storageGB)."""
    allocated = max((c.storage_gb for c in claims), default=None)
    if allocated is not None and storage_gb < allocated:
        raise InvalidRequest(
            f"storage can only grow: {allocated} GB allocated, {storage_gb} GB requested",
            {"storageGB": [f"storage can only grow: {allocated} GB allocated, {storage_gb} GB requested; "
                           f"{changes.STORAGE_ONLY_GROWS}"]},
        )


def request_app(actor, *, cell: str, environment: str, image: str, public_host: str,
                traffic_mode: str | None = None, tier: str | None = None, dr_profile: str | None = None) -> Outcome:
    """An Argo CD Application per side; the secondary's compute mode follows the DR profile. Idempotent."""
    policy = active_policy()
    with acting(actor):
        cell_row = _locked_cell(policy, actor, cell) if cell in policy.spec.cells else None
        existing = _cell_environment(cell_row, environment) if cell_row else None
        cs = _all_at_once(
            lambda: resolve_spec(policy, cell=cell, environment=environment, tier=tier, dr_profile=dr_profile, existing=existing),
            lambda: cell in policy.spec.cells and check_app_rules(policy, cell=cell, environment=environment, image=image,
                                                                  public_host=public_host))[0]
        _check_host_free(public_host, cell, environment)
        caps = required_capabilities(policy, cs, "app")
        if existing is not None and existing.decommissioned_at is not None:
            existing.public_host = public_host  # a revived environment holds the host of this request
        cell_env = _ensure_cell_environment(actor, policy, cell_row, cs, caps, existing, "app")
        _hold_public_host(cell_env, public_host)
        apps = {a.side: a for a in cell_env.applications.all()}
        wanted = application_values(policy, cs, image, public_host, traffic_mode or DEFAULT_TRAFFIC_MODE)
        if not apps:
            created = [
                Application.objects.create(
                    cell_env=cell_env, side=side, name=f"{cell}-{environment}-{side}",
                    **cell_env.placement.site(side), **wanted[side],
                )
                for side in SIDES
            ]
            record_event(actor, "cells.app.created", f"applications requested for {public_host}", cell_env,
                         image=image, publicHost=public_host)
            pipeline.enqueue(cell_env, created, actor, "app requested")
            return Outcome(cell_env, created=True, changed=True)
        changed = [apps[side] for side in SIDES if _update_fields(apps[side], wanted[side])]
        if changed:
            record_event(actor, "cells.app.updated", "applications updated", cell_env, image=image, publicHost=public_host)
            pipeline.enqueue(cell_env, changed, actor, "app updated")
        return Outcome(cell_env, created=False, changed=bool(changed))


def application_values(policy: Policy, cs: CellSpec, image: str, public_host: str, traffic_mode: str) -> dict:
    """Per side: the primary runs the tier's replicas; the secondary follows the DR profile's compute mode."""
    profile = policy.spec.dr_profiles[cs.dr_profile]
    full = policy.spec.tiers[cs.tier].defaults.replicas
    secondary_replicas = profile.secondary_replicas if profile.compute_mode == "warm" else 0
    common = {"image": image, "public_host": public_host, "traffic_mode": traffic_mode}
    return {
        "primary": {**common, "compute_mode": Application.ComputeMode.ACTIVE, "replicas": full},
        "secondary": {**common, "compute_mode": profile.compute_mode, "replicas": secondary_replicas},
    }


def _all_at_once(*checks) -> list:
    """Run every check; their field errors together in one InvalidRequest (a person fixes them all in one go).
    One failing check keeps its own message."""
    results, failed = [], []
    for check in checks:
        try:
            results.append(check())
        except InvalidRequest as exc:
            failed.append(exc)
            results.append(None)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise InvalidRequest("; ".join(e.message for e in failed), {k: v for e in failed for k, v in e.fields.items()})
    return results


def check_app_rules(policy: Policy, *, cell: str, environment: str, image: str, public_host: str) -> None:
    """The policy's rules for an app: its public host in a DNS zone of its team, its image from an allowed
    registry (publicHosts, images.allowedRegistries). 400 with the rule on each field that breaks one."""
    spec = policy.spec
    team = spec.cells[cell].team
    errors = {}
    host_problem = app_rules.public_host_problem(spec, public_host, team=team, cell=cell, environment=environment)
    if host_problem:
        errors["traffic.publicHost"] = [host_problem]
    image_problem = app_rules.image_problem(spec, image)
    if image_problem:
        errors["app.image"] = [image_problem]
    if errors:
        raise InvalidRequest("the request breaks the policy", errors)


def _host_taken(public_host: str, cell_env: CellEnvironment | None = None) -> Conflict:
    holder = (CellEnvironment.objects.filter(public_host=public_host, decommissioned_at__isnull=True)
              .exclude(pk=getattr(cell_env, "pk", None)).select_related("cell").first())
    held_by = str(holder) if holder else "another cell environment"
    return Conflict(f"public host {public_host} is already served by {held_by}",
                    fields={"traffic.publicHost": [f"already used by {held_by}"]}, heldBy=held_by)


def _check_host_free(public_host: str, cell: str, environment: str) -> None:
    """Answer early (before placing anything); the database constraint is what guarantees it."""
    if (CellEnvironment.objects.filter(public_host=public_host, decommissioned_at__isnull=True)
            .exclude(cell__name=cell, environment=environment).exists()):
        raise _host_taken(public_host)


def _save_holding_host(cell_env: CellEnvironment, **kwargs) -> None:
    """Save `cell_env`; a live one whose public host another live one holds is a 409 (the constraint
    one_live_environment_per_public_host decides between concurrent requests: the first to commit keeps it)."""
    try:
        with transaction.atomic():
            cell_env.save(**kwargs)
    except IntegrityError as exc:
        if PUBLIC_HOST_CONSTRAINT not in str(exc) and "public_host" not in str(exc):
            raise
        raise _host_taken(cell_env.public_host, cell_env) from None


def _hold_public_host(cell_env: CellEnvironment, public_host: str) -> None:
    if cell_env.public_host != public_host:
        cell_env.public_host = public_host
        _save_holding_host(cell_env, update_fields=["public_host", "updated_at"])


def _camel(values: dict) -> dict:
    names = {"storage_gb": "storageGB", "dr_profile": "drProfile"}
    return {names.get(k, k): v for k, v in values.items()}


# -- operator actions --------------------------------------------------------------

def replace_cell(actor, *, cell: str, environment: str, note: str = "") -> tuple[CellEnvironment, bool]:
    """Place a cell environment again under the active policy (operator only). Returns (cell_env, moved)."""
    access.require_operator(actor, "re-place a cell")
    note = text.clean(note or "", "note")
    policy = active_policy()
    with acting(actor):
        cell_env = get_cell_environment(actor, cell, environment, lock=True)
        if cell not in policy.spec.cells:
            raise Conflict(f"cell '{cell}' is no longer in the policy's registry; it cannot be re-placed")
        mysql = list(cell_env.mysqlclaims.all())
        apps = list(cell_env.applications.all())
        # The claims' own size, storage and ha: a re-place moves the databases, it never resizes them
        # (resolve_spec would otherwise fill a tier default, which could be smaller than what is allocated).
        first = max(mysql, key=lambda c: c.storage_gb) if mysql else None
        cs = resolve_spec(policy, cell=cell, environment=environment, tier=cell_env.tier, dr_profile=cell_env.dr_profile,
                          size=first.size if first else None, storage_gb=first.storage_gb if first else None,
                          ha=first.ha if first else None)
        check_storage_grows(mysql, cs.storage_gb)
        caps: tuple[str, ...] = ()
        for kind, present in (("mysql", mysql), ("app", apps)):
            if present:
                caps += required_capabilities(policy, cs, kind)
        decision = _schedule(policy, cs, tuple(dict.fromkeys(caps)))
        stored = _store_decision(actor, policy, decision, cs, PlacementDecision.Reason.REPLACE, note)
        moved = (stored.primary_key, stored.secondary_key) != (cell_env.placement.primary_key, cell_env.placement.secondary_key)
        cell_env.placement = stored
        cell_env.save()
        changed = [obj for obj in mysql + apps if _update_fields(obj, stored.site(obj.side))]
        if changed and mysql:
            # The replication's source and target moved with the databases.
            for repl in cell_env.replicationclaims.all():
                _new_revision(repl)
                changed.append(repl)
        pipeline.enqueue(cell_env, changed, actor, f"re-placed: {note}" if note else "re-placed")
        record_event(actor, "scheduler.placement.replaced", ("moved: " if moved else "unchanged: ") + decision.summary,
                     cell_env, decisionId=stored.pk, note=note, moved=moved)
        return cell_env, moved


def database_endpoint_changed(claim: MySQLClaim, endpoint: str):
    """A database reports a new endpoint: the replication claim names both ends (GoldenGate's connections need
    them), so it becomes a new revision, delivered like any change. Returns the delivery."""
    with transaction.atomic():
        repls = list(ReplicationClaim.objects.select_for_update().filter(cell_env_id=claim.cell_env_id))
        for repl in repls:
            _new_revision(repl)
        cell_env = CellEnvironment.objects.get(pk=claim.cell_env_id)
        record_event(None, "cells.mysql.endpoint", f"{claim.name} answers at {endpoint}", cell_env,
                     claim=claim.name, endpoint=endpoint)
        return pipeline.enqueue(cell_env, repls, None, f"{claim.side} database endpoint {endpoint}")


def adopt_restored_database(actor, cell_env: CellEnvironment, side: str, external_name: str, reason: str):
    """Point the cell at a database restored at failover: the side's claim adopts it (a new revision, delivered),
    so its managed resource takes the restored database over and the connection Secret follows. Idempotent."""
    with acting(actor), transaction.atomic():
        claim = MySQLClaim.objects.select_for_update().filter(cell_env=cell_env, side=side).first()
        if claim is None or not _update_fields(claim, {"adopted_external_name": external_name}):
            return None
        record_event(actor, "cells.mysql.restored", f"{side} database restored as {external_name}: {reason}", cell_env,
                     side=side, externalName=external_name)
        return pipeline.enqueue(cell_env, [claim], actor, f"{side} database restored: {reason}")


# The runbook changes compute several times per failover (an evacuation: for every cell): compiled once (cells.reads).
_read_application = CompiledRead(lambda ce_id, side: Application.objects.filter(cell_env_id=ce_id, side=side)
                                 .order_by("pk")[:1], -1, "<side>")


def set_compute(actor, cell_env: CellEnvironment, side: str, *, compute_mode: str, replicas: int, reason: str):
    """Change one side's Application (the failover runbook activates and demotes compute with this).
    Delivered through the pipeline like any change; returns the delivery, or None when nothing changed."""
    with acting(actor):
        app = next(iter(_read_application(cell_env.pk, side)), None)
        if app is not None:
            app.cell_env = cell_env  # as cell_env.applications would give it
        if app is None or not _update_fields(app, {"compute_mode": compute_mode, "replicas": replicas}):
            return None
        record_event(actor, "cells.compute.changed", f"{side} compute -> {compute_mode} x{replicas}: {reason}", cell_env,
                     side=side, computeMode=compute_mode, replicas=replicas)
        return pipeline.enqueue(cell_env, [app], actor, reason)


def standby_compute(policy: Policy, cell_env: CellEnvironment) -> tuple[str, int]:
    """The compute mode and replicas of a standby side under the cell's DR profile."""
    profile = policy.spec.dr_profiles[cell_env.dr_profile]
    return profile.compute_mode, profile.secondary_replicas if profile.compute_mode == "warm" else 0


def full_replicas(policy: Policy, cell_env: CellEnvironment) -> int:
    return policy.spec.tiers[cell_env.tier].defaults.replicas


def reverse_replication(actor, cell_env: CellEnvironment, *, source_side: str, reason: str):
    """Point the ReplicationClaim from `source_side` (the new writer) to the other side (reprotect)."""
    with acting(actor):
        repl = cell_env.replicationclaims.select_related("source", "target").first()
        if repl is None:
            return None
        claims = {c.side: c for c in cell_env.mysqlclaims.all()}
        target_side = other_side(source_side)
        if not _update_fields(repl, {"source": claims[source_side], "target": claims[target_side]}):
            return None
        record_event(actor, "cells.replication.reversed", f"replication now {source_side} -> {target_side}: {reason}",
                     cell_env, source=claims[source_side].name, target=claims[target_side].name)
        return pipeline.enqueue(cell_env, [repl], actor, reason)


def decommission(actor, *, cell: str, environment: str) -> CellEnvironment:
    """Remove a cell environment's objects from the delivery target; its records stay for the audit."""
    with acting(actor):
        cell_env = get_cell_environment(actor, cell, environment, lock=True)
        if cell_env.decommissioned_at is not None:
            return cell_env
        cell_env.decommissioned_at = timezone.now()
        cell_env.save()
        claims = _all_claims(cell_env)
        for claim in claims:
            claim.status, claim.status_message = ClaimStatus.DELETING, "decommission requested"
            claim.save()
        pipeline.enqueue(cell_env, claims, actor, "decommission", action=Delivery.Action.DELETE)
        record_event(actor, "cells.environment.decommissioned", f"{cell_env} decommissioned", cell_env)
        return cell_env


def redeliver(actor, *, cell: str, environment: str):
    """Deliver again what the target does not hold (after a failed delivery)."""
    with acting(actor):
        cell_env = get_cell_environment(actor, cell, environment, lock=True)
        delivery = pipeline.redeliver(cell_env, actor)
        if delivery is not None:
            record_event(actor, "cells.delivery.retried", f"delivery #{delivery.pk} queued", cell_env, deliveryId=delivery.pk)
        return cell_env, delivery


# -- reads -------------------------------------------------------------------------

def _cell_environment_for(cell: str, environment: str, user_id: int):
    """The cell environment with its cell, team and placement, and whether the user may see it: one query."""
    return access.with_viewer_access(CellEnvironment.objects.select_related("cell__team", "placement"), user_id) \
        .filter(cell__name=cell, environment=environment)


# The read every status poll starts with, compiled once per process (cells.reads); "<cell>" is no slug.
_read_cell_environment = CompiledRead(lambda cell, env, user_id: _cell_environment_for(cell, env, user_id)[:1],
                                      "<cell>", "<environment>", -1)


def get_cell_environment(user, cell: str, environment: str, lock: bool = False) -> CellEnvironment:
    user_id = access.viewer_id(user)
    if lock:
        cell_env = _cell_environment_for(cell, environment, user_id).select_for_update(of=("self",)).first()
    else:
        cell_env = next(iter(_read_cell_environment(cell, environment, user_id)), None)
    if cell_env is None:
        raise NotFound(f"no cell environment {cell}/{environment}; request a MySQL or an app for it first")
    access.require_cell_access(user, cell_env.cell, viewer=cell_env)
    return cell_env


def get_decision(user, decision_id: int) -> PlacementDecision:
    decision = PlacementDecision.objects.filter(pk=decision_id).first()
    if decision is None:
        raise NotFound(f"no placement decision {decision_id}")
    cell = Cell.objects.filter(name=decision.cell).select_related("team").first()
    if cell is None or not access.can_access_cell(user, cell):
        # Do not reveal other teams' decisions exist.
        raise NotFound(f"no placement decision {decision_id}")
    return decision


def preview_placement(user, *, cell: str, environment: str, tier: str | None, dr_profile: str | None,
                      size: str | None = None, storage_gb: int | None = None, ha: bool | None = None,
                      kind: str = "mysql") -> tuple[Decision, CellEnvironment | None, dict[str, list[str]]]:
    """Where a request would be placed, without storing anything (the portal's live preview), and when it
    cannot be placed, the field that causes it (placement_blockers)."""
    policy = active_policy()
    cell_row = ensure_cell(policy, cell) if cell in policy.spec.cells else None
    if cell_row is not None:
        access.require_cell_access(user, cell_row)
    existing = _cell_environment(cell_row, environment) if cell_row else None
    cs = resolve_spec(policy, cell=cell, environment=environment, tier=tier, dr_profile=dr_profile,
                      size=size, storage_gb=storage_gb, ha=ha)
    decision = place(policy, placement_request(cs, required_capabilities(policy, cs, kind)))
    return decision, existing, ({} if decision.ok else placement_blockers(policy, cs, kind, decision))


# -- policy what-if ----------------------------------------------------------------

def existing_placements(policy: Policy) -> list:
    """Every placed cell environment as the scheduler sees it, with the needs of its present claims."""
    from scheduler.engine import ExistingPlacement, Site

    envs = CellEnvironment.objects.select_related("cell", "placement").prefetch_related("mysqlclaims", "applications")
    out = []
    for ce in envs:
        mysql = next(iter(ce.mysqlclaims.all()), None)
        tier = policy.spec.tiers.get(ce.tier)
        default_size = tier.defaults.size if tier else "small"  # an unknown tier: place() reports it
        cs = CellSpec(ce.cell.name, ce.environment, ce.tier, ce.dr_profile, mysql.size if mysql else default_size,
                      mysql.storage_gb if mysql else 1, mysql.ha if mysql else False)
        caps: tuple[str, ...] = ()
        try:
            if mysql:
                caps += required_capabilities(policy, cs, "mysql")
            if ce.applications.all():
                caps += required_capabilities(policy, cs, "app")
        except KeyError:
            pass  # the candidate policy dropped the DR profile or tool; place() reports it
        d = ce.placement
        out.append(ExistingPlacement(
            ref=f"{ce.cell.name}/{ce.environment}",
            request=placement_request(cs, tuple(dict.fromkeys(caps))),
            primary=Site(d.primary_cloud, d.primary_region, d.primary_cluster),
            secondary=Site(d.secondary_cloud, d.secondary_region, d.secondary_cluster),
        ))
    return out


def whatif_policy(candidate: Policy) -> list[dict]:
    """Which existing placements `candidate` would place differently, and why. Changes nothing."""
    from scheduler.engine import whatif

    return whatif(candidate, existing_placements(candidate))
