"""Shared set-up for benchmarks that need the real stack: a fresh PostgreSQL database, Redis, Celery workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")


def bench_policy(cells: int, path: Path, tier_free_of_approval: bool = True) -> None:
    """The shipped policy with `cells` copies of the payments cell (bench-0 ... bench-N), owned by team bench."""
    doc = yaml.safe_load((ROOT / "policy" / "policy.yaml").read_text())
    template = doc["cells"]["payments"]["candidates"]
    doc["cells"] = {f"bench-{i}": {"team": "bench", "environments": ["prod"], "candidates": template} for i in range(cells)}
    doc.setdefault("failover", {})["drillIntervalSeconds"] = {}
    (doc.get("publicHosts") or {}).pop("teams", None)  # the shipped cells' teams are gone: only team bench is left
    path.write_text(yaml.safe_dump(doc))


def setup(tmp: Path, policy: Path, db: str = "idp_bench", **extra_env) -> dict:
    """Recreate the database, migrate, create the bench users; returns the environment for Django and workers."""
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {db}"], check=True)
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "bench-not-a-secret-but-as-long-as-production-requires",
           "DATABASE_URL": f"{PG}/{db}", "CELERY_BROKER_URL": REDIS, "IDP_POLICY_FILE": str(policy),
           "IDP_DATA_DIR": str(tmp / "data"), "IDP_GITOPS_REPO": str(tmp / "gitops"), **extra_env}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User, Group; from cells.models import Team;"
                    "from cells.registry import sync_registry; from policy.active import active_policy;"
                    "sync_registry(active_policy()); u=User.objects.create_user('bench');"
                    "Team.objects.get(slug='bench').members.add(u);"
                    "o=User.objects.create_user('bench-ops'); o.groups.add(Group.objects.get_or_create(name='operators')[0])"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(["redis-cli", "-u", REDIS, "flushdb"], check=True, capture_output=True)
    return env


def django_setup(env: dict) -> None:
    import django

    os.environ.update(env)
    django.setup()
    from portal.celery import app

    app.conf.broker_url = REDIS
    app._pool = None
    app.amqp._producer_pool = None


def start_workers(n: int, env: dict, beat: bool = False) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        args = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--concurrency", "1", "--pool", "prefork",
                "--hostname", f"bench{i}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        if beat and i == 0:
            args += ["--beat", "--schedule", str(Path(env["IDP_DATA_DIR"]) / "beat-schedule")]
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(4)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]
