"""Render the DR manifests (claims, replication, Argo CD Applications) from templates.

Pure functions, no Django: a context dict in, plain dicts out.

Placeholder rules (see manifests/README.md):
  * Templates are real YAML, parsed first; substitution walks the parsed tree,
    so no value can inject YAML structure, and substituted text is never
    re-scanned for placeholders.
  * A scalar that is exactly ``${key}`` becomes the typed value of ``ctx[key]``
    (int, bool, dict, list, None...). ``${key|str}`` gives its text instead
    (annotations and Helm parameter values must be strings).
  * ``${key}`` inside longer text is interpolated as text.
  * Dotted keys (``${source.cloud}``) look into nested dicts.
  * An unknown key raises RenderError naming the template and the key.
"""

from __future__ import annotations

import copy
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from policy.names import COMPUTE_MODES, SIDES
from policy.yamlload import load_yaml_all

__all__ = [
    "RenderError",
    "DEFAULT_MANIFESTS_DIR",
    "render_template",
    "render_mysql_claim",
    "render_replication_claim",
    "render_application",
    "application_shape",
    "goldengate_names",
    "goldengate_pair",
    "to_yaml",
    "object_path",
]

DEFAULT_MANIFESTS_DIR = Path(__file__).resolve().parent.parent / "manifests"

LABEL = "platform.idp-multicloud.io/"

MYSQL_CLAIM_TEMPLATE = "crossplane/cellmysqlclaim.yaml"
REPLICATION_CLAIM_TEMPLATE = "crossplane/replicationclaim.yaml"
APPLICATION_TEMPLATE = "argocd/application.yaml"

WRITER, STANDBY = "writer", "standby"
GOLDENGATE_TOOL = "oci-goldengate"

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(\|str)?\}")


class RenderError(ValueError):
    """A template could not be rendered (unknown placeholder, bad input)."""

    def __init__(self, template: str, message: str, key: str | None = None):
        super().__init__(f"{template}: {message}")
        self.template = template
        self.key = key


# --------------------------------------------------------------------------- core


@lru_cache(maxsize=None)
def _load(path: Path) -> tuple:
    """Parse a template file once. Never mutate the result: _substitute copies
    every container it walks (the equivalent of a deep copy per render)."""
    return tuple(doc for doc in load_yaml_all(path.read_text(encoding="utf-8")) if doc is not None)


def _lookup(ctx: dict, key: str, template: str) -> Any:
    value: Any = ctx
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise RenderError(template, f"unknown placeholder ${{{key}}}", key=key)
        value = value[part]
    return value


def _as_text(value: Any, key: str, template: str) -> str:
    if isinstance(value, bool):  # YAML spelling, not Python's True/False
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise RenderError(template, f"${{{key}}} is a {type(value).__name__}: "
                          "it can only fill a whole scalar", key=key)
    return str(value)


def _substitute_str(text: str, ctx: dict, template: str) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole:
        key = whole.group(1)
        value = _lookup(ctx, key, template)
        # deepcopy so callers mutating the output never touch their ctx
        return _as_text(value, key, template) if whole.group(2) else copy.deepcopy(value)

    def repl(m: re.Match) -> str:
        return _as_text(_lookup(ctx, m.group(1), template), m.group(1), template)

    # re.sub does not re-scan replacement text, so values cannot inject placeholders
    return _PLACEHOLDER.sub(repl, text)


def _substitute(node: Any, ctx: dict, template: str) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, ctx, template) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, ctx, template) for v in node]
    if isinstance(node, str):
        return _substitute_str(node, ctx, template)
    return node


def render_template(name: str, ctx: dict, manifests_dir: Path | str | None = None) -> list[dict]:
    """Render every YAML document of ``manifests_dir/name`` with ``ctx``."""
    base = Path(manifests_dir) if manifests_dir is not None else DEFAULT_MANIFESTS_DIR
    path = (base / name).resolve()
    try:
        docs = _load(path)
    except FileNotFoundError:
        raise RenderError(name, f"template not found at {path}") from None
    # _substitute builds new containers, so the cached tree is never mutated
    return [_substitute(doc, ctx, name) for doc in docs]


def _require(template: str, ctx: dict, key: str, allowed: tuple) -> str:
    value = _lookup(ctx, key, template)
    if value not in allowed:
        raise RenderError(template, f"{key}={value!r}, expected one of {list(allowed)}", key=key)
    return value


# ------------------------------------------------------------------------ objects


def render_mysql_claim(ctx: dict, manifests_dir: Path | str | None = None) -> dict:
    """One CellMySQLClaim (one side of a cell's database).

    ctx: name, namespace, cell, environment, team, side, tier, drProfile, size,
    storageGB (int), ha (bool), cloud, region, cluster, revision (int),
    decisionId (int), policyVersion.
    """
    _require(MYSQL_CLAIM_TEMPLATE, ctx, "side", SIDES)
    (obj,) = render_template(MYSQL_CLAIM_TEMPLATE, ctx, manifests_dir)
    if ctx.get("adoptExternalName"):  # a restored database this claim's managed resource takes over
        obj["spec"]["adopt"] = {"externalName": ctx["adoptExternalName"]}
    return obj


def goldengate_names(cell: str, environment: str) -> tuple[str, str]:
    """Deterministic (Extract, Replicat) names for a cell/environment.

    GoldenGate group names hold at most 8 characters and should not end in a
    digit, so: "E"/"R" + the same 7 uppercase letters from a SHA-256 of
    "cell/environment" (26**7 ~ 8e9 values: collisions within one deployment
    are negligible). The same pair comes out on every process and host.
    """
    digest = int.from_bytes(hashlib.sha256(f"{cell}/{environment}".encode()).digest(), "big")
    letters = []
    for _ in range(7):
        digest, rem = divmod(digest, 26)
        letters.append(chr(ord("A") + rem))
    short = "".join(letters)
    return "E" + short, "R" + short


def goldengate_pair(cell: str, environment: str, source_side: str) -> tuple[str, str]:
    """(Extract, Replicat) of the pair replicating from `source_side`: the forward pair (from the primary) has
    goldengate_names' names; the reverse pair, after a reprotect, those of "environment/reverse"."""
    if source_side not in SIDES:
        raise ValueError(f"source_side={source_side!r}, expected one of {list(SIDES)}")
    return goldengate_names(cell, environment if source_side == "primary" else f"{environment}/reverse")


def render_replication_claim(ctx: dict, manifests_dir: Path | str | None = None) -> dict:
    """The ReplicationClaim (ctx: name, namespace, cell, environment, team, tier, drProfile, tool, expectedRPOSeconds,
    revision, source and target {claimName, cloud, region, cluster[, endpoint, port]}).

    For tool oci-goldengate it also carries spec.goldengate and the
    extract/replicat labels, so it needs ctx["goldengate"]["deploymentId"].
    """
    tool = _require(REPLICATION_CLAIM_TEMPLATE, ctx, "tool",
                    ("oci-goldengate", "mysql-replication", "backup-restore"))
    (claim,) = render_template(REPLICATION_CLAIM_TEMPLATE, ctx, manifests_dir)
    if tool == GOLDENGATE_TOOL:
        # cell/environment exist: the template above already used them
        extract, replicat = goldengate_names(ctx["cell"], ctx["environment"])
        deployment_id = _lookup(ctx, "goldengate.deploymentId", REPLICATION_CLAIM_TEMPLATE)
        claim["spec"]["goldengate"] = {
            "deploymentId": deployment_id,
            "extractName": extract,
            "replicatName": replicat,
        }
        claim["metadata"]["labels"][LABEL + "extract-name"] = extract
        claim["metadata"]["labels"][LABEL + "replicat-name"] = replicat
        claim["metadata"]["annotations"][LABEL + "lag-metric"] = "oci_goldengate ReplicatLag"
    return claim


def application_shape(compute_mode: str, replicas: int) -> tuple[str, int, bool]:
    """(role, replicas to run, automated sync) for a side in `compute_mode`.

    The side's *role* decides, never whether it was placed as primary or secondary:
    after a failover the secondary is the writer and the old primary a standby.
      writer (mode active)   -> all `replicas`, automated sync
      standby warm           -> `replicas` (the profile's minimal count), automated
      standby pilot          -> 0 replicas, automated (manifests in place, ready to scale)
      standby cold           -> 0 replicas, no `automated`: Argo CD knows it and never syncs it
    """
    role = WRITER if compute_mode == "active" else STANDBY
    running = replicas if compute_mode in ("active", "warm") else 0
    return role, running, compute_mode != "cold"


def render_application(ctx: dict, manifests_dir: Path | str | None = None) -> dict:
    """One Argo CD Application for one side of a cell's workload.

    ctx: name, namespace, cell, environment, team, side, image, publicHost,
    trafficMode, computeMode (active|warm|pilot|cold), replicas (int), cloud,
    region, cluster, revision, repoURL, path, targetRevision.
    """
    _require(APPLICATION_TEMPLATE, ctx, "side", SIDES)
    mode = _require(APPLICATION_TEMPLATE, ctx, "computeMode", COMPUTE_MODES)
    replicas = _lookup(ctx, "replicas", APPLICATION_TEMPLATE)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise RenderError(APPLICATION_TEMPLATE, f"replicas={replicas!r}, expected an int >= 0",
                          key="replicas")
    role, running, automated = application_shape(mode, replicas)
    sync_policy: dict = {"syncOptions": ["CreateNamespace=true"]}
    if automated:
        sync_policy = {"automated": {"prune": True, "selfHeal": True}, **sync_policy}
    derived = {**ctx, "role": role, "replicaCount": running, "syncPolicy": sync_policy}
    (obj,) = render_template(APPLICATION_TEMPLATE, derived, manifests_dir)
    return obj


# ------------------------------------------------------------------------- output


class _Dumper(yaml.SafeDumper):
    """SafeDumper that never emits anchors/aliases for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict]) -> str:
    """Multi-document YAML, keys in template order."""
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, explicit_start=True, allow_unicode=True)


def object_path(obj: dict) -> str:
    """``clusters/<cluster>/<namespace>/<kind>-<name>.yaml``.

    The cluster comes from the platform.idp-multicloud.io/cluster label;
    cluster-scoped objects (the GoldenGate managed resources) go under
    ``_cluster`` instead of a namespace.
    """
    meta = obj.get("metadata") or {}
    cluster = (meta.get("labels") or {}).get(LABEL + "cluster")
    if not cluster:
        raise RenderError(obj.get("kind", "?"), f"object {meta.get('name')!r} has no cluster label",
                          key=LABEL + "cluster")
    namespace = meta.get("namespace") or "_cluster"
    return f"clusters/{cluster}/{namespace}/{obj['kind'].lower()}-{meta['name']}.yaml"
