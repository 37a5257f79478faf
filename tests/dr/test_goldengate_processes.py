"""Contract tests for driving GoldenGate's Extract/Replicat through the deployment's REST API, against a
local deployment (tests/dr/ggfake.py) that checks auth, paths, methods and bodies and keeps process state."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from cells.rendering import goldengate_names
from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.replication.goldengate import GoldenGateRest
from dr.replication.goldengate_processes import (
    GoldenGateApi, GoldenGateProcesses, alias_for, pair_names, trail_for,
)
from dr.replication.goldengate_promoter import GoldenGatePromoter
from tests.dr.ggfake import FakeDeployment

CELL_ENV = SimpleNamespace(cell=SimpleNamespace(name="pay-ments"), environment="prod")
FORWARD = pair_names("pay-ments", "prod", "primary")
REVERSE = pair_names("pay-ments", "prod", "secondary")
ALIAS = {side: alias_for("pay-ments", "prod", side) for side in ("primary", "secondary")}
DB_PASSWORDS = {"primary": "db-Primary-pw", "secondary": "db-Secondary-pw"}


@pytest.fixture(scope="module")
def deployment():
    fake = FakeDeployment()
    yield fake
    fake.stop()


@pytest.fixture
def gg(deployment):
    deployment.credentials.clear()
    deployment.processes.clear()
    deployment.log.clear()
    deployment.fail_with.clear()
    deployment.app_writing = True
    deployment.write_per_tick, deployment.apply_per_tick = 700, 400
    return deployment


@pytest.fixture
def connections(tmp_path, settings):
    (tmp_path / "secondary.pw").write_text(DB_PASSWORDS["secondary"] + "\n")
    doc = {"databases": {
        "pay-ments-prod-mysql-primary": {"host": "10.0.1.5", "port": 3306, "user": "ggadmin",
                                         "password": DB_PASSWORDS["primary"], "flavor": "mysql"},
        "pay-ments-prod-mysql-secondary": {"host": "10.9.1.5", "port": 3307, "user": "ggadmin",
                                           "passwordFile": str(tmp_path / "secondary.pw"), "flavor": "mysql"},
    }}
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump(doc))
    settings.IDP_MYSQL_CONNECTIONS = str(path)
    return path


def processes(gg, password=None, **kwargs):
    api = GoldenGateApi(gg.url, gg.user, password or gg.password, timeout=5)
    return GoldenGateProcesses(api, poll_interval=0, sleep=lambda s: None, **kwargs)


def outcomes(result) -> list[tuple[str, str, str]]:
    return [(c["method"], c["path"], c["outcome"]) for c in result["calls"]]


# -- names -------------------------------------------------------------------------------------------------

def test_forward_pair_uses_the_probe_names_and_the_reverse_pair_differs():
    assert (FORWARD.extract, FORWARD.replicat) == goldengate_names("pay-ments", "prod")
    assert (REVERSE.extract, REVERSE.replicat) == goldengate_names("pay-ments", "prod/reverse")
    assert {REVERSE.extract, REVERSE.replicat}.isdisjoint({FORWARD.extract, FORWARD.replicat})
    assert pair_names("pay-ments", "prod", "secondary") == REVERSE  # deterministic
    for alias in ALIAS.values():
        assert len(alias) <= 30 and alias.startswith("GG") and alias.replace("_", "").isalnum()
    assert trail_for(FORWARD, 0) != trail_for(FORWARD, 2) and len(trail_for(FORWARD, 0)) == 2


# -- setup ----------------------------------------------------------------------------------------------------

def test_setup_creates_aliases_extract_and_replicat_and_confirms_running(gg, connections):
    result = processes(gg).setup(CELL_ENV, "primary", "secondary")
    trail = trail_for(FORWARD, 0)
    assert result["extract"] == FORWARD.extract and result["replicat"] == FORWARD.replicat
    assert result["running"] is True and result["trail"] == trail
    assert gg.process("extract", FORWARD.extract).status == "running"
    assert gg.process("replicat", FORWARD.replicat).status == "running"
    # The aliases point at each side's database (MySQL userid user@host:port/db), with its own password.
    assert gg.credentials[("OracleGoldenGate", ALIAS["primary"])] == {
        "userid": "ggadmin@10.0.1.5:3306/pay_ments", "password": DB_PASSWORDS["primary"]}
    assert gg.credentials[("OracleGoldenGate", ALIAS["secondary"])] == {
        "userid": "ggadmin@10.9.1.5:3307/pay_ments", "password": DB_PASSWORDS["secondary"]}
    # The Extract captures on the primary alias into the trail; the Replicat applies it on the secondary.
    extract = gg.process("extract", FORWARD.extract).body
    assert extract["credentials"] == {"domain": "OracleGoldenGate", "alias": ALIAS["primary"]}
    assert extract["source"] == "tranlogs" and extract["begin"] == "now" and extract["targets"] == [{"name": trail}]
    assert extract["config"] == [f"EXTRACT {FORWARD.extract}", f"USERIDALIAS {ALIAS['primary']} DOMAIN OracleGoldenGate",
                                 f"EXTTRAIL {trail}", "TABLE pay_ments.*;"]
    replicat = gg.process("replicat", FORWARD.replicat).body
    assert replicat["credentials"]["alias"] == ALIAS["secondary"] and replicat["source"] == {"name": trail}
    assert replicat["checkpoint"] == {"table": "pay_ments.idp_gg_checkpoint"}
    assert replicat["mode"] == {"type": "nonintegrated", "parallel": True}
    assert replicat["begin"] == {"sequence": 0, "offset": 0}
    # Every REST call is in the step output, with what it did.
    got = outcomes(result)
    assert ("POST", f"/services/v2/credentials/OracleGoldenGate/{ALIAS['primary']}", "created") in got
    assert ("POST", f"/services/v2/extracts/{FORWARD.extract}", "created") in got
    assert ("POST", f"/services/v2/replicats/{FORWARD.replicat}", "created") in got
    assert ("PATCH", f"/services/v2/extracts/{FORWARD.extract}", "started") in got
    assert ("GET", f"/services/v2/replicats/{FORWARD.replicat}/info/status", "confirmed running") in got
    assert gg.calls("PATCH") == [("PATCH", f"/services/v2/extracts/{FORWARD.extract}"),
                                 ("PATCH", f"/services/v2/replicats/{FORWARD.replicat}")]
    assert [c["body"] for c in gg.log if c["method"] == "PATCH"] == [{"status": "running"}] * 2
    text = json.dumps(result)
    assert DB_PASSWORDS["primary"] not in text and DB_PASSWORDS["secondary"] not in text and gg.password not in text


def test_setup_twice_is_a_no_op(gg, connections):
    procs = processes(gg)
    procs.setup(CELL_ENV, "primary", "secondary")
    gg.log.clear()
    again = procs.setup(CELL_ENV, "primary", "secondary")
    assert gg.calls("POST", "PATCH", "DELETE") == []
    assert {o for _, _, o in outcomes(again)} == {"already present", "already running"}
    assert gg.process("replicat", FORWARD.replicat).status == "running"


def test_setup_restarts_a_stopped_process_and_refuses_a_foreign_one(gg, connections):
    procs = processes(gg)
    procs.setup(CELL_ENV, "primary", "secondary")
    gg.process("replicat", FORWARD.replicat).status = "stopped"
    again = procs.setup(CELL_ENV, "primary", "secondary")
    assert ("PATCH", f"/services/v2/replicats/{FORWARD.replicat}", "started") in outcomes(again)
    gg.process("extract", FORWARD.extract).body["credentials"]["alias"] = "SOMEONE_ELSE"
    with pytest.raises(ProviderError, match="connects as SOMEONE_ELSE"):
        procs.setup(CELL_ENV, "primary", "secondary")


def test_an_alias_with_another_userid_is_not_replaced(gg, connections):
    gg.credentials[("OracleGoldenGate", ALIAS["primary"])] = {"userid": "ggadmin@10.0.0.99:3306/pay_ments", "password": "x"}
    with pytest.raises(ProviderError, match="exists for ggadmin@10.0.0.99:3306/pay_ments"):
        processes(gg).setup(CELL_ENV, "primary", "secondary")
    assert gg.calls("POST") == []


# -- cutover and promotion ---------------------------------------------------------------------------------

def behind(gg, ticks=6):
    """The application writes for a while; the Replicat falls behind (it applies less than is written)."""
    for _ in range(ticks):
        gg.tick()


def test_cutover_stops_the_extract_drains_the_replicat_and_stops_it(gg, connections):
    procs = processes(gg)
    procs.setup(CELL_ENV, "primary", "secondary")
    behind(gg)
    extract, replicat = gg.process("extract", FORWARD.extract), gg.process("replicat", FORWARD.replicat)
    assert replicat.position < extract.position
    result = procs.cutover(CELL_ENV, "primary", "secondary")
    assert extract.status == "stopped" and replicat.status == "stopped"
    assert replicat.position == extract.position > 2500  # everything, across a trail-file boundary
    assert result["appliedUpTo"]["sequence"] == extract.position // 2500
    assert (result["appliedUpTo"]["sequence"], result["appliedUpTo"]["offset"]) == \
        (result["extractWrote"]["sequence"], result["extractWrote"]["offset"])
    drained = next(c for c in result["calls"] if c["outcome"] == "drained")
    assert drained["polls"] > 2  # the fake applies the rest of the trail over several polls
    # The Extract stopped before the drain was measured; the Replicat stopped only after it.
    patches = [(c["path"], c["body"]) for c in gg.log if c["method"] == "PATCH"][-2:]
    assert patches == [(f"/services/v2/extracts/{FORWARD.extract}", {"status": "stopped"}),
                       (f"/services/v2/replicats/{FORWARD.replicat}", {"status": "stopped"})]
    assert ("GET", f"/services/v2/extracts/{FORWARD.extract}/info/checkpoints") in gg.calls("GET")
    # Run again (a resumed step): nothing to change, still drained.
    gg.log.clear()
    again = procs.cutover(CELL_ENV, "primary", "secondary")
    assert gg.calls("PATCH", "POST", "DELETE") == [] and again["drained"] is True


def test_an_abended_replicat_during_the_drain_is_a_clear_error(gg, connections):
    procs = processes(gg)
    procs.setup(CELL_ENV, "primary", "secondary")
    behind(gg)
    gg.process("replicat", FORWARD.replicat).status = "abended"
    with pytest.raises(ProviderError, match=f"replicat {FORWARD.replicat} is abended .* before promoting") as err:
        procs.cutover(CELL_ENV, "primary", "secondary")
    assert not isinstance(err.value, TransientProviderError)


def test_an_abended_replicat_at_start_is_a_clear_error(gg, connections):
    procs = processes(gg)
    procs.setup(CELL_ENV, "primary", "secondary")
    replicat = gg.process("replicat", FORWARD.replicat)
    replicat.status, replicat.abend_on_start = "stopped", True
    with pytest.raises(ProviderError, match=f"replicat {FORWARD.replicat} is abended, not running: read its report"):
        procs.setup(CELL_ENV, "primary", "secondary")


def test_a_drain_that_does_not_finish_in_time_is_transient(gg, connections):
    procs = processes(gg, drain_timeout=0)
    procs.setup(CELL_ENV, "primary", "secondary")
    behind(gg)
    with pytest.raises(TransientProviderError, match="applied trail .* up to sequence"):
        procs.cutover(CELL_ENV, "primary", "secondary")


class RecordingDatabasePromoter:
    name = "mysql"

    def __init__(self, gg):
        self.gg, self.calls = gg, []

    def promote(self, cell_env, side, epoch):
        r, e = self.gg.process("replicat", FORWARD.replicat), self.gg.process("extract", FORWARD.extract)
        self.calls.append({"side": side, "epoch": epoch, "replicat": r.status, "extract": e.status,
                           "drained": r.position == e.position})
        return {"adapter": "mysql", "database": f"pay-ments-prod-mysql-{side}", "writable": True, "epoch": epoch,
                "gtidAfterPromotion": "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77", "lastAppliedHeartbeat": None}


def promoter(gg, db):
    return GoldenGatePromoter(GoldenGateRest(gg.url, gg.user, gg.password), db, poll_interval=0, sleep=lambda s: None)


def test_promote_cuts_over_then_makes_the_target_writable_then_captures_on_it(gg, connections):
    db = RecordingDatabasePromoter(gg)
    gate = promoter(gg, db)
    gate.setup(CELL_ENV)
    behind(gg)
    result = gate.promote(CELL_ENV, "secondary", 7)
    # The database was made writable only after the Extract stopped and the Replicat drained and stopped.
    assert db.calls == [{"side": "secondary", "epoch": 7, "replicat": "stopped", "extract": "stopped", "drained": True}]
    assert result["writable"] is True and result["epoch"] == 7 and result["adapter"] == "goldengate"
    assert result["gtidAfterPromotion"].endswith(":1-77")  # the runbook's data-loss check still sees it
    # The new writer's changes are captured from its promotion on, into a fresh trail of this epoch.
    reverse_extract = gg.process("extract", REVERSE.extract)
    assert reverse_extract.status == "running" and reverse_extract.body["targets"] == [{"name": trail_for(REVERSE, 7)}]
    assert reverse_extract.body["credentials"]["alias"] == ALIAS["secondary"]
    assert ("replicat", REVERSE.replicat) not in gg.processes
    paths = [(c["method"], c["path"]) for c in result["calls"]]
    assert paths.index(("PATCH", f"/services/v2/extracts/{FORWARD.extract}")) < \
        paths.index(("PATCH", f"/services/v2/replicats/{FORWARD.replicat}")) < \
        paths.index(("POST", f"/services/v2/extracts/{REVERSE.extract}"))


def test_reprotect_creates_the_reverse_pair_and_deletes_the_old(gg, connections):
    db = RecordingDatabasePromoter(gg)
    gate = promoter(gg, db)
    gate.setup(CELL_ENV)
    behind(gg)
    gate.promote(CELL_ENV, "secondary", 7)
    for _ in range(3):
        gg.tick()  # the application writes to the new writer before reprotect
    captured = gg.process("extract", REVERSE.extract).position
    assert captured > 0
    result = gate.reprotect(CELL_ENV, "secondary", "primary")
    assert result["extract"] == REVERSE.extract and result["replicat"] == REVERSE.replicat
    assert result["removed"] == {"extract": FORWARD.extract, "replicat": FORWARD.replicat}
    assert set(gg.processes) == {("extract", REVERSE.extract), ("replicat", REVERSE.replicat)}
    replicat = gg.process("replicat", REVERSE.replicat)
    assert replicat.status == "running" and replicat.body["credentials"]["alias"] == ALIAS["primary"]
    # The reverse Replicat reads the trail the Extract has written since promotion, from its start.
    assert replicat.body["source"] == {"name": trail_for(REVERSE, 7)} and replicat.body["begin"] == {"sequence": 0, "offset": 0}
    assert "warning" not in result
    got = outcomes(result)
    assert ("DELETE", f"/services/v2/extracts/{FORWARD.extract}", "deleted") in got
    assert ("DELETE", f"/services/v2/replicats/{FORWARD.replicat}", "deleted") in got
    assert ("GET", f"/services/v2/extracts/{REVERSE.extract}", "already present") in got
    # Again: nothing changes.
    gg.log.clear()
    again = gate.reprotect(CELL_ENV, "secondary", "primary")
    assert gg.calls("POST", "PATCH", "DELETE") == []
    assert ("GET", f"/services/v2/extracts/{FORWARD.extract}/info/status", "already absent") in outcomes(again)


def test_failback_recreates_the_forward_pair_on_a_fresh_trail(gg, connections):
    db = RecordingDatabasePromoter(gg)
    gate = promoter(gg, db)
    gate.setup(CELL_ENV)
    gate.promote(CELL_ENV, "secondary", 7)
    gate.reprotect(CELL_ENV, "secondary", "primary")
    behind(gg)
    # Failback: the writer is now the secondary; the reverse pair is cut over, the forward one comes back.
    gate.database_promoter = SimpleNamespace(promote=lambda ce, side, epoch: {"adapter": "mysql", "writable": True})
    gate.promote(CELL_ENV, "primary", 8)
    assert gg.process("replicat", REVERSE.replicat).status == "stopped"
    assert gg.process("replicat", REVERSE.replicat).position == gg.process("extract", REVERSE.extract).position
    gate.reprotect(CELL_ENV, "primary", "secondary")
    assert set(gg.processes) == {("extract", FORWARD.extract), ("replicat", FORWARD.replicat)}
    assert gg.process("extract", FORWARD.extract).body["targets"] == [{"name": trail_for(FORWARD, 8)}]
    assert trail_for(FORWARD, 8) != trail_for(FORWARD, 0)


def test_cutover_without_any_pair_is_a_clear_error(gg, connections):
    with pytest.raises(ProviderError, match="was never set up"):
        processes(gg).cutover(CELL_ENV, "primary", "secondary")


# -- errors -----------------------------------------------------------------------------------------------

def test_a_401_is_a_permanent_error_without_the_password(gg, connections):
    procs = processes(gg, password="Wr0ng-Secret-42")
    with pytest.raises(ProviderError) as err:
        procs.setup(CELL_ENV, "primary", "secondary")
    assert not isinstance(err.value, TransientProviderError)
    text = str(err.value)
    assert "HTTP 401" in text and "ggadmin" in text and "Wr0ng-Secret-42" not in text
    assert "Wr0ng-Secret-42" not in repr(procs.api)
    assert gg.credentials == {} and gg.processes == {}


def test_a_5xx_is_transient_with_the_server_message(gg, connections):
    gg.fail_next(503, "Administration Service is restarting")
    with pytest.raises(TransientProviderError, match="HTTP 503: OGG-12000 Administration Service is restarting"):
        processes(gg).setup(CELL_ENV, "primary", "secondary")
    processes(gg).setup(CELL_ENV, "primary", "secondary")  # the retry goes through


def test_a_refused_request_names_the_server_message(gg, connections):
    procs = processes(gg)
    with pytest.raises(ProviderError, match="HTTP 400: OGG-12030 credential alias NOPE does not exist") as err:
        procs.ensure_extract(FORWARD.extract, "NOPE", "ab", schema="pay_ments")
    assert not isinstance(err.value, TransientProviderError)


def test_an_unreachable_deployment_is_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = GoldenGateApi(f"http://127.0.0.1:{port}", "ggadmin", "pw", timeout=2)
    with pytest.raises(Unreachable):
        GoldenGateProcesses(api).status("extract", FORWARD.extract)


# -- settings ----------------------------------------------------------------------------------------------

def test_the_promoter_uses_the_probe_settings(monkeypatch, tmp_path):
    secret = tmp_path / "gg-password"
    secret.write_text("from-the-secret\n")
    monkeypatch.setenv("IDP_GOLDENGATE_USER", "ggadmin")
    monkeypatch.setenv("IDP_GOLDENGATE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("IDP_GOLDENGATE_URL", "https://gg.example.test/")
    monkeypatch.setenv("IDP_GOLDENGATE_DRAIN_TIMEOUT", "42")
    gate = GoldenGatePromoter.from_settings()
    assert gate.name == "goldengate"
    procs = gate.processes(CELL_ENV)
    assert (procs.api.url, procs.api.user, procs.drain_timeout) == ("https://gg.example.test", "ggadmin", 42.0)
    assert "from-the-secret" not in repr(procs.api)
    monkeypatch.delenv("IDP_GOLDENGATE_USER")
    with pytest.raises(ProviderError, match="set IDP_GOLDENGATE_USER"):
        GoldenGatePromoter.from_settings().processes(CELL_ENV)
