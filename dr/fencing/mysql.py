"""Write fence on MySQL / MariaDB: read-only on the old writer, read back.

MariaDB has `read_only` only, which does not stop accounts with SUPER / READ_ONLY ADMIN: applications must
write as ordinary users. MySQL 8 has `super_read_only`, which stops everyone. A restarted server takes its
read_only from its configuration, so run every cell database with read_only=ON in its config: the control
plane lifts it on the writer only.
"""
from __future__ import annotations

from dr.errors import ProviderError
from dr.mysqlconn import connect, database, gtid_position, read_only, run
from dr.replication.mysql import claim_name


class MySQLFence:
    name = "mysql"

    @classmethod
    def from_settings(cls) -> "MySQLFence":
        return cls()

    def fence(self, cell_env, side: str, epoch: int) -> dict:
        db = database(claim_name(cell_env, side))
        with connect(db, timeout=3) as conn:
            already = read_only(conn, db)
            if db.mariadb:
                run(conn, "SET GLOBAL read_only = ON")
            else:
                run(conn, "SET GLOBAL super_read_only = ON")
            if not read_only(conn, db):
                raise ProviderError(f"{db.name}: read_only did not take effect")
            pos = gtid_position(conn, db)
        return {"adapter": "mysql", "database": db.name, "readOnly": True, "alreadyFenced": already, "epoch": epoch,
                "gtidAtFence": pos["binlog"]}
