"""Fencing by account: how a managed MySQL (RDS, HeatWave) refuses the application while a GoldenGate Replicat
writes. There, read-only is all or nothing for every account the service lets us create, so after a reprotect the
old writer is made writable for the Replicat with the application's accounts locked and their sessions killed;
promoting that database again unlocks them. The accounts come from IDP_MYSQL_CONNECTIONS (applicationAccounts)."""
from __future__ import annotations

from dr.errors import ProviderError
from dr.mysqlconn import Database, one


def _accounts(db: Database) -> list[tuple[str, str]]:
    out = []
    for text in db.application_accounts:
        user, _, host = str(text).partition("@")
        out.append((user, host or "%"))
    return out


def lock_application_accounts(conn, db: Database, kill_sql: str) -> dict:
    """Lock the application's accounts (no new sessions) and kill their open sessions with `kill_sql`."""
    accounts = _accounts(db)
    if not accounts:
        raise ProviderError(f"{db.name}: no applicationAccounts in IDP_MYSQL_CONNECTIONS: a GoldenGate reprotect into "
                            f"a managed database keeps the application out by locking its accounts")
    with conn.cursor() as cur:
        for user, host in accounts:
            cur.execute("ALTER USER %s@%s ACCOUNT LOCK", (user, host))
    users = sorted({user for user, _ in accounts})
    row = one(conn, "SELECT GROUP_CONCAT(ID) AS ids FROM information_schema.PROCESSLIST WHERE USER IN ("
              + ", ".join(["%s"] * len(users)) + ")", users)
    sessions = [int(x) for x in str((row or {}).get("ids") or "").split(",") if x.strip()]
    with conn.cursor() as cur:
        for session in sessions:
            cur.execute(kill_sql, (session,))
    return {"lockedAccounts": [f"{u}@{h}" for u, h in accounts], "killedSessions": sessions}


def unlock_application_accounts(conn, db: Database) -> list[str]:
    """The database is the writer again: its application may connect. Idempotent; nothing to do without accounts."""
    accounts = _accounts(db)
    with conn.cursor() as cur:
        for user, host in accounts:
            cur.execute("ALTER USER %s@%s ACCOUNT UNLOCK", (user, host))
    return [f"{u}@{h}" for u, h in accounts]
