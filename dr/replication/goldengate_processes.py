"""GoldenGate processes through the deployment's REST API: credentials, the Extract on the writer, the
Replicat on the follower, and the three flows a failover needs (set up, cut over, reverse).

Configuration is the probe's (dr/replication/goldengate.py, ``GoldenGateRest.from_env``): basic auth as
IDP_GOLDENGATE_USER with IDP_GOLDENGATE_PASSWORD_FILE (a mounted secret) or IDP_GOLDENGATE_PASSWORD, the
deployment URL from IDP_GOLDENGATE_URL or the deployment's ``deploymentUrl``, IDP_GOLDENGATE_CA_BUNDLE.
This user needs the deployment's Administrator role (creating credentials and processes); starting and
stopping alone would do with Operator. Database addresses and accounts come from IDP_MYSQL_CONNECTIONS
(dr.mysqlconn.database(claim name)), never from the policy or our database.

REST facts, and where they come from ("OGG REST" = Oracle's "REST API for Oracle GoldenGate", the
Administration Service pages under docs.oracle.com/en/middleware/goldengate/core/{21.3,23}/oggra/ and
.../database/goldengate/core/26/oggra/; all paths are ``/services/v2/...`` with ``{version}`` = v2):

- Envelope: every answer is ``{"$schema": "api:standardResponse", "links": [...], "messages": [...],
  "response": {...}}`` (the "Example Response" of e.g. op-services-version-replicats-replicat-info-status-get,
  21.3 and 23). A message is ``{"$schema": "ogg:message", "title", "code": "OGG-nnnnn", "severity":
  INFO|WARNING|ERROR, "issued", "type"}`` (severity/title: op-services-version-oggerr-message-get, 23;
  the full shape from an example answer reproduced in "Oracle GoldenGate With Microservices", ch. 301).
- Names: Extract/Replicat ``^[A-Z_$][A-Z0-9_$]*$``, 1-8 characters (every process page). Trail names
  ``^[A-Za-z][A-Za-z0-9]$`` in 21.3 (23 allows up to 512 characters); we use two, which every version takes.
- Credentials: ``POST /credentials/{domain}/{alias}`` body ``{"userid", "password"}`` (Oracle's scripts,
  e.g. ilfur/gg_microhacks_scripts config_goldengate.sh; OGG REST "Create a Credential");
  ``GET /credentials/{domain}/{alias}`` answers the alias (with ``userid``, never the password) or 404.
  For MySQL the userid is ``user@host:port/db`` (Reference, USERIDALIAS, 23: "USERID in USERIDALIAS in
  Oracle GoldenGate with MySQL MA are user/db, user@host/db, user@host:port/db"; ALTER CREDENTIALSTORE, 23).
  Aliases: at most 30 characters, start with a letter, letters/digits/_/$/# (USERIDALIAS, 23).
- Extract: ``POST /extracts/{extract}`` (Create Extract, 21.3, Role Administrator) with ``config`` (the
  parameter file, one line per item), ``source``, ``credentials {domain, alias}``, ``begin`` ("now" | a
  timestamp | a position), ``targets [{name: trail}]``, ``status`` (default stopped), ``description``.
  ``source`` is ``"tranlogs"`` for MySQL (the 26 page "REST API Example for GTIDSET parameter" posts a
  MySQL Extract with ``"source": "tranlogs"``; an Oracle integrated Extract would be
  ``{"tranlogs": "integrated"}`` with ``registration``). GoldenGate for MySQL captures from the binary log;
  it needs no ``registration`` (default none), so none is sent.
- Replicat: ``POST /replicats/{replicat}`` (Create Replicat, 19.1/21.3/26) with ``config``, ``credentials``,
  ``source {name: trail}``, ``checkpoint {table: "db.table"}``, ``mode {type, parallel}``, ``begin``,
  ``status``. We create a parallel non-integrated Replicat: "For a parallel Replicat, the checkpoint table
  is created as part of the command to add the parallel Replicat" (ADD CHECKPOINTTABLE, 21.3/23), so no
  separate checkpoint-table call is needed. (That this holds for a MySQL target is inferred from that
  general statement.) ``begin`` as a trail position ``{"sequence": 0, "offset": 0}``: the Replicat reads
  its trail from the start, because the trail is new (see "Trails" below); the field names are those of
  begin-x-oneOf[2] on the Create Replicat page (12.3/19.1) - the object form is inferred from that schema.
- Start/stop: ``PATCH /extracts/{name}`` or ``/replicats/{name}`` with ``{"status": "running"|"stopped"}``
  ("A user with the 'Operator' role may change the status property", Update Extract/Update Replicat, 21.3).
- Status: ``GET /{kind}s/{name}/info/status`` -> ``status`` (starting|running|stopped|killed|abended),
  ``lag`` and ``sinceLagReported`` (seconds), ``lastStarted``, for a Replicat ``position`` {name, sequence,
  offset, path} (Retrieve Status, 21.3 and 23).
- Checkpoints: ``GET /extracts/{name}/info/checkpoints`` -> ``response.current.output[]`` with a
  ``current`` {name, sequence, offset, path} per trail written; ``GET /replicats/{name}/info/checkpoints``
  -> ``response.current.input[]`` with ``current`` {name, sequence, offset} (Retrieve Checkpoints, 19/21/26).
  "Drained" = the stopped Extract's write position in the trail <= the Replicat's read checkpoint in it,
  compared as (sequence, offset). That a Replicat's current input checkpoint marks work already applied is
  inferred: with a checkpoint table the checkpoint is written in the Replicat's own transaction (ADD
  CHECKPOINTTABLE: "it causes checkpoints to be part of the Replicat transaction").
- Delete: ``DELETE /extracts/{name}`` / ``/replicats/{name}`` (OGG REST "Delete Extract/Replicat"). We stop a
  process before deleting it; that a running process cannot be deleted is inferred, not read.
- HTTP status codes: 201 on create, 200 otherwise, 404 for an unknown process or alias (documented per
  page); what a refused create looks like beyond "messages" is not documented: we report the messages.

Names (deterministic, so every step can be run again): the pair replicating from ``primary`` is
``cells.rendering.goldengate_names(cell, environment)`` - the names the probe and the replication template
use; the pair replicating the other way (after a failover) is ``goldengate_names(cell, f"{environment}/
reverse")``, i.e. the same scheme over "cell/environment/reverse": different names, so the reverse pair can
be created while the old one still exists, and a failback brings back the original names. Aliases are per
database, not per direction: ``"GG" + the 7 letters of the pair + "_" + side`` (e.g. GGABCDEFG_PRIMARY).

Trails: a two-character trail written by the Extract and read by the Replicat. A re-created pair must not
read an old trail's files (a failback re-creates the forward pair): the Extract's definition is the source
of truth for its trail (``targets[0].name``), and a new Extract gets a trail derived from the pair and the
fencing epoch of the promotion that created it (setup: epoch 0), so a failback writes a fresh trail.
Two-character trails on a deployment shared by many cells can collide (about 1 in 900 per pair of live
trails); nothing here detects that yet (it would need listing every Extract's definition).

Not covered here: the initial load of existing rows (the Extract begins "now"), purging old trail files,
and the fence: GoldenGate's Replicat is an ordinary client, so a ``super_read_only`` old writer refuses its
writes; the database user must be allowed to write while the application is fenced.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from cells.rendering import goldengate_names, goldengate_pair
from policy import names
from dr.errors import ProviderError, TransientProviderError, Unreachable

DOMAIN = "OracleGoldenGate"  # GoldenGate's default credential domain
RUNNING, STOPPED, ABENDED, KILLED, STARTING = "running", "stopped", "abended", "killed", "starting"
PROCESS_STATES = (STARTING, RUNNING, STOPPED, KILLED, ABENDED)
KINDS = ("extract", "replicat")
NAME_RE = re.compile(r"^[A-Z_$][A-Z0-9_$]{0,7}$")
TRAIL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_$#]{0,29}$")
REPLICAT_MODE = {"type": "nonintegrated", "parallel": True}
CHECKPOINT_TABLE = "idp_gg_checkpoint"


def other_side(side: str) -> str:
    try:
        return names.other_side(side)
    except ValueError:
        raise ProviderError(f"goldengate: unknown side {side!r} (expected primary or secondary)") from None


# -- names ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairNames:
    extract: str
    replicat: str
    direction: str  # "forward" (from primary) or "reverse"


def pair_names(cell: str, environment: str, source_side: str) -> PairNames:
    """The Extract/Replicat names of the pair that replicates from `source_side` (the probe reads the same)."""
    other_side(source_side)  # validates
    extract, replicat = goldengate_pair(cell, environment, source_side)
    return PairNames(extract, replicat, "forward" if source_side == "primary" else "reverse")


def alias_for(cell: str, environment: str, side: str) -> str:
    """The credential alias of one side's database: GG + the forward pair's 7 letters + _ + SIDE."""
    other_side(side)
    short = goldengate_names(cell, environment)[0][1:]
    return f"GG{short}_{side.upper()}"[:30]


def trail_for(names: PairNames, generation: int) -> str:
    """A two-character trail name for this pair and generation (the epoch of the promotion that created
    the Extract; 0 at setup): a letter, then a letter or digit."""
    digest = hashlib.sha256(f"{names.extract}/{generation}".encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return alphabet[digest[0] % 26] + alphabet[digest[1] % 36]


def schema_for(cell: str) -> str:
    """The replicated MySQL database: the one the composition function names in the GoldenGate Connections
    (manifests/crossplane/function: databaseName = the cell with _ for -)."""
    return cell.replace("-", "_")


def claim_name(cell_env, side: str) -> str:
    from dr.replication.mysql import claim_name as mysql_claim_name

    return mysql_claim_name(cell_env, side)


# -- the REST client ---------------------------------------------------------------------------------

class GoldenGateApi:
    """Basic-auth JSON calls to one deployment's Administration Service. Errors become ProviderError
    (refused: 4xx) or TransientProviderError (timeouts, 429, 5xx), with the server's messages and never the
    password."""

    def __init__(self, url: str, user: str, password: str, *, verify: bool | str = True, timeout: float = 10.0,
                 session=None):
        import requests

        if not url:
            raise ProviderError("goldengate: no deployment URL (set IDP_GOLDENGATE_URL)")
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self.verify, self.timeout = verify, timeout
        self.session = session or requests.Session()

    @classmethod
    def from_rest(cls, rest, deployment_id: str | None = None) -> "GoldenGateApi":
        """From the probe's GoldenGateRest settings (same user, secret, URL and CA bundle)."""
        url = rest.url or (rest.resolve_url(deployment_id) if rest.resolve_url and deployment_id else None)
        return cls(url, rest.user, rest.password, verify=rest.verify, timeout=rest.timeout)

    def __repr__(self) -> str:  # never the password
        return f"GoldenGateApi({self.url!r}, user={self.user!r})"

    def request(self, method: str, path: str, body: dict | None = None, *, absent_ok: bool = False):
        """(status code, the envelope's `response`). With absent_ok a 404 answers (404, None)."""
        import requests

        url = f"{self.url}/services/v2/{path.lstrip('/')}"
        try:
            resp = self.session.request(method, url, json=body, auth=(self.user, self._password),
                                        headers={"Accept": "application/json"}, timeout=self.timeout,
                                        verify=self.verify)
        except requests.Timeout:
            raise TransientProviderError(f"goldengate: {method} {path} timed out after {self.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise Unreachable(f"goldengate: deployment at {self.url} unreachable ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise TransientProviderError(f"goldengate: {method} {path} failed ({type(exc).__name__})") from None
        try:
            envelope = resp.json() if resp.content else {}
        except ValueError:
            envelope = {}
        if not isinstance(envelope, dict):
            envelope = {}
        code = resp.status_code
        if code == 404 and absent_ok:
            return code, None
        if code >= 400:
            detail = self._messages(envelope) or (resp.reason or "")
            detail = detail.replace(self._password, "***") if self._password else detail
            text = f"goldengate: {method} {path} answered HTTP {code}" + (f": {detail}" if detail else "")
            if code in (401, 403):
                raise ProviderError(f"{text} (the deployment refused user {self.user!r}: check "
                                    f"IDP_GOLDENGATE_USER and its password secret, and the user's role)")
            if code in (408, 429) or code >= 500:
                raise TransientProviderError(text)
            raise ProviderError(text)
        response = envelope.get("response", envelope)
        return code, response if isinstance(response, dict) else {"value": response}

    @staticmethod
    def _messages(envelope: dict) -> str:
        parts = []
        for msg in envelope.get("messages") or []:
            if isinstance(msg, dict):
                title = msg.get("title") or msg.get("text") or ""
                parts.append(f"{msg['code']} {title}".strip() if msg.get("code") else title)
        return "; ".join(p for p in parts if p)[:500]


# -- the processes -----------------------------------------------------------------------------------

def _position(entry: dict | None) -> dict | None:
    cur = (entry or {}).get("current") if isinstance(entry, dict) else None
    if not isinstance(cur, dict):
        return None
    try:
        return {"name": cur.get("name"), "sequence": int(cur.get("sequence", 0)), "offset": int(cur.get("offset", 0))}
    except (TypeError, ValueError):
        return None


def _for_trail(entries, trail: str) -> dict | None:
    positions = [p for p in (_position(e) for e in entries or []) if p]
    for p in positions:
        name = str(p["name"] or "")
        if name == trail or name.rsplit("/", 1)[-1] == trail:
            return p
    return positions[0] if len(positions) == 1 else None


def _key(pos: dict) -> tuple[int, int]:
    return pos["sequence"], pos["offset"]


class GoldenGateProcesses:
    """Idempotent operations on one deployment. Every REST call is appended to `calls` as
    {method, path, outcome[, ...]}; the flows return the calls they made."""

    def __init__(self, api: GoldenGateApi, *, domain: str = DOMAIN, database=None, poll_interval: float = 2.0,
                 start_timeout: float = 120.0, drain_timeout: float = 300.0, replicat_mode: dict | None = None,
                 sleep=time.sleep, clock=time.monotonic):
        self.api = api
        self.domain = domain
        if database is None:
            from dr.mysqlconn import database
        self.database = database
        self.poll_interval, self.start_timeout, self.drain_timeout = poll_interval, start_timeout, drain_timeout
        self.replicat_mode = dict(replicat_mode or REPLICAT_MODE)
        self.sleep, self.clock = sleep, clock
        self.calls: list[dict] = []

    # -- bookkeeping --------------------------------------------------------------------------------

    def _record(self, method: str, path: str, outcome: str, **extra) -> dict:
        entry = {"method": method, "path": f"/services/v2/{path}", "outcome": outcome, **extra}
        self.calls.append(entry)
        return entry

    def _mark(self) -> int:
        return len(self.calls)

    def _since(self, mark: int) -> list[dict]:
        return list(self.calls[mark:])

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in KINDS:
            raise ProviderError(f"goldengate: unknown process kind {kind!r}")
        return kind

    @staticmethod
    def _name(name: str) -> str:
        if not NAME_RE.match(name or ""):
            raise ProviderError(f"goldengate: {name!r} is not a process name (^[A-Z_$][A-Z0-9_$]*$, at most 8)")
        return name

    # -- credentials --------------------------------------------------------------------------------

    def ensure_credentials(self, alias: str, host: str, port: int, user: str, password: str, database: str) -> dict:
        if not ALIAS_RE.match(alias):
            raise ProviderError(f"goldengate: {alias!r} is not a credential alias")
        path = f"credentials/{self.domain}/{alias}"
        userid = f"{user}@{host}:{int(port)}/{database}"
        _, present = self.api.request("GET", path, absent_ok=True)
        if present is not None:
            have = present.get("userid")
            if have and have != userid:
                self._record("GET", path, "present with another userid", userid=have)
                raise ProviderError(f"goldengate: credential alias {self.domain}.{alias} exists for {have}, not "
                                    f"{userid}: fix or delete the alias (not replaced automatically)")
            return self._record("GET", path, "already present", userid=userid)
        self.api.request("POST", path, {"userid": userid, "password": password})
        return self._record("POST", path, "created", userid=userid)

    # -- definitions ---------------------------------------------------------------------------------

    def definition(self, kind: str, name: str) -> dict | None:
        _, body = self.api.request("GET", f"{self._kind(kind)}s/{self._name(name)}", absent_ok=True)
        return body

    @staticmethod
    def trail_of(extract_definition: dict) -> str | None:
        for target in extract_definition.get("targets") or []:
            if isinstance(target, dict) and target.get("name"):
                return str(target["name"]).rsplit("/", 1)[-1]
        for line in extract_definition.get("config") or []:
            words = str(line).split()
            if len(words) >= 2 and words[0].upper() in ("EXTTRAIL", "RMTTRAIL"):
                return words[1].rstrip(";").rsplit("/", 1)[-1]
        return None

    def _check_alias(self, kind: str, name: str, body: dict, alias: str) -> None:
        have = (body.get("credentials") or {}).get("alias") if isinstance(body.get("credentials"), dict) else None
        if have and have != alias:
            raise ProviderError(f"goldengate: {kind} {name} exists but connects as {have}, not {alias}: another "
                                f"cell's process with the same name? Not changed")

    def ensure_extract(self, name: str, alias: str, trail: str, *, schema: str, description: str = "") -> dict:
        """Create the Extract (stopped) capturing `schema` into `trail`, unless it exists."""
        self._name(name)
        if not TRAIL_RE.match(trail):
            raise ProviderError(f"goldengate: {trail!r} is not a two-character trail name")
        path = f"extracts/{name}"
        present = self.definition("extract", name)
        if present is not None:
            self._check_alias("extract", name, present, alias)
            return self._record("GET", path, "already present", trail=self.trail_of(present) or trail)
        body = {
            "description": description or f"idp-multicloud: capture {schema}",
            "config": [f"EXTRACT {name}", f"USERIDALIAS {alias} DOMAIN {self.domain}", f"EXTTRAIL {trail}",
                       f"TABLE {schema}.*;"],
            "source": "tranlogs",
            "credentials": {"domain": self.domain, "alias": alias},
            "begin": "now",
            "targets": [{"name": trail}],
            "status": STOPPED,
        }
        self.api.request("POST", path, body)
        return self._record("POST", path, "created", trail=trail, begin="now")

    def ensure_replicat(self, name: str, alias: str, trail: str, *, schema: str, description: str = "") -> dict:
        """Create the Replicat (stopped) applying `trail` from its start into `schema`, unless it exists."""
        self._name(name)
        if not TRAIL_RE.match(trail):
            raise ProviderError(f"goldengate: {trail!r} is not a two-character trail name")
        path = f"replicats/{name}"
        present = self.definition("replicat", name)
        if present is not None:
            self._check_alias("replicat", name, present, alias)
            source = present.get("source") if isinstance(present.get("source"), dict) else {}
            have = str(source.get("name") or "").rsplit("/", 1)[-1]
            if have and have != trail:
                raise ProviderError(f"goldengate: replicat {name} exists but reads trail {have}, not {trail}: "
                                    f"delete it to re-create (not changed automatically)")
            return self._record("GET", path, "already present", trail=trail)
        body = {
            "description": description or f"idp-multicloud: apply {schema}",
            "config": [f"REPLICAT {name}", f"USERIDALIAS {alias} DOMAIN {self.domain}",
                       f"MAP {schema}.*, TARGET {schema}.*;"],
            "credentials": {"domain": self.domain, "alias": alias},
            "source": {"name": trail},
            "begin": {"sequence": 0, "offset": 0},
            "checkpoint": {"table": f"{schema}.{CHECKPOINT_TABLE}"},
            "mode": dict(self.replicat_mode),
            "status": STOPPED,
        }
        self.api.request("POST", path, body)
        return self._record("POST", path, "created", trail=trail)

    # -- run state -----------------------------------------------------------------------------------

    def status(self, kind: str, name: str) -> dict | None:
        """The process's info/status `response`, or None when there is no such process."""
        _, body = self.api.request("GET", f"{self._kind(kind)}s/{self._name(name)}/info/status", absent_ok=True)
        return body

    def _state(self, kind: str, name: str) -> str | None:
        body = self.status(kind, name)
        return None if body is None else str(body.get("status", "")).lower()

    def start(self, kind: str, name: str) -> dict:
        path = f"{self._kind(kind)}s/{self._name(name)}"
        state = self._state(kind, name)
        if state is None:
            raise ProviderError(f"goldengate: no {kind} {name} to start")
        if state in (RUNNING, STARTING):
            return self._record("GET", f"{path}/info/status", f"already {state}")
        self.api.request("PATCH", path, {"status": RUNNING})
        return self._record("PATCH", path, "started", was=state)

    def stop(self, kind: str, name: str) -> dict:
        path = f"{self._kind(kind)}s/{self._name(name)}"
        state = self._state(kind, name)
        if state is None:
            raise ProviderError(f"goldengate: no {kind} {name} to stop")
        if state in (STOPPED, ABENDED, KILLED):
            return self._record("GET", f"{path}/info/status", "already stopped" if state == STOPPED
                                else f"already stopped ({state})", status=state)
        self.api.request("PATCH", path, {"status": STOPPED})
        return self._record("PATCH", path, "stopped", was=state)

    def wait_state(self, kind: str, name: str, wanted: str, timeout: float | None = None) -> dict:
        timeout = self.start_timeout if timeout is None else timeout
        path = f"{self._kind(kind)}s/{self._name(name)}/info/status"
        deadline, polls = self.clock() + timeout, 0
        while True:
            body = self.status(kind, name)
            polls += 1
            state = None if body is None else str(body.get("status", "")).lower()
            if state == wanted:
                return self._record("GET", path, f"confirmed {wanted}", polls=polls, lag=body.get("lag"))
            if state is None:
                self._record("GET", path, "absent", polls=polls)
                raise ProviderError(f"goldengate: {kind} {name} does not exist")
            if wanted == RUNNING and state in (ABENDED, KILLED, STOPPED) and polls > 1:
                self._record("GET", path, state, polls=polls)
                raise ProviderError(f"goldengate: {kind} {name} is {state}, not running: read its report file "
                                    f"(Administration Service > {kind} {name} > Report) and fix the cause")
            if wanted == STOPPED and state in (ABENDED, KILLED):
                return self._record("GET", path, f"confirmed stopped ({state})", polls=polls)
            if self.clock() >= deadline:
                self._record("GET", path, state, polls=polls)
                raise TransientProviderError(f"goldengate: {kind} {name} is still {state} after {timeout:g}s "
                                             f"(waiting for {wanted})")
            self.sleep(self.poll_interval)

    def wait_running(self, kind: str, name: str, timeout: float | None = None) -> dict:
        return self.wait_state(kind, name, RUNNING, timeout)

    def ensure_running(self, kind: str, name: str) -> list[dict]:
        started = self.start(kind, name)
        if started["outcome"] == f"already {RUNNING}":
            return [started]
        return [started, self.wait_running(kind, name)]

    def ensure_stopped(self, kind: str, name: str) -> list[dict]:
        stopped = self.stop(kind, name)
        if stopped["outcome"].startswith("already stopped"):
            return [stopped]
        return [stopped, self.wait_state(kind, name, STOPPED)]

    def checkpoints(self, kind: str, name: str) -> dict:
        _, body = self.api.request("GET", f"{self._kind(kind)}s/{self._name(name)}/info/checkpoints")
        return (body or {}).get("current") or {}

    def drain_replicat(self, extract: str, replicat: str, timeout: float | None = None) -> dict:
        """Wait until `replicat` has applied everything the stopped `extract` wrote to their trail."""
        timeout = self.drain_timeout if timeout is None else timeout
        state = self._state("extract", extract)
        if state is None:
            raise ProviderError(f"goldengate: no extract {extract}: nothing to drain from")
        if state in (RUNNING, STARTING):
            raise ProviderError(f"goldengate: extract {extract} is {state}: stop it before draining its trail")
        definition = self.definition("extract", extract) or {}
        trail = self.trail_of(definition)
        written = _for_trail(self.checkpoints("extract", extract).get("output"), trail or "")
        if written is None:
            raise ProviderError(f"goldengate: extract {extract} reports no write position in trail {trail}")
        rpath = f"replicats/{self._name(replicat)}/info/checkpoints"
        deadline, polls, started = self.clock() + timeout, 0, False
        while True:
            status = self.status("replicat", replicat)
            if status is None:
                raise ProviderError(f"goldengate: no replicat {replicat} to drain")
            rstate = str(status.get("status", "")).lower()
            applied = _for_trail(self.checkpoints("replicat", replicat).get("input"), trail or "")
            polls += 1
            if applied is not None and _key(applied) >= _key(written):
                return self._record("GET", rpath, "drained", polls=polls, trail=trail, extractWrote=written,
                                    replicatApplied=applied, replicatStatus=rstate)
            if rstate in (ABENDED, KILLED):
                self._record("GET", rpath, f"replicat {rstate}", polls=polls, extractWrote=written, replicatApplied=applied)
                raise ProviderError(f"goldengate: replicat {replicat} is {rstate} with trail {trail} applied up to "
                                    f"{_fmt(applied)} of {_fmt(written)}: read its report file and fix the cause "
                                    f"before promoting (promoting now would lose those transactions)")
            if rstate == STOPPED and not started:
                self.api.request("PATCH", f"replicats/{replicat}", {"status": RUNNING})
                self._record("PATCH", f"replicats/{replicat}", "started to drain", was=rstate)
                started = True
            if self.clock() >= deadline:
                self._record("GET", rpath, "not drained", polls=polls, extractWrote=written, replicatApplied=applied)
                raise TransientProviderError(f"goldengate: replicat {replicat} applied trail {trail} up to "
                                             f"{_fmt(applied)} of {_fmt(written)} within {timeout:g}s")
            self.sleep(self.poll_interval)

    def delete(self, kind: str, name: str) -> list[dict]:
        path = f"{self._kind(kind)}s/{self._name(name)}"
        state = self._state(kind, name)
        if state is None:
            return [self._record("GET", f"{path}/info/status", "already absent")]
        out = self.ensure_stopped(kind, name) if state in (RUNNING, STARTING) else []
        code, _ = self.api.request("DELETE", path, absent_ok=True)
        out.append(self._record("DELETE", path, "already absent" if code == 404 else "deleted"))
        return out

    # -- flows ---------------------------------------------------------------------------------------

    def _db(self, cell_env, side: str):
        return self.database(claim_name(cell_env, side))

    def _aliases(self, cell_env, sides) -> dict[str, str]:
        cell, env = cell_env.cell.name, cell_env.environment
        aliases = {}
        for side in sides:
            db = self._db(cell_env, side)
            aliases[side] = alias_for(cell, env, side)
            self.ensure_credentials(aliases[side], db.host, db.port, db.user, db.password, schema_for(cell))
        return aliases

    def _pair_out(self, cell_env, names: PairNames, source_side: str, target_side: str, trail: str | None,
                  mark: int, **extra) -> dict:
        return {"adapter": "goldengate", "cell": cell_env.cell.name, "environment": cell_env.environment,
                "extract": names.extract, "replicat": names.replicat, "direction": names.direction,
                "sourceSide": source_side, "targetSide": target_side, "trail": trail,
                "sourceDatabase": claim_name(cell_env, source_side), "targetDatabase": claim_name(cell_env, target_side),
                **extra, "calls": self._since(mark)}

    def ensure_capture(self, cell_env, source_side: str, generation: int = 0) -> dict:
        """Alias of `source_side`'s database, its Extract created and running. The Extract's trail, when it
        exists, is the one it already writes; a new one gets `generation`'s trail."""
        cell, env = cell_env.cell.name, cell_env.environment
        names = pair_names(cell, env, source_side)
        mark = self._mark()
        alias = self._aliases(cell_env, [source_side])[source_side]
        trail = trail_for(names, generation)
        entry = self.ensure_extract(names.extract, alias, trail, schema=schema_for(cell))
        trail = entry.get("trail") or trail
        self.ensure_running("extract", names.extract)
        return self._pair_out(cell_env, names, source_side, other_side(source_side), trail, mark)

    def setup(self, cell_env, source_side: str = "primary", target_side: str = "secondary", generation: int = 0) -> dict:
        """Aliases for both databases, the Extract on `source_side`, the Replicat on `target_side`; both running."""
        if other_side(source_side) != target_side:
            raise ProviderError(f"goldengate: source {source_side} and target {target_side} must be the two sides")
        cell, env = cell_env.cell.name, cell_env.environment
        names = pair_names(cell, env, source_side)
        mark = self._mark()
        aliases = self._aliases(cell_env, [source_side, target_side])
        entry = self.ensure_extract(names.extract, aliases[source_side], trail_for(names, generation),
                                    schema=schema_for(cell))
        trail = entry["trail"]
        self.ensure_replicat(names.replicat, aliases[target_side], trail, schema=schema_for(cell))
        self.ensure_running("extract", names.extract)
        self.ensure_running("replicat", names.replicat)
        return self._pair_out(cell_env, names, source_side, target_side, trail, mark, running=True)

    def cutover(self, cell_env, from_side: str, to_side: str) -> dict:
        """Stop the Extract on the fenced writer `from_side`, let the Replicat on `to_side` apply the rest of
        the trail, stop it. After this `to_side` receives nothing from GoldenGate and may be made writable."""
        if other_side(from_side) != to_side:
            raise ProviderError(f"goldengate: cannot cut over from {from_side} to {to_side}")
        names = pair_names(cell_env.cell.name, cell_env.environment, from_side)
        mark = self._mark()
        if self._state("extract", names.extract) is None and self._state("replicat", names.replicat) is None:
            raise ProviderError(f"goldengate: neither extract {names.extract} nor replicat {names.replicat} exists "
                                f"on the deployment: replication from {from_side} was never set up (or was removed)")
        self.ensure_stopped("extract", names.extract)
        drained = self.drain_replicat(names.extract, names.replicat)
        self.ensure_stopped("replicat", names.replicat)
        return self._pair_out(cell_env, names, from_side, to_side, drained.get("trail"), mark, drained=True,
                              appliedUpTo=drained["replicatApplied"], extractWrote=drained["extractWrote"])

    def reverse(self, cell_env, new_source_side: str, new_target_side: str, generation: int | None = None) -> dict:
        """Create and start the pair new_source -> new_target (the Extract may already capture, created at
        promotion), then delete the old pair (new_target -> new_source)."""
        if other_side(new_source_side) != new_target_side:
            raise ProviderError(f"goldengate: cannot reverse into {new_source_side} -> {new_target_side}")
        cell, env = cell_env.cell.name, cell_env.environment
        names = pair_names(cell, env, new_source_side)
        old = pair_names(cell, env, new_target_side)
        mark = self._mark()
        aliases = self._aliases(cell_env, [new_source_side, new_target_side])
        existing = self.definition("extract", names.extract)
        warning = None
        if existing is not None:
            self._record("GET", f"extracts/{names.extract}", "already present")
            trail = self.trail_of(existing)
            if not trail:
                raise ProviderError(f"goldengate: extract {names.extract} exists but names no trail")
        else:
            trail = trail_for(names, generation if generation is not None else int(time.time()))
            self.ensure_extract(names.extract, aliases[new_source_side], trail, schema=schema_for(cell))
            # No Extract from the promotion: any fresh trail will do, the Extract records it from now on.
            warning = ("the reverse Extract was created now, not at promotion: writes to the new writer between "
                       "its promotion and now are not in the trail")
        self.ensure_replicat(names.replicat, aliases[new_target_side], trail, schema=schema_for(cell))
        self.ensure_running("extract", names.extract)
        self.ensure_running("replicat", names.replicat)
        removed = {"extract": old.extract, "replicat": old.replicat}
        self.delete("extract", old.extract)
        self.delete("replicat", old.replicat)
        out = self._pair_out(cell_env, names, new_source_side, new_target_side, trail, mark, running=True,
                             removed=removed)
        if warning:
            out["warning"] = warning
        return out


def _fmt(pos: dict | None) -> str:
    return "nothing" if not pos else f"sequence {pos['sequence']} offset {pos['offset']}"
