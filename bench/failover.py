"""Failover benchmark: the control plane's own overhead with zero-latency sandbox providers.

  - 50 failovers one after another: request to completed, p50/p99 (target: p50 under 1 s);
  - 200 cells failing over at once with 2 workers: time until all completed, per-run p50/p99.

Real parts: PostgreSQL, Redis, Celery worker processes, the GitOps target on real git (compute
activation is a commit). Prints one JSON object on its last line.

    python bench/failover.py [--sequential 50] [--burst 200] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import bench_policy, django_setup, pct, setup, start_workers, stop_workers

HOST = "bench-{i}.prod.company.com"


def ready_cells(n: int) -> None:
    from django.contrib.auth.models import User

    from cells import pipeline, services
    from cells.models import Delivery

    user = User.objects.get(username="bench")
    for i in range(n):
        services.request_mysql(user, cell=f"bench-{i}", environment="prod", tier="C1", dr_profile="silver")
        services.request_app(user, cell=f"bench-{i}", environment="prod", image="ghcr.io/acme/bench:1",
                             public_host=HOST.format(i=i))
    # Deliver and observe until nothing is pending: the databases' endpoints make a new revision of each
    # replication claim, delivered in turn. Then every run starts from a settled cell.
    for _ in range(5):
        pending = list(Delivery.objects.filter(state="pending").order_by("id").values_list("pk", flat=True))
        for pk in pending:
            pipeline.deliver(pk)
        pipeline.observe_all(limit=100000)
        if not pending:
            break


def wait_done(ids: list[int], timeout: float = 900) -> None:
    from dr.models import FailoverRun

    deadline = time.monotonic() + timeout
    while FailoverRun.objects.filter(pk__in=ids).exclude(state__in=("succeeded", "failed", "aborted")).exists():
        if time.monotonic() > deadline:
            raise SystemExit("runs did not finish in time")
        time.sleep(0.01)
    failed = list(FailoverRun.objects.filter(pk__in=ids, state="failed").values_list("pk", "error")[:3])
    if failed:
        raise SystemExit(f"runs failed: {failed}")


def durations(ids: list[int]) -> list[float]:
    from dr.models import FailoverRun

    return [(f - r).total_seconds() for r, f in FailoverRun.objects.filter(pk__in=ids).values_list("requested_at", "finished_at")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequential", type=int, default=50)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-failover-"))
    policy = tmp / "policy.yaml"
    total = args.sequential + args.burst
    bench_policy(total, policy)
    env = setup(tmp, policy, db="idp_bench_failover", IDP_SANDBOX_PROVIDERS="*", IDP_SIMULATOR_READY_DELAY="0")
    django_setup(env)
    from django.contrib.auth.models import User

    from dr import services

    t = time.perf_counter()
    ready_cells(total)
    print(f"{total} cells provisioned and ready in {time.perf_counter() - t:.1f} s")
    ops = User.objects.get(username="bench-ops")
    procs = start_workers(args.workers, env)
    try:
        seq = []
        for i in range(args.sequential):
            run = services.start_run(ops, cell=f"bench-{i}", environment="prod")
            wait_done([run.pk])
            seq.append(run.pk)
        seq_d = durations(seq)
        print(f"{args.sequential} sequential failovers: p50 {statistics.median(seq_d):.3f} s, p99 {pct(seq_d, 99):.3f} s")

        start = time.perf_counter()
        burst = [services.start_run(ops, cell=f"bench-{i}", environment="prod").pk for i in range(args.sequential, total)]
        submitted = time.perf_counter() - start
        wait_done(burst)
        wall = time.perf_counter() - start
        burst_d = durations(burst)
        print(f"{args.burst} cells at once, {args.workers} workers: all done in {wall:.1f} s "
              f"(requests took {submitted:.1f} s); per run p50 {statistics.median(burst_d):.2f} s, p99 {pct(burst_d, 99):.2f} s")
    finally:
        stop_workers(procs)
    print(json.dumps({
        "benchmark": "failover", "providers": "sandbox (zero latency)", "workers": args.workers,
        "sequential_runs": args.sequential, "sequential_p50_s": round(statistics.median(seq_d), 3),
        "sequential_p99_s": round(pct(seq_d, 99), 3),
        "burst_cells": args.burst, "burst_all_done_s": round(wall, 2), "burst_submit_s": round(submitted, 2),
        "burst_run_p50_s": round(statistics.median(burst_d), 2), "burst_run_p99_s": round(pct(burst_d, 99), 2),
    }))


if __name__ == "__main__":
    main()
