"""Crossplane's rules for our composite resources, as the simulator plays them.

A composite resource (CellMySQLClaim, ReplicationClaim) is reconciled only if the management cluster
holds, as delivered, a CompositeResourceDefinition serving its kind and a Composition of that type whose
labels match its `spec.crossplane.compositionSelector`; each pipeline step's function must be installed.
Our composition function then runs for real (the same code Crossplane runs over gRPC); the resources it
composes are "created" and report Ready after the simulator's delay, and the composite is Ready only once
the function says every composed resource is.
"""
from __future__ import annotations

import hashlib

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from cells import platform
from manifests.crossplane.function.idp_function import compose as composing
from manifests.crossplane.function.idp_function import fn

FUNCTION_NAME = "function-idp-multicloud"


def _condition(typ: str, status: str, reason: str, message: str = "") -> dict:
    cond = {"type": typ, "status": status, "reason": reason}
    if message:
        cond["message"] = message
    return cond


def _status(ready: bool, reason: str, message: str = "", synced: tuple = ("True", "ReconcileSuccess", ""), **extra) -> dict:
    return {"conditions": [_condition("Synced", *synced), _condition("Ready", "True" if ready else "False", reason, message)],
            **extra}


def _not_synced(reason: str, message: str) -> dict:
    return {"conditions": [_condition("Synced", "False", reason, message), _condition("Ready", "False", "Unavailable")]}


def find_composition(xr: dict, target, cluster: str) -> tuple[dict | None, dict | None]:
    """(status to report, composition): a status when the cluster cannot reconcile the composite."""
    api_version, kind = xr["apiVersion"], xr["kind"]
    group, version = api_version.split("/", 1)
    xrds = [x for x in target.list(cluster, platform.XRD_API, "CompositeResourceDefinition")
            if x["spec"]["group"] == group and x["spec"]["names"]["kind"] == kind
            and any(v["name"] == version and v.get("served") for v in x["spec"]["versions"])]
    if not xrds:
        return {"conditions": [_condition("Ready", "False", "NotInstalled",
                f"no CompositeResourceDefinition serves {api_version} {kind} on {cluster}: "
                "install the platform package (python manage.py platform install)")]}, None
    selector = ((xr.get("spec") or {}).get("crossplane") or {}).get("compositionSelector") or {}
    candidates = sorted((c for c in target.list(cluster, platform.COMPOSITION_API, "Composition")
                         if c["spec"]["compositeTypeRef"] == {"apiVersion": api_version, "kind": kind}
                         and platform.matches(selector, c["metadata"].get("labels"))),
                        key=lambda c: c["metadata"]["name"])
    if not candidates:
        return _not_synced("ReconcileError", f"cannot select Composition: none of type {kind} on {cluster} "
                           f"has the labels {selector.get('matchLabels', {})}"), None
    return None, candidates[0]


def _observed(name: str, body: dict, created_at: float, now: float, delay: float, fail: str) -> dict:
    """A composed resource as the cluster would show it: Secrets at once, managed resources Ready after the delay."""
    obs = dict(body)
    if body.get("kind") == "Secret":
        return obs
    if fail:
        obs["status"] = _status(False, "ReconcileError", fail, synced=("False", "ReconcileError", fail))
    elif now - created_at >= delay:
        field = composing.ENDPOINT_FIELDS.get(body.get("kind"))
        at_provider = {}
        if field:
            digest = hashlib.sha256(body["metadata"]["name"].encode()).digest()
            at_provider[field] = (f"192.0.2.{1 + digest[0] % 254}" if "ip" in field.lower()
                                  else f"{body['metadata']['name']}.simulated.invalid")
        obs["status"] = {**_status(True, "Available"), "atProvider": at_provider}
    else:
        obs["status"] = _status(False, "Creating", f"creating {body.get('kind')} ({now - created_at:.0f}s)")
    return obs


def _run_pipeline(xr: dict, composition: dict, state: dict, now: float, delay: float,
                  installed: set, cluster: str) -> tuple[dict | None, bool, list[str], bool]:
    """One pass of the function pipeline: (problem status, ready, waiting messages, created something new)."""
    composed: dict = state.setdefault("composed", {})
    observed = {name: _observed(name, c["resource"], c["createdAt"], now, delay, "") for name, c in composed.items()}
    status_fields: dict = {}
    ready, waiting, created = True, [], False
    for step in composition["spec"].get("pipeline") or []:
        function = step["functionRef"]["name"]
        if function not in installed:
            return _not_synced("ReconcileError", f"cannot compose resources: function {function} is not installed on {cluster}"), False, [], False
        if function != FUNCTION_NAME:
            return _not_synced("ReconcileError", f"the simulator runs only {FUNCTION_NAME}, not {function}"), False, [], False
        req = fnv1.RunFunctionRequest()
        resource.update(req.observed.composite, {**xr, "status": state.get("status", {})})
        for name, obj in observed.items():
            resource.update(req.observed.resources[name], obj)
        req.input.update(step.get("input") or {})
        rsp = fn.run(req)
        fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
        if fatal:
            return _not_synced("ReconcileError", "; ".join(fatal)), False, [], False
        desired = {name: resource.struct_to_dict(r.resource) for name, r in rsp.desired.resources.items()}
        for name in list(composed):
            if name not in desired:
                del composed[name]  # no longer desired: Crossplane garbage-collects it
        for name, body in desired.items():
            created = created or name not in composed
            composed.setdefault(name, {"createdAt": now})["resource"] = body
        ready = ready and rsp.desired.composite.ready == fnv1.READY_TRUE and all(
            r.ready == fnv1.READY_TRUE for r in rsp.desired.resources.values())
        status_fields.update((resource.struct_to_dict(rsp.desired.composite.resource) or {}).get("status") or {})
        waiting += [r.message for r in rsp.results]
        waiting += [f"waiting for {n}" for n, r in sorted(rsp.desired.resources.items()) if r.ready != fnv1.READY_TRUE]
    state["status"] = status_fields
    return None, ready, waiting, created


# A change to composed resources makes Crossplane reconcile again at once (it watches them): a few passes
# per observation settle what can settle now; waiting for the cloud is what the delay is for.
PASSES = 4


def reconcile(xr: dict, state: dict, now: float, delay: float, target, cluster: str, *, fail: str = "") -> dict:
    """Advance `state` (mutated: the composed resources and when each was created) and return the composite's status."""
    problem, composition = find_composition(xr, target, cluster)
    if problem:
        return problem
    if fail:
        return _not_synced("ReconcileError", fail)
    installed = {f["metadata"]["name"] for f in target.list(cluster, platform.FUNCTION_API, "Function")}
    for _ in range(PASSES):
        problem, ready, waiting, created = _run_pipeline(xr, composition, state, now, delay, installed, cluster)
        if problem:
            return problem
        if not created:
            break
    composed = state.get("composed", {})
    return _status(ready, "Available" if ready else "Creating", "" if ready else "; ".join(waiting),
                   composition=composition["metadata"]["name"],
                   composed=sorted(f"{c['resource']['kind']}/{c['resource']['metadata']['name']}" for c in composed.values()),
                   **state.get("status", {}))
