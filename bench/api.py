"""API benchmark: requests per second of `GET /api/status/{cell}/{env}` against a trivial authenticated endpoint
(`GET /api/me`) under gunicorn, and the latency of the idempotent repeated `POST /api/mysql` ("unchanged").

Real parts: PostgreSQL (database idp_bench_api, recreated), one gunicorn server (portal.wsgi, sync workers,
DJANGO_DEBUG=0, the project's settings), token authentication over HTTP. The cell environment (payments/prod on
the shipped policy: MySQL + replication + applications) is requested through the services, delivered to a git
target and observed by the simulator, so the status reads settled claims and delivery history.

The load generator is one Python process with N threads, each a keep-alive http.client connection (gunicorn's
sync workers close after each response; the client reconnects), a warm-up, then a fixed duration per endpoint,
measured in alternating slices. The same generator measures both endpoints, so the ratio status/me is what the
server does per request, even on a machine shared with other work. Beside req/s, the CPU the server spent per
request (gunicorn workers and their PostgreSQL backends, from /proc), which other work on the machine barely
moves: its ratio is the one to trust when the machine is busy. Plain HTTP on loopback, as behind a proxy that
terminates TLS. Queries per call are counted in this process (Django's test client, same settings). Prints one
JSON object on its last line.

    python bench/api.py [--duration 10] [--rounds 5] [--threads 4] [--workers 2] [--posts 300] [--port 8765]
                        [--database postgres://postgres@127.0.0.1:5432/idp_bench_api]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import PG, REDIS, ROOT, pct

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small",
         "storageGB": 50, "ha": True}
APP = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", image="ghcr.io/acme/payments:1.0",
           public_host="payments.prod.company.com")
STATUS = "/api/status/payments/prod"
ME = "/api/me"
# The API's throttles (settings.IDP_API_THROTTLE_RATES) stay on, as in production, with rates no run reaches:
# the bench measures the server, not 429s. Per-second windows keep each worker's throttle history short.
THROTTLE_ENV = {"IDP_API_THROTTLE_USER": "1000000/second", "IDP_API_THROTTLE_ANON": "1000000/second"}


def recreate_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed() -> str:
    """The demo users, payments/prod with MySQL and app claims delivered and observed; returns dev's API token."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from cells import pipeline, services
    from cells.models import Delivery

    call_command("migrate", verbosity=0)
    call_command("demo_data", stdout=open(os.devnull, "w"))
    dev = User.objects.get(username="dev")
    services.request_mysql(dev, **{k: MYSQL[k] for k in ("cell", "environment", "tier", "size", "ha")},
                           dr_profile=MYSQL["drProfile"], storage_gb=MYSQL["storageGB"])
    services.request_app(dev, **APP)
    for _ in range(5):  # deliver and observe until settled (a database endpoint makes a replication revision)
        pending = list(Delivery.objects.filter(state="pending").order_by("id").values_list("pk", flat=True))
        for pk in pending:
            pipeline.deliver(pk)
        time.sleep(0.05)
        pipeline.observe_all()
        if not pending:
            break
    return Token.objects.get(user=dev).key


def queries_per_call(token: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    out = {}
    for name, call in (("me", lambda: client.get(ME)), ("status", lambda: client.get(STATUS)),
                       ("mysql_unchanged", lambda: client.post("/api/mysql", MYSQL, content_type="application/json"))):
        call()  # warm
        with CaptureQueriesContext(connection) as ctx:
            r = call()
        assert r.status_code == 200, (name, r.status_code, r.content[:300])
        out[name] = len(ctx.captured_queries)
    return out


class Server:
    def __init__(self, env: dict, port: int, workers: int, log: Path):
        self.port, self.log = port, log
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi", "-w", str(workers), "--bind",
             f"127.0.0.1:{port}", "--worker-class", "sync", "--error-logfile", str(log)],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, token: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({self.proc.returncode}); see {self.log}")
            try:
                status, _ = request(http.client.HTTPConnection("127.0.0.1", self.port, timeout=5), "GET", ME, token)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer in {timeout} s; see {self.log}")

    def pids(self, database: str) -> list[int]:
        """The gunicorn workers and their PostgreSQL backends (whose CPU a request costs)."""
        import psycopg

        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        with psycopg.connect(database, autocommit=True) as conn:
            backends = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        return workers + backends

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def request(conn: http.client.HTTPConnection, method: str, path: str, token: str, body: bytes | None = None):
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def load(port: int, path: str, token: str, threads: int, duration: float) -> tuple[list[float], float]:
    """N threads GET `path` for `duration` seconds: the latencies of the answers and the elapsed time.
    Anything but 200 stops the bench (a 429 means the throttle rates below are too low)."""
    stop = threading.Event()
    results: list[tuple[list[float], dict]] = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times, other = [], {}
        while not stop.is_set():
            started = time.perf_counter()
            status, _ = request(conn, "GET", path, token)
            if status == 200:
                times.append(time.perf_counter() - started)
            else:
                other[status] = other.get(status, 0) + 1
        conn.close()
        results.append((times, other))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    other: dict = {}
    for _, o in results:
        for k, v in o.items():
            other[k] = other.get(k, 0) + v
    if other:
        hint = " (throttled: raise THROTTLE_ENV)" if 429 in other else ""
        raise SystemExit(f"{path}: non-200 answers {other}{hint}")
    return [t for ts, _ in results for t in ts], elapsed


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU the processes have used (Linux /proc; None elsewhere)."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def compare(port: int, paths: dict[str, str], token: str, threads: int, duration: float, rounds: int,
            pids: list[int]) -> dict:
    """Each path `duration` seconds in all, in `rounds` alternating slices: on a shared machine both see the
    same background load, so their ratio holds even when the absolute numbers move. Besides req/s: the CPU
    the server (gunicorn workers and their PostgreSQL backends) spent per request, which other load does not
    change."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    elapsed = dict.fromkeys(paths, 0.0)
    cpu: dict[str, float | None] = dict.fromkeys(paths, 0.0)
    for _ in range(rounds):
        for name, path in paths.items():
            before = cpu_seconds(pids)
            t, e = load(port, path, token, threads, duration / rounds)
            after = cpu_seconds(pids)
            times[name] += t
            elapsed[name] += e
            cpu[name] = None if None in (before, after, cpu[name]) else cpu[name] + after - before
    return {name: {"requests": len(times[name]), "rps": round(len(times[name]) / elapsed[name], 1),
                   "p50_ms": round(statistics.median(times[name]) * 1000, 2),
                   "p99_ms": round(pct(times[name], 99) * 1000, 2),
                   "server_cpu_ms_per_request": None if cpu[name] is None else
                   round(cpu[name] * 1000 / len(times[name]), 2)} for name in paths}


def repeated_post(port: int, token: str, n: int, warmup: int = 30) -> dict:
    """The same MySQL request again and again, one after another: each answers 200 with changed=false."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps(MYSQL).encode()
    times = []
    for i in range(warmup + n):
        started = time.perf_counter()
        status, content = request(conn, "POST", "/api/mysql", token, body)
        elapsed = time.perf_counter() - started
        if status != 200 or json.loads(content)["changed"] is not False:
            raise SystemExit(f"POST /api/mysql: {status} {content[:300]!r}")
        if i >= warmup:
            times.append(elapsed)
    conn.close()
    return {"requests": n, "p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(pct(times, 99) * 1000, 2), "max_ms": round(max(times) * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10, help="seconds of load per endpoint")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of warm-up load per endpoint")
    ap.add_argument("--rounds", type=int, default=5, help="alternating slices the duration is measured in")
    ap.add_argument("--threads", type=int, default=4, help="concurrent client connections")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    ap.add_argument("--posts", type=int, default=300, help="sequential repeated POST /api/mysql")
    ap.add_argument("--port", type=int, default=int(os.environ.get("BENCH_API_PORT", "8765")))
    ap.add_argument("--database", default=f"{PG}/idp_bench_api")
    args = ap.parse_args()

    os.chdir(ROOT)  # the server and this process import the same tree
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-api-"))
    recreate_database(args.database)
    env = {**os.environ, **THROTTLE_ENV, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "DATABASE_URL": args.database,
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "CELERY_BROKER_URL": REDIS,
           "IDP_DATA_DIR": str(tmp / "data"), "IDP_GITOPS_REPO": str(tmp / "gitops"),
           "IDP_SANDBOX_PROVIDERS": "*", "IDP_SIMULATOR_READY_DELAY": "0", "LOG_LEVEL": "WARNING",
           # plain HTTP on loopback, as behind a proxy that terminates TLS: no redirect to https
           "DJANGO_SECURE_SSL_REDIRECT": "0"}
    os.environ.update(env)
    import django

    django.setup()
    token = seed()
    queries = queries_per_call(token)
    from django.db import connections

    connections.close_all()
    print(f"queries per call: me {queries['me']}, status {queries['status']}, "
          f"repeated POST /api/mysql {queries['mysql_unchanged']}")

    server = Server(env, args.port, args.workers, tmp / "gunicorn.log")
    try:
        server.wait_ready(token)
        paths = {"me": ME, "status": STATUS}
        for path in paths.values():  # warm-up: connections, the policy, imports in both workers
            load(args.port, path, token, args.threads, args.warmup)
        results = compare(args.port, paths, token, args.threads, args.duration, args.rounds,
                          server.pids(args.database))
        for name, path in paths.items():
            r = results[name]
            print(f"GET {path:28} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                  f"server CPU {r['server_cpu_ms_per_request']} ms/request  "
                  f"({r['requests']} requests, {args.threads} threads, {args.duration:g} s in {args.rounds} slices)")
        post = repeated_post(args.port, token, args.posts)
        print(f"POST /api/mysql (same body, unchanged) x{post['requests']}: p50 {post['p50_ms']:.2f} ms  "
              f"p99 {post['p99_ms']:.2f} ms  max {post['max_ms']:.2f} ms")
    finally:
        server.stop()
    ratio = round(results["status"]["rps"] / results["me"]["rps"], 3)
    cpu_me, cpu_status = results["me"]["server_cpu_ms_per_request"], results["status"]["server_cpu_ms_per_request"]
    cpu_ratio = round(cpu_me / cpu_status, 3) if cpu_me and cpu_status else None
    print(f"status/me: {ratio:.2f}x req/s; {cpu_ratio}x by server CPU per request")
    print(json.dumps({"benchmark": "api", "server": f"gunicorn sync x{args.workers}", "database": "postgresql",
                      "threads": args.threads, "durationSeconds": args.duration, "me": results["me"],
                      "status": results["status"], "statusToMeRatio": ratio,
                      "statusToMeRatioByServerCpu": cpu_ratio, "queriesPerCall": queries,
                      "repeatedMysqlPost": post}))


if __name__ == "__main__":
    main()
