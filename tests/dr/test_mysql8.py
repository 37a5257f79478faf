"""MySQL 8 reprotect: the statements sent, captured from the adapter (the lab covers MariaDB against real servers)."""
from contextlib import contextmanager

import pytest
import yaml

from dr.errors import ProviderError
from dr.replication import mysql as mysql_adapter


class Recorder:
    """A pymysql-like connection that records each statement and answers the reads the adapter makes."""

    def __init__(self, version):
        self.version, self.sent = version, []

    def cursor(self):
        rec = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql, args=None):
                rec.sent.append((sql, args))
                self.last = sql

            def fetchone(self):
                if self.last.startswith("SELECT VERSION()"):
                    return {"v": rec.version}
                if self.last.startswith("SHOW REPLICA STATUS"):
                    return {"Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes"}
                return None

        return Cursor()


@pytest.fixture
def connections(tmp_path, settings):
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump({
        "replication": {"user": "repl", "password": "s3cret-repl"},
        "databases": {f"payments-prod-mysql-{side}": {"host": f"10.0.0.{i}", "user": "admin", "password": "pw",
                                                       "flavor": "mysql"} for i, side in ((1, "primary"), (2, "secondary"))}}))
    settings.IDP_MYSQL_CONNECTIONS = str(path)


class CellEnv:
    class cell:
        name = "payments"

    environment = "prod"


def reprotect_with(monkeypatch, version):
    rec = Recorder(version)

    @contextmanager
    def connect(db, timeout=5):
        yield rec

    monkeypatch.setattr(mysql_adapter, "connect", connect)
    return rec, lambda: mysql_adapter.MySQLReplication().reprotect(CellEnv, "secondary", "primary")


def test_mysql8_reprotect_uses_tls_and_public_key_retrieval(monkeypatch, connections):
    rec, reprotect = reprotect_with(monkeypatch, "8.4.3")
    out = reprotect()
    statements = [sql for sql, _ in rec.sent]
    change = next((sql, args) for sql, args in rec.sent if sql.startswith("CHANGE REPLICATION SOURCE"))
    assert "SOURCE_SSL=1" in change[0] and "GET_SOURCE_PUBLIC_KEY=1" in change[0] and "SOURCE_AUTO_POSITION=1" in change[0]
    assert change[1] == ("10.0.0.2", 3306, "repl", "s3cret-repl")
    assert statements.index("SET GLOBAL super_read_only = ON") < statements.index("START REPLICA")
    assert not any("MASTER" in sql or "SLAVE" in sql for sql in statements)  # gone in MySQL 8.4
    assert "s3cret-repl" not in str(out)


def test_mysql_older_than_8_0_23_is_refused_before_anything_changes_replication(monkeypatch, connections):
    rec, reprotect = reprotect_with(monkeypatch, "8.0.22-log")
    with pytest.raises(ProviderError, match=r"needs mysql 8\.0\.23 or later"):
        reprotect()
    assert not any(sql.startswith(("STOP REPLICA", "CHANGE REPLICATION")) for sql, _ in rec.sent)


def test_a_goldengate_replicat_may_write_into_the_fenced_old_writer_but_the_application_may_not(monkeypatch, connections):
    rec = Recorder("8.4.3")
    answers = {"SELECT @@read_only": {"ro": 1, "sro": 0}}
    fetch = rec.cursor

    def cursor():
        cur = fetch()
        base = cur.fetchone
        cur.fetchone = lambda: next((v for k, v in answers.items() if cur.last.startswith(k)), None) or base()
        return cur

    rec.cursor = cursor

    @contextmanager
    def connect(db, timeout=5):
        yield rec

    monkeypatch.setattr(mysql_adapter, "connect", connect)
    out = mysql_adapter.MySQLReplication().open_for_replicat(CellEnv, "primary")
    statements = [sql for sql, _ in rec.sent]
    assert "SET GLOBAL super_read_only = OFF" in statements
    assert not any("read_only = OFF" in sql and "super" not in sql for sql in statements)  # read_only stays ON
    assert (out["readOnly"], out["superReadOnly"]) == (True, False)


def test_a_goldengate_reprotect_into_a_managed_database_says_it_is_not_supported_yet(monkeypatch):
    from dr.replication.goldengate_promoter import SideDatabase

    class Rds:
        name = "rds"

    monkeypatch.setattr(SideDatabase, "_adapter", staticmethod(lambda ce, side: Rds()))
    with pytest.raises(ProviderError, match="not supported yet"):
        SideDatabase().open_for_replicat(CellEnv, "primary")
