"""Delivery targets by name. A new target is a module and a line in TARGETS."""
from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from .base import Batch, DeliveryError, DeliveryTarget, ObjectRef, Result, TransientDeliveryError  # noqa: F401

TARGETS = {
    "gitops": "cells.delivery.gitops.GitOpsTarget",
    "kubernetes": "cells.delivery.kubernetes.KubernetesTarget",
}


def _build(name: str) -> DeliveryTarget:
    from django.utils.module_loading import import_string

    if name not in TARGETS:
        raise DeliveryError(f"unknown delivery target '{name}' (known: {', '.join(TARGETS)})")
    return import_string(TARGETS[name]).from_settings()


@lru_cache(maxsize=4)
def _cached(name: str, key: tuple) -> DeliveryTarget:
    return _build(name)


def get_target() -> DeliveryTarget:
    """The configured target (IDP_DELIVERY_TARGET), rebuilt when its settings change (tests override them)."""
    name = settings.IDP_DELIVERY_TARGET
    key = (str(settings.IDP_GITOPS_REPO), settings.IDP_GITOPS_REMOTE, settings.IDP_GITOPS_BRANCH,
           repr(settings.IDP_KUBE_CONTEXTS), settings.IDP_KUBECONFIG)
    return _cached(name, key)
