"""Drive failover runs in-process on sandbox providers."""
import time

from cells import services
from dr import runbook
from dr.models import FailoverRun

HOST = "payments.prod.company.com"


from tests.helpers import settle  # noqa: E402,F401 (the tests import it from here)


def ready_cell(user, tier="C1", profile="silver", cell="payments", env="prod", host=HOST):
    services.request_mysql(user, cell=cell, environment=env, tier=tier, dr_profile=profile, ha=True if tier == "C0" else None)
    services.request_app(user, cell=cell, environment=env, image="ghcr.io/acme/payments:1.0", public_host=host)
    settle()
    return services.get_cell_environment(user, cell, env)


def drive(run, timeout=20.0) -> FailoverRun:
    """Advance the run as workers would until it stops moving (done, failed, paused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = runbook.advance(run.pk)
        settle()
        run.refresh_from_db()
        if wait is None and run.state not in ("pending", "running", "aborting"):
            return run
        time.sleep(min(wait or 0.05, 0.2))
    raise AssertionError(f"run {run.pk} still {run.state} after {timeout}s")


class ApiCalls:
    """The AWS API operations an adapter sends (botocore event hooks on `client`), with their parameters."""

    def __init__(self, client, service: str):
        self.ops: list[tuple[str, dict]] = []
        client.meta.events.register(f"provide-client-params.{service}.*", self._record)

    def _record(self, params, model, **kwargs):
        self.ops.append((model.name, params))

    def count(self, op):
        return sum(1 for name, _ in self.ops if name == op)

    def params(self, op):
        return [p for name, p in self.ops if name == op]
