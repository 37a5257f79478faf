"""Backup and restore on Amazon RDS for MySQL (the `backup` replication of bronze cells): no replica runs;
a failover restores the source instance's automated backups to a new instance.

- lag = now - the source's LatestRestorableTime (describe_db_instances): the data-loss window if the
  source were lost now. RDS uploads transaction logs about every five minutes, so a few minutes is
  normal. Automated backups off (BackupRetentionPeriod 0, no LatestRestorableTime) is an unknown lag.
- promote = restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=<the source instanceId>,
  TargetDBInstanceIdentifier=<the secondary's instanceId>, UseLatestRestorableTime=True), waited until
  available; the answer carries the new instance's endpoint so the control plane can point the cell at it.
  RDS creates a restored instance with the default security group, subnet group and parameter group unless
  told otherwise, so the secondary's `rds:` options (parameterGroup, subnetGroup, securityGroupIds,
  instanceClass) are passed, falling back to the source's subnet group and security groups. The source's
  parameter group is never reused: it may hold read_only=1 from the fence.
  Idempotent: a target that exists and carries our tag `idp:restoredFrom=<source>` is the restore of an
  earlier attempt (waited for, then returned); any other instance of that name is refused, never touched.
- reprotect: nothing to reverse (there is no replication to turn around); the answer says so.

The restore is made in the source's region (automated backups live there). A secondary in another region
needs the backups replicated to it (start_db_instance_automated_backups_replication and a restore from
SourceDBInstanceAutomatedBackupsArn): refused here with a clear error, not attempted.
"""
from __future__ import annotations

from django.utils import timezone

from dr.errors import ProviderError
from dr.mysqlconn import database
from dr.rdsapi import RdsApi, endpoint
from dr.replication.base import LagReading
from dr.replication.mysql import claim_name
from policy.names import other_side

TAG_SOURCE = "idp:restoredFrom"
TAG_EPOCH = "idp:epoch"


def _tags(inst: dict) -> dict:
    return {t["Key"]: t["Value"] for t in inst.get("TagList", [])}


class RdsBackupRestore:
    name = "backup"

    def __init__(self, api: RdsApi | None = None):
        self.api = api or RdsApi()

    @classmethod
    def from_settings(cls) -> "RdsBackupRestore":
        return cls(RdsApi.from_settings())

    def _pair(self, cell_env, source_side: str, target_side: str):
        source, target = database(claim_name(cell_env, source_side)), database(claim_name(cell_env, target_side))
        if source.option("region") != target.option("region"):
            raise ProviderError(f"{target.name}: a restore into {target.option('region')} from {source.name} in "
                                f"{source.option('region')} needs its automated backups replicated to that region; "
                                f"this adapter restores in the source's region only")
        return source, target

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        source, target = self._pair(cell_env, source_side, target_side)
        inst = self.api.instance(source)
        measured = timezone.now()
        detail = {"adapter": "rds-backup", "source": source.name, "sourceInstanceId": source.option("instanceId"),
                  "target": target.name, "backupRetentionDays": inst.get("BackupRetentionPeriod", 0),
                  "sourceStatus": inst.get("DBInstanceStatus")}
        latest = inst.get("LatestRestorableTime")
        if not latest or not inst.get("BackupRetentionPeriod"):
            return LagReading(None, measured, {**detail, "why": "the source has no automated backups to restore from"})
        seconds = max(0.0, (measured - latest).total_seconds())
        return LagReading(round(seconds, 3), measured, {**detail, "latestRestorableTime": latest.isoformat()})

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        source_side = other_side(side)
        source, target = self._pair(cell_env, source_side, side)
        region = source.option("region")
        source_id, target_id = source.option("instanceId"), target.option("instanceId")
        what = f"{target.name} ({target_id})"
        out = {"adapter": "rds-backup", "database": target.name, "instanceId": target_id, "region": region,
               "restoredFrom": source_id, "epoch": epoch}
        existing = self.api.find(region, target_id, what)
        if existing is not None:
            if _tags(existing).get(TAG_SOURCE) != source_id:
                raise ProviderError(f"{what}: an RDS instance of that name already exists and was not restored from "
                                    f"{source_id} by this control plane; refusing to touch it")
            out["restoreStartedEarlier"] = True
        else:
            src = self.api.describe(region, source_id, f"{source.name} ({source_id})")
            if not src.get("BackupRetentionPeriod") or not src.get("LatestRestorableTime"):
                raise ProviderError(f"{source.name}: RDS instance {source_id} has no automated backups to restore from")
            params = self._restore_params(target, src)
            out["latestRestorableTime"] = src["LatestRestorableTime"].isoformat()
            self.api.call(region, "restore_db_instance_to_point_in_time", f"{what}: restore from {source_id}",
                          SourceDBInstanceIdentifier=source_id, TargetDBInstanceIdentifier=target_id,
                          UseLatestRestorableTime=True,
                          Tags=[{"Key": TAG_SOURCE, "Value": source_id}, {"Key": TAG_EPOCH, "Value": str(epoch)}],
                          **params)
            out["restoreStartedEarlier"] = False
            out["parameterGroup"] = params.get("DBParameterGroupName", "the engine default")
        inst = self.api.wait_for(region, target_id, f"{what}: restore",
                                 lambda i: i.get("DBInstanceStatus") == "available" and (i.get("Endpoint") or {}).get("Address"))
        return {**out, "writable": True, "status": inst["DBInstanceStatus"], "endpoint": endpoint(inst)}

    def _restore_params(self, target, src: dict) -> dict:
        opts = target.options
        params: dict = {}
        group = opts.get("parameterGroup")
        if group:
            if self.api.group_read_only(target.option("region"), group, target.name) == "1":
                raise ProviderError(f"{target.name}: parameter group {group} sets read_only=1: the restored instance "
                                    f"would not take writes; give the secondary a group without it")
            params["DBParameterGroupName"] = group
        subnet = opts.get("subnetGroup") or (src.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
        if subnet:
            params["DBSubnetGroupName"] = subnet
        sgs = opts.get("securityGroupIds") or [g["VpcSecurityGroupId"] for g in src.get("VpcSecurityGroups", [])
                                               if g.get("VpcSecurityGroupId")]
        if sgs:
            params["VpcSecurityGroupIds"] = list(sgs)
        if opts.get("instanceClass"):
            params["DBInstanceClass"] = opts["instanceClass"]
        return params

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        return {"adapter": "rds-backup", "reprotected": False,
                "note": "nothing to reverse: backup/restore runs no replication to turn around; the old instance "
                        "is left as it is"}


__all__ = ["RdsBackupRestore"]
