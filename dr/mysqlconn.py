"""Connections to the cells' MySQL/MariaDB databases, from a mounted file (never the policy or our database).

IDP_MYSQL_CONNECTIONS points at a YAML (or JSON) file, typically a mounted secret:

    replication: {user: repl, password: "..."}          # the account replicas connect with (reprotect)
    databases:
      payments-prod-mysql-primary:                     # the claim name
        host: 10.0.1.5
        port: 3306
        user: idp_admin                                # needs SUPER / READ_ONLY ADMIN and REPLICATION privileges
        password: "..."                                # or passwordFile: /run/secrets/...
        flavor: mariadb                                # mariadb, mysql (self-managed 8.0.23+), rds, heatwave
        replicationHost: 10.0.1.5                      # how the other side reaches it (default: host)
        rds: {instanceId: ..., region: us-east-1, parameterGroup: ...}        # flavor rds: the DB instance
        heatwave: {dbSystemId: ocid1..., compartmentId: ocid1..., channelId: ocid1...}  # flavor heatwave
        applicationAccounts: ["payments_app@%"]        # or once at the top level, for every database
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from django.conf import settings

from policy.yamlload import load_yaml

from .errors import ProviderError, TransientProviderError, Unreachable
from .secrets import read_secret_file

# Error codes of a server that is down or unreachable (connect) vs a query that failed.
CONNECT_ERRORS = {2003, 2005, 2006, 2013, 2055}


@dataclass(frozen=True)
class Database:
    name: str
    host: str
    port: int
    user: str
    password: str
    flavor: str
    replication_host: str
    replication_port: int
    options: dict = field(default_factory=dict)  # the flavor's own block (rds:, heatwave:), as written
    # The application's accounts ("user@host"): a GoldenGate reprotect into a managed database fences by account.
    application_accounts: tuple = ()

    def option(self, key: str) -> str:
        value = self.options.get(key)
        if not value:
            raise ProviderError(f"{self.name}: no {self.flavor}.{key} in IDP_MYSQL_CONNECTIONS")
        return value

    @property
    def mariadb(self) -> bool:
        return self.flavor == "mariadb"


_cache: dict = {}


def _load() -> dict:
    path = settings.IDP_MYSQL_CONNECTIONS
    if not path:
        raise ProviderError("no MySQL connections configured: set IDP_MYSQL_CONNECTIONS to the mounted connections file")
    p = Path(path)
    try:
        stat = p.stat()
    except OSError as exc:
        raise ProviderError(f"cannot read IDP_MYSQL_CONNECTIONS ({path}): {exc.strerror}") from None
    key = (str(p), stat.st_mtime_ns)
    if _cache.get("key") != key:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else load_yaml(text)
        _cache.update(key=key, data=data or {})
    return _cache["data"]


def database(name: str) -> Database:
    entry = (_load().get("databases") or {}).get(name)
    if entry is None:
        raise ProviderError(f"no connection for database {name} in IDP_MYSQL_CONNECTIONS")
    password = entry.get("password", "")
    if entry.get("passwordFile"):
        password = read_secret_file(entry["passwordFile"], "mysql", f"the passwordFile of {name}")
    return Database(name, entry["host"], int(entry.get("port", 3306)), entry["user"], password,
                    entry.get("flavor", "mysql"), entry.get("replicationHost", entry["host"]),
                    int(entry.get("replicationPort", entry.get("port", 3306))),
                    dict(entry.get(entry.get("flavor", "mysql")) or {}),
                    tuple(entry.get("applicationAccounts", _load().get("applicationAccounts")) or ()))


def replication_account() -> tuple[str, str]:
    repl = _load().get("replication") or {}
    if "user" not in repl:
        raise ProviderError("IDP_MYSQL_CONNECTIONS has no `replication` account (needed to reprotect)")
    return repl["user"], repl.get("password", "")


@contextmanager
def connect(db: Database, timeout: float = 5):
    try:
        conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password, autocommit=True,
                               connect_timeout=timeout, read_timeout=30, write_timeout=30,
                               cursorclass=pymysql.cursors.DictCursor)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code in CONNECT_ERRORS:
            raise Unreachable(f"{db.name} at {db.host}:{db.port} is unreachable: {exc.args[-1]}") from None
        raise ProviderError(f"{db.name}: cannot connect: {exc.args[-1]}") from None
    try:
        yield conn
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code in CONNECT_ERRORS:
            raise Unreachable(f"{db.name}: connection lost: {exc.args[-1]}") from None
        raise TransientProviderError(f"{db.name}: {exc.args[-1]}") from None
    except pymysql.err.MySQLError as exc:
        raise ProviderError(f"{db.name}: {exc.args[-1] if exc.args else exc}") from None
    finally:
        conn.close()


def one(conn, sql: str, args=None) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def run(conn, *statements: str) -> None:
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


# The oldest servers whose replication statements the adapters send (REPLICA/SOURCE forms from MySQL 8.0.23;
# MariaDB keeps its SLAVE/MASTER forms and GTID functions from 10.6). See policy.adapters.SUPPORTED_VERSIONS.
MIN_VERSIONS = {"mysql": (8, 0, 23), "mariadb": (10, 6, 0)}


def server_version(conn, db: Database) -> tuple[int, ...]:
    """The server's version, refused with a clear error when older than the adapters support."""
    text = one(conn, "SELECT VERSION() AS v")["v"]
    numbers = tuple(int(part) for part in text.split("-")[0].split(".")[:3] if part.isdigit())
    flavor = "mariadb" if db.mariadb or "mariadb" in text.lower() else "mysql"
    if numbers < MIN_VERSIONS[flavor]:
        need = ".".join(map(str, MIN_VERSIONS[flavor]))
        raise ProviderError(f"{db.name} runs {flavor} {text}: failover needs {flavor} {need} or later")
    return numbers


def replica_status(conn, db: Database) -> dict | None:
    return one(conn, "SHOW SLAVE STATUS" if db.mariadb else "SHOW REPLICA STATUS")


def gtid_position(conn, db: Database) -> dict:
    """What this server has written and applied, as GTID sets."""
    if db.mariadb:
        row = one(conn, "SELECT @@gtid_binlog_pos AS binlog, @@gtid_slave_pos AS applied, @@gtid_current_pos AS current")
    else:
        row = one(conn, "SELECT @@gtid_executed AS binlog, @@gtid_executed AS applied, @@gtid_executed AS current")
    return {k: (v or "") for k, v in row.items()}


def read_only(conn, db: Database) -> bool:
    row = one(conn, "SELECT @@read_only AS ro" + ("" if db.mariadb else ", @@super_read_only AS sro"))
    return bool(row["ro"]) and (db.mariadb or bool(row["sro"]))
