"""Provisioning pipeline benchmark: claims delivered per second to the gitops target with 1 and 2 workers,
and request-to-delivered latency (p50/p99) for 200 requests. Prints one JSON object on its last line.

Real parts: PostgreSQL (database idp_bench, recreated), Redis (db 12, flushed), Celery worker processes, git.

    python bench/pipeline.py [--requests 200] [--workers 1 2] [--backlog]

`claims_per_s` counts from the first request to the last delivery, so it can never beat the rate at which this
process submits requests (`submit_seconds`). `--backlog` also measures the pipeline alone: every request is in
the outbox before the workers start, and `backlog_claims_per_s` counts from the first delivery taken to the last.

BENCH_DB (database name), BENCH_PG and BENCH_REDIS let two runs on one machine stay apart.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import REDIS, bench_policy, django_setup, pct, setup, start_workers, stop_workers


def run(workers: int, n: int, tmp: Path, env: dict, backlog: bool = False) -> dict:
    from django.conf import settings
    from django.contrib.auth.models import User

    from cells import services
    from cells.models import CellEnvironment, Delivery, MySQLClaim, ReplicationClaim
    from scheduler.models import PlacementDecision

    repo = tmp / f"gitops-{workers}{'-backlog' if backlog else ''}"
    env = {**env, "IDP_GITOPS_REPO": str(repo)}
    os.environ["IDP_GITOPS_REPO"] = str(repo)
    settings.IDP_GITOPS_REPO = repo
    subprocess.run(["redis-cli", "-u", REDIS, "flushdb"], check=True, capture_output=True)
    for model in (Delivery, ReplicationClaim, MySQLClaim, CellEnvironment, PlacementDecision):
        model.objects.all().delete()
    user = User.objects.get(username="bench")
    procs = [] if backlog else start_workers(workers, env)
    try:
        started = time.perf_counter()
        for i in range(n):
            services.request_mysql(user, cell=f"bench-{i}", environment="prod", tier="C1", dr_profile="silver")
        submitted = time.perf_counter() - started
        if backlog:
            procs = start_workers(workers, env)
        deadline = time.monotonic() + 600
        while Delivery.objects.exclude(state="done").exists():
            if time.monotonic() > deadline:
                raise SystemExit("deliveries did not finish in 10 minutes")
            time.sleep(0.2)
    finally:
        stop_workers(procs)
    rows = list(Delivery.objects.values_list("created_at", "finished_at", "items", "started_at"))
    first = min(r[3] if backlog else r[0] for r in rows)
    last = max(r[1] for r in rows)
    claims = sum(len(r[2]) for r in rows)
    latency = [(r[1] - r[0]).total_seconds() for r in rows]
    commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"], capture_output=True, text=True).stdout)
    rate = "backlog_claims_per_s" if backlog else "claims_per_s"
    out = {
        "workers": workers,
        "requests": n,
        "claims": claims,
        "commits": commits,
        "submit_seconds": round(submitted, 2),
        rate: round(claims / (last - first).total_seconds(), 1),
        "request_to_delivered_p50_s": round(statistics.median(latency), 3),
        "request_to_delivered_p99_s": round(pct(latency, 99), 3),
    }
    if backlog:
        print(f"{workers} worker(s), backlog: {out[rate]} claims/s ({claims} claims, {commits} commits) from the first "
              f"delivery taken to the last, all {n} requests ({submitted:.1f} s to submit) in the outbox before the "
              f"workers started")
        return out
    print(f"{workers} worker(s): {out[rate]} claims/s ({claims} claims, {commits} commits); "
          f"request->delivered p50 {out['request_to_delivered_p50_s']} s, p99 {out['request_to_delivered_p99_s']} s "
          f"(all {n} requests submitted at once, in {submitted:.1f} s)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backlog", action="store_true", help="also deliver a backlog: requests first, then the workers")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    policy = tmp / "policy.yaml"
    bench_policy(args.requests, policy)
    env = setup(tmp, policy, db=os.environ.get("BENCH_DB", "idp_bench"), IDP_SIMULATOR_READY_DELAY="1")
    django_setup(env)
    results = [run(w, args.requests, tmp, env) for w in args.workers]
    results += [run(w, args.requests, tmp, env, backlog=True) for w in args.workers if args.backlog]
    print(json.dumps({"benchmark": "pipeline", "target": "gitops", "results": results}))


if __name__ == "__main__":
    main()
