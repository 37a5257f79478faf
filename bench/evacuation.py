"""Region evacuation benchmark: 1,000 cell environments whose writers are in one region fail over together.

Real parts: PostgreSQL, Redis, Celery worker processes (one drives the evacuation and steps part of each wave; the
others step the rest of the wave as shard tasks and take whatever else is queued), the GitOps target on real git. Sandbox providers with zero latency, so the numbers are the
control plane's own overhead. Reported: time from the request to every cell switched and to the end, RTO
p50/p99 per tier, GitOps commits made (target: at most 2 per wave) and DNS API calls made. Prints one JSON
object on its last line.

    python bench/evacuation.py [--cells 1000] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import bench_policy, django_setup, pct, setup, start_workers, stop_workers

HOST = "bench-{i}.prod.company.com"
# Every primary lands in the region evacuated; gold's secondary is on another cloud, silver's in another region.
MIX = (("C0", "gold", 0.1), ("C1", "silver", 0.3), ("C2", "silver", 0.6))


def tier_of(i: int, n: int) -> tuple[str, str]:
    edge = 0.0
    for tier, profile, share in MIX:
        edge += share * n
        if i < edge:
            return tier, profile
    return MIX[-1][:2]


def ready_cells(n: int) -> None:
    from django.contrib.auth.models import User

    from cells import pipeline, services
    from cells.models import Application, Delivery, MySQLClaim, ReplicationClaim

    user = User.objects.get(username="bench")
    started = time.perf_counter()
    for i in range(n):
        tier, profile = tier_of(i, n)
        services.request_mysql(user, cell=f"bench-{i}", environment="prod", tier=tier, dr_profile=profile)
        services.request_app(user, cell=f"bench-{i}", environment="prod", image="ghcr.io/acme/bench:1",
                             public_host=HOST.format(i=i))
    print(f"  {n} cells requested in {time.perf_counter() - started:.1f} s")
    # Deliver (one commit per 500 rows) and observe until nothing is pending and every claim is ready: a database
    # reporting its endpoint makes a new revision of its replication claim, delivered in turn.
    for _ in range(40):
        pending = list(Delivery.objects.filter(state="pending").order_by("id").values_list("pk", flat=True))
        for start in range(0, len(pending), 500):
            pipeline.deliver_batch(pending[start:start + 500])
        pipeline.observe_all(limit=100000)
        if not pending and not any(m.objects.exclude(status="ready").exists() for m in (MySQLClaim, ReplicationClaim, Application)):
            break


def git_commits(repo: Path) -> int:
    return int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-evacuation-"))
    policy = tmp / "policy.yaml"
    bench_policy(args.cells, policy)
    env = setup(tmp, policy, db="idp_bench_evacuation", IDP_SANDBOX_PROVIDERS="*", IDP_SIMULATOR_READY_DELAY="0",
                LOG_LEVEL="WARNING")
    django_setup(env)
    from django.contrib.auth.models import User

    from cells.models import CellEnvironment
    from dr import evacuations
    from dr.models import Evacuation, FailoverRun

    t = time.perf_counter()
    ready_cells(args.cells)
    print(f"{args.cells} cells provisioned and ready in {time.perf_counter() - t:.1f} s")
    site = CellEnvironment.objects.select_related("placement").first().placement
    scope = {"cloud": site.primary_cloud, "region": site.primary_region}
    assert CellEnvironment.objects.filter(placement__primary_region=site.primary_region).count() == args.cells, \
        "every primary should be in one region"
    ops = User.objects.get(username="bench-ops")
    repo = Path(env["IDP_GITOPS_REPO"])
    commits_before = git_commits(repo)
    # The provisioning above delivered inline; the thousands of tasks it queued (deliveries already made, readiness
    # evaluations) would otherwise stand in front of the evacuation's task when the workers start.
    from portal.celery import app

    print(f"purged {app.control.purge()} task(s) queued by the provisioning")
    procs = start_workers(args.workers, env)
    try:
        started = time.perf_counter()
        evac, plan = evacuations.start(ops, {**scope, "reason": "benchmark: the region is down"})
        print(f"plan: {plan['moving']} to move in {plan['waves']} waves, {plan['cannotMove']} cannot; "
              f"request answered in {time.perf_counter() - started:.2f} s")
        while Evacuation.objects.filter(pk=evac.pk, state__in=("running", "paused")).exists():
            if time.perf_counter() - started > 1800:
                raise SystemExit("the evacuation did not finish in 30 min")
            time.sleep(0.05)
        wall = time.perf_counter() - started
    finally:
        stop_workers(procs)
    evac.refresh_from_db()
    runs = list(FailoverRun.objects.filter(evacuation_item__evacuation=evac).select_related("cell_env"))
    switched = [r.traffic_switched_at for r in runs if r.traffic_switched_at]
    all_switched = (max(switched) - evac.requested_at).total_seconds() if switched else None
    per_tier = {}
    for tier, _, _ in MIX:
        rto = [r.rto_seconds for r in runs if r.cell_env.tier == tier and r.rto_seconds is not None]
        if rto:
            per_tier[tier] = {"cells": len(rto), "rto_p50_s": round(sorted(rto)[len(rto) // 2], 2),
                              "rto_p99_s": round(pct(rto, 99), 2)}
    commits = git_commits(repo) - commits_before
    failed = [r.pk for r in runs if r.state != "succeeded"]
    print(f"evacuation {evac.state}: {len(runs) - len(failed)} of {plan['moving']} moved; all switched in "
          f"{all_switched:.1f} s, ended in {wall:.1f} s; {evac.waves} waves, {commits} GitOps commits "
          f"(limit {evac.waves * 2}), {evac.dns_calls} DNS API calls")
    for tier, t in per_tier.items():
        print(f"  {tier}: {t['cells']} cells, RTO p50 {t['rto_p50_s']} s, p99 {t['rto_p99_s']} s")
    print(json.dumps({
        "benchmark": "evacuation", "providers": "sandbox (zero latency)", "workers": args.workers, "cells": args.cells,
        "state": evac.state, "moved": len(runs) - len(failed), "failed": len(failed),
        "all_switched_s": round(all_switched, 2) if all_switched else None, "ended_s": round(wall, 2),
        "waves": evac.waves, "git_commits": commits, "evacuation_commits": evac.commits, "dns_calls": evac.dns_calls,
        "per_tier": per_tier,
    }))


if __name__ == "__main__":
    main()
