"""The request id reaches a real Celery worker's logs: a request with X-Request-ID, a delivery task on Redis, a worker
that logs JSON lines carrying that id with the task's id and name."""
import json

import pytest

from cells.models import Delivery

from .conftest import wait_for

pytestmark = [pytest.mark.e2e]

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": 50, "ha": True}


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def test_the_worker_logs_the_task_with_the_request_id_that_sent_it(api, dev, test_policy, workers):
    proc = workers.start(beat=False, LOG_FORMAT="json")
    r = api(dev).post("/api/mysql", MYSQL, format="json", HTTP_X_REQUEST_ID="e2e-req-42")
    assert r.status_code == 201 and r["X-Request-ID"] == "e2e-req-42"
    wait_for(lambda: Delivery.objects.get().state == "done", timeout=40, what="the worker to deliver",
             state=workers.logs)
    log_file = workers.log_dir / "w0.log"

    def deliver_lines():
        return [line for line in json_lines(log_file.read_text())
                if line.get("task_name") == "cells.tasks.deliver" and line.get("request_id") == "e2e-req-42"]

    lines = wait_for(deliver_lines, timeout=10, what="the task's log lines", state=workers.logs)
    assert {line["task_id"] for line in lines} and all(line["task_id"] for line in lines)
    assert any("succeeded" in line["message"] for line in lines)
    assert proc.poll() is None
