"""The cell page's DR readiness panel and replication lag chart: read-only, from dr.readiness and dr.lag."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from dr import lag as lag_history
from dr import readiness
from dr.models import RunType

from .charts import CHART_WINDOW, lag_chart
from .health import Health, readiness_health

CHECK_HEALTH = {
    readiness.OK: Health("ready", "ok", "ok"),
    readiness.WARNING: Health("progress", "warning", "warn"),
    readiness.FAILING: Health("failed", "failing", "bad"),
}
HISTORY_WINDOW = timedelta(hours=24)
HISTORY_ROWS = 12


@dataclass(frozen=True)
class CheckRow:
    name: str
    title: str
    health: Health
    detail: str


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    health: Health
    problems: str  # the checks not ok, by title


def check_health(state: str) -> Health:
    return CHECK_HEALTH.get(state, Health("unknown", str(state), "idle"))


def _problems(evaluation) -> str:
    return ", ".join(f"{c.title} ({c.state})" for c in readiness.as_checks(evaluation) if c.state != readiness.OK)


def readiness_panel(ce, rpo_seconds: int | None, now: datetime | None = None) -> dict:
    """The latest evaluation (score, each check in words), its changes over the last day, and the lag chart."""
    now = now or timezone.now()
    evaluations = readiness.history(ce, now - HISTORY_WINDOW)
    latest = evaluations[-1] if evaluations else readiness.latest(ce)
    changes: list[HistoryRow] = []
    previous = None
    for e in evaluations:  # oldest first: keep the evaluations that changed the score or a check's state
        key = (e.score, e.state, tuple((c.get("name"), c.get("state")) for c in e.checks or []))
        if key != previous:
            changes.append(HistoryRow(e.evaluated_at, readiness_health(e.score, e.state), _problems(e)))
        previous = key
    start = now - CHART_WINDOW
    runs = (ce.failover_runs.exclude(type=RunType.DRILL)
            .filter(Q(requested_at__gte=start) | Q(traffic_switched_at__gte=start))
            .only("pk", "type", "requested_at", "traffic_switched_at").order_by("requested_at"))
    return {
        "readiness": check_health(latest.state) if latest else readiness_health(None, None),
        "readiness_latest": latest,
        "readiness_checks": [CheckRow(c.name, c.title, check_health(c.state), c.detail)
                             for c in (readiness.as_checks(latest) if latest else [])],
        "readiness_history": changes[::-1][:HISTORY_ROWS],
        "lag_chart": lag_chart(lag_history.series(ce.pk, start), rpo_seconds, list(runs), now),
    }
