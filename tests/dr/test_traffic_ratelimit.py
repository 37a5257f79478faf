"""The traffic providers' rate limiter: a token bucket per provider name, timed with an injected clock (these
tests never sleep), shared across processes through a real Redis when the broker is Redis, and attached to every
traffic provider the registry builds, at the policy's limit."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest

from dr.traffic import ratelimit
from dr.traffic.ratelimit import UNLIMITED, Rate, RedisTokenBucket, TokenBucket


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.t += seconds


def bucket(per_second: float, burst: int, clock: FakeClock) -> TokenBucket:
    return TokenBucket(Rate(per_second, burst), clock=clock.now, sleep=clock.sleep)


def test_a_burst_goes_at_once_then_calls_are_spaced_at_the_rate():
    clock = FakeClock()
    limiter = bucket(5, 3, clock)
    waits = [round(limiter.reserve(), 6) for _ in range(6)]  # the clock does not move: every token is reserved ahead
    assert waits == [0, 0, 0, 0.2, 0.4, 0.6]


def test_acquire_sleeps_exactly_until_its_token_is_due():
    clock = FakeClock()
    limiter = bucket(4, 1, clock)
    times = []
    for _ in range(5):
        limiter.acquire()
        times.append(round(clock.t - 1000, 6))
    assert times == [0, 0.25, 0.5, 0.75, 1.0]
    assert clock.slept == [0.25] * 4


def test_an_idle_bucket_refills_to_its_burst_and_no_further():
    clock = FakeClock()
    limiter = bucket(2, 2, clock)
    assert [limiter.reserve() for _ in range(2)] == [0, 0]
    clock.t += 60  # a minute idle: 120 tokens' worth, but the bucket holds 2
    assert [round(limiter.reserve(), 6) for _ in range(3)] == [0, 0, 0.5]


def test_a_partly_refilled_bucket_waits_only_for_the_missing_part():
    clock = FakeClock()
    limiter = bucket(10, 1, clock)
    limiter.reserve()
    clock.t += 0.04
    assert round(limiter.reserve(), 6) == 0.06


def test_threads_share_the_bucket_and_each_gets_its_own_slot():
    clock = FakeClock()
    limiter = bucket(10, 1, clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            w = round(limiter.reserve(), 6)
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [round(i * 0.1, 6) for i in range(80)]  # no two callers on the same slot


def test_a_changed_rate_applies_at_once_and_keeps_the_tokens():
    clock = FakeClock()
    limiter = bucket(1, 2, clock)
    limiter.reserve()
    limiter.rate = Rate(4, 2)  # the policy was edited
    assert [round(limiter.reserve(), 6) for _ in range(3)] == [0, 0.25, 0.5]


def test_a_rate_needs_a_positive_rate_and_a_burst_of_at_least_one():
    with pytest.raises(ValueError):
        Rate(0, 1)
    with pytest.raises(ValueError):
        Rate(1, 0)


def test_the_registry_keeps_one_bucket_per_provider_name_in_the_process(settings):
    settings.CELERY_BROKER_URL = "memory://"
    ratelimit.reset()
    a = ratelimit.limiter("route53", Rate(5, 5))
    assert ratelimit.limiter("route53", Rate(5, 5)) is a
    assert ratelimit.limiter("cloudflare", Rate(4, 4)) is not a
    assert ratelimit.limiter("route53", Rate(2, 1)) is a and a.rate == Rate(2, 1)  # the policy's new limit, same bucket
    assert ratelimit.limiter("powerdns", None) is UNLIMITED and UNLIMITED.acquire() == 0
    ratelimit.reset()


def test_the_limit_comes_from_the_policy_else_the_published_one(db, use_policy):
    from policy.active import active_policy
    from tests.helpers import policy_doc

    assert ratelimit.rate_for("route53") == Rate(5, 5)
    assert ratelimit.rate_for("cloudflare") == Rate(4, 4)
    assert ratelimit.rate_for("oci-dns") == Rate(5, 5)
    assert ratelimit.rate_for("powerdns") is None and ratelimit.rate_for("sandbox") is None
    doc = policy_doc()
    doc["trafficProviders"] = {"route53": {"rateLimit": {"requestsPerSecond": 2}},
                               "powerdns": {"rateLimit": {"requestsPerSecond": 20, "burst": 50}},
                               "cloudflare": {}}
    use_policy(doc)
    spec = active_policy().spec
    assert ratelimit.rate_for("route53", spec) == Rate(2, 2)  # burst: the rate rounded up
    assert ratelimit.rate_for("powerdns", spec) == Rate(20, 50)
    assert ratelimit.rate_for("cloudflare", spec) == Rate(4, 4)  # listed without a rateLimit: the published one
    assert ratelimit.rate_for("oci-dns", spec) == Rate(5, 5)


def test_every_traffic_provider_from_the_registry_carries_its_policy_limit(db, settings, use_policy, monkeypatch):
    from dr.providers import adapter
    from dr.traffic.providers.route53 import Route53Provider
    from dr.traffic.providers.sandbox import SandboxTraffic
    from tests.helpers import policy_doc

    ratelimit.reset()
    settings.CELERY_BROKER_URL = "memory://"
    settings.IDP_SANDBOX_PROVIDERS = ["oci-dns"]
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    route53 = adapter("traffic", "route53")
    assert isinstance(route53, Route53Provider) and route53.limiter.rate == Rate(5, 5)
    sandbox = adapter("traffic", "oci-dns")
    assert isinstance(sandbox, SandboxTraffic) and sandbox.limiter is UNLIMITED  # its calls are rows, not a cloud's API
    doc = policy_doc()
    doc["trafficProviders"] = {"route53": {"rateLimit": {"requestsPerSecond": 1, "burst": 1}},
                               "sandbox": {"rateLimit": {"requestsPerSecond": 50}}}
    use_policy(doc)
    again = adapter("traffic", "route53")
    assert again.limiter is route53.limiter and again.limiter.rate == Rate(1, 1)  # one bucket per process, new limit
    assert adapter("traffic", "oci-dns").limiter.rate == Rate(50, 50)
    ratelimit.reset()


# -- shared through Redis ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def test_worker_processes_share_one_bucket_through_redis(redis_url):
    import redis

    clock = FakeClock(1_700_000_000.0)
    key = f"{ratelimit.REDIS_PREFIX}test-{time.time_ns()}"
    # Two workers (two clients, as two processes would have), one bucket in Redis.
    one = RedisTokenBucket(redis.Redis.from_url(redis_url), key, Rate(4, 2), clock=clock.now, sleep=clock.sleep)
    two = RedisTokenBucket(redis.Redis.from_url(redis_url), key, Rate(4, 2), clock=clock.now, sleep=clock.sleep)
    waits = [round(w.reserve(), 6) for w in (one, two, one, two, one)]
    assert waits == [0, 0, 0.25, 0.5, 0.75]  # the burst of 2 was shared, then one every 0.25 s across both
    clock.t += 10
    assert [round(w.reserve(), 6) for w in (two, one, two)] == [0, 0, 0.25]
    assert 0 < redis.Redis.from_url(redis_url).ttl(key) <= 61  # an idle bucket does not stay in Redis


def test_the_redis_bucket_uses_the_servers_clock_by_default(redis_url):
    import redis

    key = f"{ratelimit.REDIS_PREFIX}test-{time.time_ns()}"
    limiter = RedisTokenBucket(redis.Redis.from_url(redis_url), key, Rate(1, 1))
    assert limiter.reserve() == 0
    assert 0.9 < limiter.reserve() <= 1.0


def test_an_unreachable_redis_falls_back_to_this_processes_bucket(caplog):
    import redis

    clock = FakeClock()
    local = TokenBucket(Rate(2, 1), clock=clock.now, sleep=clock.sleep)
    dead = redis.Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=0.2)
    limiter = RedisTokenBucket(dead, "idp:test", Rate(2, 1), fallback=local, clock=clock.now, sleep=clock.sleep)
    assert [round(limiter.reserve(), 6) for _ in range(3)] == [0, 0.5, 1.0]  # still limited, never an error
    assert "Redis unavailable" in caplog.text


def test_a_redis_broker_makes_the_registry_share_buckets_through_it(settings, redis_url):
    ratelimit.reset()
    settings.CELERY_BROKER_URL = redis_url
    shared = ratelimit.limiter("cloudflare", Rate(4, 4))
    assert isinstance(shared, RedisTokenBucket) and shared.key == "idp:ratelimit:traffic:cloudflare"
    settings.CELERY_BROKER_URL = "memory://"
    assert isinstance(ratelimit.limiter("cloudflare", Rate(4, 4)), TokenBucket)
    ratelimit.reset()
