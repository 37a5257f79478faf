"""Portal benchmark: server render time of the home and cell pages with 1,000 cell environments in the database.
Prints one JSON object on its last line.

Real parts: PostgreSQL (database idp_bench_portal, recreated), the full Django stack (middleware, sessions,
templates) through Django's test client, DJANGO_DEBUG=0. The 1,000 cell environments are written in bulk
(tests/portal/bulk.py: placement decisions with explanations, 2 MySQL claims, a replication and 2 applications
each); payments/prod is requested through the services, so its cell page has real manifests and history.

    python bench/portal.py [--cells 1000] [--runs 30] [--database postgres://postgres@127.0.0.1:5432/idp_bench_portal]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432") + "/idp_bench_portal"


def recreate_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round((len(values) - 1) * p / 100)))]


def measure(client, url: str, runs: int, headers: dict | None = None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = headers or {}
    for _ in range(3):  # warm: template loading, the policy, connections
        client.get(url, **headers)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 286), (url, response.status_code)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    return {"url": url, "p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1), "queries": len(ctx.captured_queries), "bytes": len(response.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database", default=DEFAULT_DB)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    recreate_database(args.database)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings", "DATABASE_URL": args.database, "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-not-a-secret-but-as-long-as-production-requires",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # the test client speaks plain HTTP
        "DJANGO_ALLOWED_HOSTS": "testserver", "IDP_DATA_DIR": str(tmp),
        "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING",
    })
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from cells import services
    from tests.portal.bulk import create_cell_environments

    call_command("migrate", verbosity=0)
    call_command("demo_data", stdout=open(os.devnull, "w"))
    dev, ops = User.objects.get(username="dev"), User.objects.get(username="ops")
    started = time.perf_counter()
    create_cell_environments(args.cells, team_slug="payments")
    seeded = time.perf_counter() - started
    services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold")
    services.request_app(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold",
                         image="ghcr.io/acme/payments:1.0", public_host="payments.prod.company.com")

    results = {}
    clients = {"ops": Client(), "dev": Client()}
    clients["ops"].force_login(ops)
    clients["dev"].force_login(dev)
    pages = {
        "home_operator": ("ops", "/", None),
        "home_developer": ("dev", "/", None),
        "home_operator_needs_attention": ("ops", "/?show=attention", None),
        "home_operator_last_page": ("ops", f"/?page={(args.cells + 99) // 100}", None),
        "cell_page": ("dev", "/cells/payments/prod/", None),
        "cell_page_bulk_cell": ("ops", "/cells/bulk-7/prod/", None),
        "cell_live_poll": ("dev", "/cells/payments/prod/", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "cell-live"}),
        "request_form_with_preview": ("dev", "/request/mysql/?cell=payments&environment=staging", None),
    }
    for name, (who, url, headers) in pages.items():
        results[name] = measure(clients[who], url, args.runs, headers)
        r = results[name]
        print(f"{name:32} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  "
              f"{r['queries']:3} queries  {r['bytes'] // 1024:4} kB  {url}")
    print(json.dumps({"benchmark": "portal", "cellEnvironments": args.cells + 1, "runs": args.runs,
                      "database": "postgresql", "seedSeconds": round(seeded, 2), "pages": results}))


if __name__ == "__main__":
    main()
