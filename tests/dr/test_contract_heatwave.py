"""Contract tests for the OCI MySQL HeatWave adapters (heatwave fence, heatwave replication, heatwave-backup):
the real `oci` SDK against a local OCI MySQL API on 127.0.0.1 (tests/dr/ocifake_mysql.py, every request's
signature verified), and the SQL read-backs through a recording `dr.mysqlconn.connect`."""
from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import oci
import pytest
import yaml

from dr import mysqlconn
from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.fencing.heatwave import HeatWaveFence
from dr.heatwave_oci import Clients, HeatWave, parse_duration
from dr.replication.heatwave import HeatWaveReplication
from dr.replication.heatwave_backup import HeatWaveBackupRestore

from tests.dr.ocifake_mysql import FakeSql, HeatWaveFake, _error

CELL_ENV = SimpleNamespace(cell=SimpleNamespace(name="payments"), environment="prod")
PRIMARY, SECONDARY = "payments-prod-mysql-primary", "payments-prod-mysql-secondary"
COMPARTMENT = "ocid1.compartment.oc1..hw"
P_ID, S_ID = "ocid1.mysqldbsystem.oc1.iad.primary", "ocid1.mysqldbsystem.oc1.phx.secondary"
CH_ID = "ocid1.mysqlchannel.oc1.phx.inbound"
P_IP, S_IP = "10.0.1.5", "10.0.2.5"
ADMIN_PASSWORD, REPL_PASSWORD = "Adm1n-Secret!x", "Repl-Pa55word!q"
UUID_P = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def hw(oci_cfg):
    server = HeatWaveFake(oci_cfg[1])
    yield server
    server.stop()


@pytest.fixture
def fake(hw):
    hw.reset()
    hw.add_db_system(P_ID, name="payments-prod-p", compartment=COMPARTMENT, ip=P_IP, mode="READ_WRITE")
    hw.add_db_system(S_ID, name="payments-prod-s", compartment=COMPARTMENT, ip=S_IP, mode="READ_ONLY", region="us-phoenix-1")
    hw.add_channel(CH_ID, target=S_ID, source_host=P_IP, compartment=COMPARTMENT)
    return hw


@pytest.fixture
def sql(fake, monkeypatch):
    recorder = FakeSql(fake)
    monkeypatch.setattr(mysqlconn, "connect", recorder.connect)
    recorder.gtid[P_ID] = f"{UUID_P}:1-100"
    recorder.gtid[S_ID] = f"{UUID_P}:1-90"
    return recorder


def write_connections(tmp_path, settings, secondary_extra=None, primary_extra=None):
    data = {"replication": {"user": "repl", "password": REPL_PASSWORD}, "databases": {
        PRIMARY: {"host": P_IP, "user": "admin", "password": ADMIN_PASSWORD, "flavor": "heatwave",
                  "heatwave": {"dbSystemId": P_ID, "compartmentId": COMPARTMENT, "region": "us-ashburn-1",
                               **(primary_extra or {})}},
        SECONDARY: {"host": S_IP, "user": "admin", "password": ADMIN_PASSWORD, "flavor": "heatwave",
                    "heatwave": {"dbSystemId": S_ID, "compartmentId": COMPARTMENT, "channelId": CH_ID,
                                 "region": "us-phoenix-1", **(secondary_extra or {})}}}}
    path = tmp_path / "mysql-connections.yaml"
    path.write_text(yaml.safe_dump(data))
    settings.IDP_MYSQL_CONNECTIONS = str(path)
    return data


@pytest.fixture
def conns(tmp_path, settings):
    return write_connections(tmp_path, settings)


def make_api(cfg, endpoint, **kwargs):
    regions = []

    def clients(region):
        regions.append(region)
        common = dict(service_endpoint=endpoint, retry_strategy=oci.retry.NoneRetryStrategy(),
                      circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
        return Clients(oci.mysql.DbSystemClient(cfg, **common), oci.mysql.ChannelsClient(cfg, **common),
                       oci.mysql.DbBackupsClient(cfg, **common))
    api = HeatWave(clients, poll_seconds=0, wait_seconds=5, drain_seconds=2, **kwargs)
    api.regions = regions
    return api


@pytest.fixture
def api(oci_cfg, fake):
    return make_api(oci_cfg[0], fake.endpoint)


def assert_all_signed(fake):
    assert fake.requests
    for call in fake.requests:
        assert call["signed"], (call["method"], call["path"], call["signatureProblem"])
        assert call["headers"]["Authorization"].startswith("Signature ")


def assert_no_secret(*things):
    text = json.dumps(things, default=str)
    assert ADMIN_PASSWORD not in text and REPL_PASSWORD not in text


def sql_of(recorder, database):
    return [s for d, s, _ in recorder.statements if d == database]


# -- fence ---------------------------------------------------------------------------------------------

def test_heatwave_fence_sets_read_only_database_mode_through_the_api_and_reads_it_back_over_sql(api, fake, sql, conns):
    result = HeatWaveFence(api).fence(CELL_ENV, "primary", 4)
    assert result["readOnly"] and not result["alreadyFenced"] and result["epoch"] == 4
    assert result["databaseMode"] == "READ_ONLY" and result["databaseModeBefore"] == "READ_WRITE"
    assert result["readBack"]["sql"] == {"read_only": True, "super_read_only": True}
    assert result["gtidAtFence"] == f"{UUID_P}:1-100"
    assert result["workRequestId"].startswith("ocid1.mysqlworkrequest")
    (put,) = fake.calls("PUT")
    assert put["path"] == f"/20190415/dbSystems/{P_ID}" and put["body"] == {"databaseMode": "READ_ONLY"}
    assert fake.mutations() == [("PUT", f"/20190415/dbSystems/{P_ID}")]
    assert fake.requests[-1]["method"] == "GET"  # waited until the update landed
    assert sql_of(sql, PRIMARY) == ["SELECT @@global.read_only AS ro, @@global.super_read_only AS sro",
                                    "SELECT @@global.gtid_executed AS gtid"]
    assert not any("SET " in s for _, s, _ in sql.statements)  # HeatWave's admin may not SET GLOBAL super_read_only
    assert api.regions == ["us-ashburn-1"]
    assert_all_signed(fake)
    assert_no_secret(result)


def test_heatwave_fence_is_idempotent(api, fake, sql, conns):
    HeatWaveFence(api).fence(CELL_ENV, "primary", 4)
    fake.requests.clear()
    again = HeatWaveFence(api).fence(CELL_ENV, "primary", 4)
    assert again["alreadyFenced"] and again["readOnly"]
    assert fake.mutations() == []


def test_heatwave_fence_refuses_when_health_monitor_lifted_super_read_only(api, fake, sql, conns):
    fake.db_systems[P_ID]["databaseMode"] = "READ_ONLY"
    sql.health_monitor_off.add(P_ID)
    with pytest.raises(ProviderError, match="super_read_only is OFF.*Health Monitor"):
        HeatWaveFence(api).fence(CELL_ENV, "primary", 4)


def test_heatwave_fence_of_an_unreachable_api_is_unreachable(oci_cfg, fake, sql, conns):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unreachable, match="OCI unreachable") as err:
        HeatWaveFence(make_api(oci_cfg[0], f"http://127.0.0.1:{port}")).fence(CELL_ENV, "primary", 4)
    assert_no_secret(str(err.value))


def test_heatwave_fence_of_a_stopped_db_system_is_unreachable_and_changes_nothing(api, fake, sql, conns):
    fake.db_systems[P_ID]["lifecycleState"] = "INACTIVE"
    with pytest.raises(Unreachable, match="INACTIVE"):
        HeatWaveFence(api).fence(CELL_ENV, "primary", 4)
    assert fake.mutations() == []


def test_heatwave_fence_set_by_the_api_but_not_readable_over_sql_is_unreachable_and_says_so(api, fake, sql, conns):
    fake.unreachable_hosts.add(P_IP)
    with pytest.raises(Unreachable, match="READ_ONLY by the OCI API, but it cannot be read back over SQL") as err:
        HeatWaveFence(api).fence(CELL_ENV, "primary", 4)
    assert fake.db_systems[P_ID]["databaseMode"] == "READ_ONLY"
    assert_no_secret(str(err.value))


def test_heatwave_fence_busy_db_system_is_transient(api, fake, sql, conns):
    fake.fail(409, "IncorrectState", path_contains="/dbSystems/", method="PUT")
    with pytest.raises(TransientProviderError, match="409 IncorrectState"):
        HeatWaveFence(api).fence(CELL_ENV, "primary", 4)


# -- lag -----------------------------------------------------------------------------------------------

def test_heatwave_lag_comes_from_the_channel_status(api, fake, sql, conns):
    fake.channel_status_of[CH_ID] = {"isHealthy": True, "isReceivedGtidSetApplied": False, "errors": [],
                                     "lagDuration": "PT12.5S"}
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 12.5
    assert reading.detail["channelId"] == CH_ID and reading.detail["caughtUp"] is False
    assert [(c["method"], c["path"]) for c in fake.requests] == [
        ("GET", f"/20190415/channels/{CH_ID}"),
        ("GET", f"/20190415/channels/{CH_ID}/channelStatus"),        # none yet: 404
        ("POST", f"/20190415/channels/{CH_ID}/actions/generateChannelStatus"),
        ("GET", f"/20190415/channels/{CH_ID}/channelStatus")]
    assert api.regions == ["us-phoenix-1"]  # the channel lives with its target DB system
    # The writable source got a heartbeat stamp, as with the mysql adapter.
    assert any(s.startswith("REPLACE INTO idp_dr.heartbeat") for s in sql_of(sql, PRIMARY))
    assert_all_signed(fake)
    # A fresh status is reused, not regenerated, on the next reading.
    fake.requests.clear()
    HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert fake.calls("POST") == []


def test_heatwave_lag_is_zero_when_the_target_holds_all_the_source_gtids(api, fake, sql, conns):
    sql.gtid[S_ID] = f"{UUID_P}:1-100"
    fake.db_systems[P_ID]["databaseMode"] = "READ_ONLY"  # fenced: no new heartbeat write
    fake.channel_status_of[CH_ID]["lagDuration"] = "00:00:04"
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 0.0 and reading.detail["caughtUp"] is True
    assert not any(s.startswith("REPLACE") for s in sql_of(sql, PRIMARY))


@pytest.mark.parametrize("state,enabled,why", [("FAILED", True, "FAILED"), ("NEEDS_ATTENTION", True, "NEEDS_ATTENTION"),
                                               ("INACTIVE", False, "disabled")])
def test_heatwave_failed_or_stopped_channel_is_unknown_lag_never_zero(api, fake, sql, conns, state, enabled, why):
    fake.channels[CH_ID].update(lifecycleState=state, isEnabled=enabled, lifecycleDetails="cannot connect to source")
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and why in reading.detail["why"]
    assert fake.calls("POST") == []


@pytest.mark.parametrize("status,why", [({"isHealthy": False, "errors": ["Error 1045 connecting"], "lagDuration": "PT0S"},
                                         "unhealthy"),
                                        ({"isHealthy": True, "errors": [], "lagDuration": "soon"}, "unreadable")])
def test_heatwave_unhealthy_or_unreadable_status_is_unknown_lag(api, fake, sql, conns, status, why):
    sql.gtid[S_ID] = f"{UUID_P}:1-100"  # even a caught-up GTID set does not make an unhealthy channel zero
    fake.channel_status_of[CH_ID] = {"isReceivedGtidSetApplied": True, **status}
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and why in reading.detail["why"]


def test_heatwave_lag_finds_the_channel_by_listing_when_no_channel_id(api, fake, sql, tmp_path, settings):
    write_connections(tmp_path, settings, secondary_extra={"channelId": None})
    fake.channel_status_of[CH_ID]["lagDuration"] = "PT1M5S"
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 65.0
    listing = fake.requests[0]
    assert listing["path"] == "/20190415/channels"
    assert listing["query"] == {"compartmentId": COMPARTMENT, "dbSystemId": S_ID}


def test_heatwave_lag_without_sql_still_reads_the_channel(api, fake, sql, conns):
    fake.unreachable_hosts.update({P_IP, S_IP})
    fake.channel_status_of[CH_ID]["lagDuration"] = "PT7S"
    reading = HeatWaveReplication(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 7.0 and "unreachable" in reading.detail["targetSql"]
    assert_no_secret(reading.detail)


def test_parse_duration_reads_the_shapes_a_lag_can_take():
    assert parse_duration("PT0S") == 0.0 and parse_duration("PT1H2M3.5S") == 3723.5
    assert parse_duration("00:01:05") == 65.0 and parse_duration("1 day, 00:00:01") == 86401.0
    assert parse_duration("2.5") == 2.5 and parse_duration("") is None and parse_duration("PT") is None


# -- promote -------------------------------------------------------------------------------------------

def test_heatwave_promote_drains_disables_resets_the_channel_then_makes_the_db_system_writable(api, fake, sql, conns):
    fake.channel_status_of[CH_ID] = [{"isHealthy": False, "isReceivedGtidSetApplied": False, "errors": [], "lagDuration": "PT3S"},
                                     {"isHealthy": False, "isReceivedGtidSetApplied": True, "errors": [], "lagDuration": "PT0S"}]
    sql.heartbeat[S_ID] = datetime(2026, 11, 26, 11, 59, 58)
    result = HeatWaveReplication(api).promote(CELL_ENV, "secondary", 7)
    assert fake.mutations() == [
        ("POST", f"/20190415/channels/{CH_ID}/actions/generateChannelStatus"),   # 1st: 3s still to apply
        ("POST", f"/20190415/channels/{CH_ID}/actions/generateChannelStatus"),   # 2nd: everything received applied
        ("PUT", f"/20190415/channels/{CH_ID}"),
        ("POST", f"/20190415/channels/{CH_ID}/actions/reset"),
        ("PUT", f"/20190415/dbSystems/{S_ID}")]
    disable, writable = fake.calls("PUT")
    assert disable["body"] == {"isEnabled": False, "freeformTags": {"idp-dr-drained-epoch": "7"}}
    assert writable["body"] == {"databaseMode": "READ_WRITE"}
    assert fake.channels[CH_ID]["resetCount"] == 1 and not fake.channels[CH_ID]["isEnabled"]
    assert result["writable"] and result["stoppedReplication"] and not result["alreadyPromoted"]
    assert result["actions"] == ["channel disabled", "channel reset", "databaseMode READ_WRITE"]
    assert result["drain"]["receivedGtidSetApplied"] is True
    assert result["readBack"]["sql"] == {"read_only": False, "super_read_only": False}
    assert result["gtidAfterPromotion"] == f"{UUID_P}:1-90"
    assert result["lastAppliedHeartbeat"] == "2026-11-26T11:59:58+00:00"
    assert sql_of(sql, SECONDARY)[:2] == ["SELECT @@global.read_only AS ro, @@global.super_read_only AS sro",
                                          "SELECT @@global.gtid_executed AS gtid"]
    assert_all_signed(fake)

    fake.requests.clear()
    again = HeatWaveReplication(api).promote(CELL_ENV, "secondary", 7)
    assert fake.mutations() == []  # the second promote is a no-op
    assert again["alreadyPromoted"] and again["writable"] and again["actions"] == []


def test_heatwave_promote_resumed_after_a_crash_between_disable_and_writable_finishes_the_job(api, fake, sql, conns):
    fake.channels[CH_ID].update(isEnabled=False, lifecycleState="INACTIVE", freeformTags={"idp-dr-drained-epoch": "7"})
    result = HeatWaveReplication(api).promote(CELL_ENV, "secondary", 7)
    assert fake.mutations() == [("POST", f"/20190415/channels/{CH_ID}/actions/reset"),
                                ("PUT", f"/20190415/dbSystems/{S_ID}")]
    assert result["writable"]


def test_heatwave_promote_without_a_channel_status_drains_by_the_gtid_sets_over_sql(api, fake, sql, conns):
    # Unplanned: the old source is gone, the channel needs attention and OCI generates no status for it.
    fake.channels[CH_ID].update(lifecycleState="NEEDS_ATTENTION", lifecycleDetails="cannot connect to the source")
    fake.fail(409, "IncorrectState", times=99, path_contains="generateChannelStatus")
    sql.received["idp_dr"] = f"{UUID_P}:1-95"
    api.drain_seconds = 0
    with pytest.raises(TransientProviderError, match="applying what it received"):  # 91-95 not applied yet
        HeatWaveReplication(api).promote(CELL_ENV, "secondary", 8)
    assert fake.calls("PUT") == []
    sql.gtid[S_ID] = f"{UUID_P}:1-95"
    result = HeatWaveReplication(api).promote(CELL_ENV, "secondary", 8)
    assert result["drain"]["source"] == "sql" and result["drain"]["sqlApplied"] is True
    assert "409 IncorrectState" in result["drain"]["statusError"]
    assert result["actions"] == ["channel disabled", "channel reset", "databaseMode READ_WRITE"]


def test_heatwave_promote_refuses_a_channel_disabled_outside_a_failover(api, fake, sql, conns):
    fake.channels[CH_ID].update(isEnabled=False, lifecycleState="INACTIVE")
    with pytest.raises(ProviderError, match="disabled outside a failover"):
        HeatWaveReplication(api).promote(CELL_ENV, "secondary", 7)
    assert fake.mutations() == []


def test_heatwave_promote_waits_for_the_relay_log_and_stops_nothing_if_it_is_not_applied(api, fake, sql, conns):
    fake.channel_status_of[CH_ID] = {"isHealthy": True, "isReceivedGtidSetApplied": False, "errors": [], "lagDuration": "PT40S"}
    api.drain_seconds = 0
    with pytest.raises(TransientProviderError, match="applying what it received: not done"):
        HeatWaveReplication(api).promote(CELL_ENV, "secondary", 7)
    assert fake.calls("PUT") == [] and fake.channels[CH_ID]["isEnabled"]
    assert fake.db_systems[S_ID]["databaseMode"] == "READ_ONLY"


def test_heatwave_promote_of_a_db_system_without_channel_only_makes_it_writable(api, fake, sql, conns):
    del fake.channels[CH_ID]
    result = HeatWaveReplication(api).promote(CELL_ENV, "secondary", 2)
    assert fake.mutations() == [("PUT", f"/20190415/dbSystems/{S_ID}")]
    assert result["writable"] and not result["stoppedReplication"]


# -- reprotect -----------------------------------------------------------------------------------------

def after_failover(fake):
    """The secondary is the writer (channel reset and disabled), the primary is back and fenced."""
    fake.db_systems[S_ID]["databaseMode"] = "READ_WRITE"
    fake.channels[CH_ID].update(isEnabled=False, lifecycleState="INACTIVE", freeformTags={"idp-dr-drained-epoch": "7"})


def test_heatwave_reprotect_creates_a_channel_from_the_new_writer_into_the_old_one(api, fake, sql, conns):
    after_failover(fake)
    result = HeatWaveReplication(api).reprotect(CELL_ENV, "secondary", "primary")
    assert fake.mutations() == [("PUT", f"/20190415/dbSystems/{P_ID}"), ("POST", "/20190415/channels")]
    assert fake.calls("PUT")[0]["body"] == {"databaseMode": "READ_ONLY"}  # the old writer only follows from now on
    create = fake.calls("POST", "/20190415/channels")[0]
    assert create["body"] == {
        "compartmentId": COMPARTMENT, "displayName": f"idp-dr payments-prod from {SECONDARY}", "isEnabled": True,
        "freeformTags": {"idp-dr-cell": "payments-prod"},
        "source": {"sourceType": "MYSQL", "hostname": S_IP, "port": 3306, "username": "repl", "password": REPL_PASSWORD,
                   "sslMode": "REQUIRED"},
        "target": {"targetType": "DBSYSTEM", "dbSystemId": P_ID, "channelName": "idp_dr"}}
    new_id = result["channelId"]
    assert fake.channels[new_id]["lifecycleState"] == "ACTIVE" and fake.channel_passwords[new_id] == REPL_PASSWORD
    assert result["channelState"] == "ACTIVE" and result["sslMode"] == "REQUIRED" and result["sourceHost"] == f"{S_IP}:3306"
    assert result["actions"] == ["databaseMode READ_ONLY", "channel created"]
    assert_all_signed(fake)
    assert_no_secret(result)

    fake.requests.clear()
    again = HeatWaveReplication(api).reprotect(CELL_ENV, "secondary", "primary")
    assert fake.mutations() == [] and again["alreadyReplicating"]


def test_heatwave_reprotect_re_points_a_channel_that_follows_someone_else(api, fake, sql, tmp_path, settings):
    write_connections(tmp_path, settings, primary_extra={"channelId": "ocid1.mysqlchannel.oc1.iad.old"})
    after_failover(fake)
    fake.add_channel("ocid1.mysqlchannel.oc1.iad.old", target=P_ID, source_host="10.0.9.9", compartment=COMPARTMENT,
                     enabled=True, state="NEEDS_ATTENTION")
    result = HeatWaveReplication(api).reprotect(CELL_ENV, "secondary", "primary")
    old = "/20190415/channels/ocid1.mysqlchannel.oc1.iad.old"
    assert fake.mutations() == [("PUT", f"/20190415/dbSystems/{P_ID}"), ("PUT", old), ("POST", old + "/actions/reset"),
                                ("PUT", old)]
    disable, enable = fake.calls("PUT", old)
    assert disable["body"] == {"isEnabled": False}
    assert enable["body"] == {"isEnabled": True, "freeformTags": {},
                              "source": {"sourceType": "MYSQL", "hostname": S_IP, "port": 3306, "username": "repl",
                                         "password": REPL_PASSWORD, "sslMode": "REQUIRED"}}
    assert result["actions"] == ["databaseMode READ_ONLY", "channel disabled", "channel reset",
                                 "channel enabled from the new writer"]
    assert fake.channels["ocid1.mysqlchannel.oc1.iad.old"]["lifecycleState"] == "ACTIVE"


def test_heatwave_reprotect_failback_re_enables_the_reset_channel_without_another_reset(api, fake, sql, conns):
    # Fail back: the primary was promoted again; the secondary's old channel already points at it.
    fake.db_systems[S_ID]["databaseMode"] = "READ_WRITE"
    fake.channels[CH_ID].update(isEnabled=False, lifecycleState="INACTIVE", freeformTags={"idp-dr-drained-epoch": "7"})
    result = HeatWaveReplication(api).reprotect(CELL_ENV, "primary", "secondary")
    assert fake.mutations() == [("PUT", f"/20190415/dbSystems/{S_ID}"), ("PUT", f"/20190415/channels/{CH_ID}")]
    assert fake.calls("PUT", "/channels/")[0]["body"]["isEnabled"] is True
    assert "resetCount" not in fake.channels[CH_ID] and result["channelState"] == "ACTIVE"


def test_heatwave_reprotect_that_cannot_reach_the_new_writer_fails_without_leaking_the_password(api, fake, sql, conns):
    after_failover(fake)
    fake.unreachable_hosts.add(S_IP)
    with pytest.raises(ProviderError, match="needs attention: cannot connect to the source 10.0.2.5") as err:
        HeatWaveReplication(api).reprotect(CELL_ENV, "secondary", "primary")
    assert_no_secret(str(err.value), repr(err.value.__cause__), repr(err.value.__context__))


def test_heatwave_api_errors_echoing_the_password_are_scrubbed(api, fake, sql, conns, monkeypatch):
    after_failover(fake)
    monkeypatch.setattr(fake, "_create_channel",
                        lambda request, body: _error(400, "InvalidParameter",
                                                     f"password {body['source']['password']} does not meet the rules"))
    with pytest.raises(ProviderError, match=r"400 InvalidParameter: password \*\*\* does not") as err:
        HeatWaveReplication(api).reprotect(CELL_ENV, "secondary", "primary")
    assert_no_secret(str(err.value), repr(err.value.__cause__), repr(err.value.__context__))


# -- backup/restore (bronze) --------------------------------------------------------------------------

RESTORE = {"compartmentId": "ocid1.compartment.oc1..dr", "subnetId": "ocid1.subnet.oc1.phx.dr", "shapeName": "MySQL.2",
           "ipAddress": "10.0.2.50", "channelId": None, "dbSystemId": None}


@pytest.fixture
def bronze(tmp_path, settings, fake, sql):
    data = write_connections(tmp_path, settings, secondary_extra=RESTORE)
    data["databases"][SECONDARY]["host"] = "10.0.2.50"
    (tmp_path / "mysql-connections.yaml").write_text(yaml.safe_dump(data))
    return data


def test_heatwave_backup_lag_is_now_minus_the_newest_backup_in_the_target_region(oci_cfg, fake, bronze):
    fake.add_backup("ocid1.mysqlbackup.oc1.phx.old", db_system_id=P_ID, compartment=RESTORE["compartmentId"],
                    created=NOW - timedelta(hours=30))
    fake.add_backup("ocid1.mysqlbackup.oc1.phx.new", db_system_id=P_ID, compartment=RESTORE["compartmentId"],
                    created=NOW - timedelta(hours=6), copied=NOW - timedelta(hours=5))
    api = make_api(oci_cfg[0], fake.endpoint, clock=lambda: NOW)
    reading = HeatWaveBackupRestore(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 6 * 3600 and reading.detail["restoreFrom"] == "backup"  # regions differ
    assert reading.detail["backupId"] == "ocid1.mysqlbackup.oc1.phx.new"
    (call,) = fake.requests
    assert call["path"] == "/20190415/backups" and call["signed"]
    assert call["query"] == {"compartmentId": RESTORE["compartmentId"], "dbSystemId": P_ID, "lifecycleState": "ACTIVE",
                             "sortBy": "timeCreated", "sortOrder": "DESC", "limit": "10"}


def test_heatwave_backup_lag_from_pitr_and_unknown_without_a_recovery_point(oci_cfg, fake, tmp_path, settings, sql):
    write_connections(tmp_path, settings, secondary_extra={**RESTORE, "restoreFrom": "pitr"})
    api = make_api(oci_cfg[0], fake.endpoint, clock=lambda: NOW)
    reading = HeatWaveBackupRestore(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and "point-in-time recovery" in reading.detail["why"]
    fake.db_systems[P_ID]["pointInTimeRecoveryDetails"] = {"timeEarliestRecoveryPoint": "2026-11-20T00:00:00.000Z",
                                                           "timeLatestRecoveryPoint": "2026-11-26T11:56:00.000Z"}
    reading = HeatWaveBackupRestore(api).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds == 240.0 and reading.detail["source"] == "pitr"


def test_heatwave_backup_lag_without_any_backup_is_unknown(oci_cfg, fake, bronze):
    reading = HeatWaveBackupRestore(make_api(oci_cfg[0], fake.endpoint)).lag(CELL_ENV, "primary", "secondary")
    assert reading.seconds is None and "no ACTIVE backup" in reading.detail["why"]


def test_heatwave_backup_promote_restores_the_newest_backup_once(oci_cfg, fake, bronze, sql):
    fake.add_backup("ocid1.mysqlbackup.oc1.phx.new", db_system_id=P_ID, compartment=RESTORE["compartmentId"],
                    created=NOW - timedelta(hours=6))
    api = make_api(oci_cfg[0], fake.endpoint)
    result = HeatWaveBackupRestore(api).promote(CELL_ENV, "secondary", 3)
    (create,) = fake.calls("POST", "/20190415/dbSystems")
    assert create["body"] == {
        "compartmentId": RESTORE["compartmentId"], "subnetId": RESTORE["subnetId"], "shapeName": "MySQL.2",
        "displayName": f"{SECONDARY}-restored", "description": f"idp-dr restore of {PRIMARY} (epoch 3)",
        "ipAddress": "10.0.2.50", "freeformTags": {"idp-dr-restore": SECONDARY},
        "source": {"sourceType": "BACKUP", "backupId": "ocid1.mysqlbackup.oc1.phx.new"}}
    assert create["headers"].get("Opc-Retry-Token")
    assert fake.requests[0]["path"] == "/20190415/dbSystems" and fake.requests[0]["method"] == "GET"  # looked first
    assert result["created"] and result["writable"] and result["lifecycleState"] == "ACTIVE"
    assert result["endpoint"]["ipAddress"] == "10.0.2.50" and result["endpoint"]["port"] == 3306
    assert result["restoredUpTo"] == (NOW - timedelta(hours=6)).isoformat()
    assert result["readBack"]["sql"] == {"read_only": False, "super_read_only": False}
    assert_all_signed(fake)
    assert_no_secret(result)

    fake.requests.clear()
    again = HeatWaveBackupRestore(api).promote(CELL_ENV, "secondary", 3)
    assert fake.calls("POST") == [] and not again["created"] and again["dbSystemId"] == result["dbSystemId"]


def test_heatwave_backup_promote_from_pitr_in_the_same_region(oci_cfg, fake, tmp_path, settings, sql):
    write_connections(tmp_path, settings, secondary_extra={**RESTORE, "region": "us-ashburn-1"})
    fake.db_systems[P_ID]["pointInTimeRecoveryDetails"] = {"timeEarliestRecoveryPoint": "2026-11-20T00:00:00.000Z",
                                                           "timeLatestRecoveryPoint": "2026-11-26T11:56:00.000Z"}
    result = HeatWaveBackupRestore(make_api(oci_cfg[0], fake.endpoint)).promote(CELL_ENV, "secondary", 3)
    create = fake.calls("POST", "/20190415/dbSystems")[0]
    assert create["body"]["source"] == {"sourceType": "PITR", "dbSystemId": P_ID}  # no recoveryPoint: the latest
    assert result["restoreFrom"] == "pitr" and result["restoredUpTo"] == "2026-11-26T11:56:00+00:00"
    assert result["readBack"]["sql"].startswith("skipped")  # the file still names 10.0.2.5 for the claim


def test_heatwave_backup_promote_with_nothing_to_restore_is_a_clear_error(oci_cfg, fake, bronze):
    with pytest.raises(ProviderError, match="nothing to restore from: no ACTIVE backup"):
        HeatWaveBackupRestore(make_api(oci_cfg[0], fake.endpoint)).promote(CELL_ENV, "secondary", 3)
    assert fake.calls("POST") == []


def test_heatwave_backup_reprotect_has_nothing_to_reverse(oci_cfg, fake, bronze):
    result = HeatWaveBackupRestore(make_api(oci_cfg[0], fake.endpoint)).reprotect(CELL_ENV, "secondary", "primary")
    assert result["reprotected"] is False and "nothing to turn around" in result["note"]
    assert fake.requests == []


# -- configuration -------------------------------------------------------------------------------------

def test_heatwave_adapters_are_registered():
    from django.utils.module_loading import import_string

    from dr.providers import ADAPTERS

    assert import_string(ADAPTERS["fence"]["heatwave"]) is HeatWaveFence
    assert import_string(ADAPTERS["probe"]["heatwave"]) is HeatWaveReplication
    assert import_string(ADAPTERS["promoter"]["heatwave"]) is HeatWaveReplication


def test_heatwave_from_settings_builds_clients_per_region_from_the_environment(oci_cfg, tmp_path, monkeypatch, conns):
    from tests.dr.ocifake import write_config_file

    path = tmp_path / "config"
    write_config_file(path, oci_cfg[0], profile="DR")
    monkeypatch.setenv("OCI_CONFIG_FILE", str(path))
    monkeypatch.setenv("OCI_CONFIG_PROFILE", "DR")
    monkeypatch.delenv("IDP_OCI_AUTH", raising=False)
    monkeypatch.setenv("IDP_HEATWAVE_DRAIN_SECONDS", "42")
    adapter = HeatWaveReplication.from_settings()
    assert adapter.api.drain_seconds == 42.0
    clients = adapter.api.clients(mysqlconn.database(SECONDARY))
    assert "us-phoenix-1" in clients.channels.base_client.endpoint
    assert "us-ashburn-1" in adapter.api.clients(mysqlconn.database(PRIMARY)).db_systems.base_client.endpoint
    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "absent"))
    with pytest.raises(ProviderError, match="no usable OCI credentials"):
        HeatWaveFence.from_settings().api.clients(mysqlconn.database(PRIMARY))



def test_heatwave_opens_the_fenced_old_writer_to_goldengate_by_locking_the_application(api, fake, sql, tmp_path, settings):
    data = write_connections(tmp_path, settings)
    data["applicationAccounts"] = ["payments_app@%"]
    (tmp_path / "mysql-connections.yaml").write_text(yaml.safe_dump(data))
    fake.db_systems[P_ID]["databaseMode"] = "READ_ONLY"
    sql.sessions = {7: "payments_app", 8: "admin"}
    out = HeatWaveReplication(api).open_for_replicat(CELL_ENV, "primary")
    statements = [(q, a) for d, q, a in sql.statements if d == PRIMARY]
    lock = statements.index(("ALTER USER %s@%s ACCOUNT LOCK", ("payments_app", "%")))
    assert statements.index(("KILL %s", (7,))) > lock
    assert fake.db_systems[P_ID]["databaseMode"] == "READ_WRITE" and sql.sessions == {8: "admin"}
    assert out["lockedAccounts"] == ["payments_app@%"] and out["killedSessions"] == [7]
    assert sql.locked == {("payments_app", "%")}
    del fake.channels[CH_ID]
    HeatWaveReplication(api).promote(CELL_ENV, "primary", 9)  # a failback: the application may connect again
    assert sql.locked == set()
