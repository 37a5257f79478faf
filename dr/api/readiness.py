"""The readiness and lag history API: thin views over dr.readiness and dr.lag (access through cells.access)."""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from cells.api.views import ERRORS
from cells.errors import InvalidRequest
from cells.services import get_cell_environment
from dr import lag, readiness

DEFAULT_WINDOW = timedelta(hours=24)
SINCE = OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 date-time (default: 24 hours ago); "
                         "without a zone, UTC", required=False)


def parse_since(value: str | None, default: timedelta = DEFAULT_WINDOW) -> datetime:
    """`?since=`: an ISO 8601 date-time (a `+` of the zone that the query string turned into a space is taken back);
    without a zone it is UTC. A bad value is a 400 naming the field."""
    if value is None or value == "":
        return timezone.now() - default
    text = value.strip()
    if " " in text and "T" in text:
        text = text.replace(" ", "+")  # 2026-11-30T12:00:00+01:00 sent unencoded
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidRequest("invalid since", {"since": [f"not an ISO 8601 date-time: {value[:40]!r} "
                                                         f"(e.g. 2026-11-30T12:00:00Z)"]})
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)


class ReadinessListView(APIView):
    @extend_schema(summary="DR readiness of the cell environments you can see: the latest evaluation of each",
                   parameters=[OpenApiParameter("cell", str), OpenApiParameter("tier", str),
                               OpenApiParameter("cloud", str, description="the primary's or the secondary's cloud"),
                               OpenApiParameter("state", str, enum=[*readiness.STATES, readiness.UNKNOWN],
                                                description="the worst check's state")],
                   responses={200: OpenApiTypes.OBJECT, 400: ERRORS[400], 401: ERRORS[401]})
    def get(self, request):
        q = request.query_params
        envs = readiness.visible(request.user, cell=q.get("cell", ""), tier=q.get("tier", ""),
                                 cloud=q.get("cloud", ""), state=q.get("state", ""))
        return Response({"results": [readiness.present_cell(ce) for ce in envs]})


class ReadinessHistoryView(APIView):
    @extend_schema(summary="The stored readiness evaluations of a cell environment since a time, oldest first",
                   parameters=[SINCE], responses={200: OpenApiTypes.OBJECT, 400: ERRORS[400], 403: ERRORS[403],
                                                  404: OpenApiTypes.OBJECT})
    def get(self, request, cell, environment):
        return _history(request, cell, environment, lambda ce, since: {
            "evaluations": [readiness.present(e) for e in readiness.history(ce, since)]})


class LagHistoryView(APIView):
    @extend_schema(summary="Replication lag samples of a cell environment since a time, with its RPO",
                   parameters=[SINCE], responses={200: OpenApiTypes.OBJECT, 400: ERRORS[400], 403: ERRORS[403],
                                                  404: OpenApiTypes.OBJECT})
    def get(self, request, cell, environment):
        return _history(request, cell, environment, lambda ce, since: {
            "rpoSeconds": lag.rpo_seconds(ce), "samples": [s.as_dict() for s in lag.series(ce.pk, since)]})


def _history(request, cell: str, environment: str, series) -> Response:
    """A cell environment's history since `?since=` (400 on a bad one): who, since when, and `series(ce, since)`."""
    since = parse_since(request.query_params.get("since"))
    ce = get_cell_environment(request.user, cell, environment)
    return Response({"cell": ce.cell.name, "environment": ce.environment, "since": _iso(since), **series(ce, since)})


def _iso(at: datetime) -> str:
    return at.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")
