"""Replication lag over time: samples kept per 15 s (the max), downsampled as they age, deleted past the horizon,
and read back by the lag API."""
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from cells import services as cell_services
from dr import lag
from dr.models import LagSample

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=dt_timezone.utc)


@pytest.fixture
def ce(dev, test_policy):
    """payments/prod, C1 silver (RPO 900 s)."""
    return cell_services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver").cell_env


def rows(ce):
    return list(LagSample.objects.filter(cell_env=ce).order_by("at").values_list("at", "lag_seconds", "resolution_seconds"))


def test_a_bucket_of_15_seconds_keeps_the_largest_lag_measured_in_it(ce):
    lag.record(ce.pk, 3.0, NOW)
    lag.record(ce.pk, 9.5, NOW + timedelta(seconds=5))
    lag.record(ce.pk, 1.0, NOW + timedelta(seconds=10))
    lag.record(ce.pk, 2.0, NOW + timedelta(seconds=15))
    lag.record(ce.pk, None, NOW + timedelta(seconds=20))  # unknown: not a sample
    assert rows(ce) == [(datetime(2026, 11, 30, 12, 0, 30, tzinfo=dt_timezone.utc), 9.5, 15),
                        (datetime(2026, 11, 30, 12, 0, 45, tzinfo=dt_timezone.utc), 2.0, 15)]


def test_samples_of_two_days_ago_become_the_max_of_each_minute_and_recent_ones_stay(ce):
    two_days = NOW - timedelta(days=2)
    minute = two_days.replace(second=0)
    for second, value in ((0, 4.0), (15, 12.0), (30, 7.0), (45, 1.0)):
        lag.record(ce.pk, value, minute + timedelta(seconds=second))
    lag.record(ce.pk, 30.0, minute + timedelta(minutes=1, seconds=15))
    recent = [NOW - timedelta(minutes=m) for m in (1, 2, 3)]
    for at in recent:
        lag.record(ce.pk, 5.0, at)

    out = lag.downsample(NOW)

    assert out == {"mergedInto1Minute": 2, "mergedInto1Hour": 0, "deleted": 0}
    assert rows(ce)[:2] == [(minute, 12.0, 60), (minute + timedelta(minutes=1), 30.0, 60)]
    assert [(r[2]) for r in rows(ce)[2:]] == [15, 15, 15]  # the last 24 h: as recorded
    assert lag.downsample(NOW) == {"mergedInto1Minute": 0, "mergedInto1Hour": 0, "deleted": 0}  # idempotent
    assert len(rows(ce)) == 5


def test_samples_older_than_a_week_become_the_max_of_each_hour_and_past_the_horizon_are_deleted(ce):
    hour = (NOW - timedelta(days=10)).replace(minute=0, second=0)
    for minutes, value in ((0, 2.0), (17, 50.0), (59, 3.0)):
        lag.record(ce.pk, value, hour + timedelta(minutes=minutes))
    lag.record(ce.pk, 8.0, NOW - timedelta(days=91))
    out = lag.downsample(NOW)
    assert out["mergedInto1Hour"] == 1 and out["deleted"] == 1
    assert rows(ce) == [(hour, 50.0, 3600)]


def test_a_long_backlog_is_worked_off_in_bounded_chunks(ce):
    start = (NOW - timedelta(days=3)).replace(second=0)
    for i in range(0, 48 * 60, 7):  # two days of samples every 7 minutes, never downsampled
        lag.record(ce.pk, float(i % 50), start + timedelta(minutes=i))
    before = LagSample.objects.count()
    lag.downsample(NOW)
    assert LagSample.objects.filter(resolution_seconds=15, at__lt=NOW - timedelta(hours=24)).count() == 0
    assert LagSample.objects.count() == before  # one sample per minute already: nothing to merge, nothing lost


def test_the_sparkline_is_the_max_of_each_5_minutes_of_the_last_hour_in_one_query(ce, django_assert_num_queries):
    now = lag.bucket(timezone.now(), 300) + timedelta(minutes=4)
    lag.record(ce.pk, 4.0, now - timedelta(minutes=58))
    lag.record(ce.pk, 9.0, now - timedelta(minutes=2))
    lag.record(ce.pk, 6.0, now - timedelta(minutes=1))
    lag.record(ce.pk, 99.0, now - timedelta(hours=2))  # outside the window
    with django_assert_num_queries(1):
        lines = lag.sparklines([ce.pk, ce.pk + 1000], now)
    assert lines == {ce.pk: [None, 4.0] + [None] * 10 + [9.0]}  # 13 buckets of 5 minutes, oldest first


# -- the API ----------------------------------------------------------------------------------------

def test_the_lag_api_answers_the_samples_since_a_time_with_the_rpo(api, dev, ce):
    now = timezone.now()
    lag.record(ce.pk, 1.5, now - timedelta(hours=30))
    lag.record(ce.pk, 2.5, now - timedelta(minutes=10))
    client = api(dev)
    body = client.get("/api/cells/payments/prod/lag").json()  # default: the last 24 h
    assert body["rpoSeconds"] == 900 and [s["lagSeconds"] for s in body["samples"]] == [2.5]
    assert set(body["samples"][0]) == {"at", "lagSeconds"} and body["samples"][0]["at"].endswith("Z")
    since = (now - timedelta(hours=48)).isoformat()  # "+00:00": an unencoded "+" arrives as a space
    body = client.get(f"/api/cells/payments/prod/lag?since={since}").json()
    assert [s["lagSeconds"] for s in body["samples"]] == [1.5, 2.5]
    body = client.get("/api/cells/payments/prod/lag", {"since": (now - timedelta(hours=48)).isoformat()}).json()
    assert len(body["samples"]) == 2


def test_a_bad_since_is_a_400_naming_the_field(api, dev, ce):
    for bad in ("yesterday", "2026-13-40T00:00:00Z", "1700000000"):
        r = api(dev).get("/api/cells/payments/prod/lag", {"since": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"] == "invalid" and "not an ISO 8601 date-time" in r.json()["fields"]["since"][0]


def test_the_lag_api_follows_cell_access(api, outsider, ops, ce):
    assert api(outsider).get("/api/cells/payments/prod/lag").status_code == 403
    assert api(ops).get("/api/cells/payments/prod/lag").status_code == 200
    assert api(None).get("/api/cells/payments/prod/lag").status_code == 401
    assert api(ops).get("/api/cells/nosuch/prod/lag").status_code == 404
