"""Deliver rendered objects straight to Kubernetes API servers (one management cluster per cloud).

Server-side apply (SSA) with our own field manager and force=False: a field another manager owns
surfaces as a 409 Conflict instead of being silently taken over, and fails the delivery at once (no
retry can succeed until that manager lets go or an operator forces). Revision-guarded like every
DeliveryTarget: an object the cluster holds at a newer revision is never overwritten.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from cells.delivery.base import DeliveryError, ImmediateBatch, ObjectRef, Result, TransientDeliveryError, revision_of

# kind -> plural where "lowercase kind + s" would be wrong or is worth pinning.
PLURALS = {
    "CellMySQLClaim": "cellmysqlclaims",
    "ReplicationClaim": "replicationclaims",
    "Application": "applications",
    "Connection": "connections",
    "ConnectionAssignment": "connectionassignments",
}

# (connect, read) seconds: a hung API server must not block a reconcile forever.
REQUEST_TIMEOUT = (5.0, 30.0)

# Worth retrying: the object moved under us (409), throttling (429), timeouts (408), server side (5xx).
# A 409 that is a server-side-apply field manager conflict is the exception: see _apply_conflicts.
_TRANSIENT_STATUSES = {408, 409, 429}

# metav1.CauseTypeFieldManagerConflict: the StatusCause reason the API server gives each field another
# manager owns (apiserver fieldmanager NewConflictError -> apierrors.NewApplyConflict).
FIELD_MANAGER_CONFLICT = "FieldManagerConflict"
# The cause message is `conflict with <manager>`, the manager Go-quoted, maybe followed by `using <apiVersion>`.
_CONFLICT_WITH = re.compile(r'^conflict with (?P<manager>"(?:[^"\\]|\\.)*")(?P<rest>.*)$')

_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def _redact_bearer(text: str) -> str:
    return _BEARER.sub(r"\1<redacted>", text)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool


def resource_of(ref: ObjectRef) -> Resource:
    """The custom-objects API coordinates of `ref` (group/version from apiVersion)."""
    if "/" not in ref.api_version:  # core group ("v1") is not served by the custom-objects API
        raise DeliveryError(f"kubernetes: {ref.kind} {ref.name}: apiVersion {ref.api_version!r} has no API group")
    group, version = ref.api_version.split("/", 1)
    plural = PLURALS.get(ref.kind, ref.kind.lower() + "s")
    return Resource(group, version, plural, ref.namespace is not None)


def _contains(live: Any, ours: Any) -> bool:
    """True when `live` carries every field of `ours` with an equal value.

    Controllers add their own fields (Crossplane writes spec.resourceRef/compositionRef on a
    claim, the API server fills defaults): those must not make an unchanged object look changed.
    """
    if isinstance(ours, dict):
        return isinstance(live, dict) and all(k in live and _contains(live[k], v) for k, v in ours.items())
    if isinstance(ours, list):
        return isinstance(live, list) and len(live) == len(ours) and all(map(_contains, live, ours))
    return live == ours


def _describe(ref: ObjectRef) -> str:
    where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    return f"{ref.kind} {where}"


class KubernetesTarget:
    """DeliveryTarget over the Kubernetes API: each object goes to the management cluster of its cloud."""

    name = "kubernetes"

    def __init__(self, contexts: dict[str, str], kubeconfig: str | None = None,
                 field_manager: str = "idp-multicloud",
                 api_clients: dict[str, k8s.ApiClient] | None = None) -> None:
        self.contexts = dict(contexts)        # cloud -> kubeconfig context
        self.kubeconfig = kubeconfig
        self.field_manager = field_manager
        self._clients: dict[str, k8s.ApiClient] = dict(api_clients or {})  # keyed by cloud
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> "KubernetesTarget":
        from django.conf import settings  # lazy: this module must import without Django configured

        contexts = getattr(settings, "IDP_KUBE_CONTEXTS", None) or {}
        if not contexts:
            raise DeliveryError("kubernetes: IDP_KUBE_CONTEXTS is empty: no management cluster per cloud configured")
        return cls(contexts, kubeconfig=getattr(settings, "IDP_KUBECONFIG", None))

    # ------------------------------------------------------------------ plumbing

    def _context(self, ref: ObjectRef) -> str:
        try:
            return self.contexts[ref.cloud]
        except KeyError:
            raise DeliveryError(f"kubernetes: {_describe(ref)}: no management cluster for cloud {ref.cloud!r} "
                                f"(configured: {sorted(self.contexts)})") from None

    def _api(self, ref: ObjectRef) -> k8s.CustomObjectsApi:
        context = self._context(ref)
        with self._lock:  # build each client once, even with concurrent reconciles
            api_client = self._clients.get(ref.cloud)
            if api_client is None:
                try:
                    # persist_config=False: never write refreshed credentials back into the kubeconfig
                    api_client = k8s_config.new_client_from_config(config_file=self.kubeconfig, context=context,
                                                                   persist_config=False)
                except (ConfigException, OSError) as e:
                    # the exception's own text names keys/files, not credentials; scrub anyway
                    raise DeliveryError(f"kubernetes: cannot load context {context!r} for cloud {ref.cloud!r}: "
                                        f"{type(e).__name__}: {_redact_bearer(str(e))[:300]}") from None
                self._clients[ref.cloud] = api_client
        return k8s.CustomObjectsApi(api_client)

    def _error(self, op: str, ref: ObjectRef, exc: Exception, note: str = "") -> DeliveryError:
        """Map a client error to Transient/permanent, naming status, object, context and the server's message."""
        where = f"kubernetes {op} {_describe(ref)} (cloud {ref.cloud}, context {self.contexts.get(ref.cloud)!r}"
        where += f", cluster {ref.cluster}){note}" if ref.cluster else f"){note}"
        if isinstance(exc, ApiException):
            status = exc.status or 0
            message = self._server_message(exc)
            text = self._scrub(ref, f"{where}: HTTP {status} {exc.reason or ''}: {message}".rstrip(": "))
            conflicts = self._apply_conflicts(exc) if status == 409 else []
            if conflicts:
                # Another field manager owns fields we set: with force=false no retry can succeed.
                return DeliveryError(self._scrub(ref, self._conflict_text(where, ref, conflicts, message)))
            if status in _TRANSIENT_STATUSES or status >= 500:
                return TransientDeliveryError(text)
            # 0: the client could not build or secure the request (TLS, bad body): a config problem
            return DeliveryError(text)
        # urllib3: refused, reset, DNS, timeouts (the client does not wrap these)
        return TransientDeliveryError(self._scrub(ref, f"{where}: {type(exc).__name__}: {exc}"))

    @staticmethod
    def _apply_conflicts(exc: ApiException) -> list[tuple[str, str]]:
        """(manager, field) for each FieldManagerConflict cause of a 409 Status; [] for any other 409
        (a resourceVersion precondition failure has reason Conflict too, but no such causes)."""
        try:
            body = json.loads(exc.body or "")
        except (TypeError, ValueError):
            return []
        details = body.get("details") if isinstance(body, dict) else None
        causes = details.get("causes") if isinstance(details, dict) else None
        out = []
        for cause in causes if isinstance(causes, list) else []:
            if isinstance(cause, dict) and cause.get("reason") == FIELD_MANAGER_CONFLICT:
                m = _CONFLICT_WITH.match(str(cause.get("message") or ""))
                manager = (m.group("manager") + m.group("rest")).strip() if m else str(cause.get("message") or "?")
                out.append((manager, str(cause.get("field") or "?")))
        return out

    def _conflict_text(self, where: str, ref: ObjectRef, conflicts: list[tuple[str, str]], message: str) -> str:
        by_manager: dict[str, list[str]] = {}
        for manager, field in conflicts:
            by_manager.setdefault(manager, []).append(field)
        owned = "; ".join(f"{', '.join(fields)} owned by {manager}" for manager, fields in by_manager.items())
        return (f"{where}: HTTP 409 Conflict: server-side apply field manager conflict on {_describe(ref)}: {owned}. "
                f"Not retried: {self.field_manager!r} applies with force=false and never takes a field from another "
                f"manager. To resolve, the other manager must release the field(s) (stop setting them, or apply "
                f"without them), or an operator forces this apply (kubectl apply --server-side --force-conflicts "
                f"--field-manager={self.field_manager}); then redeliver. Server: {message}")

    @staticmethod
    def _server_message(exc: ApiException) -> str:
        try:
            body = json.loads(exc.body or "")
        except (TypeError, ValueError):
            return (exc.body or "").strip()[:300]  # not a Status (a proxy's HTML page): keep it short
        return str(body.get("message", "")) if isinstance(body, dict) else ""

    def _scrub(self, ref: ObjectRef, text: str) -> str:
        """Never let credentials reach a message, even if a server or proxy echoes them."""
        api_client = self._clients.get(ref.cloud)
        cfg = getattr(api_client, "configuration", None)
        secrets = list((getattr(cfg, "api_key", None) or {}).values()) + [getattr(cfg, "password", None)]
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= 4:
                text = text.replace(secret, "<redacted>")
        return _redact_bearer(text)

    def _get(self, api: k8s.CustomObjectsApi, ref: ObjectRef, res: Resource) -> dict | None:
        try:
            if res.namespaced:
                return api.get_namespaced_custom_object(res.group, res.version, ref.namespace, res.plural, ref.name,
                                                        _request_timeout=REQUEST_TIMEOUT)
            return api.get_cluster_custom_object(res.group, res.version, res.plural, ref.name,
                                                 _request_timeout=REQUEST_TIMEOUT)
        except ApiException as e:
            if e.status == 404:
                return None
            raise self._error("get", ref, e) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise self._error("get", ref, e) from None

    # ------------------------------------------------------------------ protocol

    def batch(self) -> nullcontext[ImmediateBatch]:
        """Server-side apply has no commits: a group of deliveries is applied one delivery (and object) at a time."""
        return nullcontext(ImmediateBatch(self))

    def apply(self, objects: list[dict], *, revision: int, message: str) -> Result:
        applied: list[str] = []
        skipped: list[str] = []
        unchanged: list[str] = []
        for obj in objects:
            ref = ObjectRef.of(obj)
            label = f"{_describe(ref)}@{ref.cloud}"
            # Each object is guarded by its own revision annotation (one delivery may carry several claims).
            own = revision_of(obj)
            if own is None or own > revision:
                raise DeliveryError(f"kubernetes apply {_describe(ref)}: carries revision {own}, "
                                    f"expected an annotated revision <= {revision}")
            api, res = self._api(ref), resource_of(ref)
            live = self._get(api, ref, res)
            live_rev = revision_of(live)
            if live_rev is not None and live_rev > own:
                skipped.append(f"{label} (live revision {live_rev} > {own})")
                continue
            if live is not None and live_rev == own and self._same(live, obj):
                unchanged.append(label)
                continue
            body = copy.deepcopy(obj)  # never mutate the caller's objects
            live_rv = ((live or {}).get("metadata") or {}).get("resourceVersion")
            if live_rv:
                # Optimistic concurrency: a writer that changed the object since our GET makes this a 409.
                body["metadata"]["resourceVersion"] = live_rv
            try:
                self._patch(api, ref, res, body)
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
                note = f" [already applied: {', '.join(applied)}]" if applied else ""
                raise self._error("apply", ref, e, note) from None
            applied.append(label)
        parts = [f"{name}: {', '.join(items)}" for name, items in
                 (("applied", applied), ("skipped", skipped), ("unchanged", unchanged)) if items]
        return Result(changed=bool(applied),
                      detail="; ".join(parts) or "nothing to apply")

    @staticmethod
    def _same(live: dict, obj: dict) -> bool:
        meta, live_meta = obj.get("metadata") or {}, live.get("metadata") or {}
        return (_contains(live.get("spec"), obj.get("spec"))
                and _contains(live_meta.get("labels") or {}, meta.get("labels") or {})
                and _contains(live_meta.get("annotations") or {}, meta.get("annotations") or {}))

    def _patch(self, api: k8s.CustomObjectsApi, ref: ObjectRef, res: Resource, body: dict) -> None:
        kwargs: dict[str, Any] = dict(body=body, field_manager=self.field_manager, force=False,
                                      _content_type="application/apply-patch+yaml",
                                      _request_timeout=REQUEST_TIMEOUT)
        if res.namespaced:
            api.patch_namespaced_custom_object(res.group, res.version, ref.namespace, res.plural, ref.name, **kwargs)
        else:
            api.patch_cluster_custom_object(res.group, res.version, res.plural, ref.name, **kwargs)

    def delete(self, refs: list[ObjectRef], *, message: str) -> Result:
        deleted: list[str] = []
        absent: list[str] = []
        for ref in refs:
            api, res = self._api(ref), resource_of(ref)
            label = f"{_describe(ref)}@{ref.cloud}"
            try:
                if res.namespaced:
                    api.delete_namespaced_custom_object(res.group, res.version, ref.namespace, res.plural, ref.name,
                                                        _request_timeout=REQUEST_TIMEOUT)
                else:
                    api.delete_cluster_custom_object(res.group, res.version, res.plural, ref.name,
                                                     _request_timeout=REQUEST_TIMEOUT)
            except ApiException as e:
                if e.status != 404:
                    raise self._error("delete", ref, e) from None
                absent.append(label)  # already gone: the goal holds
                continue
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise self._error("delete", ref, e) from None
            deleted.append(label)
        parts = [f"{name}: {', '.join(items)}" for name, items in
                 (("deleted", deleted), ("already absent", absent)) if items]
        return Result(changed=bool(deleted), detail="; ".join(parts) or "nothing to delete")

    def read(self, ref: ObjectRef) -> dict | None:
        return self._get(self._api(ref), ref, resource_of(ref))
