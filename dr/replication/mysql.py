"""Native MySQL / MariaDB replication: lag, promotion and reprotect (self-managed MySQL, HeatWave inbound
channels, MariaDB). The fence is in dr/fencing/mysql.py.

Lag is measured with a heartbeat (as pt-heartbeat does): while the source is writable the probe stamps
`idp_dr.heartbeat` on it; on the replica, lag = now - the newest stamp it has applied. When the replica has
applied everything the source has (GTID wait), the lag is zero. When the source is unreachable, the same
number is the data-loss window: every write after the last applied stamp may be lost. A replica whose SQL
thread is stopped, or that never saw a stamp, has an unknown lag (None), never zero.
"""
from __future__ import annotations

from django.utils import timezone

from dr.errors import ProviderError, Unreachable
from dr.mysqlconn import (Database, connect, database, gtid_position, one, read_only, replica_status,
                          replication_account, run, server_version)
from dr.replication.base import LagReading

HEARTBEAT_DDL = (
    "CREATE DATABASE IF NOT EXISTS idp_dr",
    "CREATE TABLE IF NOT EXISTS idp_dr.heartbeat (id TINYINT PRIMARY KEY, ts DATETIME(6) NOT NULL, "
    "server_id INT UNSIGNED NOT NULL)",
)


def claim_name(cell_env, side: str) -> str:
    return f"{cell_env.cell.name}-{cell_env.environment}-mysql-{side}"


class MySQLReplication:
    name = "mysql"

    @classmethod
    def from_settings(cls) -> "MySQLReplication":
        return cls()

    # -- lag ------------------------------------------------------------------------------

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        return heartbeat_lag(database(claim_name(cell_env, source_side)), database(claim_name(cell_env, target_side)),
                             self.name)

    # -- promotion and reprotect ------------------------------------------------------------

    def promote(self, cell_env, side: str, epoch: int, drain_timeout: float = 60) -> dict:
        db = database(claim_name(cell_env, side))
        out: dict = {"adapter": "mysql", "database": db.name}
        with connect(db) as conn:
            was_replica = replica_status(conn, db) is not None
            if was_replica:
                out.update(self._drain_relay_log(conn, db, drain_timeout))
                run(conn, "STOP SLAVE", "RESET SLAVE ALL") if db.mariadb else run(conn, "STOP REPLICA", "RESET REPLICA ALL")
            run(conn, "SET GLOBAL read_only = OFF") if db.mariadb else run(conn, "SET GLOBAL super_read_only = OFF",
                                                                             "SET GLOBAL read_only = OFF")
            if read_only(conn, db) or replica_status(conn, db) is not None:
                raise ProviderError(f"{db.name}: promotion did not take effect (still read-only or replicating)")
            pos = gtid_position(conn, db)
            beat = one(conn, "SELECT ts FROM idp_dr.heartbeat WHERE id = 1") if _has_heartbeat(conn) else None
        return {**out, "writable": True, "epoch": epoch, "stoppedReplication": was_replica,
                "gtidAfterPromotion": pos["current"],
                "lastAppliedHeartbeat": beat["ts"].isoformat() + "+00:00" if beat else None}

    @staticmethod
    def _drain_relay_log(conn, db: Database, timeout: float) -> dict:
        """Apply everything the replica already received before it stops replicating: stop fetching and
        wait until the applier reaches what was read."""
        import time

        # Stop fetching (the source is gone or fenced) and let the applier work through the relay log, a
        # configured delay included: a CHANGE MASTER to drop the delay would discard the relay log.
        run(conn, "STOP SLAVE IO_THREAD" if db.mariadb else "STOP REPLICA IO_THREAD")
        deadline = time.monotonic() + timeout
        while True:
            st = replica_status(conn, db) or {}
            read = (st.get("Master_Log_File", st.get("Source_Log_File")), st.get("Read_Master_Log_Pos", st.get("Read_Source_Log_Pos")))
            done = (st.get("Relay_Master_Log_File", st.get("Relay_Source_Log_File")), st.get("Exec_Master_Log_Pos", st.get("Exec_Source_Log_Pos")))
            if read == done:
                return {"relayLogDrained": True, "appliedUpTo": f"{done[0]}:{done[1]}"}
            if time.monotonic() > deadline:
                raise ProviderError(f"{db.name}: the relay log was not applied within {timeout:g}s ({done} of {read})")
            time.sleep(0.1)

    def open_for_replicat(self, cell_env, side: str) -> dict:
        """Let a GoldenGate Replicat write into the fenced old writer while the application still cannot:
        `read_only` stays ON (it stops every account without CONNECTION_ADMIN / SUPER, MariaDB: READ_ONLY ADMIN,
        which the GoldenGate user holds and the application's must not); MySQL's `super_read_only` goes OFF."""
        db = database(claim_name(cell_env, side))
        with connect(db) as conn:
            if not db.mariadb:
                server_version(conn, db)
                run(conn, "SET GLOBAL super_read_only = OFF")
            row = one(conn, "SELECT @@read_only AS ro" + ("" if db.mariadb else ", @@super_read_only AS sro"))
        if not row["ro"] or row.get("sro"):
            raise ProviderError(f"{db.name}: expected read_only ON and super_read_only OFF for the Replicat, got {row}")
        return {"adapter": "mysql", "database": db.name, "readOnly": True, "superReadOnly": False,
                "note": "only accounts with CONNECTION_ADMIN (MariaDB: READ_ONLY ADMIN) can write: the GoldenGate user"}

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        source, target = database(claim_name(cell_env, source_side)), database(claim_name(cell_env, target_side))
        user, password = replication_account()
        with connect(target) as conn:
            # The old writer only follows from now on: read-only first, then replicate from the new writer.
            run(conn, "SET GLOBAL read_only = ON") if target.mariadb else run(conn, "SET GLOBAL super_read_only = ON")
            if target.mariadb:
                run(conn, "STOP SLAVE")
                with conn.cursor() as cur:
                    cur.execute("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                                "MASTER_USE_GTID=current_pos", (source.replication_host, source.replication_port, user, password))
                run(conn, "START SLAVE")
            else:
                server_version(conn, target)  # REPLICA/SOURCE statements: MySQL 8.0.23 or later
                run(conn, "STOP REPLICA")
                with conn.cursor() as cur:
                    # With caching_sha2_password (MySQL 8's default) the replica must reach the source over TLS or
                    # fetch its RSA public key, or the IO thread fails to authenticate: TLS, and the key as fallback.
                    cur.execute("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, "
                                "SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, SOURCE_SSL=1, GET_SOURCE_PUBLIC_KEY=1",
                                (source.replication_host, source.replication_port, user, password))
                run(conn, "START REPLICA")
            status = replica_status(conn, target) or {}
        return {"adapter": "mysql", "database": target.name, "replicatingFrom": source.name,
                "sourceHost": f"{source.replication_host}:{source.replication_port}",
                "ioRunning": status.get("Slave_IO_Running", status.get("Replica_IO_Running")),
                "sqlRunning": status.get("Slave_SQL_Running", status.get("Replica_SQL_Running"))}


def heartbeat_lag(source: Database, target: Database, adapter: str, is_read_only=read_only) -> LagReading:
    """Replication lag by heartbeat and GTID wait, over SQL (self-managed MySQL/MariaDB, and managed MySQL whose
    replica status is readable: RDS). `is_read_only(conn, db)` says whether the source is fenced (then no stamp)."""
    detail: dict = {"adapter": adapter, "source": source.name, "target": target.name}
    source_pos = None
    try:
        with connect(source, timeout=3) as conn:
            detail["sourceReadOnly"] = is_read_only(conn, source)
            if not detail["sourceReadOnly"]:
                run(conn, *HEARTBEAT_DDL, "REPLACE INTO idp_dr.heartbeat VALUES (1, UTC_TIMESTAMP(6), @@server_id)")
            source_pos = gtid_position(conn, source)["binlog"]
            detail["sourceGtid"] = source_pos
        detail["sourceReachable"] = True
    except Unreachable as exc:
        detail.update(sourceReachable=False, sourceError=str(exc))
    with connect(target) as conn:
        status = replica_status(conn, target)
        now = one(conn, "SELECT UTC_TIMESTAMP(6) AS now")["now"]
        beat = one(conn, "SELECT ts FROM idp_dr.heartbeat WHERE id = 1") if _has_heartbeat(conn) else None
        detail["targetGtid"] = gtid_position(conn, target)["applied"]
        if status:
            detail.update(ioRunning=status.get("Slave_IO_Running", status.get("Replica_IO_Running")),
                          sqlRunning=status.get("Slave_SQL_Running", status.get("Replica_SQL_Running")),
                          secondsBehind=status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source")),
                          lastError=status.get("Last_Error") or status.get("Last_SQL_Error") or "")
        caught_up = False
        if source_pos is not None and status:
            wait = "SELECT MASTER_GTID_WAIT(%s, 1) AS r" if target.mariadb else "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, 1) AS r"
            caught_up = one(conn, wait, (source_pos,))["r"] == 0
    measured = timezone.now()
    if status is None:
        return LagReading(None, measured, {**detail, "why": "the target is not replicating"})
    if detail.get("sqlRunning") != "Yes":
        return LagReading(None, measured, {**detail, "why": "the replica's SQL thread is stopped"})
    if caught_up:
        return LagReading(0.0, measured, {**detail, "caughtUp": True})
    if beat is None:
        return LagReading(None, measured, {**detail, "why": "no heartbeat has reached the replica yet"})
    lag = max(0.0, (now - beat["ts"]).total_seconds())
    return LagReading(round(lag, 3), measured, {**detail, "heartbeatAt": beat["ts"].isoformat(), "caughtUp": False})


def _has_heartbeat(conn) -> bool:
    return one(conn, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'idp_dr' "
                     "AND table_name = 'heartbeat'")["n"] == 1


__all__ = ["MySQLReplication", "Database", "heartbeat_lag"]
