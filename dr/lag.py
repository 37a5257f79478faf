"""Replication lag over time: samples per cell environment, downsampled as they age.

Every lag measurement (the status source's, through cells' `replication_lag_measured` signal, and the beat's lag
probe, dr.services.probe_replication_lag) goes into a `LagSample` bucket of RAW_SECONDS: one row per cell
environment and bucket holding the largest lag measured in it, so a peak between two readings is never lost and a
status source that observes every 3 s writes at most one row per 15 s.

`downsample()` (beat: dr.tasks.downsample_lag) keeps the maximum of each coarser bucket as data ages:

    age          resolution
    < 24 h       15 s   (as recorded)
    24 h - 7 d   1 min  (max of the minute)
    7 d - 90 d   1 h    (max of the hour)
    > 90 d       deleted

Bound: per cell environment at most 24 h / 15 s = 5,760 + 6 d x 1,440 = 8,640 + 83 d x 24 = 1,992, about 16,400
rows (some 1.5 MB with its indexes), whatever the measuring rate.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import Max, Value
from django.db.models.functions import ExtractMinute, Floor, Trunc
from django.utils import timezone

from .models import LagSample

log = logging.getLogger(__name__)

RAW_SECONDS = 15
# (older than, resolution in seconds, the Trunc kind of that resolution)
STEPS = ((timedelta(hours=24), 60, "minute"), (timedelta(days=7), 3600, "hour"))
HORIZON = timedelta(days=90)
CHUNK = timedelta(hours=6)  # downsample this much time per statement, whatever the backlog

SPARKLINE_WINDOW = timedelta(hours=1)
SPARKLINE_BUCKET_MINUTES = 5


def bucket(at: datetime, seconds: int) -> datetime:
    """The start of the `seconds`-wide bucket holding `at` (UTC, aligned on the epoch)."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=dt_timezone.utc)


def record(cell_env_id: int, lag_seconds: float | None, at: datetime | None = None) -> None:
    """Store one measurement: the bucket's row keeps the largest lag measured in it. Safe under concurrency (an
    insert that ignores a conflict, then a compare-and-set). An unknown lag is not a sample."""
    if lag_seconds is None:
        return
    start = bucket(at or timezone.now(), RAW_SECONDS)
    lag = float(lag_seconds)
    LagSample.objects.bulk_create([LagSample(cell_env_id=cell_env_id, at=start, lag_seconds=lag,
                                             resolution_seconds=RAW_SECONDS)], ignore_conflicts=True)
    LagSample.objects.filter(cell_env_id=cell_env_id, at=start, lag_seconds__lt=lag).update(lag_seconds=lag)


def downsample(now: datetime | None = None) -> dict:
    """Merge aged samples into their coarser buckets (the max of each) and delete those past the horizon.
    Idempotent; each statement covers at most CHUNK of time, so a backlog (beat stopped for days) is worked off in
    bounded steps."""
    now = now or timezone.now()
    expired, _ = LagSample.objects.filter(at__lt=now - HORIZON).delete()  # first: nothing to merge there
    merged = {}
    for age, resolution, kind in STEPS:
        cutoff = bucket(now - age, resolution)  # whole buckets only
        finer = LagSample.objects.filter(resolution_seconds__lt=resolution, at__lt=cutoff)
        count = 0
        while True:
            first = finer.order_by("at").values_list("at", flat=True).first()
            if first is None:
                break
            start = bucket(first, resolution)
            end = min(start + CHUNK, cutoff)
            count += _merge(start, end, resolution, kind)
        merged[resolution] = count
    return {"mergedInto1Minute": merged[60], "mergedInto1Hour": merged[3600], "deleted": expired}


def _merge(start: datetime, end: datetime, resolution: int, kind: str) -> int:
    """Replace every sample in [start, end) at `resolution` or finer by one per cell environment and bucket."""
    window = LagSample.objects.filter(at__gte=start, at__lt=end, resolution_seconds__lte=resolution)
    with transaction.atomic():
        rows = list(window.annotate(bucket=Trunc("at", kind, tzinfo=dt_timezone.utc)).order_by()
                    .values("cell_env_id", "bucket").annotate(lag=Max("lag_seconds")))
        window.delete()
        LagSample.objects.bulk_create([LagSample(cell_env_id=r["cell_env_id"], at=r["bucket"], lag_seconds=r["lag"],
                                                 resolution_seconds=resolution) for r in rows])
    return len(rows)


# -- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    at: datetime
    lag_seconds: float

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat().replace("+00:00", "Z"), "lagSeconds": self.lag_seconds}


def series(cell_env_id: int, since: datetime, until: datetime | None = None) -> list[Sample]:
    """The samples of a cell environment from `since` (up to `until`), oldest first, at whatever resolution each
    has by its age."""
    qs = LagSample.objects.filter(cell_env_id=cell_env_id, at__gte=bucket(since, RAW_SECONDS))
    if until is not None:
        qs = qs.filter(at__lte=until)
    return [Sample(at, lag) for at, lag in qs.order_by("at").values_list("at", "lag_seconds")]


def last_samples(cell_env_id: int, n: int) -> list[float]:
    """The last `n` lags, oldest first."""
    lags = list(LagSample.objects.filter(cell_env_id=cell_env_id).order_by("-at").values_list("lag_seconds", flat=True)[:n])
    return lags[::-1]


def sparklines(env_ids: list[int], now: datetime | None = None) -> dict[int, list[float | None]]:
    """The last hour of each of these cell environments as the max lag of each 5-minute bucket (None: no sample),
    oldest first: one query for all of them, grouped in the database (about 13 rows per cell environment)."""
    if not env_ids:
        return {}
    now = now or timezone.now()
    step = SPARKLINE_BUCKET_MINUTES * 60
    first = bucket(now - SPARKLINE_WINDOW, step)
    slots = int((bucket(now, step) - first).total_seconds() // step) + 1
    rows = (LagSample.objects.filter(cell_env_id__in=env_ids, at__gte=first).order_by()
            .annotate(hour=Trunc("at", "hour", tzinfo=dt_timezone.utc),
                      part=Floor(ExtractMinute("at", tzinfo=dt_timezone.utc) / Value(SPARKLINE_BUCKET_MINUTES)))
            .values("cell_env_id", "hour", "part").annotate(lag=Max("lag_seconds"))
            .values_list("cell_env_id", "hour", "part", "lag"))
    out: dict[int, list[float | None]] = {}
    for env_id, hour, part, lag in rows:
        slot = int(((hour + timedelta(minutes=int(part) * SPARKLINE_BUCKET_MINUTES)) - first).total_seconds() // step)
        if 0 <= slot < slots:
            points = out.setdefault(env_id, [None] * slots)
            points[slot] = lag if points[slot] is None else max(points[slot], lag)
    return out


def rpo_seconds(cell_env) -> int | None:
    """The RPO the lag is held to: the DR profile's in the active policy, else the replication claim's."""
    from policy.active import active_policy

    profile = active_policy().spec.dr_profiles.get(cell_env.dr_profile)
    if profile is not None:
        return profile.rpo_seconds
    repl = cell_env.replicationclaims.first()
    return repl.expected_rpo_seconds if repl else None
