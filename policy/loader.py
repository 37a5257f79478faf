"""Load and validate a policy document; give it a version.

Pure Python. A policy that fails here never becomes active: callers get a
PolicyError listing every problem as `path: message`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from . import adapters, app_rules
from .names import is_dns_label
from .schema import PolicySpec
from .yamlload import load_yaml

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PolicyError(Exception):
    def __init__(self, problems: list[Problem], source: str = "policy"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: invalid policy\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Policy:
    """A validated policy and its identity."""

    spec: PolicySpec
    digest: str  # sha256 of the canonical document: formatting and comments do not change it
    text: str
    source: str = "policy.yaml"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str | None:
        return self.spec.version

    @property
    def version(self) -> str:
        """Human label (if any) plus the content hash: `2026.11.1+3fa2b9c01d4e`."""
        short = self.digest[:12]
        return f"{self.label}+{short}" if self.label else short


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _message(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    bound = lambda v: int(v) if float(v).is_integer() else v  # noqa: E731  (0.0 reads as 0)
    if kind == "greater_than_equal":
        return f"must be a number >= {bound(ctx['ge'])}"
    if kind == "greater_than":
        return f"must be a number > {bound(ctx['gt'])}"
    if kind == "less_than_equal":
        return f"must be a number <= {bound(ctx['le'])}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']} (lowercase letters, digits and '-')"
    if kind in ("too_short",):
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return _MESSAGES.get(kind, err["msg"])


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _cross_references(spec: PolicySpec) -> list[Problem]:
    """Checks that span sections: every name used must be defined."""
    problems: list[Problem] = []
    clouds = set(spec.providers)
    known = lambda names: ", ".join(sorted(names))  # noqa: E731

    def need(path: str, value: str, names, what: str) -> None:
        if value not in names:
            problems.append(Problem(path, f"unknown {what} '{value}' (known: {known(names)})"))

    traffic = adapters.names("traffic")
    need("defaults.trafficProvider", spec.defaults.traffic_provider, traffic, "traffic provider")
    for name in spec.traffic_providers:
        need(f"trafficProviders.{name}", name, traffic, "traffic provider")
    need("failover.computeActivator", spec.failover.compute_activator, adapters.names("compute"), "compute activator")
    databases = set(adapters.DATABASES) | set(adapters.NOT_SUPPORTED_YET)
    for cloud, provider in spec.providers.items():
        need(f"providers.{cloud}.database", provider.database, databases, "database adapter")
    for tname, tool in spec.replication_tools.items():
        for role in adapters.DATABASE_ROLES:
            need(f"replicationTools.{tname}.adapters.{role}", getattr(tool.adapters, role),
                 (*adapters.names(role), adapters.DATABASE), f"{role} adapter")
    for i, tname in enumerate(spec.evacuation.tier_order):
        need(f"evacuation.tierOrder[{i}]", tname, spec.tiers, "tier")
    for tname, tier in spec.tiers.items():
        base = f"tiers.{tname}"
        for i, p in enumerate(tier.allowed_dr_profiles):
            need(f"{base}.allowedDrProfiles[{i}]", p, spec.dr_profiles, "DR profile")
        need(f"{base}.defaults.drProfile", tier.defaults.dr_profile, tier.allowed_dr_profiles or (), "DR profile for this tier")
        need(f"{base}.defaults.size", tier.defaults.size, spec.sizes, "size")
        for i, c in enumerate(tier.gates.allowed_clouds or ()):
            need(f"{base}.gates.allowedClouds[{i}]", c, clouds, "cloud")
        if tier.defaults.ha is False and tier.gates.require_ha:
            problems.append(Problem(f"{base}.defaults.ha", "must be true: the tier's gates require HA"))
        if not any(getattr(tier.weights, w) > 0 for w in ("latency", "cost", "capacity")):
            problems.append(Problem(f"{base}.weights", "at least one weight must be > 0"))
    for pname, profile in spec.dr_profiles.items():
        need(f"drProfiles.{pname}.replicationTool", profile.replication_tool, spec.replication_tools, "replication tool")
        if profile.compute_mode == "warm" and profile.secondary_replicas < 1:
            problems.append(Problem(f"drProfiles.{pname}.secondaryReplicas", "must be >= 1 for computeMode warm"))
    for i, rule in enumerate(spec.failover.approval_before_traffic_switch):
        for j, t in enumerate(rule.tiers):
            need(f"failover.approvalBeforeTrafficSwitch[{i}].tiers[{j}]", t, spec.tiers, "tier")
    for t in spec.failover.drill_interval_seconds:
        need(f"failover.drillIntervalSeconds.{t}", t, spec.tiers, "tier")
    for i, rule in enumerate(spec.cross_cloud_rules):
        base = f"crossCloudRules[{i}]"
        need(f"{base}.when.primaryCloud", rule.when.primary_cloud, clouds, "cloud")
        for j, t in enumerate(rule.when.tiers or ()):
            need(f"{base}.when.tiers[{j}]", t, spec.tiers, "tier")
        for j, c in enumerate(rule.secondary_clouds):
            need(f"{base}.secondaryClouds[{j}]", c, clouds, "cloud")
    problems += _app_rule_problems(spec)
    for cname, cell in spec.cells.items():
        base = f"cells.{cname}"
        if not is_dns_label(cname):
            problems.append(Problem(base, "cell names must be lowercase letters, digits and '-' (max 32)"))
        for i, env in enumerate(cell.environments):
            if not is_dns_label(env):
                problems.append(Problem(f"{base}.environments[{i}]", "must be lowercase letters, digits and '-'"))
        if cell.traffic_provider is not None:
            need(f"{base}.trafficProvider", cell.traffic_provider, traffic, "traffic provider")
        seen: dict[tuple, int] = {}
        for i, cand in enumerate(cell.candidates):
            need(f"{base}.candidates[{i}].cloud", cand.cloud, clouds, "cloud")
            if cand.database is not None:
                need(f"{base}.candidates[{i}].database", cand.database, databases, "database adapter")
            database = cand.database or (spec.providers[cand.cloud].database if cand.cloud in spec.providers else None)
            if database in adapters.NOT_SUPPORTED_YET and not cand.cordoned:
                service, why = adapters.NOT_SUPPORTED_YET[database]
                problems.append(Problem(f"{base}.candidates[{i}]", (
                    f"failover of {service} is not supported yet ({why}): cordon this candidate "
                    f"or give it a supported database ({', '.join(adapters.DATABASES)})")))
            key = (cand.cloud, cand.region, cand.cluster)
            if key in seen:
                problems.append(Problem(f"{base}.candidates[{i}]", f"duplicates candidates[{seen[key]}] ({'/'.join(key)})"))
            seen.setdefault(key, i)
    return problems


def _app_rule_problems(spec: PolicySpec) -> list[Problem]:
    """publicHosts: DNS zone names and the registry's teams; images: registry names."""
    problems: list[Problem] = []
    if spec.public_hosts is not None:
        teams = {c.team for c in spec.cells.values()}
        sections = [("publicHosts.default", spec.public_hosts.default)]
        for team, zones in spec.public_hosts.teams.items():
            if team not in teams:
                problems.append(Problem(f"publicHosts.teams.{team}",
                                        f"unknown team '{team}' (teams of the cells: {', '.join(sorted(teams))})"))
            sections.append((f"publicHosts.teams.{team}", zones))
        for base, zones in sections:
            for i, zone in enumerate(zones.dns_zones):
                why = app_rules.zone_problem(zone)
                if why:
                    problems.append(Problem(f"{base}.dnsZones[{i}]", why))
    if spec.images is not None:
        for i, registry in enumerate(spec.images.allowed_registries):
            if not app_rules.REGISTRY.match(registry):
                problems.append(Problem(f"images.allowedRegistries[{i}]",
                                        "must be a registry host, optionally with a path (ghcr.io, ghcr.io/acme), "
                                        "in lowercase, without scheme or tag"))
    return problems


def canonical_digest(document: object) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_policy(text: str, source: str = "policy.yaml") -> Policy:
    """Validate a policy document given as YAML text. Raises PolicyError."""
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise PolicyError([Problem("", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")], source) from None
    if not isinstance(document, dict):
        raise PolicyError([Problem("", "the policy must be a YAML mapping")], source)
    try:
        spec = PolicySpec.model_validate(document)
    except ValidationError as exc:
        problems = [Problem(_path(e["loc"]), _message(e)) for e in exc.errors()]
        raise PolicyError(problems, source) from None
    problems = _cross_references(spec)
    if problems:
        raise PolicyError(problems, source)
    return Policy(spec=spec, digest=canonical_digest(document), text=text, source=source)


def load_policy_file(path: str | Path | None = None) -> Policy:
    path = Path(path or DEFAULT_POLICY_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from None
    return parse_policy(text, source=str(path))
