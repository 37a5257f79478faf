"""Bronze on OCI MySQL HeatWave (`heatwave-backup`): no replica; the secondary is a DB system restored from
the primary's point-in-time recovery or from its newest backup when a failover needs it.

Facts used (oci SDK 2.189.0; OCI docs "Point-in-Time Recovery", "Overview of Backups"):
- ``DbSystem.point_in_time_recovery_details.time_latest_recovery_point``: the newest moment a restore can
  reach. With PITR enabled the binary log is backed up every five minutes (an RPO of about five minutes
  for an ACTIVE DB system); the point does not move while the DB system is stopped.
- ``DbBackupsClient.list_backups(compartment_id, db_system_id=, lifecycle_state="ACTIVE",
  sort_by="timeCreated", sort_order="DESC")``; backups can be copied to another region (a DB system's
  backup_policy.copy_policies), a copy carrying ``time_copy_created`` beside ``time_created``. That a
  copy keeps its original's ``time_created`` and ``db_system_id`` is inferred from those fields, not read.
- ``DbSystemClient.create_db_system(CreateDbSystemDetails(..., source=CreateDbSystemSourceFromPitrDetails(
  db_system_id=, recovery_point=None: the latest) | CreateDbSystemSourceFromBackupDetails(backup_id=)))``
  creates a new DB system (compartment_id, shape_name and subnet_id are required); it is CREATING, then
  ACTIVE. A PITR restore reads the source DB system's backups and logs in its own region, so a restore
  in another region uses a copied backup (restoreFrom: backup, the default when the regions differ).

lag(source, target) = now - the newest point a restore would reach: the source's latest recovery point
(restoreFrom pitr) or the newest ACTIVE backup's time_created in the target region (restoreFrom backup).
The OCI API unreachable, PITR disabled or no backup: unknown (None), never zero.

promote(side, epoch): the restored DB system for `side`, found first (display name + freeform tag
`idp-dr-restore: <claim>`, not deleted or failed) so a retried step never creates a second one; else
created (with an opc-retry-token derived from the claim and epoch), waited ACTIVE (up to
IDP_HEATWAVE_RESTORE_SECONDS; past it the step is transient and a resume finds the same DB system),
made READ_WRITE if it is not, and its endpoint returned. When the connection file's host for the claim
is the restored endpoint, read_only is read back over SQL too.

reprotect: nothing to reverse (there is no replication to turn around); it says so.

Options (IDP_MYSQL_CONNECTIONS, `heatwave:` blocks). The source side: dbSystemId, compartmentId, region.
The restored side (its claim's entry; host/port/user/password are the DB system's endpoint once restored
and the source's admin account, which a restore keeps): compartmentId, subnetId, shapeName (required),
region, restoreFrom (pitr|backup; default pitr in the source's region, backup elsewhere),
backupCompartmentId (where the copies are listed; default compartmentId), displayName (default the
claim name + "-restored"), ipAddress (pin the endpoint's private IP, so the connection file can name it
in advance), availabilityDomain, configurationId, dataStorageSizeInGBs.
"""
from __future__ import annotations

import hashlib

import oci
from django.utils import timezone

from dr import mysqlconn
from dr.errors import ProviderError, Unreachable
from dr.heatwave_oci import ACTIVE, GONE, READ_WRITE, TAG_RESTORE, HeatWave, as_utc
from dr.replication.base import LagReading
from dr.replication.mysql import claim_name
from policy.names import other_side as other

PITR, BACKUP = "pitr", "backup"


class HeatWaveBackupRestore:
    name = "heatwave-backup"

    def __init__(self, api: HeatWave | None = None):
        self.api = api or HeatWave()

    @classmethod
    def from_settings(cls) -> "HeatWaveBackupRestore":
        return cls(HeatWave.from_settings())

    @staticmethod
    def _restore_from(source, target) -> str:
        mode = (target.options.get("restoreFrom") or "").lower()
        if mode in (PITR, BACKUP):
            return mode
        if mode:
            raise ProviderError(f"{target.name}: heatwave.restoreFrom {mode!r} is not pitr or backup")
        return PITR if (source.options.get("region") or None) == (target.options.get("region") or None) else BACKUP

    # -- the newest recoverable point -------------------------------------------------------------

    def _latest_point(self, source, target, mode: str) -> dict:
        """{"at": datetime, ...} or {"unknown": why}."""
        api = self.api
        if mode == PITR:
            try:
                ds = api.get_db_system(source)
            except Unreachable as exc:
                return {"unknown": f"the source DB system cannot be read: {exc}"}
            pitr = ds.point_in_time_recovery_details
            latest = as_utc(getattr(pitr, "time_latest_recovery_point", None)) if pitr else None
            if latest is None:
                return {"unknown": f"DB system {ds.id} has no point-in-time recovery point (is PITR enabled in its backup plan?)"}
            return {"at": latest, "source": "pitr", "dbSystemId": ds.id, "dbSystemState": ds.lifecycle_state}
        source_id = source.option("dbSystemId")
        compartment = target.options.get("backupCompartmentId") or target.option("compartmentId")
        try:
            backups = api.call(f"heatwave-backup: listing the backups of {source_id} in {compartment}",
                               api.clients(target).backups.list_backups, compartment, db_system_id=source_id,
                               lifecycle_state="ACTIVE", sort_by="timeCreated", sort_order="DESC", limit=10).data
        except Unreachable as exc:
            return {"unknown": f"the backups cannot be listed: {exc}"}
        if not backups:
            return {"unknown": f"no ACTIVE backup of DB system {source_id} in compartment {compartment}"
                               f"{' (region ' + target.options['region'] + ')' if target.options.get('region') else ''}"}
        newest = max(backups, key=lambda b: as_utc(b.time_created))
        return {"at": as_utc(newest.time_created), "source": "backup", "backupId": newest.id,
                "copiedAt": as_utc(newest.time_copy_created).isoformat() if newest.time_copy_created else None}

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        source, target = (mysqlconn.database(claim_name(cell_env, s)) for s in (source_side, target_side))
        mode = self._restore_from(source, target)
        now = self.api.clock()
        point = self._latest_point(source, target, mode)
        detail = {"adapter": self.name, "restoreFrom": mode, "source": source.name,
                  **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in point.items()}}
        if "unknown" in point:
            return LagReading(None, timezone.now(), {**detail, "why": point["unknown"]})
        return LagReading(round(max(0.0, (now - point["at"]).total_seconds()), 3), now,
                          {**detail, "dataLossWindow": "now - the newest point a restore reaches"})

    # -- promotion: restore -----------------------------------------------------------------------

    def _existing(self, target, display_name: str, tag: str):
        api = self.api
        compartment = target.option("compartmentId")
        found = api.call(f"heatwave-backup: looking for DB system {display_name!r} in {compartment}",
                         oci.pagination.list_call_get_all_results, api.clients(target).db_systems.list_db_systems,
                         compartment, display_name=display_name).data
        mine = [d for d in found if (d.freeform_tags or {}).get(TAG_RESTORE) == tag and d.lifecycle_state not in GONE]
        if len(mine) > 1:
            raise ProviderError(f"{target.name}: {len(mine)} restored DB systems named {display_name!r} "
                                f"({', '.join(d.id for d in mine)}): delete the extra ones")
        return mine[0] if mine else None

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        api, m = self.api, oci.mysql.models
        target = mysqlconn.database(claim_name(cell_env, side))
        source = mysqlconn.database(claim_name(cell_env, other(side)))
        api.remember_secret(target.password, source.password)
        mode = self._restore_from(source, target)
        display_name = target.options.get("displayName") or f"{target.name}-restored"
        db_systems = api.clients(target).db_systems
        out: dict = {"adapter": self.name, "database": target.name, "restoreFrom": mode, "displayName": display_name,
                     "epoch": epoch}
        existing = self._existing(target, display_name, target.name)
        if existing is not None:
            ds_id = existing.id
            out.update(created=False, note="found the DB system a previous attempt restored; not creating another")
        else:
            point = self._latest_point(source, target, mode)
            if mode == BACKUP and "backupId" not in point:
                raise ProviderError(f"{target.name}: nothing to restore from: {point.get('unknown')}")
            if mode == PITR:
                source_details = m.CreateDbSystemSourceFromPitrDetails(db_system_id=source.option("dbSystemId"))
            else:
                source_details = m.CreateDbSystemSourceFromBackupDetails(backup_id=point["backupId"])
            out["restoredUpTo"] = point["at"].isoformat() if "at" in point else None
            out["restoredFrom"] = point.get("backupId") or source.option("dbSystemId")
            optional = {k: target.options[o] for k, o in (("ip_address", "ipAddress"), ("availability_domain", "availabilityDomain"),
                                                          ("configuration_id", "configurationId"),
                                                          ("data_storage_size_in_gbs", "dataStorageSizeInGBs"))
                        if target.options.get(o)}
            details = m.CreateDbSystemDetails(
                compartment_id=target.option("compartmentId"), subnet_id=target.option("subnetId"),
                shape_name=target.option("shapeName"), display_name=display_name, source=source_details,
                freeform_tags={TAG_RESTORE: target.name}, description=f"idp-dr restore of {source.name} (epoch {epoch})",
                **optional)
            token = hashlib.sha256(f"{target.name}|{epoch}|{display_name}".encode()).hexdigest()[:64]
            ds_id = api.call(f"heatwave-backup: restoring {target.name} from {mode}", db_systems.create_db_system,
                             details, opc_retry_token=token).data.id
            out["created"] = True
        ds = api.wait(f"heatwave-backup: restored DB system {ds_id} ({target.name}) becoming ACTIVE",
                      lambda: api.get_db_system(target, ds_id), lambda d: d.lifecycle_state == ACTIVE,
                      fail=lambda d: (f"DB system is {d.lifecycle_state}: {d.lifecycle_details or 'no details'}"
                                      if d.lifecycle_state in GONE else None),
                      timeout=api.restore_seconds)
        if ds.database_mode != READ_WRITE:
            api.call(f"heatwave-backup: setting DB system {ds.id} READ_WRITE", db_systems.update_db_system, ds.id,
                     m.UpdateDbSystemDetails(database_mode=READ_WRITE))
            ds = api.wait(f"heatwave-backup: DB system {ds.id} becoming READ_WRITE", lambda: api.get_db_system(target, ds_id),
                          lambda d: d.lifecycle_state == ACTIVE and d.database_mode == READ_WRITE,
                          fail=lambda d: f"DB system is {d.lifecycle_state}" if d.lifecycle_state in GONE else None)
            out["madeWritable"] = True
        endpoint = self._endpoint(ds)
        out.update(dbSystemId=ds.id, lifecycleState=ds.lifecycle_state, databaseMode=ds.database_mode, endpoint=endpoint,
                   writable=True)
        if target.host in (endpoint.get("ipAddress"), endpoint.get("hostname")):
            sql = api.sql_state(target, why=f"restored DB system {ds.id} is ACTIVE and READ_WRITE by the OCI API")
            if sql["readOnly"] or sql["superReadOnly"]:
                raise ProviderError(f"{target.name}: restored DB system {ds.id} is read-only over SQL")
            out.update(readBack={"api": ds.database_mode, "sql": {"read_only": False, "super_read_only": False}},
                       gtidAfterPromotion=sql["gtidExecuted"])
        else:
            out["readBack"] = {"api": ds.database_mode, "sql": f"skipped: IDP_MYSQL_CONNECTIONS names {target.host} for "
                                                              f"{target.name}, the restored endpoint is "
                                                              f"{endpoint.get('ipAddress') or endpoint.get('hostname')}"}
        return out

    @staticmethod
    def _endpoint(ds) -> dict:
        for ep in ds.endpoints or []:
            if "WRITE" in (ep.modes or []) or not ep.modes:
                return {"hostname": ep.hostname, "ipAddress": ep.ip_address, "port": ep.port}
        return {"hostname": ds.hostname_label, "ipAddress": ds.ip_address, "port": ds.port}

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        return {"adapter": self.name, "reprotected": False, "database": claim_name(cell_env, target_side),
                "note": "backup/restore keeps no replica: there is nothing to turn around. The new writer is protected "
                        "by its own backup plan (enable automatic backups, point-in-time recovery and a cross-region "
                        "copy policy on it); the old DB system is left untouched for an operator to retire."}


__all__ = ["HeatWaveBackupRestore"]
