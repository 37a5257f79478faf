"""OCI MySQL HeatWave inbound replication (`heatwave`): lag, promotion and reprotect through Channels.

On HeatWave a replica is the target DB system of a *Channel* (``oci.mysql.ChannelsClient``, API
/20190415/channels), not a CHANGE REPLICATION SOURCE statement: the admin user has no
REPLICATION_SLAVE_ADMIN. Facts used (oci SDK 2.189.0; OCI docs "Managing a Replication Channel",
"Viewing the Replication Channel Status", "Database and Access Modes"):

- ``get_channel``: ``lifecycle_state`` (CREATING, ACTIVE, NEEDS_ATTENTION, INACTIVE, UPDATING, DELETING,
  DELETED, FAILED), ``is_enabled``, ``source`` (hostname, port, username, ssl_mode), ``target``
  (db_system_id, channel_name).
- ``generate_channel_status`` (an asynchronous work request) then ``get_channel_status``:
  ``is_healthy``, ``is_received_gtid_set_applied`` (everything received is in gtid_executed),
  ``errors``, ``lag_duration`` (a string, "with respect to the immediate source", delay included).
  The docs present it for judging "whether the source and target are ready for a failover or switchover".
- ``update_channel(UpdateChannelDetails(is_enabled=False))`` stops replication, the channel goes
  INACTIVE. ``reset_channel`` is accepted on an INACTIVE channel only and "is equivalent to RESET
  REPLICA ALL FOR CHANNEL": it drops the position, the relay logs and the metadata, keeps the configuration.
  ``resume_channel`` restarts an enabled channel in NEEDS_ATTENTION once its error is fixed.

lag(source, target): the target DB system's inbound channel. Disabled, not ACTIVE, unhealthy, with
errors, or no readable lagDuration: unknown (None), never zero. The status is regenerated when older
than IDP_HEATWAVE_STATUS_STALE_SECONDS. When both databases answer over SQL, the same heartbeat as the
`mysql` adapter (idp_dr.heartbeat, stamped on the writable source) and a GTID check refine it: the
target holding all of the source's gtid_executed is zero; otherwise the larger of the channel's lag and
the heartbeat's age counts.

promote(side, epoch): on the side's DB system, if it has an enabled inbound channel: wait (up to
IDP_HEATWAVE_DRAIN_SECONDS) for a freshly generated status with is_received_gtid_set_applied (when OCI
gives no status, e.g. for a channel that needs attention because the old source is gone — not documented
either way — the same test over SQL: the channel's RECEIVED_TRANSACTION_SET from
performance_schema.replication_connection_status within @@global.gtid_executed), then
disable the channel (tagging it `idp-dr-drained-epoch`), wait INACTIVE, reset it (the stale position
must never resume against a new history; the channel object and its OCID stay, so heatwave.channelId
keeps naming it), then database mode READ_WRITE, read back over SQL. Idempotent: a READ_WRITE DB system
whose channel is disabled is left as it is. A channel found disabled without our tag on a READ_ONLY DB
system is refused: its relay log may hold transactions nobody applied.

reprotect(source, target): the old writer (`target`) is set READ_ONLY, then follows the new writer
through a channel with the replication account of IDP_MYSQL_CONNECTIONS, SSL mode REQUIRED: the existing
channel is kept if it already points there and is ACTIVE, enabled again if it points there, re-pointed
(disable, reset, update source, enable) if it points elsewhere, created if there is none; then waited
ACTIVE. The channel's source is the new writer's replicationHost/replicationPort.

Options (IDP_MYSQL_CONNECTIONS, each database's `heatwave:` block): dbSystemId (required),
compartmentId (required to list or create channels), channelId (optional: the inbound channel; found by
listing otherwise), channelName (optional: the replication channel name of a created channel, default
idp_dr), region (optional: the DB system's OCI region).
"""
from __future__ import annotations

import oci
from django.utils import timezone

from dr import mysqlconn
from dr.accounts import lock_application_accounts, unlock_application_accounts
from dr.errors import ProviderError, Unreachable
from dr.heatwave_oci import (ACTIVE, INACTIVE, NEEDS_ATTENTION, READ_ONLY, READ_WRITE, SSL_REQUIRED, TAG_CELL,
                             TAG_DRAINED, HeatWave, as_utc, parse_duration)
from dr.mysqlconn import one, run
from dr.replication.base import LagReading
from dr.replication.mysql import HEARTBEAT_DDL, _has_heartbeat, claim_name

DEFAULT_CHANNEL_NAME = "idp_dr"


class HeatWaveReplication:
    name = "heatwave"

    def __init__(self, api: HeatWave | None = None):
        self.api = api or HeatWave()

    @classmethod
    def from_settings(cls) -> "HeatWaveReplication":
        return cls(HeatWave.from_settings())

    # -- lag --------------------------------------------------------------------------------------

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        source, target = (mysqlconn.database(claim_name(cell_env, s)) for s in (source_side, target_side))
        self.api.remember_secret(source.password, target.password)
        detail: dict = {"adapter": self.name, "source": source.name, "target": target.name,
                        "dbSystemId": target.options.get("dbSystemId")}
        now = timezone.now()
        channel = self.api.inbound_channel(target)
        if channel is None:
            return LagReading(None, now, {**detail, "why": "the target DB system has no inbound channel"})
        detail.update(channelId=channel.id, channelState=channel.lifecycle_state, channelEnabled=channel.is_enabled)
        if not channel.is_enabled:
            return LagReading(None, now, {**detail, "why": "the inbound channel is disabled"})
        if channel.lifecycle_state != ACTIVE:
            return LagReading(None, now, {**detail, "why": f"the inbound channel is {channel.lifecycle_state}: "
                                                         f"{self.api.clean(channel.lifecycle_details or 'no details')}"})
        status = self.api.channel_status(target, channel.id, fresh=False)
        result = status.channel_status_result
        status_at = as_utc(status.time_updated)
        api_lag = parse_duration(result.lag_duration)
        detail["channelStatus"] = {"isHealthy": result.is_healthy, "isReceivedGtidSetApplied": result.is_received_gtid_set_applied,
                                   "lagDuration": result.lag_duration, "errors": [self.api.clean(e) for e in result.errors or []],
                                   "at": status_at.isoformat() if status_at else None}
        if not result.is_healthy or result.errors:
            return LagReading(None, status_at or now, {**detail, "why": "the channel status is unhealthy"})
        if api_lag is None:
            return LagReading(None, status_at or now, {**detail, "why": f"unreadable lagDuration {result.lag_duration!r}"})
        sql = self._sql_lag(source, target, detail)
        if sql.get("caughtUp"):
            return LagReading(0.0, timezone.now(), {**detail, "caughtUp": True})
        seconds = max(api_lag, sql.get("heartbeatLag") or 0.0)
        return LagReading(round(seconds, 3), status_at or now, {**detail, "caughtUp": False})

    def _sql_lag(self, source, target, detail: dict) -> dict:
        """Heartbeat and GTID refinement; an unreachable database only removes the refinement."""
        source_gtid = None
        try:
            with mysqlconn.connect(source, timeout=3) as conn:
                ro = one(conn, "SELECT @@global.read_only AS ro, @@global.super_read_only AS sro")
                detail["sourceReadOnly"] = bool(ro["ro"] or ro["sro"])
                if not detail["sourceReadOnly"]:
                    run(conn, *HEARTBEAT_DDL, "REPLACE INTO idp_dr.heartbeat VALUES (1, UTC_TIMESTAMP(6), @@server_id)")
                source_gtid = one(conn, "SELECT @@global.gtid_executed AS gtid")["gtid"] or ""
                detail["sourceGtid"] = source_gtid
        except (Unreachable, ProviderError) as exc:
            detail["sourceSql"] = self.api.clean(exc)
        out: dict = {}
        try:
            with mysqlconn.connect(target, timeout=3) as conn:
                if source_gtid is not None:
                    out["caughtUp"] = bool(one(conn, "SELECT GTID_SUBSET(%s, @@global.gtid_executed) AS applied",
                                               (source_gtid,))["applied"])
                if _has_heartbeat(conn):
                    now = one(conn, "SELECT UTC_TIMESTAMP(6) AS now")["now"]
                    beat = one(conn, "SELECT ts FROM idp_dr.heartbeat WHERE id = 1")
                    if beat:
                        out["heartbeatLag"] = max(0.0, (now - beat["ts"]).total_seconds())
                        detail["heartbeatAt"] = beat["ts"].isoformat()
        except (Unreachable, ProviderError) as exc:
            detail["targetSql"] = self.api.clean(exc)
        return out

    # -- promotion ---------------------------------------------------------------------------------

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        db = mysqlconn.database(claim_name(cell_env, side))
        self.api.remember_secret(db.password)
        ds = self.api.usable_db_system(db)
        out: dict = {"adapter": self.name, "database": db.name, "dbSystemId": ds.id, "epoch": epoch, "actions": []}
        channel = self.api.inbound_channel(db)
        if channel is not None:
            out["channelId"] = channel.id
            self._stop_channel(db, ds, channel, epoch, out)
        mode = self.api.set_database_mode(db, READ_WRITE)
        if mode["changed"]:
            out["actions"].append("databaseMode READ_WRITE")
            out["workRequestId"] = mode.get("workRequestId")
        sql = self.api.sql_state(db, why=f"DB system {ds.id} is READ_WRITE by the OCI API")
        if sql["readOnly"] or sql["superReadOnly"]:
            raise ProviderError(f"{db.name}: DB system {ds.id} is READ_WRITE by the OCI API but still read-only over "
                                f"SQL (read_only={int(sql['readOnly'])}, super_read_only={int(sql['superReadOnly'])})")
        beat = None
        try:
            with mysqlconn.connect(db) as conn:
                if _has_heartbeat(conn):
                    beat = one(conn, "SELECT ts FROM idp_dr.heartbeat WHERE id = 1")
        except ProviderError as exc:
            out["heartbeatError"] = self.api.clean(exc)
        if db.application_accounts:  # locked if it was a GoldenGate target: the writer's application may connect
            with mysqlconn.connect(db) as conn:
                out["unlockedAccounts"] = unlock_application_accounts(conn, db)
        return {**out, "writable": True, "alreadyPromoted": not out["actions"], "databaseMode": READ_WRITE,
                "readBack": {"api": READ_WRITE, "sql": {"read_only": False, "super_read_only": False}},
                "stoppedReplication": "channel disabled" in out["actions"], "gtidAfterPromotion": sql["gtidExecuted"],
                "lastAppliedHeartbeat": beat["ts"].isoformat() + "+00:00" if beat else None}

    def open_for_replicat(self, cell_env, side: str) -> dict:
        """The fenced old writer takes a GoldenGate Replicat's writes: the application's accounts locked and their
        sessions killed (the admin holds CONNECTION_ADMIN), then the DB system READ_WRITE, read back over SQL."""
        db = mysqlconn.database(claim_name(cell_env, side))
        self.api.remember_secret(db.password)
        with mysqlconn.connect(db) as conn:
            fenced = lock_application_accounts(conn, db, "KILL %s")
        mode = self.api.set_database_mode(db, READ_WRITE)
        sql = self.api.sql_state(db, why="the DB system is READ_WRITE for the GoldenGate Replicat")
        if sql["readOnly"] or sql["superReadOnly"]:
            raise ProviderError(f"{db.name}: READ_WRITE by the OCI API but still read-only over SQL")
        return {"adapter": self.name, "database": db.name, **fenced, "databaseMode": READ_WRITE,
                "changed": mode["changed"]}

    def _stop_channel(self, db, ds, channel, epoch: int, out: dict) -> None:
        api, channels = self.api, self.api.clients(db).channels
        tags = dict(channel.freeform_tags or {})
        disabled_now = False
        if channel.is_enabled:
            out["drain"] = self._drain(db, channel)
            api.call(f"heatwave: disabling channel {channel.id}", channels.update_channel, channel.id,
                     oci.mysql.models.UpdateChannelDetails(is_enabled=False, freeform_tags={**tags, TAG_DRAINED: str(epoch)}))
            out["actions"].append("channel disabled")
            disabled_now = True
            channel = api.wait_channel(db, channel.id, "becoming INACTIVE",
                                       lambda c: c.lifecycle_state == INACTIVE and not c.is_enabled)
        elif ds.database_mode == READ_WRITE:
            out["channelNote"] = "the channel was already disabled and the DB system writable: nothing to stop"
            return
        elif TAG_DRAINED not in tags:
            raise ProviderError(f"{db.name}: inbound channel {channel.id} was disabled outside a failover (no "
                                f"{TAG_DRAINED} tag), so what its relay log still holds was never applied; enable it, let "
                                f"it apply (channel status isReceivedGtidSetApplied), then promote again")
        if disabled_now or ds.database_mode != READ_WRITE:
            if channel.lifecycle_state != INACTIVE:
                channel = api.wait_channel(db, channel.id, "becoming INACTIVE", lambda c: c.lifecycle_state == INACTIVE)
            api.call(f"heatwave: resetting channel {channel.id}", channels.reset_channel, channel.id)
            api.wait_channel(db, channel.id, "reset", lambda c: c.lifecycle_state == INACTIVE)
            out["actions"].append("channel reset")

    def _drain(self, db, channel) -> dict:
        """Wait until the channel has applied every transaction it received: a status generated now
        (is_received_gtid_set_applied); when OCI gives none (e.g. the channel needs attention because the
        old source is gone), the same test over SQL: the channel's RECEIVED_TRANSACTION_SET
        (performance_schema.replication_connection_status) within @@global.gtid_executed."""
        seen: dict = {}

        def applied() -> bool:
            try:
                result = self.api.channel_status(db, channel.id, fresh=True).channel_status_result
                seen.update(source="channelStatus", lagDuration=result.lag_duration, healthy=result.is_healthy)
                return bool(result.is_received_gtid_set_applied)
            except Unreachable:
                raise
            except ProviderError as exc:
                seen["statusError"] = self.api.clean(exc)
            by_sql = self._applied_by_sql(db, channel)
            seen.update(source="sql", sqlApplied=by_sql)
            if by_sql is None:
                raise ProviderError(f"{db.name}: cannot tell whether channel {channel.id} applied what it received: "
                                    f"{seen['statusError']}; and performance_schema has no channel "
                                    f"{getattr(channel.target, 'channel_name', None)!r}")
            return by_sql

        self.api.wait(f"heatwave: channel {channel.id} ({db.name}) applying what it received", applied, bool,
                      timeout=self.api.drain_seconds)
        return {"receivedGtidSetApplied": True, **seen}

    @staticmethod
    def _applied_by_sql(db, channel) -> bool | None:
        name = getattr(channel.target, "channel_name", None)
        with mysqlconn.connect(db) as conn:
            row = one(conn, "SELECT RECEIVED_TRANSACTION_SET AS received FROM performance_schema.replication_connection_status "
                            "WHERE CHANNEL_NAME = %s", (name,))
            if row is None:
                return None
            return bool(one(conn, "SELECT GTID_SUBSET(%s, @@global.gtid_executed) AS applied",
                            (row["received"] or "",))["applied"])

    # -- reprotect -----------------------------------------------------------------------------------

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        source, target = (mysqlconn.database(claim_name(cell_env, s)) for s in (source_side, target_side))
        user, password = mysqlconn.replication_account()
        api = self.api
        api.remember_secret(password, source.password, target.password)
        channels = api.clients(target).channels
        m = oci.mysql.models
        fenced = api.set_database_mode(target, READ_ONLY)  # the old writer only follows from now on
        host, port = source.replication_host, source.replication_port
        out: dict = {"adapter": self.name, "database": target.name, "dbSystemId": fenced["dbSystemId"],
                     "replicatingFrom": source.name, "sourceHost": f"{host}:{port}", "sslMode": SSL_REQUIRED,
                     "targetReadOnly": True, "actions": [] if not fenced["changed"] else ["databaseMode READ_ONLY"]}
        source_details = dict(hostname=host, port=port, username=user, password=password, ssl_mode=SSL_REQUIRED)
        channel = api.inbound_channel(target)
        if channel is None:
            name = f"{cell_env.cell.name}-{cell_env.environment}"
            created = api.call(f"heatwave: creating a channel into {fenced['dbSystemId']} ({target.name})",
                               channels.create_channel, m.CreateChannelDetails(
                                   compartment_id=target.option("compartmentId"), display_name=f"idp-dr {name} from {source.name}",
                                   is_enabled=True, freeform_tags={TAG_CELL: name},
                                   source=m.CreateChannelSourceFromMysqlDetails(**source_details),
                                   target=m.CreateChannelTargetFromDbSystemDetails(
                                       db_system_id=fenced["dbSystemId"],
                                       channel_name=target.options.get("channelName") or DEFAULT_CHANNEL_NAME))).data
            channel_id = created.id
            out["actions"].append("channel created")
        else:
            channel_id = channel.id
            src = channel.source
            points_here = (getattr(src, "hostname", None), getattr(src, "port", None), getattr(src, "username", None),
                           getattr(src, "ssl_mode", None)) == (host, port, user, SSL_REQUIRED)
            if points_here and channel.is_enabled and channel.lifecycle_state == ACTIVE:
                return {**out, "channelId": channel_id, "channelState": ACTIVE, "alreadyReplicating": True}
            if points_here and channel.is_enabled and channel.lifecycle_state == NEEDS_ATTENTION:
                api.call(f"heatwave: resuming channel {channel_id}", channels.resume_channel, channel_id)
                out["actions"].append("channel resumed")
            else:
                if not points_here:
                    if channel.is_enabled:
                        api.call(f"heatwave: disabling channel {channel_id}", channels.update_channel, channel_id,
                                 m.UpdateChannelDetails(is_enabled=False))
                        out["actions"].append("channel disabled")
                    api.wait_channel(target, channel_id, "becoming INACTIVE",
                                     lambda c: c.lifecycle_state == INACTIVE and not c.is_enabled)
                    api.call(f"heatwave: resetting channel {channel_id}", channels.reset_channel, channel_id)
                    api.wait_channel(target, channel_id, "reset", lambda c: c.lifecycle_state == INACTIVE)
                    out["actions"].append("channel reset")
                elif channel.lifecycle_state not in (INACTIVE, ACTIVE, NEEDS_ATTENTION):
                    api.wait_channel(target, channel_id, "settling", lambda c: c.lifecycle_state in (INACTIVE, ACTIVE))
                tags = {k: v for k, v in (channel.freeform_tags or {}).items() if k != TAG_DRAINED}
                api.call(f"heatwave: pointing channel {channel_id} at {source.name} and enabling it", channels.update_channel,
                         channel_id, m.UpdateChannelDetails(is_enabled=True, freeform_tags=tags,
                                                            source=m.UpdateChannelSourceFromMysqlDetails(**source_details)))
                out["actions"].append("channel enabled from the new writer")
        active = api.wait_channel(target, channel_id, "becoming ACTIVE",
                                  lambda c: c.lifecycle_state == ACTIVE and c.is_enabled, need_active=True)
        return {**out, "channelId": channel_id, "channelState": active.lifecycle_state, "alreadyReplicating": False}


__all__ = ["HeatWaveReplication"]
