"""The delivery target interface: where rendered manifests go (a GitOps repository or Kubernetes API servers).

A target is idempotent and revision-guarded: applying objects whose revision the
target already holds (or holds a newer one of) changes nothing and says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cells.rendering import LABEL, object_path

REVISION = LABEL + "revision"


class DeliveryError(Exception):
    """Permanent: retrying will not help (bad credentials, invalid object, missing CRD)."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying with backoff (connection refused, timeout, conflict, 5xx)."""


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    cluster: str
    cloud: str

    @classmethod
    def of(cls, obj: dict) -> "ObjectRef":
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        return cls(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"),
                   labels.get(LABEL + "cluster", ""), labels.get(LABEL + "cloud", ""))

    @property
    def path(self) -> str:
        return object_path({"kind": self.kind, "metadata": {"name": self.name, "namespace": self.namespace,
                                                             "labels": {LABEL + "cluster": self.cluster}}})

    def as_dict(self) -> dict:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "namespace": self.namespace,
                "cluster": self.cluster, "cloud": self.cloud}

    @classmethod
    def from_dict(cls, d: dict) -> "ObjectRef":
        return cls(d["apiVersion"], d["kind"], d["name"], d.get("namespace"), d.get("cluster", ""), d.get("cloud", ""))


def revision_of(obj: dict | None) -> int | None:
    if not obj:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Result:
    changed: bool
    detail: str


class DeliveryTarget(Protocol):
    name: str

    def apply(self, objects: list[dict], *, revision: int, message: str) -> Result:
        """Make the target hold `objects` (all carrying `revision`). An object the target holds at a
        newer revision is left alone. Idempotent: the same revision twice changes nothing."""

    def delete(self, refs: list[ObjectRef], *, message: str) -> Result:
        """Remove the objects; already absent is fine."""

    def read(self, ref: ObjectRef) -> dict | None:
        """The object as the target holds it (with `status` where the target has one), or None."""

    def list(self, cluster: str, api_version: str, kind: str) -> list[dict]:
        """The cluster-scoped objects of one kind on a management cluster (the platform package)."""
