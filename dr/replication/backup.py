"""Backup-restore (the bronze profile): the data-loss window is the time since the source's latest restorable
point, and promotion restores that point in time into the secondary. The managed service decides how: each
database flavour has its own adapter (rds_backup for Amazon RDS, heatwave_backup for OCI MySQL HeatWave)."""
from __future__ import annotations

from django.utils.module_loading import import_string

from dr.errors import ProviderError
from dr.mysqlconn import database
from dr.replication.mysql import claim_name

BY_FLAVOR = {
    "rds": "dr.replication.rds_backup.RdsBackupRestore",
    "heatwave": "dr.replication.heatwave_backup.HeatWaveBackupRestore",
}


class BackupRestore:
    name = "backup"

    @classmethod
    def from_settings(cls) -> "BackupRestore":
        return cls()

    def _for(self, cell_env, side: str):
        db = database(claim_name(cell_env, side))
        if db.flavor not in BY_FLAVOR:
            raise ProviderError(f"backup-restore needs an Amazon RDS or OCI MySQL HeatWave database; {db.name} is "
                                f"'{db.flavor}' (flavor in IDP_MYSQL_CONNECTIONS)")
        cls = import_string(BY_FLAVOR[db.flavor])
        return cls.from_settings() if hasattr(cls, "from_settings") else cls()

    def lag(self, cell_env, source_side: str, target_side: str):
        return self._for(cell_env, source_side).lag(cell_env, source_side, target_side)

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        out = self._for(cell_env, side).promote(cell_env, side, epoch)
        # What the runbook points the cell at: the cloud's id of the restored database.
        restored = out.get("instanceId") or out.get("dbSystemId")
        return {**out, "restored": {"externalName": restored, "endpoint": out.get("endpoint")}} if restored else out

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        return self._for(cell_env, target_side).reprotect(cell_env, source_side, target_side)
