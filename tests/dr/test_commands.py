"""`manage.py failover`: the runbook from a shell, acting as an operator (the same services as the API)."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.dr.helpers import HOST, ready_cell

pytestmark = pytest.mark.django_db


def failover(user, *args) -> str:
    out = StringIO()
    call_command("failover", "--user", user, *args, stdout=out)
    return out.getvalue()


def test_the_failover_command_starts_lists_shows_and_aborts_as_an_operator(dev, ops, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev)
    started = failover("ops", "start", "payments", "prod", "--host", HOST, "--dry-run")
    assert started.startswith("run #") and "drill primary -> secondary started" in started
    run_id = int(started.split()[1].lstrip("#"))
    assert f"#{run_id}" in failover("ops", "list", "--cell", "payments")
    assert json.loads(failover("ops", "show", str(run_id)))["id"] == run_id
    assert "aborting" in failover("ops", "abort", str(run_id), "--reason", "not now")
    with pytest.raises(CommandError, match="only operators may start a failover run"):
        failover("dev", "start", "payments", "prod")
    with pytest.raises(CommandError, match="no user nobody"):
        failover("nobody", "list")
