"""Placement engine: filter, score, pick a primary, then a secondary under anti-affinity.

Pure Python: takes a validated policy and a request, returns a Decision whose
`explanation` says, for every candidate, whether it was accepted (or which gate
rejected it) and its score per weight. No Django import here.

Tie-break rule (documented, deterministic): higher total score first, then lower
latencyMs, then lower costIndex, then the candidate key `cloud/region/cluster`
in alphabetical order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policy.loader import Policy
from policy.schema import WEIGHT_NAMES, Candidate, PolicySpec

TIE_BREAK = "score desc, then latencyMs asc, then costIndex asc, then cloud/region/cluster asc"

# The attribute each weight scores, and whether a higher value is better.
WEIGHT_ATTRIBUTES = {
    "latency": ("latency_ms", "latencyMs", False),
    "cost": ("cost_index", "costIndex", False),
    "capacity": ("capacity_headroom_pct", "capacityHeadroomPct", True),
}


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    cell: str
    environment: str
    tier: str
    dr_profile: str
    size: str
    storage_gb: int
    ha: bool
    required_capabilities: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "cell": self.cell,
            "environment": self.environment,
            "tier": self.tier,
            "drProfile": self.dr_profile,
            "size": self.size,
            "storageGB": self.storage_gb,
            "ha": self.ha,
            "requiredCapabilities": list(self.required_capabilities),
        }


@dataclass(frozen=True, slots=True)
class Site:
    cloud: str
    region: str
    cluster: str

    @property
    def key(self) -> str:
        return f"{self.cloud}/{self.region}/{self.cluster}"

    def as_dict(self) -> dict:
        return {"cloud": self.cloud, "region": self.region, "cluster": self.cluster}


@dataclass
class Decision:
    ok: bool
    primary: Site | None
    secondary: Site | None
    policy_version: str
    explanation: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return self.explanation.get("summary", "")


class PlacementError(ValueError):
    """The request names something the policy does not define."""


def _key(c: Candidate) -> str:
    return f"{c.cloud}/{c.region}/{c.cluster}"


def _gates(spec: PolicySpec, req: PlacementRequest, c: Candidate) -> list[dict]:
    """Every gate the candidate fails, in a fixed order."""
    tier = spec.tiers[req.tier]
    g = tier.gates
    out: list[dict] = []
    if c.cordoned:
        out.append({"gate": "cordoned", "detail": f"cordoned: {c.cordon_reason or 'no reason given'}"})
    if g.allowed_clouds is not None and c.cloud not in g.allowed_clouds:
        out.append({"gate": "allowedClouds", "detail": f"{c.cloud} not in tier {req.tier} allowedClouds {g.allowed_clouds}"})
    offered = spec.providers[c.cloud].capabilities
    missing = [cap for cap in req.required_capabilities if cap not in offered]
    if missing:
        out.append({"gate": "capabilities", "detail": f"{c.cloud} lacks {', '.join(missing)}"})
    if g.max_latency_ms is not None and c.latency_ms > g.max_latency_ms:
        out.append({"gate": "maxLatencyMs", "detail": f"latency {c.latency_ms:g} ms > {g.max_latency_ms:g} ms"})
    if g.min_capacity_headroom_pct is not None and c.capacity_headroom_pct < g.min_capacity_headroom_pct:
        out.append({
            "gate": "minCapacityHeadroomPct",
            "detail": f"headroom {c.capacity_headroom_pct:g}% < {g.min_capacity_headroom_pct:g}%",
        })
    vcpu = spec.sizes[req.size].vcpu * (2 if req.ha else 1)
    if vcpu > c.free_vcpu:
        out.append({"gate": "capacity", "detail": f"needs {vcpu} vCPU ({req.size}{', ha' if req.ha else ''}), {c.free_vcpu} free"})
    if req.storage_gb > c.max_storage_gb:
        out.append({"gate": "capacity", "detail": f"needs {req.storage_gb} GB storage, max {c.max_storage_gb} GB"})
    return out


def _scores(weights, accepted: list[Candidate]) -> dict[str, dict]:
    """Min-max normalise each weighted attribute over the accepted candidates."""
    result: dict[str, dict] = {_key(c): {} for c in accepted}
    for name in WEIGHT_NAMES:
        weight = getattr(weights, name)
        attr, label, higher_is_better = WEIGHT_ATTRIBUTES[name]
        values = [getattr(c, attr) for c in accepted]
        lo, hi = min(values), max(values)
        for c, v in zip(accepted, values):
            if hi == lo:
                norm = 1.0
            elif higher_is_better:
                norm = (v - lo) / (hi - lo)
            else:
                norm = (hi - v) / (hi - lo)
            result[_key(c)][name] = {
                "attribute": label,
                "value": v,
                "normalized": round(norm, 4),
                "weight": weight,
                "contribution": round(norm * weight, 4),
            }
    return result


def _secondary_rule(spec: PolicySpec, req: PlacementRequest, primary: Candidate, c: Candidate) -> dict | None:
    """Why `c` may not be the secondary of `primary`, or None."""
    placement = spec.dr_profiles[req.dr_profile].secondary_placement
    if c is primary:
        return {"rule": "antiAffinity", "detail": "is the primary"}
    if placement == "other-cloud" and c.cloud == primary.cloud:
        return {"rule": "antiAffinity", "detail": f"drProfile {req.dr_profile} needs another cloud than {primary.cloud}"}
    if placement == "other-region" and (c.cloud, c.region) == (primary.cloud, primary.region):
        return {"rule": "antiAffinity", "detail": f"drProfile {req.dr_profile} needs another region than {primary.cloud}/{primary.region}"}
    if placement == "other-cluster" and _key(c) == _key(primary):
        return {"rule": "antiAffinity", "detail": f"drProfile {req.dr_profile} needs another cluster"}
    for rule in spec.cross_cloud_rules:
        applies = rule.when.primary_cloud == primary.cloud and (rule.when.tiers is None or req.tier in rule.when.tiers)
        if applies and c.cloud not in rule.secondary_clouds:
            return {"rule": f"crossCloudRules:{rule.name}", "detail": f"primary on {primary.cloud} needs the secondary on {', '.join(rule.secondary_clouds)}"}
    return None


def validate_request(spec: PolicySpec, req: PlacementRequest) -> None:
    if req.cell not in spec.cells:
        raise PlacementError(f"cell '{req.cell}' is not registered in the policy")
    if req.tier not in spec.tiers:
        raise PlacementError(f"unknown tier '{req.tier}'")
    if req.dr_profile not in spec.dr_profiles:
        raise PlacementError(f"unknown DR profile '{req.dr_profile}'")
    if req.size not in spec.sizes:
        raise PlacementError(f"unknown size '{req.size}'")


def place(policy: Policy, req: PlacementRequest) -> Decision:
    """Choose a primary and a secondary for the request, and explain why."""
    spec = policy.spec
    validate_request(spec, req)
    tier = spec.tiers[req.tier]
    candidates = spec.cells[req.cell].candidates

    verdicts: list[dict] = []
    accepted: list[Candidate] = []
    for c in candidates:
        rejections = _gates(spec, req, c)
        if not rejections:
            accepted.append(c)
        verdicts.append({
            "key": _key(c),
            "cloud": c.cloud,
            "region": c.region,
            "cluster": c.cluster,
            "accepted": not rejections,
            "rejections": rejections,
        })

    scores = _scores(tier.weights, accepted) if accepted else {}
    total = {k: round(sum(s["contribution"] for s in per.values()), 4) for k, per in scores.items()}
    ranked = sorted(accepted, key=lambda c: (-total[_key(c)], c.latency_ms, c.cost_index, _key(c)))
    rank = {_key(c): i + 1 for i, c in enumerate(ranked)}
    for v in verdicts:
        if v["accepted"]:
            v["scores"] = scores[v["key"]]
            v["score"] = total[v["key"]]
            v["rank"] = rank[v["key"]]

    explanation = {
        "request": req.as_dict(),
        "policyVersion": policy.version,
        "tier": {
            "name": req.tier,
            "gates": tier.gates.model_dump(by_alias=True, exclude_none=True),
            "weights": tier.weights.model_dump(),
        },
        "drProfile": {
            "name": req.dr_profile,
            "secondaryPlacement": spec.dr_profiles[req.dr_profile].secondary_placement,
        },
        "tieBreak": TIE_BREAK,
        "candidates": verdicts,
    }

    skipped_primaries: list[dict] = []
    for primary in ranked:
        secondary_rejections = []
        secondary = None
        for c in ranked:
            why = _secondary_rule(spec, req, primary, c)
            if why is None:
                secondary = c
                break
            if c is not primary:
                secondary_rejections.append({"key": _key(c), **why})
        if secondary is None:
            skipped_primaries.append({"key": _key(primary), "detail": "no accepted candidate satisfies the secondary rules", "secondaryRejections": secondary_rejections})
            continue
        p_site = Site(primary.cloud, primary.region, primary.cluster)
        s_site = Site(secondary.cloud, secondary.region, secondary.cluster)
        explanation["primary"] = {
            **p_site.as_dict(),
            "key": p_site.key,
            "score": total[p_site.key],
            "reason": f"highest-ranked of {len(accepted)} accepted candidates"
            + (f" that has a valid secondary ({len(skipped_primaries)} skipped)" if skipped_primaries else ""),
        }
        explanation["secondary"] = {
            **s_site.as_dict(),
            "key": s_site.key,
            "score": total[s_site.key],
            "reason": f"highest-ranked candidate satisfying {explanation['drProfile']['secondaryPlacement']} and the cross-cloud rules",
            "rejected": secondary_rejections,
        }
        explanation["skippedPrimaries"] = skipped_primaries
        explanation["summary"] = f"primary {p_site.key} (score {total[p_site.key]:.3f}), secondary {s_site.key} (score {total[s_site.key]:.3f})"
        return Decision(True, p_site, s_site, policy.version, explanation)

    explanation["skippedPrimaries"] = skipped_primaries
    if not accepted:
        explanation["summary"] = f"no candidate of cell {req.cell} passes the gates of tier {req.tier}"
    else:
        explanation["summary"] = (
            f"{len(accepted)} candidate(s) pass the gates but no pair satisfies drProfile "
            f"{req.dr_profile} ({explanation['drProfile']['secondaryPlacement']}) and the cross-cloud rules"
        )
    return Decision(False, None, None, policy.version, explanation)


@dataclass(frozen=True, slots=True)
class ExistingPlacement:
    """A stored placement, as whatif needs it."""

    ref: str
    request: PlacementRequest
    primary: Site
    secondary: Site


def whatif(policy: Policy, placements: list[ExistingPlacement]) -> list[dict]:
    """For each existing placement, would `policy` place it differently, and why."""
    out = []
    for p in placements:
        row = {"ref": p.ref, "current": {"primary": p.primary.key, "secondary": p.secondary.key}}
        try:
            d = place(policy, p.request)
        except PlacementError as exc:
            out.append({**row, "changed": True, "proposed": None, "why": str(exc)})
            continue
        if not d.ok:
            out.append({**row, "changed": True, "proposed": None, "why": f"no valid placement: {d.summary}"})
            continue
        proposed = {"primary": d.primary.key, "secondary": d.secondary.key}
        changed = proposed != row["current"]
        out.append({**row, "changed": changed, "proposed": proposed, "why": _why_moved(d, p) if changed else "same placement"})
    return out


def _why_moved(d: Decision, p: ExistingPlacement) -> str:
    by_key = {v["key"]: v for v in d.explanation["candidates"]}
    reasons = []
    for role, site, new in (("primary", p.primary, d.primary), ("secondary", p.secondary, d.secondary)):
        if site.key == new.key:
            continue
        old = by_key.get(site.key)
        if old is None:
            reasons.append(f"{role} {site.key} is no longer a candidate")
        elif not old["accepted"]:
            reasons.append(f"{role} {site.key} rejected: " + "; ".join(r["detail"] for r in old["rejections"]))
        else:
            reasons.append(f"{role} {new.key} now ranks above {site.key} ({by_key[new.key]['score']:.3f} vs {old['score']:.3f})")
    return "; ".join(reasons)
