"""The Crossplane platform package: what a management cluster needs before any claim can become Ready.

XRDs (apiextensions.crossplane.io/v2, namespaced composite resources) are built from our API's own
schema (manifests/crds/platform-dr-crds.yaml, the one place it is written); the Compositions and the
Function object are files under manifests/crossplane/. `install()` delivers the package to every
management cluster of the policy's registry through the configured delivery target, so the simulator
(and a real cluster) find it where they find the claims.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

from policy.yamlload import load_yaml_all

from .delivery.base import ObjectRef, revision_of
from .rendering import DEFAULT_MANIFESTS_DIR, LABEL

API_GROUP = "platform.idp-multicloud.io/"
CRDS_FILE = "crds/platform-dr-crds.yaml"
COMPOSITIONS_DIR = "crossplane/compositions"
FUNCTION_FILE = "crossplane/function.yaml"
# Bump when the package changes: the delivery targets never overwrite a newer revision with an older one.
PACKAGE_REVISION = 1
XRD_API = "apiextensions.crossplane.io/v2"
COMPOSITION_API = "apiextensions.crossplane.io/v1"
FUNCTION_API = "pkg.crossplane.io/v1"
# Crossplane v2 adds these to a namespaced XR's schema itself; an XRD must not declare them.
CROSSPLANE_RESERVED = ("crossplane",)


def _load_all(path: Path) -> list[dict]:
    return [doc for doc in load_yaml_all(path.read_text(encoding="utf-8")) if doc]


def xrd_from_crd(crd: dict) -> dict:
    """The CompositeResourceDefinition serving the same kind and schema as our CRD."""
    spec = crd["spec"]
    versions = []
    for v in spec["versions"]:
        schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
        props = schema["properties"]["spec"]
        for key in CROSSPLANE_RESERVED:
            props["properties"].pop(key, None)
            props["required"] = [r for r in props.get("required", []) if r != key]
        # Only spec and status belong in an XRD's schema: Crossplane adds apiVersion, kind and metadata.
        schema["properties"] = {k: schema["properties"][k] for k in ("spec", "status") if k in schema["properties"]}
        versions.append({"name": v["name"], "served": v["served"], "referenceable": v["storage"],
                         "additionalPrinterColumns": v.get("additionalPrinterColumns", []),
                         "schema": {"openAPIV3Schema": schema}})
    names = {k: spec["names"][k] for k in ("kind", "plural", "singular", "listKind", "categories") if k in spec["names"]}
    return {"apiVersion": XRD_API, "kind": "CompositeResourceDefinition",
            "metadata": {"name": crd["metadata"]["name"]},
            "spec": {"group": spec["group"], "names": names, "scope": "Namespaced", "versions": versions}}


@lru_cache(maxsize=4)
def _package(manifests_dir: Path) -> tuple:
    crds = _load_all(manifests_dir / CRDS_FILE)
    objects = [xrd_from_crd(crd) for crd in crds]
    for path in sorted((manifests_dir / COMPOSITIONS_DIR).glob("*.yaml")):
        objects += _load_all(path)
    objects += _load_all(manifests_dir / FUNCTION_FILE)
    return tuple(objects)


def package_objects(manifests_dir: Path | None = None) -> list[dict]:
    """The package's objects, unlabelled (a copy per call)."""
    return copy.deepcopy(list(_package(Path(manifests_dir or DEFAULT_MANIFESTS_DIR))))


def for_cluster(cluster: str, cloud: str, manifests_dir: Path | None = None) -> list[dict]:
    """The package as delivered to one management cluster (cluster-scoped objects, labelled for it)."""
    objects = package_objects(manifests_dir)
    for obj in objects:
        meta = obj["metadata"]
        meta.setdefault("labels", {}).update({LABEL + "cluster": cluster, LABEL + "cloud": cloud,
                                              LABEL + "component": "platform-package"})
        meta.setdefault("annotations", {})[LABEL + "revision"] = str(PACKAGE_REVISION)
    return objects


def installed(target, cluster: str, cloud: str) -> bool:
    """Whether the cluster already holds this package revision. The Function is the package's last object
    (a target applies objects in order, a GitOps commit all at once), so it stands for the whole."""
    function = next(o for o in reversed(_package(Path(DEFAULT_MANIFESTS_DIR))) if o["kind"] == "Function")
    ref = ObjectRef(function["apiVersion"], "Function", function["metadata"]["name"], None, cluster, cloud)
    return (revision_of(target.read(ref)) or 0) >= PACKAGE_REVISION


def management_clusters(policy) -> list[tuple[str, str]]:
    """(cluster, cloud) of every candidate in the policy's registry."""
    return sorted({(c.cluster, c.cloud) for cell in policy.spec.cells.values() for c in cell.candidates})


def install(target, policy, clusters: list[str] | None = None) -> list[str]:
    """Deliver the package to the management clusters (all, or the named ones); one line per cluster."""
    lines = []
    for cluster, cloud in management_clusters(policy):
        if clusters and cluster not in clusters:
            continue
        result = target.apply(for_cluster(cluster, cloud), revision=PACKAGE_REVISION,
                              message=f"platform package r{PACKAGE_REVISION} for {cluster}")
        lines.append(f"{cluster} ({cloud}): {result.detail}")
    return lines


def matches(selector: dict, labels: dict) -> bool:
    """Kubernetes label selector semantics for matchLabels (what Crossplane uses to pick a Composition)."""
    return all((labels or {}).get(k) == v for k, v in ((selector or {}).get("matchLabels") or {}).items())
