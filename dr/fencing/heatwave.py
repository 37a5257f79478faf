"""Write fence on an OCI MySQL HeatWave DB system (`heatwave`): the DB system's database mode READ_ONLY.

HeatWave's administrator cannot `SET GLOBAL super_read_only` (no SUPER / SYSTEM_VARIABLES_ADMIN: OCI docs,
"Default MySQL Privileges"); the supported way is the DB system's database mode,
``DbSystemClient.update_db_system(id, UpdateDbSystemDetails(database_mode="READ_ONLY"))``, with which
"MySQL HeatWave sets the SUPER_READ_ONLY system variable to ON" (OCI docs, "Database and Access Modes").
Replicated writes through an inbound channel still apply, so a fenced DB system can follow a new writer.

The fence waits for the update (the DB system goes UPDATING, then ACTIVE with databaseMode READ_ONLY),
then reads ``@@global.read_only, @@global.super_read_only`` back over SQL: the API's mode alone is not
proof, since Health Monitor turns super_read_only OFF after a disk-space shortage whatever the mode.
Idempotent: an already READ_ONLY DB system gets no update call.

Errors: the OCI API or the DB system unreachable (its region down), or the DB system stopped, failed or
deleted: Unreachable (the runbook goes on best-effort in an unplanned failover; the raised epoch keeps
the old writer out). Set READ_ONLY but not readable over SQL: Unreachable, saying the API took it.

Needs, per database in IDP_MYSQL_CONNECTIONS (flavor heatwave): host/port/user/password of the DB
system's endpoint and admin user, and `heatwave: {dbSystemId, region?}`.
"""
from __future__ import annotations

from dr import mysqlconn
from dr.errors import ProviderError
from dr.heatwave_oci import READ_ONLY, HeatWave
from dr.replication.mysql import claim_name


class HeatWaveFence:
    name = "heatwave"

    def __init__(self, api: HeatWave | None = None):
        self.api = api or HeatWave()

    @classmethod
    def from_settings(cls) -> "HeatWaveFence":
        return cls(HeatWave.from_settings())

    def fence(self, cell_env, side: str, epoch: int) -> dict:
        db = mysqlconn.database(claim_name(cell_env, side))
        self.api.remember_secret(db.password)
        mode = self.api.set_database_mode(db, READ_ONLY)
        sql = self.api.sql_state(db, why=f"DB system {mode['dbSystemId']} is READ_ONLY by the OCI API")
        if not (sql["readOnly"] and sql["superReadOnly"]):
            raise ProviderError(f"{db.name}: DB system {mode['dbSystemId']} is READ_ONLY by the OCI API but "
                                f"@@global.super_read_only is {'ON' if sql['superReadOnly'] else 'OFF'} and read_only "
                                f"{'ON' if sql['readOnly'] else 'OFF'} (Health Monitor lifts super_read_only after a "
                                f"disk-space shortage whatever the mode; a restart of the DB system restores it)")
        return {"adapter": self.name, "database": db.name, "dbSystemId": mode["dbSystemId"], "readOnly": True,
                "alreadyFenced": not mode["changed"], "epoch": epoch, "databaseMode": mode["databaseMode"],
                "databaseModeBefore": mode["databaseModeBefore"], "workRequestId": mode.get("workRequestId"),
                "readBack": {"api": mode["databaseMode"], "sql": {"read_only": sql["readOnly"],
                                                                  "super_read_only": sql["superReadOnly"]}},
                "gtidAtFence": sql["gtidExecuted"]}
