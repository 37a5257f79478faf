"""Rate limits of the traffic providers' APIs: a token bucket per provider name, process-wide.

Every call a traffic provider makes to its API, read or write, first takes a token
(`TrafficProviderBase._api`). A bucket holds at most `burst` tokens and refills at `per_second`: a burst of calls
goes out at once, then calls are spaced 1/per_second apart. Tokens are reserved, not polled: a caller that finds
the bucket empty takes a token "on credit" and sleeps exactly until it is due, so concurrent callers (threads of
one worker) queue in order without spinning.

Where the numbers come from: the policy's `trafficProviders.<name>.rateLimit`, else the provider's published
limit (`policy.adapters.TRAFFIC_RATE_LIMITS`); `dr.providers.adapter` attaches the limiter when it builds a
traffic provider. A provider built by hand (tests, benchmarks) is unlimited until given one.

Scope: **each worker process has its own bucket** (a provider's limit applies per process: N Celery worker
processes may together send N times the rate), unless CELERY_BROKER_URL is a redis:// (or rediss://) URL; then
every process shares one bucket per provider in that Redis (`RedisTokenBucket`, an atomic Lua script on the
server's clock). If Redis cannot be reached, the process falls back to its own bucket and logs it: a limiter
never stops a failover.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    def __post_init__(self):
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs per_second > 0 and burst >= 1, not {self.per_second}/{self.burst}")

    def __str__(self) -> str:
        return f"{self.per_second:g} requests/s (burst {self.burst})"


class Limiter(Protocol):
    rate: Rate | None

    def acquire(self) -> float:
        """Wait for a token; return the seconds waited."""


class Unlimited:
    """No limit: every call goes at once."""

    rate = None

    def acquire(self) -> float:
        return 0.0


UNLIMITED = Unlimited()


class TokenBucket:
    """A thread-safe token bucket in this process. `clock` (monotonic seconds) and `sleep` are injectable."""

    def __init__(self, rate: Rate, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(rate.burst)
        self._stamp = clock()

    def reserve(self) -> float:
        """Take a token now; return how long to wait before using it (0: at once)."""
        with self._lock:
            now = self._clock()
            rate = self.rate
            if now > self._stamp:
                self._tokens = min(float(rate.burst), self._tokens + (now - self._stamp) * rate.per_second)
                self._stamp = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / rate.per_second

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


# The same reservation as TokenBucket.reserve, atomic on the Redis server. KEYS[1]: the bucket; ARGV: rate per
# second, burst, now (seconds; negative: the server's clock, so every process and host agree). Returns the wait
# as a string (a Lua number would be truncated to an integer).
_RESERVE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens, stamp = burst, now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
tokens = tokens - 1
local wait = 0
if tokens < 0 then wait = -tokens / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.6f', stamp))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate + wait) + 60)
return string.format('%.6f', wait)
"""


class RedisTokenBucket:
    """One bucket shared by every process using the same Redis and key. Falls back to `fallback` (this process's
    own bucket) when Redis fails. `clock` (epoch seconds) is for tests; by default the Redis server's clock."""

    def __init__(self, client, key: str, rate: Rate, *, fallback: TokenBucket | None = None,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.client, self.key, self.rate = client, key, rate
        self._script = client.register_script(_RESERVE)
        self._fallback = fallback or TokenBucket(rate)
        self._clock, self._sleep = clock, sleep
        self._warned = False

    def reserve(self) -> float:
        now = self._clock() if self._clock is not None else -1
        try:
            wait = float(self._script(keys=[self.key], args=[self.rate.per_second, self.rate.burst, now]))
        except Exception as exc:  # noqa: BLE001 - any Redis failure: limit in this process instead
            if not self._warned:
                log.warning("traffic rate limit %s: Redis unavailable (%s); limiting in this process only",
                            self.key, type(exc).__name__)
                self._warned = True
            self._fallback.rate = self.rate
            return self._fallback.reserve()
        self._warned = False
        return wait

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


# -- the process-wide registry -------------------------------------------------------------------

REDIS_PREFIX = "idp:ratelimit:traffic:"

_lock = threading.Lock()
_buckets: dict[str, TokenBucket | RedisTokenBucket] = {}
_redis: dict[str, object] = {}


def rate_for(name: str, spec=None) -> Rate | None:
    """The rate limit of traffic provider `name`: the policy's `trafficProviders.<name>.rateLimit`, else its
    published limit (policy.adapters.TRAFFIC_RATE_LIMITS); None: no limit."""
    from policy.adapters import TRAFFIC_RATE_LIMITS

    settings = getattr(spec, "traffic_providers", {}).get(name) if spec is not None else None
    limit = settings.rate_limit if settings is not None else None
    if limit is not None:
        burst = limit.burst if limit.burst is not None else max(1, math.ceil(limit.requests_per_second))
        return Rate(float(limit.requests_per_second), burst)
    published = TRAFFIC_RATE_LIMITS.get(name)
    return Rate(float(published[0]), int(published[1])) if published else None


def broker_url() -> str:
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, "CELERY_BROKER_URL", "") or ""
    except ImportError:  # pragma: no cover - Django is always installed here
        pass
    return os.environ.get("CELERY_BROKER_URL", "")


def _redis_client(url: str):
    client = _redis.get(url)
    if client is None:
        import redis

        client = _redis[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    return client


def limiter(name: str, rate: Rate | None) -> Limiter:
    """The process-wide limiter of traffic provider `name` at `rate` (None: unlimited). The same object for the
    same name; a changed rate (the policy was edited) applies to it at once, keeping its tokens."""
    if rate is None:
        return UNLIMITED
    url = broker_url()
    shared = url.startswith(("redis://", "rediss://"))
    with _lock:
        bucket = _buckets.get(name)
        if bucket is None or isinstance(bucket, RedisTokenBucket) != shared:
            local = TokenBucket(rate)
            bucket = RedisTokenBucket(_redis_client(url), REDIS_PREFIX + name, rate, fallback=local) if shared else local
            _buckets[name] = bucket
        bucket.rate = rate
        return bucket


def reset() -> None:
    """Forget every bucket (tests)."""
    with _lock:
        _buckets.clear()
