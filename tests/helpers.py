"""Small policies for tests: a base document that each test bends to show one rule."""
import copy

import yaml

from policy.loader import PolicyError, parse_policy


def cand(cloud, region, cluster, latency=10, cost=1.0, headroom=50, vcpu=64, storage=4096, **extra):
    return {"cloud": cloud, "region": region, "cluster": cluster, "latencyMs": latency, "costIndex": cost,
            "capacityHeadroomPct": headroom, "freeVcpu": vcpu, "maxStorageGB": storage, **extra}


BASE = {
    "version": "test-1",
    "defaults": {"trafficProvider": "oci-dns",
                 "computeSource": {"repoURL": "https://git.example/cell-app.git", "path": "chart"}},
    "sizes": {"small": {"vcpu": 2, "memoryGB": 8}, "large": {"vcpu": 16, "memoryGB": 64}},
    "providers": {
        "oci": {"capabilities": ["managed-mysql", "mysql-ha", "goldengate", "kubernetes", "object-storage", "mysql-replication"]},
        "aws": {"capabilities": ["managed-mysql", "mysql-ha", "goldengate", "kubernetes", "object-storage", "mysql-replication"]},
        "gcp": {"capabilities": ["managed-mysql", "mysql-ha", "kubernetes", "object-storage", "mysql-replication"]},
        "azure": {"capabilities": ["managed-mysql", "goldengate", "kubernetes", "object-storage", "mysql-replication"]},
    },
    "claimCapabilities": {"mysql": ["managed-mysql"], "mysqlHa": ["mysql-ha"], "app": ["kubernetes"]},
    "replicationTools": {
        "oci-goldengate": {"requiredCapabilities": ["goldengate"],
                           "settings": {"deploymentId": "ocid1.goldengatedeployment.oc1..test"},
                           "adapters": {"probe": "goldengate", "fence": "mysql", "promoter": "mysql"}},
        "mysql-replication": {"requiredCapabilities": ["mysql-replication"],
                              "adapters": {"probe": "mysql", "fence": "mysql", "promoter": "mysql"}},
        "backup-restore": {"requiredCapabilities": ["object-storage"],
                           "adapters": {"probe": "backup", "fence": "mysql", "promoter": "backup"}},
    },
    "tiers": {
        "C0": {"gates": {"requireHA": True, "maxLatencyMs": 30, "minCapacityHeadroomPct": 20},
               "weights": {"latency": 0.5, "cost": 0.2, "capacity": 0.3},
               "defaults": {"size": "small", "storageGB": 50, "ha": True, "drProfile": "gold", "replicas": 3},
               "allowedDrProfiles": ["gold"]},
        "C1": {"weights": {"latency": 0.4, "cost": 0.4, "capacity": 0.2},
               "defaults": {"size": "small", "storageGB": 20, "ha": False, "drProfile": "silver", "replicas": 2},
               "allowedDrProfiles": ["gold", "silver"]},
        "C2": {"weights": {"cost": 1.0},
               "defaults": {"size": "small", "storageGB": 10, "ha": False, "drProfile": "bronze", "replicas": 1},
               "allowedDrProfiles": ["gold", "silver", "bronze"]},
    },
    "drProfiles": {
        "gold": {"rpoSeconds": 60, "rtoSeconds": 300, "computeMode": "warm", "secondaryReplicas": 1,
                 "replicationTool": "oci-goldengate", "secondaryPlacement": "other-cloud"},
        "silver": {"rpoSeconds": 900, "rtoSeconds": 1800, "computeMode": "pilot",
                   "replicationTool": "mysql-replication", "secondaryPlacement": "other-region"},
        "bronze": {"rpoSeconds": 86400, "rtoSeconds": 14400, "computeMode": "cold",
                   "replicationTool": "backup-restore", "secondaryPlacement": "other-cluster"},
    },
    "failover": {"approvalBeforeTrafficSwitch": [{"tiers": ["C0"], "types": ["switchover", "failback"]}]},
    "cells": {
        "payments": {"team": "payments", "candidates": [
            cand("oci", "us-ashburn-1", "oke-iad-1", latency=8, cost=1.0, headroom=45),
            cand("oci", "us-phoenix-1", "oke-phx-1", latency=20, cost=1.0, headroom=60),
            cand("aws", "us-east-1", "eks-use1-1", latency=10, cost=1.3, headroom=35),
            cand("gcp", "us-east4", "gke-use4-1", latency=12, cost=1.1, headroom=40),
        ]},
        "catalog": {"team": "storefront", "candidates": [
            cand("aws", "us-west-2", "eks-usw2-1", latency=9),
            cand("oci", "us-sanjose-1", "oke-sjc-1", latency=13),
            cand("oci", "us-sanjose-1", "oke-sjc-2", latency=14),
        ]},
    },
}


def policy_doc(**changes) -> dict:
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


def make_policy(doc: dict | None = None):
    return parse_policy(yaml.safe_dump(doc if doc is not None else BASE, sort_keys=False), source="test-policy.yaml")


def settle(rounds: int = 5) -> None:
    """Deliver every pending delivery and observe, until nothing new is pending: the simulated clusters catch
    up (a database reporting its endpoint makes a new revision of the replication claim, delivered in turn)."""
    from cells import pipeline
    from cells.models import Delivery

    for _ in range(rounds):
        pending = list(Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id").values_list("pk", flat=True))
        for pk in pending:
            pipeline.deliver(pk)
        pipeline.observe_all()
        if not pending and not Delivery.objects.filter(state=Delivery.State.PENDING).exists():
            return


def policy_problems(doc) -> list[str]:
    """The problems the policy loader finds in `doc` (none: it loads)."""
    try:
        parse_policy(yaml.safe_dump(doc))
    except PolicyError as exc:
        return [str(p) for p in exc.problems]
    return []
