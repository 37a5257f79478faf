"""Contract tests for the Amazon RDS for MySQL adapters (rds fence, rds promoter/probe, backup restore).

The AWS side is real boto3 against moto's RDS (mock_aws): parameter groups, read replicas and
promote_read_replica, automated backups / LatestRestorableTime and restore_db_instance_to_point_in_time.
The SQL side is a fake RDS MySQL server behind pymysql.connect that plays RDS's rules: no SUPER
(`SET GLOBAL`, `CHANGE REPLICATION SOURCE`, `STOP/START REPLICA` are refused with error 1227), read_only
is whatever the instance's parameter group in moto says (optionally only after a few reads, as a parameter
change takes a moment to show), and the rds_* procedures exist under the names of the server's version.
Every statement is recorded, so the tests assert the exact SQL of each operation.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from types import SimpleNamespace

import boto3
import pymysql
import pytest
from moto import mock_aws

from dr import mysqlconn
from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.fencing.rds import RdsFence
from dr.rdsapi import RdsApi
from dr.replication.rds import RdsReplication
from dr.replication.rds_backup import RdsBackupRestore
from tests.dr.helpers import ApiCalls

REGION = "us-east-1"
ADMIN_PASSWORD = "adm-Pa55word-9f3b"
REPL_PASSWORD = "repl-Pa55word-c71e"
PRIMARY_HOST, SECONDARY_HOST = "db-primary.abc123.us-east-1.rds.amazonaws.com", "db-secondary.abc123.us-east-1.rds.amazonaws.com"
GTID = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-250"
CELL = SimpleNamespace(cell=SimpleNamespace(name="payments"), environment="prod")
SET_SOURCE_84 = "CALL mysql.rds_set_external_source_with_auto_position(%s, %s, %s, %s, %s, %s)"
SET_MASTER_80 = "CALL mysql.rds_set_external_master_with_auto_position(%s, %s, %s, %s, %s, %s)"


# -- the fake RDS MySQL servers ------------------------------------------------------------------------

class FakeServer:
    """One RDS for MySQL instance as its master user sees it over SQL."""

    def __init__(self, rds, instance_id: str, version: str = "8.4.3"):
        self.rds, self.instance_id, self.version = rds, instance_id, version
        self.down = False
        self.replica: dict | None = None      # SHOW REPLICA STATUS row
        self.apply_after = 0                  # SHOW REPLICA STATUS reads before the relay log is applied
        self.stale_reads = 0                  # read_only reads that still show the old value after a change
        self.gtid = GTID
        self.beat: datetime | None = None
        self.caught_up = True
        self.call_error: str | None = None    # an error the rds_set_external_* CALL answers with
        self.statements: list[tuple[str, object]] = []
        self.locked: set[tuple[str, str]] = set()  # ALTER USER ... ACCOUNT LOCK
        self.sessions: dict[int, str] = {}         # open sessions: id -> user
        self._shown_ro = False
        self._pending = 0

    # read_only comes from the parameter group, as on RDS
    def group_read_only(self) -> bool:
        inst = self.rds.describe_db_instances(DBInstanceIdentifier=self.instance_id)["DBInstances"][0]
        group = inst["DBParameterGroups"][0]["DBParameterGroupName"]
        if group.startswith("default."):
            return False
        params = self.rds.describe_db_parameters(DBParameterGroupName=group, Source="user")["Parameters"]
        value = next((p["ParameterValue"] for p in params if p["ParameterName"] == "read_only"), "0")
        return value == "1"

    def group_changing(self):
        """Called as a change of its parameter group is sent: the server keeps showing the old value for
        `stale_reads` reads."""
        self._shown_ro, self._pending = self.group_read_only(), self.stale_reads

    def read_only(self) -> bool:
        if self._pending > 0:
            self._pending -= 1
            return self._shown_ro
        return self.group_read_only()

    def writes(self) -> list:
        return [(s, a) for s, a in self.statements if not re.match(r"\s*(SELECT|SHOW)\b", s, re.I)]

    def reads(self, sql: str) -> int:
        return sum(1 for s, _ in self.statements if s == sql)

    def execute(self, sql: str, args=None):
        self.statements.append((sql, args))
        s = " ".join(sql.split())
        up = s.upper()
        if up.startswith("SET GLOBAL") or "CHANGE REPLICATION SOURCE" in up or "CHANGE MASTER" in up \
                or re.match(r"(STOP|START) (REPLICA|SLAVE)", up):
            raise pymysql.err.OperationalError(1227, "Access denied; you need (at least one of) the SUPER privilege(s) "
                                                     "for this operation")
        if s == "SELECT @@global.read_only AS ro":
            return {"ro": int(self.read_only())}
        if s == "SELECT @@version AS v":
            return {"v": self.version}
        if s == "SHOW REPLICA STATUS":
            if self.replica and self._pending_apply():
                self.replica["Exec_Source_Log_Pos"] = self.replica["Read_Source_Log_Pos"]
            return dict(self.replica) if self.replica else None
        if up.startswith("SELECT @@GTID_EXECUTED"):
            return {"binlog": self.gtid, "applied": self.gtid, "current": self.gtid}
        if s == "SELECT UTC_TIMESTAMP(6) AS now":
            return {"now": datetime.utcnow()}
        if "FROM INFORMATION_SCHEMA.TABLES" in up:
            return {"n": int(self.beat is not None)}
        if s == "SELECT ts FROM idp_dr.heartbeat WHERE id = 1":
            return {"ts": self.beat}
        if up.startswith("SELECT WAIT_FOR_EXECUTED_GTID_SET"):
            return {"r": 0 if self.caught_up else 1}
        if re.match(r"ALTER USER %s@%s ACCOUNT (UN)?LOCK$", s):
            (self.locked.add if s.endswith(" LOCK") and "UNLOCK" not in s else self.locked.discard)(tuple(args))
            return None
        if s.startswith("SELECT GROUP_CONCAT(ID) AS ids FROM information_schema.PROCESSLIST WHERE USER IN"):
            ids = [str(i) for i, user in sorted(self.sessions.items()) if user in args]
            return {"ids": ",".join(ids) or None}
        if up.startswith(("CREATE DATABASE", "CREATE TABLE", "REPLACE INTO IDP_DR.HEARTBEAT")):
            if self.read_only():
                raise pymysql.err.OperationalError(1290, "The MySQL server is running with the --read-only option so it "
                                                         "cannot execute this statement")
            self.beat = datetime.utcnow()
            return None
        return self._call(s, args)

    def _pending_apply(self) -> bool:
        if self.apply_after > 0:
            self.apply_after -= 1
            return self.apply_after == 0
        return True

    def _call(self, s: str, args):
        m = re.match(r"CALL (mysql\.\w+)", s)
        if not m:
            raise AssertionError(f"unexpected SQL: {s}")
        proc, new = m.group(1), tuple(int(x) for x in self.version.split(".")[:2]) >= (8, 4)
        if proc == "mysql.rds_kill":
            self.sessions.pop(int(args[0]), None)
            return None
        known = {"mysql.rds_start_replication", "mysql.rds_stop_replication"} | (
            {"mysql.rds_set_external_source_with_auto_position", "mysql.rds_reset_external_source"} if new else
            {"mysql.rds_set_external_master_with_auto_position", "mysql.rds_reset_external_master"})
        if proc not in known:
            raise pymysql.err.OperationalError(1305, f"PROCEDURE {proc} does not exist")
        if proc.startswith("mysql.rds_set_external"):
            if self.call_error:
                raise pymysql.err.OperationalError(1064, self.call_error)
            host, port, user, _password, ssl, delay = args
            self.replica = {"Source_Host": host, "Source_Port": port, "Source_User": user, "Auto_Position": 1,
                            "Replica_IO_Running": "No", "Replica_SQL_Running": "No", "Source_Log_File": "",
                            "Read_Source_Log_Pos": 4, "Relay_Source_Log_File": "", "Exec_Source_Log_Pos": 4,
                            "Source_SSL_Allowed": "Yes" if ssl == 1 else "No", "SQL_Delay": delay}
        elif proc == "mysql.rds_start_replication":
            self.replica.update(Replica_IO_Running="Yes", Replica_SQL_Running="Yes")
        elif proc == "mysql.rds_stop_replication" and self.replica:
            self.replica.update(Replica_IO_Running="No", Replica_SQL_Running="No")
        elif proc.startswith("mysql.rds_reset_external"):
            self.replica = None
        return None


class FakeCursor:
    def __init__(self, server):
        self.server, self.row = server, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        self.row = self.server.execute(sql, args)

    def fetchone(self):
        return self.row


class FakeConnection:
    def __init__(self, server):
        self.server = server

    def cursor(self):
        return FakeCursor(self.server)

    def close(self):
        pass


class Servers(dict):
    def connect(self, host, port, user, password, **kwargs):
        assert password == ADMIN_PASSWORD and user == "idp_admin"
        server = self[host]
        if server.down:
            raise pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on '{host}' (timed out)")
        return FakeConnection(server)


def replica_row(host=PRIMARY_HOST, read=1200, executed=1200, sql="Yes"):
    return {"Source_Host": host, "Source_Port": 3306, "Auto_Position": 1, "Replica_IO_Running": "Yes",
            "Replica_SQL_Running": sql, "Source_Log_File": "mysql-bin-changelog.000042", "Read_Source_Log_Pos": read,
            "Relay_Source_Log_File": "mysql-bin-changelog.000042", "Exec_Source_Log_Pos": executed,
            "Seconds_Behind_Source": 0, "Retrieved_Gtid_Set": GTID, "Last_Error": ""}


def Calls(client):  # noqa: N802 (used like the class it was)
    return ApiCalls(client, "rds")


# -- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture
def rds(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("rds", region_name=REGION)


@pytest.fixture
def api(rds):
    api = RdsApi(poll=0, read_only_timeout=5, wait_timeout=5)
    api._clients[REGION] = rds  # the same client: Calls sees what the adapters send
    return api


def write_connections(tmp_path, settings, primary: dict | None = None, secondary: dict | None = None):
    def entry(host, instance_id, group, extra):
        return {"host": host, "port": 3306, "user": "idp_admin", "password": ADMIN_PASSWORD, "flavor": "rds",
                "rds": {"instanceId": instance_id, "region": REGION, "parameterGroup": group, **(extra or {})}}

    path = tmp_path / f"connections-{len(list(tmp_path.glob('connections-*.json')))}.json"  # a new file: no stale cache
    path.write_text(json.dumps({
        "replication": {"user": "repl", "password": REPL_PASSWORD},
        "databases": {"payments-prod-mysql-primary": entry(PRIMARY_HOST, "db-primary", "pg-primary", primary),
                      "payments-prod-mysql-secondary": entry(SECONDARY_HOST, "db-secondary", "pg-secondary", secondary)}}))
    settings.IDP_MYSQL_CONNECTIONS = str(path)
    return path


@pytest.fixture
def conns(tmp_path, settings):
    return write_connections(tmp_path, settings)


def group(rds, name, read_only=None):
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily="mysql8.0", Description=name)
    if read_only is not None:
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=[
            {"ParameterName": "read_only", "ParameterValue": read_only, "ApplyMethod": "immediate"}])


def instance(rds, instance_id, pg=None, retention=7):
    rds.create_db_instance(DBInstanceIdentifier=instance_id, Engine="mysql", EngineVersion="8.4.3",
                           DBInstanceClass="db.t3.medium", MasterUsername="idp_admin", MasterUserPassword=ADMIN_PASSWORD,
                           AllocatedStorage=20, BackupRetentionPeriod=retention,
                           **({"DBParameterGroupName": pg} if pg else {}))


def group_value(rds, name):
    params = rds.describe_db_parameters(DBParameterGroupName=name, Source="user")["Parameters"]
    return next((p["ParameterValue"] for p in params if p["ParameterName"] == "read_only"), None)


@pytest.fixture
def servers(rds, monkeypatch):
    found = Servers()
    found[PRIMARY_HOST] = FakeServer(rds, "db-primary")
    found[SECONDARY_HOST] = FakeServer(rds, "db-secondary")
    monkeypatch.setattr(mysqlconn.pymysql, "connect", found.connect)

    def changing(params, **kwargs):
        for server in found.values():
            try:
                inst = rds.describe_db_instances(DBInstanceIdentifier=server.instance_id)["DBInstances"][0]
            except rds.exceptions.DBInstanceNotFoundFault:
                continue
            if inst["DBParameterGroups"][0]["DBParameterGroupName"] == params["DBParameterGroupName"]:
                server.group_changing()

    rds.meta.events.register("provide-client-params.rds.ModifyDBParameterGroup", changing)
    return found


@pytest.fixture
def pair(rds, conns, servers):
    """Two standalone RDS instances, each with its own custom parameter group; the secondary replicates from
    the primary through RDS's external-source procedures."""
    group(rds, "pg-primary", "0")
    group(rds, "pg-secondary", "1")
    instance(rds, "db-primary", "pg-primary")
    instance(rds, "db-secondary", "pg-secondary")
    servers[SECONDARY_HOST].replica = replica_row()
    return servers


class PromotedReplicas:
    """moto keeps ReadReplicaSourceDBInstanceIdentifier after promote_read_replica; the real API drops it
    (a promoted instance is standalone). This hook makes describe answer as RDS does, and the fake server
    forget its replication source, as RDS's promotion does."""

    def __init__(self, rds, servers):
        self.promoted: set[str] = set()
        self.servers = servers
        rds.meta.events.register("provide-client-params.rds.PromoteReadReplica", self._promote)
        rds.meta.events.register("after-call.rds.DescribeDBInstances", self._describe)

    def _promote(self, params, **kwargs):
        self.promoted.add(params["DBInstanceIdentifier"])
        for server in self.servers.values():
            if server.instance_id == params["DBInstanceIdentifier"]:
                server.replica = None

    def _describe(self, parsed, **kwargs):
        for inst in parsed.get("DBInstances", []):
            if inst["DBInstanceIdentifier"] in self.promoted:
                inst.pop("ReadReplicaSourceDBInstanceIdentifier", None)


@pytest.fixture
def read_replica(rds, conns, servers):
    """db-secondary is an RDS read replica of db-primary, moved to its own parameter group (a same-region
    replica starts on its source's group)."""
    group(rds, "pg-primary", "0")
    group(rds, "pg-secondary", "1")
    instance(rds, "db-primary", "pg-primary")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="db-secondary", SourceDBInstanceIdentifier="db-primary")
    rds.modify_db_instance(DBInstanceIdentifier="db-secondary", DBParameterGroupName="pg-secondary", ApplyImmediately=True)
    servers[SECONDARY_HOST].replica = replica_row(read=1500, executed=1200)
    servers[SECONDARY_HOST].apply_after = 3
    return PromotedReplicas(rds, servers)


def no_secret(*things):
    text = json.dumps([t if isinstance(t, (dict, list, str)) else repr(t) for t in things], default=str)
    assert ADMIN_PASSWORD not in text and REPL_PASSWORD not in text


# -- the fence ---------------------------------------------------------------------------------------

def test_contract_rds_fence_sets_read_only_in_the_parameter_group_and_reads_it_back(rds, api, pair):
    pair[PRIMARY_HOST].stale_reads = 2  # the change shows over SQL only on the third read
    calls = Calls(rds)
    out = RdsFence(api).fence(CELL, "primary", 7)
    assert calls.params("ModifyDBParameterGroup") == [{"DBParameterGroupName": "pg-primary", "Parameters": [
        {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}]}]
    assert group_value(rds, "pg-primary") == "1"
    primary = pair[PRIMARY_HOST]
    assert primary.writes() == []  # no SET GLOBAL: nothing but reads went over SQL
    assert primary.reads("SELECT @@global.read_only AS ro") == 3
    assert out["readOnly"] and not out["alreadyFenced"] and out["epoch"] == 7
    assert out["gtidAtFence"] == GTID and out["parameterGroup"] == "pg-primary" and out["instanceId"] == "db-primary"
    no_secret(out)


def test_contract_rds_fence_is_idempotent_and_says_when_already_fenced(rds, api, pair):
    RdsFence(api).fence(CELL, "primary", 7)
    calls = Calls(rds)
    out = RdsFence(api).fence(CELL, "primary", 7)
    assert calls.count("ModifyDBParameterGroup") == 0
    assert out["alreadyFenced"] and "already read-only" in out["note"]


def test_contract_rds_fence_refuses_a_default_parameter_group(rds, api, conns, servers, tmp_path, settings):
    write_connections(tmp_path, settings, primary={"parameterGroup": ""})
    instance(rds, "db-primary")  # on default.mysql…: cannot be modified
    calls = Calls(rds)
    with pytest.raises(ProviderError, match=r"default parameter group default\.mysql[\d.]+, which cannot be modified.*"
                                            r"custom DB parameter group"):
        RdsFence(api).fence(CELL, "primary", 3)
    assert calls.count("ModifyDBParameterGroup") == 0 and servers[PRIMARY_HOST].statements == []


def test_contract_rds_fence_refuses_a_parameter_group_shared_with_the_replica(rds, api, conns, servers):
    group(rds, "pg-primary", "0")
    instance(rds, "db-primary", "pg-primary")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="db-secondary", SourceDBInstanceIdentifier="db-primary")
    calls = Calls(rds)
    with pytest.raises(ProviderError, match="pg-primary of RDS instance db-primary is shared with db-secondary"):
        RdsFence(api).fence(CELL, "primary", 3)
    assert calls.count("ModifyDBParameterGroup") == 0 and group_value(rds, "pg-primary") == "0"


def test_contract_rds_fence_of_an_unreachable_database_raises_unreachable(rds, api, pair):
    pair[PRIMARY_HOST].down = True
    with pytest.raises(Unreachable, match="unreachable.*read_only=1 is set in parameter group pg-primary") as err:
        RdsFence(api).fence(CELL, "primary", 3)
    assert group_value(rds, "pg-primary") == "1"  # fenced for when it answers again
    no_secret(str(err.value))


def test_contract_rds_api_out_of_reach_is_unreachable(conns, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    api = RdsApi(endpoint_url="http://127.0.0.1:9", attempts=1)  # nothing listens on the discard port
    with pytest.raises(Unreachable, match="the RDS API is unreachable"):
        RdsFence(api).fence(CELL, "primary", 3)


def test_contract_rds_fence_that_never_shows_over_sql_is_transient(rds, pair):
    pair[PRIMARY_HOST].stale_reads = 10**6
    api = RdsApi(poll=0, read_only_timeout=0.2)
    api._clients[REGION] = rds
    with pytest.raises(TransientProviderError, match="read_only=1 is set in the parameter group but the server still shows 0"):
        RdsFence(api).fence(CELL, "primary", 3)


def test_contract_rds_settings_endpoint_override(settings, monkeypatch):
    settings.IDP_AWS_ENDPOINT_URL = "http://127.0.0.1:5000"
    settings.IDP_RDS_POLL_INTERVAL = 1
    fence = RdsFence.from_settings()
    assert fence.name == "rds" and fence.api.endpoint_url == "http://127.0.0.1:5000" and fence.api.poll == 1.0
    del settings.IDP_AWS_ENDPOINT_URL
    monkeypatch.setenv("IDP_AWS_ENDPOINT_URL", "http://127.0.0.1:5001")
    assert RdsReplication.from_settings().api.endpoint_url == "http://127.0.0.1:5001"
    monkeypatch.delenv("IDP_AWS_ENDPOINT_URL")
    assert RdsBackupRestore.from_settings().api.endpoint_url is None
    assert RdsReplication.name == "rds" and RdsBackupRestore.name == "backup"


# -- promotion --------------------------------------------------------------------------------------

def test_contract_rds_promote_read_replica_drains_promotes_and_clears_read_only(rds, api, read_replica, servers):
    calls = Calls(rds)
    out = RdsReplication(api).promote(CELL, "secondary", 8)
    secondary = servers[SECONDARY_HOST]
    assert out["relayLogDrained"] and out["appliedUpTo"] == "mysql-bin-changelog.000042:1500"
    assert secondary.reads("SHOW REPLICA STATUS") >= 4  # polled until the applier reached what was read
    assert calls.params("PromoteReadReplica") == [{"DBInstanceIdentifier": "db-secondary"}]
    assert calls.params("ModifyDBParameterGroup") == [{"DBParameterGroupName": "pg-secondary", "Parameters": [
        {"ParameterName": "read_only", "ParameterValue": "0", "ApplyMethod": "immediate"}]}]
    names = [n for n, _ in calls.ops]
    assert names.index("PromoteReadReplica") < names.index("ModifyDBParameterGroup")  # writable only once standalone
    assert secondary.writes() == []  # an RDS replica is promoted by the API, not by SQL
    assert out["promotedReadReplica"] and out["wasReadReplicaOf"] == "db-primary" and out["writable"]
    assert out["gtidAfterPromotion"] == GTID and out["epoch"] == 8
    assert group_value(rds, "pg-primary") == "0"  # the old writer's group was not touched
    no_secret(out)

    calls = Calls(rds)
    again = RdsReplication(api).promote(CELL, "secondary", 8)
    assert calls.count("PromoteReadReplica") == 0 and calls.count("ModifyDBParameterGroup") == 0
    assert again["writable"] and not again["stoppedReplication"] and not again["readOnlyCleared"]


def test_contract_rds_promote_refuses_a_replica_on_its_sources_parameter_group(rds, api, conns, servers):
    group(rds, "pg-primary", "1")  # the fenced old writer's group
    instance(rds, "db-primary", "pg-primary")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="db-secondary", SourceDBInstanceIdentifier="db-primary")
    # the configuration names pg-secondary for the replica, but RDS gave it its source's group
    calls = Calls(rds)
    with pytest.raises(ProviderError, match="says parameter group pg-secondary, but RDS instance db-secondary uses pg-primary"):
        RdsReplication(api).promote(CELL, "secondary", 8)
    assert calls.count("PromoteReadReplica") == 0 and group_value(rds, "pg-primary") == "1"


def test_contract_rds_promote_refuses_a_shared_group_even_when_configured(rds, api, tmp_path, settings, servers):
    write_connections(tmp_path, settings, secondary={"parameterGroup": "pg-primary"})
    group(rds, "pg-primary", "1")
    instance(rds, "db-primary", "pg-primary")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="db-secondary", SourceDBInstanceIdentifier="db-primary")
    calls = Calls(rds)
    with pytest.raises(ProviderError, match="pg-primary of RDS instance db-secondary is shared with db-primary"):
        RdsReplication(api).promote(CELL, "secondary", 8)
    assert calls.count("PromoteReadReplica") == 0 and calls.count("ModifyDBParameterGroup") == 0
    assert group_value(rds, "pg-primary") == "1"  # clearing it would have unfenced the old writer


@pytest.mark.parametrize("version, reset", [("8.4.3", "mysql.rds_reset_external_source"),
                                            ("8.0.39", "mysql.rds_reset_external_master")])
def test_contract_rds_promote_external_replication_stops_and_resets_with_rds_procedures(rds, api, pair, version, reset):
    secondary = pair[SECONDARY_HOST]
    secondary.version = version
    secondary.replica = replica_row(read=900, executed=800)
    secondary.apply_after = 2
    calls = Calls(rds)
    out = RdsReplication(api).promote(CELL, "secondary", 4)
    assert secondary.writes() == [("CALL mysql.rds_stop_replication", None), (f"CALL {reset}", None)]
    assert calls.count("PromoteReadReplica") == 0
    assert calls.params("ModifyDBParameterGroup")[0]["Parameters"] == [
        {"ParameterName": "read_only", "ParameterValue": "0", "ApplyMethod": "immediate"}]
    assert out["externalReplicationReset"] and out["relayLogDrained"] and out["writable"]
    assert not secondary.read_only() and secondary.replica is None


# -- reprotect ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, set_sql", [("8.4.3", SET_SOURCE_84), ("8.0.39", SET_MASTER_80)])
def test_contract_rds_reprotect_sends_exactly_the_rds_calls(rds, api, pair, version, set_sql):
    old_writer = pair[PRIMARY_HOST]
    old_writer.version = version
    calls = Calls(rds)
    out = RdsReplication(api).reprotect(CELL, "secondary", "primary")
    assert calls.params("ModifyDBParameterGroup") == [{"DBParameterGroupName": "pg-primary", "Parameters": [
        {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}]}]
    assert old_writer.writes() == [(set_sql, (SECONDARY_HOST, 3306, "repl", REPL_PASSWORD, 1, 0)),
                                   ("CALL mysql.rds_start_replication", None)]
    sent = " ".join(s for s, _ in old_writer.statements).upper()
    assert "SET GLOBAL" not in sent and "CHANGE REPLICATION SOURCE" not in sent and "CHANGE MASTER" not in sent
    # read-only (read back) before replication was configured
    first_call = next(i for i, (s, _) in enumerate(old_writer.statements) if s.startswith("CALL"))
    assert ("SELECT @@global.read_only AS ro", None) in old_writer.statements[:first_call]
    assert out["ioRunning"] == "Yes" and out["sqlRunning"] == "Yes" and out["sslEncryption"] == 1
    assert out["sourceHost"] == f"{SECONDARY_HOST}:3306" and not out["alreadyReplicating"]
    no_secret(out)

    again = RdsReplication(api).reprotect(CELL, "secondary", "primary")
    assert again["alreadyReplicating"] and len(old_writer.writes()) == 2


def test_contract_rds_reprotect_from_another_source_starts_over(rds, api, pair):
    old_writer = pair[PRIMARY_HOST]
    old_writer.replica = replica_row(host="10.9.9.9")
    RdsReplication(api).reprotect(CELL, "secondary", "primary")
    assert [s for s, _ in old_writer.writes()] == ["CALL mysql.rds_stop_replication", "CALL mysql.rds_reset_external_source",
                                                   SET_SOURCE_84, "CALL mysql.rds_start_replication"]


def test_contract_rds_reprotect_error_never_shows_the_replication_password(rds, api, pair):
    pair[PRIMARY_HOST].call_error = f"You have an error in your SQL syntax near '{REPL_PASSWORD}', 1, 0)' at line 1"
    with pytest.raises(ProviderError, match="rds_set_external_source_with_auto_position failed") as err:
        RdsReplication(api).reprotect(CELL, "secondary", "primary")
    no_secret(str(err.value))
    assert "***" in str(err.value)


def test_contract_rds_reprotect_of_an_unreachable_old_writer_raises_unreachable(rds, api, pair):
    pair[PRIMARY_HOST].down = True
    with pytest.raises(Unreachable) as err:
        RdsReplication(api).reprotect(CELL, "secondary", "primary")
    no_secret(str(err.value))


# -- lag ----------------------------------------------------------------------------------------------

def test_contract_rds_lag_stamps_a_heartbeat_and_reads_gtid_catch_up(rds, api, pair):
    reading = RdsReplication(api).lag(CELL, "primary", "secondary")
    assert reading.seconds == 0.0 and reading.detail["caughtUp"] and reading.detail["sourceGtid"] == GTID
    assert [s.split(" (")[0] for s, _ in pair[PRIMARY_HOST].writes()] == [
        "CREATE DATABASE IF NOT EXISTS idp_dr", "CREATE TABLE IF NOT EXISTS idp_dr.heartbeat",
        "REPLACE INTO idp_dr.heartbeat VALUES"]
    assert pair[SECONDARY_HOST].writes() == []


def test_contract_rds_lag_from_the_heartbeat_when_behind_and_unknown_when_stopped(rds, api, pair):
    RdsFence(api).fence(CELL, "primary", 2)
    secondary = pair[SECONDARY_HOST]
    secondary.caught_up, secondary.beat = False, datetime.utcnow() - timedelta(seconds=42)
    before = len(pair[PRIMARY_HOST].writes())
    reading = RdsReplication(api).lag(CELL, "primary", "secondary")
    assert reading.detail["sourceReadOnly"] and len(pair[PRIMARY_HOST].writes()) == before  # no stamp on a fenced source
    assert 42 <= reading.seconds < 50
    secondary.replica["Replica_SQL_Running"] = "No"
    assert RdsReplication(api).lag(CELL, "primary", "secondary").seconds is None
    pair[PRIMARY_HOST].down = True
    secondary.replica["Replica_SQL_Running"] = "Yes"
    reading = RdsReplication(api).lag(CELL, "primary", "secondary")
    assert not reading.detail["sourceReachable"] and 42 <= reading.seconds < 50  # the data-loss window
    no_secret(reading.detail)


# -- backup and restore ---------------------------------------------------------------------------------

@pytest.fixture
def backed_up(rds, conns, servers):
    group(rds, "pg-primary", "1")  # fenced source: its group must not be reused by the restore
    group(rds, "pg-secondary", "0")
    instance(rds, "db-primary", "pg-primary", retention=7)
    return servers


def test_contract_rds_backup_lag_is_now_minus_latest_restorable_time(rds, api, backed_up):
    calls = Calls(rds)
    reading = RdsBackupRestore(api).lag(CELL, "primary", "secondary")
    assert calls.params("DescribeDBInstances") == [{"DBInstanceIdentifier": "db-primary"}]
    latest = datetime.fromisoformat(reading.detail["latestRestorableTime"])  # moto: the time of the describe
    assert reading.seconds == pytest.approx((reading.measured_at - latest).total_seconds(), abs=0.001)
    assert 0 <= reading.seconds < 5 and reading.detail["backupRetentionDays"] == 7
    rds.modify_db_instance(DBInstanceIdentifier="db-primary", BackupRetentionPeriod=0, ApplyImmediately=True)
    reading = RdsBackupRestore(api).lag(CELL, "primary", "secondary")
    assert reading.seconds is None and "no automated backups" in reading.detail["why"]


def test_contract_rds_backup_promote_restores_to_the_secondary_and_returns_its_endpoint(rds, api, backed_up):
    calls = Calls(rds)
    out = RdsBackupRestore(api).promote(CELL, "secondary", 5)
    (sent,) = calls.params("RestoreDBInstanceToPointInTime")
    assert sent["SourceDBInstanceIdentifier"] == "db-primary" and sent["TargetDBInstanceIdentifier"] == "db-secondary"
    assert sent["UseLatestRestorableTime"] is True and "RestoreTime" not in sent
    assert sent["DBParameterGroupName"] == "pg-secondary"  # never the fenced source's group, never the default
    assert sent["VpcSecurityGroupIds"]  # the source's, not the default security group
    assert {"Key": "idp:restoredFrom", "Value": "db-primary"} in sent["Tags"]
    inst = rds.describe_db_instances(DBInstanceIdentifier="db-secondary")["DBInstances"][0]
    assert out["endpoint"] == {"host": inst["Endpoint"]["Address"], "port": inst["Endpoint"]["Port"]}
    assert out["status"] == "available" and out["restoredFrom"] == "db-primary" and not out["restoreStartedEarlier"]
    assert all(s.statements == [] for s in backed_up.values())  # a restore is all API
    no_secret(out)

    calls = Calls(rds)
    again = RdsBackupRestore(api).promote(CELL, "secondary", 5)
    assert calls.count("RestoreDBInstanceToPointInTime") == 0
    assert again["restoreStartedEarlier"] and again["endpoint"] == out["endpoint"]


def test_contract_rds_backup_promote_refuses_an_instance_it_did_not_restore(rds, api, backed_up):
    instance(rds, "db-secondary", "pg-secondary")
    calls = Calls(rds)
    with pytest.raises(ProviderError, match="already exists and was not restored from db-primary"):
        RdsBackupRestore(api).promote(CELL, "secondary", 5)
    assert calls.count("RestoreDBInstanceToPointInTime") == 0


def test_contract_rds_backup_promote_refuses_a_read_only_group_and_another_region(rds, api, backed_up, tmp_path, settings):
    write_connections(tmp_path, settings, secondary={"parameterGroup": "pg-primary"})
    with pytest.raises(ProviderError, match="parameter group pg-primary sets read_only=1"):
        RdsBackupRestore(api).promote(CELL, "secondary", 5)
    write_connections(tmp_path, settings, secondary={"region": "eu-west-1"})
    with pytest.raises(ProviderError, match="needs its automated backups replicated to that region"):
        RdsBackupRestore(api).promote(CELL, "secondary", 5)


def test_contract_rds_backup_reprotect_has_nothing_to_reverse(api, backed_up):
    out = RdsBackupRestore(api).reprotect(CELL, "secondary", "primary")
    assert out["reprotected"] is False and "nothing to reverse" in out["note"]



def test_contract_rds_opens_the_fenced_old_writer_to_goldengate_by_locking_the_application(rds, api, pair, tmp_path,
                                                                                          settings):
    """GoldenGate reprotect into RDS: read_only is all or nothing, so the application's accounts are locked and their
    sessions killed (mysql.rds_kill) before the parameter group makes the old writer writable; promotion unlocks."""
    write_connections(tmp_path, settings, primary={})
    path = settings.IDP_MYSQL_CONNECTIONS
    data = json.loads(open(path).read())
    data["applicationAccounts"] = ["payments_app@%"]
    open(path, "w").write(json.dumps(data))
    old = pair[PRIMARY_HOST]
    rds.modify_db_parameter_group(DBParameterGroupName="pg-primary", Parameters=[  # fenced
        {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    old.sessions = {41: "payments_app", 42: "payments_app", 43: "idp_admin"}
    out = RdsReplication(api).open_for_replicat(CELL, "primary")
    writes = [(s, a) for s, a in old.writes()]
    assert writes[0] == ("ALTER USER %s@%s ACCOUNT LOCK", ("payments_app", "%"))
    assert ("CALL mysql.rds_kill(%s)", (41,)) in writes and ("CALL mysql.rds_kill(%s)", (42,)) in writes
    assert old.sessions == {43: "idp_admin"} and old.locked == {("payments_app", "%")}
    assert group_value(rds, "pg-primary") == "0" and out["killedSessions"] == [41, 42]
    assert not any(s.upper().startswith("SET GLOBAL") for s, _ in writes)
    # Failback promotes it again: the application may connect once more.
    old.replica = None
    RdsReplication(api).promote(CELL, "primary", 5)
    assert old.locked == set()


def test_contract_rds_refuses_to_open_for_goldengate_without_the_applications_accounts(rds, api, pair):
    with pytest.raises(ProviderError, match="no applicationAccounts"):
        RdsReplication(api).open_for_replicat(CELL, "primary")
    assert group_value(rds, "pg-primary") == "0" and not pair[PRIMARY_HOST].writes()  # nothing changed
