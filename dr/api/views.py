"""The failover API: thin views that parse input, call dr.services and present the result."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from cells.api.views import ERRORS, _parse
from dr import evacuations, presenters, services

from .serializers import AbortSerializer, EvacuationRequestSerializer, FailoverRequestSerializer


class FailoverView(APIView):
    @extend_schema(summary="Start a failover, switchover, failback or dry run (operators only); 202 with the run",
                   request=FailoverRequestSerializer, responses={202: OpenApiTypes.OBJECT, **ERRORS},
                   examples=[OpenApiExample("failover", request_only=True, value={
                       "cell": "payments", "environment": "prod", "host": "payments.prod.company.com"})])
    def post(self, request):
        d = _parse(FailoverRequestSerializer, request)
        run = services.start_run(
            request.user, cell=d["cell"], environment=d["environment"], host=d.get("host"), type=d["type"],
            dry_run=d["dryRun"], force=d["force"], reason=d["reason"], failback=d["failback"],
            acknowledge_cooldown=d["acknowledgeCooldown"],
        )
        return Response({**presenters.run_summary(run), "id": run.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Failover runs you can see, newest first (filter with ?cell=&environment=)",
                   operation_id="failover_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        runs = services.visible_runs(request.user)
        if request.query_params.get("cell"):
            runs = runs.filter(cell_env__cell__name=request.query_params["cell"])
        if request.query_params.get("environment"):
            runs = runs.filter(cell_env__environment=request.query_params["environment"])
        return Response({"results": [presenters.run_summary(r) for r in runs[:100]]})


class FailoverRunView(APIView):
    @extend_schema(summary="A failover run with every step and its report", responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def get(self, request, run_id):
        return Response(presenters.run_detail(services.get_run(request.user, run_id)))


class FailoverActionView(APIView):
    action = ""

    @extend_schema(summary="Approve, resume (retry the failed step) or abort a run (operators only)",
                   request=AbortSerializer, responses={202: OpenApiTypes.OBJECT, **ERRORS})
    def post(self, request, run_id):
        d = _parse(AbortSerializer, request)
        if self.action == "abort":
            run = services.abort_run(request.user, run_id, d["reason"])
        elif self.action == "approve":
            run = services.approve_run(request.user, run_id)
        else:
            run = services.resume_run(request.user, run_id)
        return Response(presenters.run_summary(run), status=status.HTTP_202_ACCEPTED)


class EvacuationListView(APIView):
    @extend_schema(summary="Evacuate a cloud, region or cluster (operators only): every cell whose writer is there "
                           "fails over, C0 first. dryRun: 200 with the plan; else 202 with id and statusUrl",
                   request=EvacuationRequestSerializer, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, **ERRORS},
                   examples=[OpenApiExample("dry run", request_only=True, value={
                       "cloud": "oci", "region": "us-ashburn-1", "dryRun": True})])
    def post(self, request):
        d = _parse(EvacuationRequestSerializer, request)
        evac, plan = evacuations.start(request.user, d)
        if evac is None:
            return Response({"dryRun": True, **plan})
        return Response({"id": evac.pk, "state": evac.state, "statusUrl": f"/api/evacuations/{evac.pk}", **plan},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Evacuations, newest first (operators only)", operation_id="evacuation_list",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response({"results": [evacuations.summary(e) for e in evacuations.visible(request.user)[:100]]})


class EvacuationView(APIView):
    @extend_schema(summary="An evacuation: state, counts, and per cell its run, RTO and data loss (failures first)",
                   responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def get(self, request, evacuation_id):
        return Response(evacuations.detail(evacuations.get(request.user, evacuation_id)))


class EvacuationActionView(APIView):
    action = ""

    @extend_schema(summary="Pause, resume or abort a whole evacuation (operators only)",
                   request=AbortSerializer, responses={202: OpenApiTypes.OBJECT, **ERRORS})
    def post(self, request, evacuation_id):
        d = _parse(AbortSerializer, request)
        if self.action == "abort":
            evac = evacuations.abort(request.user, evacuation_id, d["reason"])
        elif self.action == "pause":
            evac = evacuations.pause(request.user, evacuation_id)
        else:
            evac = evacuations.resume(request.user, evacuation_id)
        return Response(evacuations.detail(evac), status=status.HTTP_202_ACCEPTED)
