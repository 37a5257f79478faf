"""The DR lab: failovers against real servers, so "nothing lost" is measured, not claimed."""
import json
import time
from pathlib import Path

import pymysql
import pytest

from cells.models import CellEnvironment
from dr import services
from dr.lab import APP_PASSWORD, APP_USER, DB_PORT, HOST, PRIMARY_IP, SECONDARY_IP, Writer
from tests.dr.helpers import drive

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lab"


def record(name: str, data: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"\nLAB {name}: {json.dumps(data, default=str)}")


def app_write(ip: str, seq: int) -> None:
    conn = pymysql.connect(host=ip, port=DB_PORT, user=APP_USER, password=APP_PASSWORD, database="app", autocommit=True,
                           connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders VALUES (%s, UTC_TIMESTAMP(6))", (seq,))
    finally:
        conn.close()


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def switchover(lab, ops, writer, failback=False):
    run = services.start_run(ops, cell="lab", environment="prod", host=HOST,
                             **({"failback": True, "acknowledge_cooldown": True, "reason": "lab failback"} if failback
                                else {"type": "switchover"}))
    return drive(run, timeout=90)


def test_lab_switchover_loses_nothing_and_reverses_replication(lab, lab_cell, heartbeat, ops):
    assert lab.dns.resolve(HOST) == PRIMARY_IP
    writer = Writer(lab)
    writer.start()
    time.sleep(2)
    run = switchover(lab, ops, writer)
    time.sleep(1.5)  # the writer now follows the DNS answer to the new primary
    writer.stop()
    assert run.state == "succeeded", run.error

    on_new_primary = lab.app_rows(lab.secondary)
    missing = sorted(set(writer.acked) - on_new_primary)
    assert missing == []  # every acknowledged row is on the new primary
    assert writer.targets.get(SECONDARY_IP, 0) > 0  # and writes landed there after the switch
    with pytest.raises(pymysql.err.MySQLError) as refused:
        app_write(PRIMARY_IP, 10_000_000)
    assert refused.value.args[0] == 1290  # the old primary is read-only
    assert lab.dns.resolve(HOST) == SECONDARY_IP  # a real DNS query answers the secondary
    wait_until(lambda: set(writer.acked) <= lab.app_rows(lab.primary), what="replication new primary -> old primary")
    status = lab.primary.sql("SHOW SLAVE STATUS")[0]
    assert (status["Master_Host"], status["Slave_SQL_Running"]) == (SECONDARY_IP, "Yes")
    assert run.data_loss_seconds == 0
    record("switchover", {"rtoSeconds": run.rto_seconds, "rowsAcknowledged": len(writer.acked), "rowsLost": len(missing),
                          "writesRefusedDuringSwitch": len(writer.errors), "dataLossSeconds": run.data_loss_seconds})


def test_lab_failback_returns_to_the_original_primary(lab, lab_cell, heartbeat, ops):
    writer = Writer(lab)
    writer.start()
    time.sleep(1)
    assert switchover(lab, ops, writer).state == "succeeded"
    time.sleep(1)
    run = switchover(lab, ops, writer, failback=True)
    time.sleep(1)
    writer.stop()
    assert (run.type, run.state) == ("failback", "succeeded"), run.error
    assert lab.dns.resolve(HOST) == PRIMARY_IP
    assert set(writer.acked) <= lab.app_rows(lab.primary)
    ce = CellEnvironment.objects.get(cell__name="lab")
    assert (ce.writers(), ce.epoch) == (["primary"], 3)
    with pytest.raises(pymysql.err.MySQLError):
        app_write(SECONDARY_IP, 10_000_001)
    record("failback", {"rtoSeconds": run.rto_seconds, "rowsAcknowledged": len(writer.acked),
                        "rowsLost": len(set(writer.acked) - lab.app_rows(lab.primary))})


def test_lab_failover_with_the_primary_down_measures_the_loss_window(lab, lab_cell, heartbeat, ops):
    # A replica that applies 3 s behind: real lag, as across clouds.
    lab.secondary.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 3", "START SLAVE")
    writer = Writer(lab)
    writer.start()
    time.sleep(5)
    lab.primary.stop(kill=True)  # the primary region burns
    time.sleep(0.5)
    writer.stop()
    run = drive(services.start_run(ops, cell="lab", environment="prod", host=HOST), timeout=90)
    assert run.state == "succeeded", run.error
    fence = run.steps.get(name="fence")
    assert fence.output["reachable"] is False  # best effort: the epoch still rose

    missing = sorted(set(writer.acked) - lab.app_rows(lab.secondary))
    window = run.data_loss_seconds
    assert window is not None and window <= run.rpo_target_seconds
    window_start = fence.started_at.timestamp() - window
    # Every row actually lost was acknowledged inside the measured window; nothing older is missing.
    assert all(writer.acked[seq] >= window_start - 0.05 for seq in missing), (missing, window)
    assert lab.dns.resolve(HOST) == SECONDARY_IP
    app_write(SECONDARY_IP, 20_000_000)  # the promoted side takes writes
    record("failover", {"rtoSeconds": run.rto_seconds, "measuredLossWindowSeconds": window, "rowsActuallyMissing": len(missing),
                        "rowsAcknowledged": len(writer.acked), "lastRowsMissing": missing[-5:],
                        "promote": run.steps.get(name="promote").output, "checkLag": run.steps.get(name="check_lag").output})


@pytest.mark.parametrize("lab_rpo", [2])
def test_lab_lag_above_the_rpo_is_refused(lab, lab_cell, heartbeat, ops, lab_rpo):
    lab.secondary.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 5", "START SLAVE")
    time.sleep(7.5)  # heartbeats reach the replica 5 s late
    run = drive(services.start_run(ops, cell="lab", environment="prod", host=HOST), timeout=60)
    assert run.state == "failed"
    assert "above the RPO of 2s" in run.error, run.error
    app_write(PRIMARY_IP, 30_000_000)  # nothing was fenced
    assert lab.dns.resolve(HOST) == PRIMARY_IP
    record("lag-refused", {"lagSeconds": run.steps.get(name="check_lag").output["lagSeconds"], "rpoSeconds": lab_rpo})
