"""Concurrent identical requests make exactly one placement (real PostgreSQL row locks)."""
import threading

import pytest
from django.db import connection

from cells import services
from cells.models import CellEnvironment, MySQLClaim
from scheduler.models import PlacementDecision


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_make_one_placement(dev, test_policy):
    barrier = threading.Barrier(4)
    results, errors = [], []

    def request():
        try:
            barrier.wait()
            outcome = services.request_mysql(dev, cell="payments", environment="prod", tier="C0", storage_gb=50)
            results.append(outcome.created)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert (CellEnvironment.objects.count(), PlacementDecision.objects.count(), MySQLClaim.objects.count()) == (1, 1, 2)
