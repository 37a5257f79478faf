"""The OCI MySQL HeatWave API (/20190415) on the local OCI server of tests/dr/ocifake.py (signature checked the
same way), plus a fake of the DB systems' SQL side for `dr.mysqlconn.connect`.

It behaves as the service's documentation says, not as the adapters would like:
- DB systems: GET/PUT/POST/list. PUT is accepted on an ACTIVE DB system only (409 otherwise), answers 202
  with an opc-work-request-id, and the change lands after `settle` further GETs (UPDATING meanwhile).
  A create validates compartmentId/shapeName/subnetId and its source (PITR needs a known DB system with
  PITR, BACKUP an ACTIVE backup), honours opc-retry-token, and is CREATING for `settle` GETs.
- Channels: create (source MYSQL with hostname/username/password/sslMode, target DBSYSTEM of a known DB
  system, channel names unique per DB system; the password is kept but never returned), get, list, PUT
  (not while CREATING/UPDATING/DELETING), reset (INACTIVE and disabled only, else 409), resume
  (NEEDS_ATTENTION only), delete, generateChannelStatus (202) + channelStatus (404 until generated).
  An enabled channel becomes ACTIVE only if its source host is a known, reachable endpoint; otherwise
  NEEDS_ATTENTION.
- Backups: list with the SDK's filters and sort.
- SQL (`FakeSql`): super_read_only follows the DB system's databaseMode once the update has landed (as
  HeatWave sets it); `SET GLOBAL/PERSIST` of a read-only variable is refused as for the HeatWave admin.
"""
from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote

from werkzeug import Response

from dr.errors import ProviderError, Unreachable
from tests.dr.ocifake import OciFake, _error, _json

BASE = "/20190415"
_ids = itertools.count(1)


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class HeatWaveFake(OciFake):
    settle = 1  # GETs a change takes to land

    def reset(self):
        super().reset()
        self.db_systems: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self.channel_passwords: dict[str, str] = {}
        self.channel_status_of: dict[str, dict] = {}   # what a generated status will say, per channel
        self.statuses: dict[str, dict] = {}             # generated statuses
        self.backups: list[dict] = []
        self.retry_tokens: dict[str, str] = {}
        self.unreachable_hosts: set[str] = set()
        self.external_sources: set[str] = set()         # hosts outside OCI a channel can reach
        self._pending: dict[str, dict] = {}             # resource id -> {"left": n, "apply": {...}}

    # -- set-up ----------------------------------------------------------------------------------

    def add_db_system(self, ds_id, *, name, compartment, ip, mode="READ_WRITE", state="ACTIVE", pitr_latest=None,
                      tags=None, region="us-ashburn-1"):
        now = _now()
        self.db_systems[ds_id] = {
            "id": ds_id, "displayName": name, "compartmentId": compartment, "subnetId": "ocid1.subnet.oc1..s",
            "lifecycleState": state, "lifecycleDetails": None, "databaseMode": mode, "accessMode": "UNRESTRICTED",
            "mysqlVersion": "8.4.4", "shapeName": "MySQL.4", "dataStorageSizeInGBs": 50, "ipAddress": ip, "port": 3306,
            "portX": 33060, "hostnameLabel": name,
            "endpoints": [{"hostname": f"{name}.sub.vcn.oraclevcn.com", "ipAddress": ip, "port": 3306, "portX": 33060,
                           "modes": ["READ", "WRITE"], "status": "ACTIVE", "resourceType": "DBSYSTEM", "resourceId": ds_id}],
            "pointInTimeRecoveryDetails": ({"timeEarliestRecoveryPoint": _ts(now - timedelta(days=7)),
                                            "timeLatestRecoveryPoint": _ts(pitr_latest)} if pitr_latest else None),
            "freeformTags": dict(tags or {}), "definedTags": {}, "timeCreated": _ts(now), "timeUpdated": _ts(now),
            "maintenance": {"windowStartTime": "SUNDAY 00:00"}, "deletionPolicy": {"automaticBackupRetention": "RETAIN",
                                                                                   "finalBackup": "SKIP_FINAL_BACKUP",
                                                                                   "isDeleteProtected": False},
            "region": region,
        }
        return self.db_systems[ds_id]

    def add_backup(self, backup_id, *, db_system_id, compartment, created: datetime, state="ACTIVE", copied: datetime | None = None):
        self.backups.append({"id": backup_id, "displayName": backup_id, "compartmentId": compartment, "dbSystemId": db_system_id,
                             "lifecycleState": state, "timeCreated": _ts(created), "backupType": "INCREMENTAL",
                             "creationType": "AUTOMATIC", "dataStorageSizeInGBs": 50, "backupSizeInGBs": 1,
                             "retentionInDays": 7, "mysqlVersion": "8.4.4", "shapeName": "MySQL.4",
                             "timeCopyCreated": _ts(copied) if copied else None, "freeformTags": {}, "definedTags": {}})

    def add_channel(self, channel_id, *, target, source_host, compartment, user="repl", enabled=True, state="ACTIVE",
                    port=3306, ssl="REQUIRED", name="idp_dr", tags=None):
        now = _ts(_now())
        self.channels[channel_id] = {
            "id": channel_id, "compartmentId": compartment, "displayName": f"channel {channel_id}", "isEnabled": enabled,
            "source": {"sourceType": "MYSQL", "hostname": source_host, "port": port, "username": user, "sslMode": ssl},
            "target": {"targetType": "DBSYSTEM", "dbSystemId": target, "channelName": name, "applierUsername": "admin"},
            "lifecycleState": state, "lifecycleDetails": None, "timeCreated": now, "timeUpdated": now,
            "freeformTags": dict(tags or {}), "definedTags": {}}
        self.channel_passwords[channel_id] = "set-by-the-test"
        self.channel_status_of[channel_id] = {"isHealthy": True, "isReceivedGtidSetApplied": True, "errors": [],
                                              "lagDuration": "PT0S"}
        return self.channels[channel_id]

    def endpoint_hosts(self) -> set[str]:
        return {h for d in self.db_systems.values() if d["lifecycleState"] == "ACTIVE"
                for h in (d["ipAddress"], *(e["hostname"] for e in d["endpoints"]))} | self.external_sources

    def mutations(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests if r["method"] != "GET"]

    # -- lifecycle -----------------------------------------------------------------------------

    def _later(self, resource: dict, apply: dict, interim: str):
        resource["lifecycleState"] = interim
        self._pending[resource["id"]] = {"left": self.settle, "apply": apply}

    def _tick(self, resource: dict):
        pending = self._pending.get(resource["id"])
        if pending is None:
            return
        if pending["left"] > 0:
            pending["left"] -= 1
            return
        apply = dict(pending.pop("apply"))
        del self._pending[resource["id"]]
        state = apply.pop("lifecycleState", None)
        resource.update(apply)
        resource["timeUpdated"] = _ts(_now())
        if state == "CHANNEL":  # an enabled channel is ACTIVE only when it reaches its source
            if not resource["isEnabled"]:
                resource["lifecycleState"] = "INACTIVE"
            elif resource["source"]["hostname"] in self.endpoint_hosts() - self.unreachable_hosts:
                resource["lifecycleState"], resource["lifecycleDetails"] = "ACTIVE", None
            else:
                resource["lifecycleState"] = "NEEDS_ATTENTION"
                resource["lifecycleDetails"] = f"cannot connect to the source {resource['source']['hostname']}"
        elif state:
            resource["lifecycleState"] = state

    # -- routing -------------------------------------------------------------------------------

    def _route(self, request, body) -> Response:
        path, method = unquote(request.path), request.method
        if not path.startswith(BASE + "/"):
            return super()._route(request, body)
        q = {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()}
        rest = path[len(BASE):]
        if rest == "/dbSystems":
            return self._list_db_systems(q) if method == "GET" else self._create_db_system(request, body or {})
        if m := re.fullmatch(r"/dbSystems/([^/]+)", rest):
            return self._db_system(m.group(1), method, body or {})
        if rest == "/channels":
            return self._list_channels(q) if method == "GET" else self._create_channel(request, body or {})
        if m := re.fullmatch(r"/channels/([^/]+)(/.*)?", rest):
            return self._channel(m.group(1), m.group(2) or "", method, body or {})
        if rest == "/backups" and method == "GET":
            return self._list_backups(q)
        return _error(404, "NotAuthorizedOrNotFound", f"{method} {path} is not part of this fake")

    # -- DB systems ----------------------------------------------------------------------------

    def _db_system(self, ds_id, method, body):
        ds = self.db_systems.get(ds_id)
        if ds is None:
            return _error(404, "NotAuthorizedOrNotFound", f"DB system {ds_id} not found")
        if method == "GET":
            self._tick(ds)
            return _json(ds, headers={"etag": ds["timeUpdated"]})
        if method == "PUT":
            if ds["lifecycleState"] != "ACTIVE":
                return _error(409, "IncorrectState", f"DB system {ds_id} is {ds['lifecycleState']}")
            unknown = set(body) - {"databaseMode", "accessMode", "displayName", "description", "freeformTags"}
            if unknown:
                return _error(400, "InvalidParameter", f"this fake does not update {sorted(unknown)}")
            if body.get("databaseMode") not in (None, "READ_ONLY", "READ_WRITE"):
                return _error(400, "InvalidParameter", f"databaseMode {body.get('databaseMode')}")
            self._later(ds, {**body, "lifecycleState": "ACTIVE"}, "UPDATING")
            return Response(status=202, headers={"opc-work-request-id": f"ocid1.mysqlworkrequest.oc1..{next(_ids)}"})
        return _error(405, "MethodNotAllowed", method)

    def _list_db_systems(self, q):
        if not q.get("compartmentId"):
            return _error(400, "InvalidParameter", "compartmentId is required")
        found = [d for d in self.db_systems.values() if d["compartmentId"] == q["compartmentId"]
                 and q.get("displayName") in (None, d["displayName"])
                 and q.get("lifecycleState") in (None, d["lifecycleState"])]
        for d in found:
            self._tick(d)
        return _json(found)

    def _create_db_system(self, request, body):
        token = request.headers.get("opc-retry-token")
        if token and token in self.retry_tokens:
            return _json(self.db_systems[self.retry_tokens[token]])
        missing = [k for k in ("compartmentId", "shapeName", "subnetId") if not body.get(k)]
        if missing:
            return _error(400, "InvalidParameter", f"missing {missing}")
        source = body.get("source") or {}
        if source.get("sourceType") == "PITR":
            origin = self.db_systems.get(source.get("dbSystemId", ""))
            if origin is None or not origin.get("pointInTimeRecoveryDetails"):
                return _error(400, "InvalidParameter", "PITR source unknown or without point-in-time recovery")
        elif source.get("sourceType") == "BACKUP":
            if not any(b["id"] == source.get("backupId") and b["lifecycleState"] == "ACTIVE" for b in self.backups):
                return _error(404, "NotAuthorizedOrNotFound", f"backup {source.get('backupId')}")
        else:
            return _error(400, "InvalidParameter", f"this fake restores only: source {source}")
        ds_id = f"ocid1.mysqldbsystem.oc1..restored{next(_ids)}"
        ds = self.add_db_system(ds_id, name=body.get("displayName") or ds_id, compartment=body["compartmentId"],
                                ip=body.get("ipAddress") or f"10.9.0.{len(self.db_systems) + 10}", state="CREATING",
                                tags=body.get("freeformTags"))
        ds.update(subnetId=body["subnetId"], shapeName=body["shapeName"], source=source)
        self._later(ds, {"lifecycleState": "ACTIVE"}, "CREATING")
        if token:
            self.retry_tokens[token] = ds_id
        return _json(ds, headers={"opc-work-request-id": f"ocid1.mysqlworkrequest.oc1..{next(_ids)}"})

    # -- channels ------------------------------------------------------------------------------

    def _public_channel(self, ch):
        return {k: v for k, v in ch.items()}  # the password is kept apart and never returned

    def _list_channels(self, q):
        if not q.get("compartmentId"):
            return _error(400, "InvalidParameter", "compartmentId is required")
        found = [c for c in self.channels.values() if c["compartmentId"] == q["compartmentId"]
                 and q.get("dbSystemId") in (None, c["target"]["dbSystemId"])]
        return _json([{k: c[k] for k in ("id", "compartmentId", "displayName", "isEnabled", "lifecycleState",
                                         "timeCreated", "timeUpdated", "freeformTags", "definedTags", "source", "target")}
                      for c in found])

    def _create_channel(self, request, body):
        source, target = dict(body.get("source") or {}), dict(body.get("target") or {})  # the request log keeps the body
        if source.get("sourceType") != "MYSQL" or not all(source.get(k) for k in ("hostname", "username", "password", "sslMode")):
            return _error(400, "InvalidParameter", "source needs sourceType MYSQL, hostname, username, password, sslMode")
        if target.get("targetType") != "DBSYSTEM" or target.get("dbSystemId") not in self.db_systems:
            return _error(400, "InvalidParameter", "target needs targetType DBSYSTEM and a known dbSystemId")
        name = (target.get("channelName") or "replication_channel").lower()
        if any(c["target"]["dbSystemId"] == target["dbSystemId"] and c["target"]["channelName"].lower() == name
               and c["lifecycleState"] not in ("DELETED",) for c in self.channels.values()):
            return _error(409, "Conflict", f"a channel named {name} exists on {target['dbSystemId']}")
        channel_id = f"ocid1.mysqlchannel.oc1..created{next(_ids)}"
        password = source.pop("password")
        ch = self.add_channel(channel_id, target=target["dbSystemId"], source_host=source["hostname"],
                              compartment=body.get("compartmentId"), user=source["username"], port=source.get("port", 3306),
                              ssl=source["sslMode"], name=target.get("channelName") or "replication_channel",
                              enabled=body.get("isEnabled", True), state="CREATING", tags=body.get("freeformTags"))
        ch["displayName"] = body.get("displayName") or channel_id
        self.channel_passwords[channel_id] = password
        self._later(ch, {"lifecycleState": "CHANNEL"}, "CREATING")
        return _json(self._public_channel(ch))

    def _channel(self, channel_id, action, method, body):
        ch = self.channels.get(channel_id)
        if ch is None or ch["lifecycleState"] == "DELETED" and method != "GET":
            return _error(404, "NotAuthorizedOrNotFound", f"channel {channel_id} not found")
        busy = ch["lifecycleState"] in ("CREATING", "UPDATING", "DELETING")
        if action == "" and method == "GET":
            self._tick(ch)
            return _json(self._public_channel(ch), headers={"etag": ch["timeUpdated"]})
        if action == "" and method == "PUT":
            if busy:
                return _error(409, "IncorrectState", f"channel {channel_id} is {ch['lifecycleState']}")
            change: dict = {"lifecycleState": "CHANNEL"}
            if "isEnabled" in body:
                change["isEnabled"] = body["isEnabled"]
            if "freeformTags" in body:
                change["freeformTags"] = body["freeformTags"]
            if body.get("source"):
                src = dict(body["source"])
                if src.pop("sourceType", None) != "MYSQL":
                    return _error(400, "InvalidParameter", "source.sourceType must be MYSQL")
                if "password" in src:
                    self.channel_passwords[channel_id] = src.pop("password")
                change["source"] = {**ch["source"], **src}
            self._later(ch, change, "UPDATING")
            return Response(status=202, headers={"opc-work-request-id": f"ocid1.mysqlworkrequest.oc1..{next(_ids)}"})
        if action == "" and method == "DELETE":
            self._later(ch, {"lifecycleState": "DELETED"}, "DELETING")
            return Response(status=202)
        if action == "/actions/reset" and method == "POST":
            if ch["lifecycleState"] != "INACTIVE" or ch["isEnabled"]:
                return _error(409, "IncorrectState", f"only an INACTIVE, disabled channel can be reset ({ch['lifecycleState']}, "
                                                     f"isEnabled={ch['isEnabled']})")
            ch["resetCount"] = ch.get("resetCount", 0) + 1
            self._later(ch, {"lifecycleState": "INACTIVE"}, "UPDATING")
            return Response(status=204)
        if action == "/actions/resume" and method == "POST":
            if ch["lifecycleState"] != "NEEDS_ATTENTION":
                return _error(409, "IncorrectState", f"channel {channel_id} is {ch['lifecycleState']}")
            self._later(ch, {"lifecycleState": "CHANNEL"}, "UPDATING")
            return Response(status=204)
        if action == "/actions/generateChannelStatus" and method == "POST":
            if ch["lifecycleState"] not in ("ACTIVE", "NEEDS_ATTENTION"):
                return _error(409, "IncorrectState", f"channel {channel_id} is {ch['lifecycleState']}")
            said = self.channel_status_of.get(channel_id) or {}
            if isinstance(said, list):  # successive generations say successive things; the last one stays
                said = said.pop(0) if len(said) > 1 else said[0]
            prev = self.statuses.get(channel_id)
            at = _now()
            if prev and datetime.fromisoformat(prev["timeUpdated"].replace("Z", "+00:00")) >= at:
                at = datetime.fromisoformat(prev["timeUpdated"].replace("Z", "+00:00")) + timedelta(milliseconds=1)
            self.statuses[channel_id] = {"timeCreated": _ts(at), "timeUpdated": _ts(at),
                                         "channelStatusResult": {"channelId": channel_id, **said}}
            return Response(status=202, headers={"opc-work-request-id": f"ocid1.mysqlworkrequest.oc1..{next(_ids)}"})
        if action == "/channelStatus" and method == "GET":
            if channel_id not in self.statuses:
                return _error(404, "NotAuthorizedOrNotFound", "no channel status generated")
            return _json(self.statuses[channel_id])
        return _error(405, "MethodNotAllowed", f"{method} {action}")

    # -- backups -------------------------------------------------------------------------------

    def _list_backups(self, q):
        if not q.get("compartmentId"):
            return _error(400, "InvalidParameter", "compartmentId is required")
        found = [b for b in self.backups if b["compartmentId"] == q["compartmentId"]
                 and q.get("dbSystemId") in (None, b["dbSystemId"]) and q.get("lifecycleState") in (None, b["lifecycleState"])]
        found.sort(key=lambda b: b["timeCreated"], reverse=q.get("sortOrder") == "DESC")
        return _json(found[: int(q.get("limit", 1000))])


class FakeSql:
    """`dr.mysqlconn.connect` for HeatWave DB systems: the SQL side of the fake, statements recorded."""

    def __init__(self, fake: HeatWaveFake):
        self.fake = fake
        self.statements: list[tuple[str, str, tuple | None]] = []   # (database, sql, args)
        self.gtid: dict[str, str] = {}            # db_system_id -> gtid_executed
        self.heartbeat: dict[str, datetime] = {}  # db_system_id -> applied heartbeat (naive UTC)
        self.health_monitor_off: set[str] = set()  # DB systems whose super_read_only Health Monitor lifted
        self.received: dict[str, str] = {}        # channel name -> RECEIVED_TRANSACTION_SET (on any DB system here)
        self.locked: set[tuple[str, str]] = set()  # ALTER USER ... ACCOUNT LOCK
        self.sessions: dict[int, str] = {}         # open sessions: id -> user

    def read_only(self, ds_id) -> bool:
        ds = self.fake.db_systems[ds_id]
        return ds["databaseMode"] == "READ_ONLY" and ds_id not in self.health_monitor_off

    @contextmanager
    def connect(self, db, timeout: float = 5):
        # A connection reaches whatever DB system answers at the host, as a real one would.
        ds_id = next((i for i, d in self.fake.db_systems.items() if d["ipAddress"] == db.host), None)
        ds = self.fake.db_systems.get(ds_id)
        if ds is None or db.host in self.fake.unreachable_hosts or ds["lifecycleState"] not in ("ACTIVE", "UPDATING"):
            raise Unreachable(f"{db.name} at {db.host}:{db.port} is unreachable: Can't connect to MySQL server")
        yield _Conn(self, db, ds_id)


class _Conn:
    def __init__(self, sql: FakeSql, db, ds_id):
        self.sql, self.db, self.ds_id = sql, db, ds_id

    def cursor(self):
        return _Cursor(self)

    def close(self):
        pass


def _gtid_sets(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        uuid, _, rng = part.partition(":")
        out[uuid] = int(rng.split("-")[-1])
    return out


class _Cursor:
    def __init__(self, conn: _Conn):
        self.conn, self.row = conn, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        s, conn = self.conn.sql, self.conn
        s.statements.append((conn.db.name, sql, tuple(args) if args else None))
        ds_id = conn.ds_id
        ro = s.read_only(ds_id)
        norm = " ".join(sql.split())
        if re.match(r"SET (GLOBAL|PERSIST)", norm, re.I):
            raise ProviderError(f"{conn.db.name}: Access denied; you need (at least one of) the SUPER or "
                                f"SYSTEM_VARIABLES_ADMIN privilege(s) for this operation")
        if norm == "SELECT @@global.read_only AS ro, @@global.super_read_only AS sro":
            self.row = {"ro": int(ro), "sro": int(ro)}
        elif norm == "SELECT @@global.gtid_executed AS gtid":
            self.row = {"gtid": s.gtid.get(ds_id, "")}
        elif norm.startswith("CREATE DATABASE IF NOT EXISTS") or norm.startswith("CREATE TABLE IF NOT EXISTS"):
            if ro:
                raise ProviderError(f"{conn.db.name}: The MySQL server is running with the --super-read-only option")
        elif norm.startswith("REPLACE INTO idp_dr.heartbeat"):
            if ro:
                raise ProviderError(f"{conn.db.name}: The MySQL server is running with the --super-read-only option")
            s.heartbeat[ds_id] = _now().replace(tzinfo=None)
        elif norm.startswith("SELECT COUNT(*) AS n FROM information_schema.tables"):
            self.row = {"n": int(ds_id in s.heartbeat)}
        elif norm == "SELECT ts FROM idp_dr.heartbeat WHERE id = 1":
            self.row = {"ts": s.heartbeat[ds_id]} if ds_id in s.heartbeat else None
        elif norm.startswith("SELECT RECEIVED_TRANSACTION_SET AS received FROM performance_schema.replication_connection_status"):
            self.row = {"received": s.received[args[0]]} if args[0] in s.received else None
        elif norm == "SELECT UTC_TIMESTAMP(6) AS now":
            self.row = {"now": _now().replace(tzinfo=None)}
        elif norm == "SELECT GTID_SUBSET(%s, @@global.gtid_executed) AS applied":
            have = _gtid_sets(s.gtid.get(ds_id, ""))
            want = _gtid_sets(args[0])
            self.row = {"applied": int(all(have.get(u, 0) >= n for u, n in want.items()))}
        elif re.match(r"ALTER USER %s@%s ACCOUNT (UN)?LOCK$", norm):
            (s.locked.discard if norm.endswith("UNLOCK") else s.locked.add)(tuple(args))
        elif norm.startswith("SELECT GROUP_CONCAT(ID) AS ids FROM information_schema.PROCESSLIST WHERE USER IN"):
            self.row = {"ids": ",".join(str(i) for i, u in sorted(s.sessions.items()) if u in args) or None}
        elif norm == "KILL %s":  # the admin holds CONNECTION_ADMIN
            s.sessions.pop(int(args[0]), None)
        else:
            raise AssertionError(f"FakeSql does not know {sql!r}")

    def fetchone(self):
        return self.row


__all__ = ["HeatWaveFake", "FakeSql"]
