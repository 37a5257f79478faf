"""Amazon RDS for MySQL replication (`rds`): lag, promotion and reprotect. The fence is dr/fencing/rds.py.

RDS refuses SUPER: no `SET GLOBAL read_only`, no `CHANGE REPLICATION SOURCE`, no `STOP REPLICA`. So:
- writability is the instance's own DB parameter group's `read_only` (dr/rdsapi.py), read back over SQL;
- replication from a MySQL outside the instance (self-managed, another cloud, or another RDS instance) is
  driven with RDS's stored procedures: `mysql.rds_set_external_source_with_auto_position(host, port, user,
  password, ssl_encryption, delay)`, `mysql.rds_start_replication`, `mysql.rds_stop_replication`,
  `mysql.rds_reset_external_source` (RDS for MySQL 8.4 and higher; 8.0 names them `..._master...`: the
  server's version picks the name);
- an RDS read replica (the instance has ReadReplicaSourceDBInstanceIdentifier) is promoted with the RDS API
  `promote_read_replica` and waited until it is available and no longer a replica (RDS reboots it).

Lag: the heartbeat / GTID method of the self-managed adapter (dr/replication/mysql.py): the probe stamps
`idp_dr.heartbeat` on the writable source; on the replica, lag = now - the newest stamp applied, zero when
the replica has executed the source's whole GTID set; unknown (None) when the SQL thread is stopped or no
stamp has arrived. `SHOW REPLICA STATUS` works for the master user on RDS, for an RDS read replica as for
external replication. GTID-based replication (gtid_mode=ON) is required for auto-position.
"""
from __future__ import annotations

import time

import pymysql

from dr.accounts import lock_application_accounts, unlock_application_accounts
from dr.errors import ProviderError
from dr.mysqlconn import Database, connect, database, gtid_position, one, replica_status, replication_account, run
from dr.rdsapi import RdsApi, procedures, redact, server_version, sql_read_only
from dr.replication.base import LagReading
from dr.replication.mysql import _has_heartbeat, claim_name, heartbeat_lag


def _field(status: dict, new: str, old: str):
    return status.get(new, status.get(old))


class RdsReplication:
    name = "rds"

    def __init__(self, api: RdsApi | None = None, *, drain_timeout: float = 60):
        self.api = api or RdsApi()
        self.drain_timeout = drain_timeout

    @classmethod
    def from_settings(cls) -> "RdsReplication":
        return cls(RdsApi.from_settings())

    # -- lag ------------------------------------------------------------------------------------

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        # The mysql adapter's heartbeat and GTID wait; a fenced RDS source shows read_only only (no super_read_only).
        return heartbeat_lag(database(claim_name(cell_env, source_side)), database(claim_name(cell_env, target_side)),
                             self.name, lambda conn, db: sql_read_only(conn))

    # -- promotion --------------------------------------------------------------------------------

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        db = database(claim_name(cell_env, side))
        region, instance_id = self.api.where(db)
        what = f"{db.name} ({instance_id})"
        inst = self.api.instance(db)
        group = self.api.own_parameter_group(db, inst)  # checked before anything changes
        replica_of = inst.get("ReadReplicaSourceDBInstanceIdentifier")
        out: dict = {"adapter": "rds", "database": db.name, "instanceId": instance_id, "region": region,
                     "parameterGroup": group, "epoch": epoch}
        with connect(db) as conn:
            status = replica_status(conn, db)
            if status is not None:
                # Apply what was already received before replication stops. RDS has no STOP REPLICA
                # IO_THREAD for the master user; the source is fenced or gone, so nothing new arrives.
                out.update(self._drain_relay_log(conn, db, self.drain_timeout))
            if status is not None and not replica_of:
                procs = procedures(server_version(conn))
                run(conn, "CALL mysql.rds_stop_replication", f"CALL {procs['reset']}")
                out["externalReplicationReset"] = True
        out["stoppedReplication"] = status is not None
        if replica_of:
            out["wasReadReplicaOf"] = replica_of
            if inst.get("DBInstanceStatus") == "available":
                try:
                    self.api.call(region, "promote_read_replica", f"{what}: promote_read_replica",
                                  DBInstanceIdentifier=instance_id)
                except ProviderError as exc:
                    if "InvalidDBInstanceState" not in str(exc):  # already promoting: wait for it below
                        raise
            self.api.wait_for(region, instance_id, f"{what}: promotion",
                              lambda i: i.get("DBInstanceStatus") == "available"
                              and not i.get("ReadReplicaSourceDBInstanceIdentifier"))
            out["promotedReadReplica"] = True
        out["readOnlyCleared"] = self.api.set_group_read_only(db, group, False)
        with connect(db) as conn:
            out["readBackSeconds"] = self.api.wait_sql_read_only(conn, db, False)[0]
            if replica_status(conn, db) is not None:
                raise ProviderError(f"{db.name}: promotion did not take effect (the server still has a replication source)")
            pos = gtid_position(conn, db)
            beat = one(conn, "SELECT ts FROM idp_dr.heartbeat WHERE id = 1") if _has_heartbeat(conn) else None
            out["unlockedAccounts"] = unlock_application_accounts(conn, db)  # locked if it was a GoldenGate target
        return {**out, "writable": True, "gtidAfterPromotion": pos["current"],
                "lastAppliedHeartbeat": beat["ts"].isoformat() + "+00:00" if beat else None}

    def open_for_replicat(self, cell_env, side: str) -> dict:
        """The fenced old writer takes a GoldenGate Replicat's writes: the application's accounts locked and their
        sessions killed (mysql.rds_kill), then read_only=0 in its parameter group, read back."""
        db = database(claim_name(cell_env, side))
        group = self.api.own_parameter_group(db, self.api.instance(db))
        with connect(db) as conn:
            fenced = lock_application_accounts(conn, db, "CALL mysql.rds_kill(%s)")
        cleared = self.api.set_group_read_only(db, group, False)
        with connect(db) as conn:
            seconds = self.api.wait_sql_read_only(conn, db, False)[0]
        return {"adapter": self.name, "database": db.name, **fenced, "readOnlyCleared": cleared,
                "readBackSeconds": seconds}

    @staticmethod
    def _drain_relay_log(conn, db: Database, timeout: float, poll: float = 0.2) -> dict:
        """Wait until the applier has executed everything the receiver read (positions equal)."""
        deadline = time.monotonic() + timeout
        while True:
            st = replica_status(conn, db) or {}
            read = (_field(st, "Source_Log_File", "Master_Log_File"), _field(st, "Read_Source_Log_Pos", "Read_Master_Log_Pos"))
            done = (_field(st, "Relay_Source_Log_File", "Relay_Master_Log_File"),
                    _field(st, "Exec_Source_Log_Pos", "Exec_Master_Log_Pos"))
            if read == done:
                return {"relayLogDrained": True, "appliedUpTo": f"{done[0]}:{done[1]}",
                        "retrievedGtid": st.get("Retrieved_Gtid_Set", "")}
            if time.monotonic() > deadline:
                raise ProviderError(f"{db.name}: the relay log was not applied within {timeout:g}s ({done} of {read})")
            time.sleep(poll)

    # -- reprotect ----------------------------------------------------------------------------------

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        """The old writer (`target_side`, an RDS instance) follows the new writer: read_only=1 through its
        parameter group, then RDS's procedures with GTID auto-position and SSL (ssl_encryption=1)."""
        source, target = database(claim_name(cell_env, source_side)), database(claim_name(cell_env, target_side))
        user, password = replication_account()
        region, instance_id = self.api.where(target)
        inst = self.api.instance(target)
        out: dict = {"adapter": "rds", "database": target.name, "instanceId": instance_id, "region": region,
                     "replicatingFrom": source.name, "sourceHost": f"{source.replication_host}:{source.replication_port}"}
        if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            raise ProviderError(f"{target.name}: RDS instance {instance_id} is an RDS read replica of "
                                f"{inst['ReadReplicaSourceDBInstanceIdentifier']}; it cannot also replicate from "
                                f"{source.name} (promote it or recreate it as a replica of the new writer)")
        group = self.api.own_parameter_group(target, inst)
        out["parameterGroup"] = group
        out["readOnlySet"] = self.api.set_group_read_only(target, group, True)
        with connect(target) as conn:
            out["readBackSeconds"] = self.api.wait_sql_read_only(conn, target, True)[0]
            procs = procedures(server_version(conn))
            status = replica_status(conn, target)
            if status and self._follows(status, source):
                out["alreadyReplicating"] = True
            else:
                if status is not None:  # replicating from somewhere else, or stopped: start over
                    run(conn, "CALL mysql.rds_stop_replication", f"CALL {procs['reset']}")
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"CALL {procs['set']}(%s, %s, %s, %s, %s, %s)",
                                    (source.replication_host, source.replication_port, user, password, 1, 0))
                except pymysql.err.MySQLError as exc:
                    message = exc.args[-1] if exc.args else type(exc).__name__
                    raise ProviderError(f"{target.name}: {procs['set']} failed: {redact(str(message), password)}") from None
                run(conn, "CALL mysql.rds_start_replication")
                out["alreadyReplicating"] = False
            status = replica_status(conn, target) or {}
        return {**out, "procedure": procs["set"], "sslEncryption": 1,
                "ioRunning": _field(status, "Replica_IO_Running", "Slave_IO_Running"),
                "sqlRunning": _field(status, "Replica_SQL_Running", "Slave_SQL_Running"),
                "lastIoError": redact(str(status.get("Last_IO_Error") or ""), password)}

    @staticmethod
    def _follows(status: dict, source: Database) -> bool:
        return (_field(status, "Source_Host", "Master_Host") == source.replication_host
                and int(_field(status, "Source_Port", "Master_Port") or 0) == source.replication_port
                and str(status.get("Auto_Position", "1")) == "1"
                and _field(status, "Replica_IO_Running", "Slave_IO_Running") == "Yes"
                and _field(status, "Replica_SQL_Running", "Slave_SQL_Running") == "Yes")


__all__ = ["RdsReplication"]
