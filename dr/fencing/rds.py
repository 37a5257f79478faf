"""Write fence on Amazon RDS for MySQL (`rds`): read_only=1 in the instance's own DB parameter group, read back.

RDS refuses `SET GLOBAL read_only` / `super_read_only` (no SUPER), so the fence is the parameter group
(modify_db_parameter_group, ApplyMethod=immediate: read_only is dynamic), then `SELECT @@global.read_only`
over SQL until the server shows it. Because it lives in the group, the fence survives a restart or a
Multi-AZ failover of the old writer. read_only does not stop accounts that bypass it: the application must
write as an ordinary user, not as the RDS master user. See dr/rdsapi.py for the parameter group rules
(custom group only, never shared).

Order: the API first (describe the instance, check its group, set read_only=1), then SQL. When the RDS API
of the region cannot be reached, or the database cannot be reached over SQL, this raises Unreachable; in
the second case the group already holds read_only=1, which applies when the instance answers again.
"""
from __future__ import annotations

from dr.errors import Unreachable
from dr.mysqlconn import connect, database, gtid_position
from dr.rdsapi import RdsApi
from dr.replication.mysql import claim_name


class RdsFence:
    name = "rds"

    def __init__(self, api: RdsApi | None = None):
        self.api = api or RdsApi()

    @classmethod
    def from_settings(cls) -> "RdsFence":
        return cls(RdsApi.from_settings())

    def fence(self, cell_env, side: str, epoch: int) -> dict:
        db = database(claim_name(cell_env, side))
        region, instance_id = self.api.where(db)
        inst = self.api.instance(db)
        group = self.api.own_parameter_group(db, inst)
        changed = self.api.set_group_read_only(db, group, True)
        try:
            with connect(db, timeout=3) as conn:
                waited, reads = self.api.wait_sql_read_only(conn, db, True)
                pos = gtid_position(conn, db)
        except Unreachable as exc:
            raise Unreachable(f"{exc} (read_only=1 is set in parameter group {group} and applies when it answers)") from None
        out = {"adapter": "rds", "database": db.name, "instanceId": instance_id, "region": region,
               "parameterGroup": group, "readOnly": True, "alreadyFenced": not changed and reads == 1,
               "epoch": epoch, "gtidAtFence": pos["binlog"], "readBackSeconds": waited}
        if out["alreadyFenced"]:
            out["note"] = f"already read-only: parameter group {group} had read_only=1 and the server showed it"
        return out
