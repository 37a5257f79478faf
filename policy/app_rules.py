"""What an application may serve and run under a policy: its public host must lie in a DNS zone its team may
use (`publicHosts`), its image must come from an allowed registry (`images.allowedRegistries`).

Pure Python: plain strings in, a message naming the policy rule out (None when allowed). A policy without
the section does not restrict that field.
"""
from __future__ import annotations

import re

from .schema import PolicySpec

# Zone names may stand for the request's own names: "{cell}.{environment}.company.com".
PLACEHOLDERS = ("cell", "environment", "team")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# A registry host (with an optional port), optionally followed by a path: ghcr.io, ghcr.io/acme, localhost:5000/team
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")


# -- public hosts ---------------------------------------------------------------------------------

def zone_problem(zone: str) -> str | None:
    """Why a zone of the policy is not usable (None if it is): a DNS name, placeholders allowed."""
    unknown = [p for p in _PLACEHOLDER.findall(zone) if p not in PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
    if not _HOST.match(_PLACEHOLDER.sub("x", zone.lower())):
        return "must be a DNS name like apps.company.com ({cell}, {environment} and {team} may stand for labels)"
    return None


def _expand(zone: str, names: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: names.get(m.group(1), m.group(0)), zone).lower().rstrip(".")


def in_zone(host: str, zone: str) -> bool:
    """The zone itself or any name below it (at a label boundary: pay.company.com is not in y.company.com)."""
    host = host.lower().rstrip(".")
    return host == zone or host.endswith("." + zone)


def host_zones(spec: PolicySpec, *, team: str, cell: str, environment: str) -> list[tuple[str, str]]:
    """(zone, rule path) for every zone the team may use, placeholders filled in."""
    rules = spec.public_hosts
    if rules is None:
        return []
    names = {"cell": cell, "environment": environment, "team": team}
    out = [(_expand(z, names), "publicHosts.default.dnsZones") for z in rules.default.dns_zones]
    if team in rules.teams:
        out += [(_expand(z, names), f"publicHosts.teams.{team}.dnsZones") for z in rules.teams[team].dns_zones]
    return out


def public_host_problem(spec: PolicySpec, host: str, *, team: str, cell: str, environment: str) -> str | None:
    """None if `host` lies in a zone the team may use, else a message naming the rules."""
    if spec.public_hosts is None:
        return None
    zones = host_zones(spec, team=team, cell=cell, environment=environment)
    if any(in_zone(host, zone) for zone, _ in zones):
        return None
    rules = sorted({path for _, path in zones}) or ["publicHosts.default.dnsZones", f"publicHosts.teams.{team}.dnsZones"]
    allowed = ", ".join(dict.fromkeys(zone for zone, _ in zones)) or "none"
    return (f"{host} is outside the DNS zones team {team} may use for {cell}/{environment}: {allowed} "
            f"(policy rule{'s' if len(rules) > 1 else ''} {', '.join(rules)})")


# -- images ---------------------------------------------------------------------------------------

def image_repository(image: str) -> str:
    """The image's repository with its registry, without tag or digest, as a container runtime resolves it:
    ghcr.io/acme/payments:1.0 -> ghcr.io/acme/payments; nginx:1.27 -> docker.io/library/nginx."""
    name = image.split("@", 1)[0].lower()
    head, _, last = name.rpartition("/")
    if ":" in last:  # a tag (a ':' in the first component is a registry port)
        last = last.split(":", 1)[0]
    name = f"{head}/{last}" if head else last
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        return f"{DOCKER_HUB}/{name if rest else 'library/' + name}"
    if first in _DOCKER_HUB_ALIASES:
        return f"{DOCKER_HUB}/{rest}"
    return name


def registry_matches(repository: str, registry: str) -> bool:
    registry = registry.lower().rstrip("/")
    return repository == registry or repository.startswith(registry + "/")


def image_problem(spec: PolicySpec, image: str) -> str | None:
    """None if the image comes from an allowed registry, else a message naming the rule."""
    if spec.images is None:
        return None
    repository = image_repository(image)
    if any(registry_matches(repository, r) for r in spec.images.allowed_registries):
        return None
    return (f"image {repository} does not come from an allowed registry "
            f"({', '.join(spec.images.allowed_registries)}) (policy rule images.allowedRegistries)")
