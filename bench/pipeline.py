"""Provisioning pipeline benchmark: claims delivered per second to the gitops target with 1 and 2 workers,
and request-to-delivered latency (p50/p99) for 200 requests. Prints one JSON object on its last line.

Real parts: PostgreSQL (database idp_bench, recreated), Redis (db 12, flushed), Celery worker processes, git.

    python bench/pipeline.py [--requests 200] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")


def bench_policy(cells: int, path: Path) -> None:
    doc = yaml.safe_load((ROOT / "policy" / "policy.yaml").read_text())
    template = doc["cells"]["payments"]["candidates"]
    doc["cells"] = {f"bench-{i}": {"team": "bench", "environments": ["prod"], "candidates": template} for i in range(cells)}
    path.write_text(yaml.safe_dump(doc))


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def run(workers: int, n: int, tmp: Path, env: dict) -> dict:
    import django
    from django.db import connection

    repo = tmp / f"gitops-{workers}"
    env = {**env, "IDP_GITOPS_REPO": str(repo)}
    os.environ.update(env)
    django.setup()
    from django.conf import settings

    settings.IDP_GITOPS_REPO = repo
    from django.contrib.auth.models import User

    from cells import services
    from cells.models import CellEnvironment, Delivery, MySQLClaim, ReplicationClaim
    from portal.celery import app
    from scheduler.models import PlacementDecision

    app.conf.broker_url = REDIS
    app._pool = None
    app.amqp._producer_pool = None
    subprocess.run(["redis-cli", "-u", REDIS, "flushdb"], check=True, capture_output=True)
    for model in (Delivery, ReplicationClaim, MySQLClaim, CellEnvironment, PlacementDecision):
        model.objects.all().delete()
    connection.close()
    user = User.objects.get(username="bench")

    procs = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "--concurrency", "1", "--pool", "prefork",
                               "--hostname", f"bench{i}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
                              cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(workers)]
    time.sleep(4)  # workers up
    try:
        started = time.perf_counter()
        for i in range(n):
            services.request_mysql(user, cell=f"bench-{i}", environment="prod", tier="C1", dr_profile="silver")
        submitted = time.perf_counter() - started
        deadline = time.monotonic() + 600
        while Delivery.objects.exclude(state="done").exists():
            if time.monotonic() > deadline:
                raise SystemExit("deliveries did not finish in 10 minutes")
            time.sleep(0.2)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()
    rows = list(Delivery.objects.values_list("created_at", "finished_at", "items"))
    first = min(r[0] for r in rows)
    last = max(r[1] for r in rows)
    claims = sum(len(r[2]) for r in rows)
    latency = [(r[1] - r[0]).total_seconds() for r in rows]
    commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"], capture_output=True, text=True).stdout)
    out = {
        "workers": workers,
        "requests": n,
        "claims": claims,
        "commits": commits,
        "submit_seconds": round(submitted, 2),
        "claims_per_s": round(claims / (last - first).total_seconds(), 1),
        "request_to_delivered_p50_s": round(statistics.median(latency), 3),
        "request_to_delivered_p99_s": round(pct(latency, 99), 3),
    }
    print(f"{workers} worker(s): {out['claims_per_s']} claims/s ({claims} claims, {commits} commits); "
          f"request->delivered p50 {out['request_to_delivered_p50_s']} s, p99 {out['request_to_delivered_p99_s']} s "
          f"(all {n} requests submitted at once)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    policy = tmp / "policy.yaml"
    bench_policy(args.requests, policy)
    subprocess.run(["psql", f"{PG}/postgres", "-qc", "DROP DATABASE IF EXISTS idp_bench"], check=True)
    subprocess.run(["psql", f"{PG}/postgres", "-qc", "CREATE DATABASE idp_bench"], check=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_SECRET_KEY": "bench", "DJANGO_DEBUG": "0",
           "DATABASE_URL": f"{PG}/idp_bench", "CELERY_BROKER_URL": REDIS, "IDP_POLICY_FILE": str(policy),
           "IDP_DATA_DIR": str(tmp / "data"), "IDP_SANDBOX_READY_DELAY": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User, Group; from cells.models import Team;"
                    "from cells.registry import sync_registry; from policy.active import active_policy;"
                    "sync_registry(active_policy()); u=User.objects.create_user('bench');"
                    "Team.objects.get(slug='bench').members.add(u)"], cwd=ROOT, env=env, check=True)
    results = [run(w, args.requests, tmp, env) for w in args.workers]
    print(json.dumps({"benchmark": "pipeline", "target": "gitops", "results": results}))


if __name__ == "__main__":
    main()
