"""The delivery target interface: where rendered manifests go (a GitOps repository or Kubernetes API servers).

A target is idempotent and revision-guarded: applying objects whose revision the
target already holds (or holds a newer one of) changes nothing and says so.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
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


class Batch(Protocol):
    """A group of deliveries made as one change (one GitOps commit), while the target is held for the group.

    Each delivery stages its objects with `apply`/`delete` (same revision guard as the target's own methods);
    a call that raises stages nothing, so one bad delivery does not sink the others. `commit` then makes
    everything staged one change and returns its id (a commit sha), or None when nothing changed."""

    def apply(self, objects: list[dict], *, revision: int) -> Result: ...

    def delete(self, refs: list[ObjectRef]) -> Result: ...

    def commit(self, message: str) -> str | None: ...


class ImmediateBatch:
    """The batch of a target without commits (Kubernetes): each delivery's objects are applied as it stages them,
    one object at a time, and `commit` has nothing left to do."""

    def __init__(self, target: "DeliveryTarget"):
        self.target = target

    def apply(self, objects: list[dict], *, revision: int) -> Result:
        return self.target.apply(objects, revision=revision, message="")

    def delete(self, refs: list[ObjectRef]) -> Result:
        return self.target.delete(refs, message="")

    def commit(self, message: str) -> str | None:
        return None


class DeliveryTarget(Protocol):
    name: str

    def batch(self) -> AbstractContextManager[Batch]:
        """Hold the target for a group of deliveries (the repository lock) and stage them into one change."""

    def apply(self, objects: list[dict], *, revision: int, message: str) -> Result:
        """Make the target hold `objects` (all carrying `revision`). An object the target holds at a
        newer revision is left alone. Idempotent: the same revision twice changes nothing."""

    def delete(self, refs: list[ObjectRef], *, message: str) -> Result:
        """Remove the objects; already absent is fine."""

    def read(self, ref: ObjectRef) -> dict | None:
        """The object as the target holds it (with `status` where the target has one), or None."""

    def list(self, cluster: str, api_version: str, kind: str) -> list[dict]:
        """The cluster-scoped objects of one kind on a management cluster (the platform package)."""
