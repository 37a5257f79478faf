"""Prometheus metrics at /metrics (text exposition format, prometheus-client).

Domain numbers are read from the database at scrape time (`DomainCollector`): failover runs, deliveries and
replication lag are written by Celery workers, so a counter kept in a web process would see only its own share.
Any web replica answers the same numbers; scrape one (or deduplicate on the `instance` label).

HTTP request latency is observed in each web process by `MetricsMiddleware`, labelled by the resolved URL name
(never the path: label values stay bounded), the method and the status. Under gunicorn with several workers,
set `PROMETHEUS_MULTIPROC_DIR` (an empty directory, per pod) so that the histogram sums every worker
(prometheus-client's multiprocess mode); without it, each scrape sees the worker that answered it.

Access (`metrics_allowed`): a request with `Authorization: Bearer <IDP_METRICS_TOKEN>`, or one without an
Authorization header from an address in `IDP_METRICS_ALLOWED_NETWORKS` (loopback by default). Anything else,
a wrong token included, gets 403.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q, Sum
from django.http import HttpResponse, HttpResponseForbidden
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from cells.models import CellEnvironment, Delivery
from dr import readiness
from dr.models import FailoverRun, RunState, RunType

log = logging.getLogger(__name__)

# Measured RTO (request to traffic switched) and data-loss window of finished runs, in seconds.
RTO_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
DATA_LOSS_BUCKETS = (0, 1, 5, 15, 30, 60, 300, 900, 3600, 86400)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a request no URL pattern resolved (a 404)

HTTP_LATENCY = Histogram(
    "idp_http_request_duration_seconds", "Web request latency, by URL name, method and status.",
    ["route", "method", "status"], registry=None,
)


# -- scrape-time numbers from the database ------------------------------------------------------

class DomainCollector:
    """Reads the control plane's rows at each scrape. `describe` is empty so registering it runs no query."""

    def describe(self):
        return []

    def collect(self):
        up = GaugeMetricFamily("idp_metrics_database_up", "1 when this scrape could read the control plane's database.")
        try:
            families = [*self._cells(), self._runs(), *self._measured(), self._deliveries()]
        except DatabaseError as exc:
            log.warning("metrics: the database could not be read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from families
        yield up

    def _cells(self):
        labels = ["cell", "environment"]
        lag = GaugeMetricFamily("idp_replication_lag_seconds",
                                "Last measured replication lag of the cell environment (absent while not replicating "
                                "or not measured yet).", labels=labels)
        rpo = GaugeMetricFamily("idp_replication_rpo_seconds", "Expected RPO of the cell environment's replication.",
                                labels=labels)
        score = GaugeMetricFamily("idp_readiness_score",
                                  "DR readiness of the cell environment, 0..1: its latest stored evaluation's score / 100 "
                                  "(dr/readiness.py; absent until first evaluated).", labels=labels)
        envs = (CellEnvironment.objects.filter(decommissioned_at__isnull=True).select_related("cell")
                .prefetch_related("mysqlclaims", "replicationclaims", "applications", readiness.prefetch_latest()))
        for ce in envs:
            values = [ce.cell.name, ce.environment]
            latest = readiness.score(ce)
            if latest is not None:
                score.add_metric(values, latest)
            replication = next(iter(ce.replicationclaims.all()), None)
            if replication is None:
                continue
            rpo.add_metric(values, replication.expected_rpo_seconds)
            source = next((c for c in ce.mysqlclaims.all() if c.pk == replication.source_id), None)
            if replication.lag_seconds is not None and source is not None and not ce.replication_stopped(source.side):
                lag.add_metric(values, replication.lag_seconds)
        return lag, rpo, score

    def _runs(self):
        # A gauge: a run's state changes, so the count for one (type, state) can go down.
        runs = GaugeMetricFamily("idp_failover_runs_total", "Failover runs (drills included) by type and state.",
                                 labels=["type", "state"])
        rows = FailoverRun.objects.order_by().values("type", "state").annotate(n=Count("id"))
        counts = {(r["type"], r["state"]): r["n"] for r in rows}
        for run_type in RunType.values:
            for state in RunState.values:
                runs.add_metric([run_type, state], counts.get((run_type, state), 0))
        return runs

    def _measured(self):
        return (
            _histogram("idp_failover_rto_seconds", "Measured RTO of finished runs (request to traffic switched).",
                       "rto_seconds", RTO_BUCKETS),
            _histogram("idp_failover_data_loss_seconds",
                       "Measured data-loss window of finished runs (replication lag when writes stopped).",
                       "data_loss_seconds", DATA_LOSS_BUCKETS),
        )

    def _deliveries(self):
        depth = GaugeMetricFamily("idp_delivery_queue_depth",
                                  "Delivery outbox rows not done, by state (failed rows wait for an operator's retry).",
                                  labels=["state"])
        not_done = Delivery.objects.exclude(state=Delivery.State.DONE).order_by()
        counts = dict(not_done.values_list("state").annotate(n=Count("id")))
        for state in Delivery.State.values:
            if state != Delivery.State.DONE:
                depth.add_metric([state], counts.get(state, 0))
        return depth


def _histogram(name: str, documentation: str, field: str, buckets: tuple) -> HistogramMetricFamily:
    """A histogram by run type from the runs that have `field` measured, bucketed in one query."""
    family = HistogramMetricFamily(name, documentation, labels=["type"])
    aggregates = {f"le{i}": Count("id", filter=Q(**{f"{field}__lte": b})) for i, b in enumerate(buckets)}
    rows = (FailoverRun.objects.filter(**{f"{field}__isnull": False}).order_by("type").values("type")
            .annotate(n=Count("id"), total=Sum(field), **aggregates))
    for row in rows:
        points = [(_le(b), row[f"le{i}"]) for i, b in enumerate(buckets)] + [("+Inf", row["n"])]
        family.add_metric([row["type"]], points, sum_value=row["total"] or 0.0)
    return family


def _le(bound: float) -> str:
    return str(float(bound))


@lru_cache(maxsize=1)
def registry() -> CollectorRegistry:
    """What /metrics exposes: the domain collector, and the request latency (every worker's, in multiprocess mode)."""
    reg = CollectorRegistry()
    reg.register(DomainCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(reg)
    else:
        reg.register(HTTP_LATENCY)
    return reg


# -- access ---------------------------------------------------------------------------------

def _address(value: str | None):
    try:
        address = ipaddress.ip_address((value or "").split("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def metrics_allowed(request) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        token = settings.IDP_METRICS_TOKEN
        return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    address = _address(request.META.get("REMOTE_ADDR"))
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in allowed_networks())


def allowed_networks() -> list:
    return [ipaddress.ip_network(n, strict=False) for n in settings.IDP_METRICS_ALLOWED_NETWORKS]


def metrics(request):
    if not metrics_allowed(request):
        return HttpResponseForbidden("metrics: a valid bearer token or an allowed network is required\n",
                                     content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


# -- request latency ------------------------------------------------------------------------

class MetricsMiddleware:
    """Observes each request's latency. Sits near the top of MIDDLEWARE so that it times the whole request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name or UNMATCHED) if match is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        HTTP_LATENCY.labels(route, method, str(response.status_code)).observe(time.perf_counter() - started)
        return response
