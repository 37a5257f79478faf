"""The DR lab: real servers on this machine, so a failover is measured, not claimed.

Two MariaDB servers with GTID replication between them (the cell `lab`'s primary on 127.0.0.11 and
secondary on 127.0.0.12), a PowerDNS authoritative server serving the cell's public host, and a writer
that inserts numbered rows through whatever the DNS answers. `manage.py lab up` starts it and leaves it
running; the lab tests start their own. Every listener binds a loopback address; servers are stopped by
their process ids.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import requests
import yaml

from policy.yamlload import load_yaml

POLICY_FILE = Path(__file__).resolve().parent.parent / "policy" / "policy.yaml"
ZONE = "lab.test"
HOST = f"app.{ZONE}"
DB_PORT = 33306
PRIMARY_IP, SECONDARY_IP = "127.0.0.11", "127.0.0.12"
APP_USER, APP_PASSWORD = "app", "app-lab-password"
REPL_USER, REPL_PASSWORD = "repl", "repl-lab-password"
ADMIN_USER, ADMIN_PASSWORD = "idp_admin", "admin-lab-password"
API_KEY = "lab-api-key"


ACCOUNTS_AND_SCHEMA = (
    f"CREATE USER IF NOT EXISTS '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}'",
    f"GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%'",
    f"CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'",
    f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION",
    # The application writes as an ordinary user: MariaDB's read_only does not stop SUPER accounts.
    f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'",
    "CREATE DATABASE IF NOT EXISTS app",
    "CREATE TABLE IF NOT EXISTS app.orders (seq BIGINT PRIMARY KEY, written_at DATETIME(6) NOT NULL)",
    f"GRANT SELECT, INSERT ON app.* TO '{APP_USER}'@'%'",
)


class LabError(RuntimeError):
    """A lab server could not be started: the message says why (with its log)."""


def _wait(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise LabError(f"{what} did not come up in {timeout:g}s\n{tail}")


class MariaDB:
    def __init__(self, base: Path, name: str, ip: str, server_id: int):
        self.dir, self.name, self.ip, self.server_id = base / name, name, ip, server_id
        self.proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def start(self) -> None:
        for tool in ("mariadbd", "mariadb-install-db"):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                raise LabError(f"{tool} is not installed (apt-get install mariadb-server)")
        data = self.dir / "data"
        if not data.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            out = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                                  "--auth-root-authentication-method=normal", "--skip-test-db"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise LabError(f"mariadb-install-db failed for {self.name}: {out.stderr[-1500:]}")
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--port={DB_PORT}", f"--bind-address={self.ip}",
             f"--socket={self.dir / 'mysqld.sock'}", f"--pid-file={self.dir / 'mysqld.pid'}", f"--server-id={self.server_id}",
             "--log-bin=binlog", "--binlog-format=ROW", "--user=root", "--skip-name-resolve", "--gtid-strict-mode=1",
             "--innodb-buffer-pool-size=32M", "--performance-schema=OFF"],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: self.root().close() is None, 30, f"MariaDB {self.name} on {self.ip}:{DB_PORT}", self.log)

    def root(self):
        return pymysql.connect(unix_socket=str(self.dir / "mysqld.sock"), user="root", autocommit=True, connect_timeout=2)

    def sql(self, *statements: str) -> list:
        conn = self.root()
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                rows = []
                for s in statements:
                    cur.execute(s)
                    rows = cur.fetchall()
                return rows
        finally:
            conn.close()

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


class PowerDNS:
    def __init__(self, base: Path, dns_port: int = 15353, api_port: int = 18081):
        self.dir, self.dns_port, self.api_port = base / "pdns", dns_port, api_port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        binary = shutil.which("pdns_server") or "/usr/sbin/pdns_server"
        schema = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
        if not Path(binary).exists() or not schema.exists():
            raise LabError("PowerDNS is not installed (apt-get install pdns-server pdns-backend-sqlite3)")
        self.dir.mkdir(parents=True, exist_ok=True)
        db = self.dir / "pdns.sqlite3"
        if not db.exists():
            with sqlite3.connect(db) as conn:
                conn.executescript(schema.read_text())
        (self.dir / "pdns.conf").write_text("\n".join([
            "launch=gsqlite3", f"gsqlite3-database={db}", "local-address=127.0.0.1", f"local-port={self.dns_port}",
            "api=yes", f"api-key={API_KEY}", "webserver=yes", "webserver-address=127.0.0.1", f"webserver-port={self.api_port}",
            "webserver-allow-from=127.0.0.0/8", f"socket-dir={self.dir}", "guardian=no", "daemon=no", "disable-syslog=yes",
            "cache-ttl=0", "negquery-cache-ttl=0", "query-cache-ttl=0", "zone-cache-refresh-interval=0", "",
        ]))
        log = self.dir / "server.log"
        self.proc = subprocess.Popen([binary, f"--config-dir={self.dir}"], stdout=open(log, "a"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait(lambda: requests.get(f"{self.url}/api/v1/servers/localhost", headers={"X-API-Key": API_KEY}, timeout=1).ok,
              20, f"PowerDNS on 127.0.0.1:{self.dns_port} (API {self.api_port})", log)

    def create_zone(self, zone: str, records: dict[str, str]) -> None:
        body = {"name": f"{zone}.", "kind": "Native", "nameservers": [f"ns1.{zone}."], "rrsets": [
            {"name": f"{name}.", "type": "A", "ttl": 30, "records": [{"content": ip, "disabled": False}]}
            for name, ip in records.items()]}
        r = requests.post(f"{self.url}/api/v1/servers/localhost/zones", json=body, headers={"X-API-Key": API_KEY}, timeout=5)
        if r.status_code not in (201, 409):
            raise LabError(f"PowerDNS zone creation failed: {r.status_code} {r.text}")

    def resolve(self, host: str) -> str:
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.cache = ["127.0.0.1"], self.dns_port, None
        return str(resolver.resolve(host, "A", lifetime=2)[0])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


@dataclass
class Lab:
    base: Path
    rpo_seconds: int = 10
    primary: MariaDB = field(init=False)
    secondary: MariaDB = field(init=False)
    dns: PowerDNS = field(init=False)

    def __post_init__(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self.primary = MariaDB(self.base, "primary", PRIMARY_IP, 1)
        self.secondary = MariaDB(self.base, "secondary", SECONDARY_IP, 2)
        self.dns = PowerDNS(self.base)

    def up(self) -> "Lab":
        try:
            self.primary.start()
            self.secondary.start()
            self._set_up_replication()
            self.dns.start()
            self.dns.create_zone(ZONE, {HOST: PRIMARY_IP})
        except Exception:
            self.down()
            raise
        self.write_config()
        return self

    def _set_up_replication(self) -> None:
        for db in (self.primary, self.secondary):
            db.sql("SET GLOBAL read_only = ON" if db is self.secondary else "SET GLOBAL read_only = OFF")
        self.primary.sql(*ACCOUNTS_AND_SCHEMA)
        pos = self.primary.sql("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        self.secondary.sql(
            f"SET GLOBAL gtid_slave_pos = '{pos}'",
            f"CHANGE MASTER TO MASTER_HOST='{PRIMARY_IP}', MASTER_PORT={DB_PORT}, MASTER_USER='{REPL_USER}', "
            f"MASTER_PASSWORD='{REPL_PASSWORD}', MASTER_USE_GTID=slave_pos",
            "START SLAVE",
        )
        # The users and schema were created before replication started: create them on the replica too.
        self.secondary.sql("SET SESSION sql_log_bin = 0", *ACCOUNTS_AND_SCHEMA)
        _wait(lambda: self.secondary.sql("SHOW SLAVE STATUS")[0]["Slave_SQL_Running"] == "Yes", 15,
              "replication primary -> secondary", self.secondary.log)

    def down(self) -> None:
        for server in (self.dns, self.secondary, self.primary):
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - best effort on teardown
                server.stop(kill=True) if isinstance(server, MariaDB) else None

    # -- the control plane's view of the lab -----------------------------------------------------

    @property
    def connections_file(self) -> Path:
        return self.base / "mysql-connections.yaml"

    @property
    def policy_file(self) -> Path:
        return self.base / "policy.yaml"

    def write_config(self) -> None:
        db = lambda ip: {"host": ip, "port": DB_PORT, "user": ADMIN_USER, "password": ADMIN_PASSWORD, "flavor": "mariadb"}  # noqa: E731
        self.connections_file.write_text(yaml.safe_dump({
            "replication": {"user": REPL_USER, "password": REPL_PASSWORD},
            "databases": {"lab-prod-mysql-primary": db(PRIMARY_IP), "lab-prod-mysql-secondary": db(SECONDARY_IP)},
        }))
        self.connections_file.chmod(0o600)
        doc = load_yaml(POLICY_FILE.read_text())
        doc["version"] = "lab"
        doc["drProfiles"]["lab"] = {"description": "The DR lab: MariaDB replication, RPO of the lab",
                                    "rpoSeconds": self.rpo_seconds, "rtoSeconds": 120, "computeMode": "pilot",
                                    "replicationTool": "mysql-replication", "secondaryPlacement": "other-cloud"}
        doc["tiers"]["C1"]["allowedDrProfiles"].append("lab")
        doc["failover"]["drillIntervalSeconds"] = {}
        # The lab's PowerDNS serves app.lab.test: the cell's team may use that zone.
        hosts = doc.setdefault("publicHosts", {}).setdefault("teams", {}).setdefault("payments", {"dnsZones": []})
        hosts["dnsZones"] = [*hosts.get("dnsZones", []), ZONE]
        # Self-managed MariaDB on this machine, whatever the candidates' clouds say: the `mysql` database adapter.
        cand = {"latencyMs": 5, "costIndex": 1.0, "capacityHeadroomPct": 50, "freeVcpu": 64, "maxStorageGB": 1024,
                "database": "mysql"}
        doc["cells"] = {**doc["cells"], "lab": {
            "team": "payments", "description": "The DR lab (real MariaDB pair and PowerDNS on this machine)",
            "environments": ["prod"], "trafficProvider": "powerdns",
            "candidates": [{"cloud": "oci", "region": "lab-east", "cluster": "lab-east-1", "endpoint": PRIMARY_IP,
                            **cand, "latencyMs": 3},
                           {"cloud": "aws", "region": "lab-west", "cluster": "lab-west-1", "endpoint": SECONDARY_IP, **cand}],
        }}
        self.policy_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    def settings(self) -> dict:
        """Django settings (names and values) that point the control plane at the lab."""
        return {
            "IDP_POLICY_FILE": self.policy_file, "IDP_MYSQL_CONNECTIONS": str(self.connections_file),
            "IDP_POWERDNS_URL": self.dns.url, "IDP_POWERDNS_API_KEY": API_KEY, "IDP_POWERDNS_ZONES": [ZONE],
            "IDP_POWERDNS_RESOLVER": f"127.0.0.1:{self.dns.dns_port}",
            # Everything real but the clusters: compute is observed through the sandbox status source.
            "IDP_SANDBOX_PROVIDERS": [],
        }

    def app_rows(self, server: MariaDB) -> set[int]:
        return {r["seq"] for r in server.sql("SELECT seq FROM app.orders")}


class Writer(threading.Thread):
    """Inserts numbered rows at a steady rate into whatever the DNS answers, as the application user."""

    def __init__(self, lab: Lab, interval: float = 0.02):
        super().__init__(daemon=True)
        self.lab, self.interval = lab, interval
        self.acked: dict[int, float] = {}  # seq -> wall time the commit was acknowledged
        self.errors: list[tuple[float, str]] = []
        self.targets: dict[str, int] = {}
        self._halt = threading.Event()
        self.seq = 0

    def run(self) -> None:
        conn, conn_ip = None, None
        while not self._halt.is_set():
            self.seq += 1
            try:
                ip = self.lab.dns.resolve(HOST)
                if ip != conn_ip:
                    if conn:
                        conn.close()
                    conn, conn_ip = pymysql.connect(host=ip, port=DB_PORT, user=APP_USER, password=APP_PASSWORD,
                                                    database="app", autocommit=True, connect_timeout=1, read_timeout=2,
                                                    write_timeout=2), ip
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO orders VALUES (%s, UTC_TIMESTAMP(6))", (self.seq,))
                self.acked[self.seq] = time.time()
                self.targets[ip] = self.targets.get(ip, 0) + 1
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, the writer goes on
                self.errors.append((time.time(), f"{type(exc).__name__}: {exc}"))
                if conn:
                    conn.close()
                conn, conn_ip = None, None
            time.sleep(self.interval)
        if conn:
            conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
