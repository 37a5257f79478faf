"""The developer API: thin views that parse input, call cells.services and present the result."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from cells import access, presenters, services
from policy.active import active_policy, last_error

from .serializers import AppRequestSerializer, MySQLRequestSerializer, ReplaceSerializer

ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid fields or a broken policy rule: `fields` maps each field to its messages."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="No or bad credentials (Authorization: Token <key>)."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="The cell belongs to another team, or the action is operator-only."),
    409: OpenApiResponse(OpenApiTypes.OBJECT, description="Conflicts with the cell's current state (e.g. a different tier)."),
    422: OpenApiResponse(OpenApiTypes.OBJECT, description="No valid placement; `explanation` gives every candidate's verdict."),
}


def _parse(serializer_class, request):
    s = serializer_class(data=request.data)
    s.is_valid(raise_exception=True)
    return s.validated_data


def _answer(outcome, body):
    return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)


class MySQLRequestView(APIView):
    @extend_schema(
        summary="Request a MySQL with cross-cloud DR for a cell environment",
        request=MySQLRequestSerializer,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, **ERRORS},
        examples=[OpenApiExample("C0 gold", request_only=True, value={
            "cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold",
            "size": "small", "storageGB": 50, "ha": True})],
    )
    def post(self, request):
        d = _parse(MySQLRequestSerializer, request)
        outcome = services.request_mysql(
            request.user, cell=d["cell"], environment=d["environment"], tier=d.get("tier"),
            dr_profile=d.get("drProfile"), size=d.get("size"), storage_gb=d.get("storageGB"), ha=d.get("ha"),
        )
        # changeImpact: per side and changed field, whether the cloud does it online (cells.changes)
        return _answer(outcome, {**presenters.mysql_response(outcome.cell_env), "changed": outcome.changed,
                                 "changeImpact": outcome.change_impact})


class AppRequestView(APIView):
    @extend_schema(
        summary="Request an application with compute and traffic DR for a cell environment",
        request=AppRequestSerializer,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, **ERRORS},
        examples=[OpenApiExample("C0 gold", request_only=True, value={
            "cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold",
            "app": {"image": "ghcr.io/acme/payments:1.0"},
            "traffic": {"publicHost": "payments.prod.company.com", "mode": "active-passive"}})],
    )
    def post(self, request):
        d = _parse(AppRequestSerializer, request)
        outcome = services.request_app(
            request.user, cell=d["cell"], environment=d["environment"], tier=d.get("tier"),
            dr_profile=d.get("drProfile"), image=d["app"]["image"], public_host=d["traffic"]["publicHost"],
            traffic_mode=d["traffic"].get("mode"),
        )
        return _answer(outcome, {**presenters.app_response(outcome.cell_env), "changed": outcome.changed})


class StatusView(APIView):
    @extend_schema(summary="Aggregated status of a cell environment: placement, data, compute, traffic, failover",
                   responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT})
    def get(self, request, cell, environment):
        return Response(presenters.status(services.get_cell_environment(request.user, cell, environment)))


class CellEnvironmentListView(APIView):
    @extend_schema(summary="The cell environments you can see (your teams', or all for operators)",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        envs = access.visible_environments(request.user)
        return Response({"results": [
            {"cell": ce.cell.name, "team": ce.cell.team.slug, "environment": ce.environment, "tier": ce.tier,
             "drProfile": ce.dr_profile, "placement": presenters.placement(ce.placement),
             "statusUrl": f"/api/status/{ce.cell.name}/{ce.environment}"}
            for ce in envs
        ]})


class PlacementView(APIView):
    @extend_schema(summary="A placement decision with its full explanation",
                   responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def get(self, request, decision_id):
        return Response(presenters.decision_detail(services.get_decision(request.user, decision_id)))


class ReplaceView(APIView):
    @extend_schema(summary="Re-place a cell environment under the active policy (operators only)",
                   request=ReplaceSerializer, responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def post(self, request, cell, environment):
        d = _parse(ReplaceSerializer, request)
        cell_env, moved = services.replace_cell(request.user, cell=cell, environment=environment, note=d["note"])
        return Response({**presenters.status(cell_env), "moved": moved})


class CellEnvironmentView(APIView):
    @extend_schema(summary="Decommission a cell environment: its objects leave the delivery target, records stay",
                   responses={202: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def delete(self, request, cell, environment):
        cell_env = services.decommission(request.user, cell=cell, environment=environment)
        return Response(presenters.status(cell_env), status=status.HTTP_202_ACCEPTED)


class RedeliverView(APIView):
    @extend_schema(summary="Deliver again the claims the target does not hold (after a failure)", request=None,
                   responses={202: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def post(self, request, cell, environment):
        cell_env, delivery = services.redeliver(request.user, cell=cell, environment=environment)
        return Response({**presenters.status(cell_env), "queuedDelivery": delivery.pk if delivery else None},
                        status=status.HTTP_202_ACCEPTED)


class PolicyView(APIView):
    @extend_schema(summary="The active policy version, and why the file on disk is not active if it is not",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        policy, error = active_policy(), last_error()
        return Response({
            "version": policy.version,
            "digest": policy.digest,
            "label": policy.label,
            "source": policy.source,
            "cells": len(policy.spec.cells),
            "pendingFileErrors": [str(p) for p in error.problems] if error else [],
        })


class MeView(APIView):
    @extend_schema(summary="Who you are, your teams and your role", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        u = request.user
        return Response({"username": u.username, "operator": access.is_operator(u),
                         "teams": sorted(u.teams.values_list("slug", flat=True))})
