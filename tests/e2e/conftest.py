"""Real processes for end-to-end tests: Celery workers (with beat) on a real Redis, sharing the test database."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def use_broker(url: str) -> None:
    """Point this (the web) process's Celery app at another broker."""
    from portal.celery import app

    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition", state=None):
    """Poll `predicate` until true; on timeout, say what `state()` showed last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"; last state: {state()}" if state else ""))


class Workers:
    def __init__(self, env: dict, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, concurrency: int = 1, beat: bool = True, name: str | None = None, **env) -> subprocess.Popen:
        name = name or f"w{len(self.procs)}"
        args = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO", "--pool", "prefork",
                "--concurrency", str(concurrency), "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
        if beat:
            args += ["--beat", "--schedule", str(self.log_dir / f"{name}-beat-schedule")]
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(args, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture
def redis_broker():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not running at {REDIS_URL}: {exc} (.ci/run starts it)")
    client.flushdb()
    use_broker(REDIS_URL)
    yield REDIS_URL
    client.flushdb()
    use_broker("memory://")


@pytest.fixture
def workers(transactional_db, redis_broker, settings, tmp_path, request):
    """Start Celery workers that see this test's database, git repository and settings."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": "e2e-only-not-a-secret-but-as-long-as-production-requires",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "IDP_POLICY_FILE": str(settings.IDP_POLICY_FILE),
        "IDP_GITOPS_REPO": str(settings.IDP_GITOPS_REPO),
        "IDP_GITOPS_REMOTE": settings.IDP_GITOPS_REMOTE,
        "IDP_DELIVERY_TARGET": "gitops",
        "IDP_STATUS_SOURCE": "simulator",
        "IDP_SIMULATOR_READY_DELAY": "1",
        "IDP_DISPATCH_INTERVAL": "1",
        "IDP_OBSERVE_INTERVAL": "1",
        "IDP_DELIVERY_LEASE": "4",
        "IDP_SANDBOX_PROVIDERS": "*",
        "IDP_RUN_LEASE": "3",
        "IDP_RUN_RESUME_INTERVAL": "1",
        "IDP_DATA_DIR": str(tmp_path / "worker-data"),
    }
    if not db["ENGINE"].endswith("postgresql"):
        pytest.fail("end-to-end tests need PostgreSQL (make test sets TEST_DATABASE_URL)")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    w = Workers(env, log_dir)
    yield w
    w.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(w.logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
