"""Portal pages: thin views over the same services and presenters as the API."""
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from cells import access
from policy.active import active_policy


@login_required
def home(request):
    envs = access.visible_environments(request.user).prefetch_related("replicationclaims", "applications")
    cells = access.visible_cells(request.user).filter(registered=True)
    placed = {ce.cell_id for ce in envs}
    return render(request, "home.html", {
        "environments": envs,
        "unplaced_cells": [c for c in cells if c.id not in placed],
        "policy": active_policy(),
    })


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
