"""A local OCI GoldenGate deployment (Administration Service REST API v2) for contract tests.

It checks what the documented API checks and what our calls rely on: basic auth, paths, methods, names
(^[A-Z_$][A-Z0-9_$]*$, at most 8), required body fields (credentials userid/password; an Extract's config,
source, credentials, begin, targets; a Replicat's config, credentials, source, checkpoint, mode), that a
process's credential alias exists, PATCH only of `status`, no deletion of a running process. It keeps
state and moves it the way a deployment does: a running Extract writes to its trail as the application
writes (each request is a tick), a running Replicat applies the trail some bytes per tick, so draining
takes a few polls. Answers use the documented envelope {"$schema": "api:standardResponse", "links",
"messages", "response"}.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Response

NAME = re.compile(r"^[A-Z_$][A-Z0-9_$]{0,7}$")
TRAIL = re.compile(r"^[A-Za-z][A-Za-z0-9]$")
SEQUENCE_SIZE = 2500  # bytes per trail file in this fake: positions cross file boundaries in the tests
STATES = ("starting", "running", "stopped", "killed", "abended")


@dataclass
class Process:
    kind: str
    name: str
    body: dict
    status: str = "stopped"
    position: int = 0  # Extract: bytes written to its trail; Replicat: bytes of the trail applied
    abend_on_start: bool = False
    history: list = field(default_factory=list)


def _pos(total: int, trail: str) -> dict:
    return {"$schema": "ogg:trailPosition", "name": trail, "path": f"/u02/trails/{trail}",
            "sequence": total // SEQUENCE_SIZE, "offset": total % SEQUENCE_SIZE}


class FakeDeployment:
    def __init__(self, user="ggadmin", password="Gg-s3cret!", write_per_tick=700, apply_per_tick=400):
        self.user, self.password = user, password
        self.write_per_tick, self.apply_per_tick = write_per_tick, apply_per_tick
        self.credentials: dict[tuple[str, str], dict] = {}
        self.processes: dict[tuple[str, str], Process] = {}
        self.log: list[dict] = []
        self.fail_with: list[tuple[int, str]] = []
        self.app_writing = True
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request(re.compile(r".*")).respond_with_handler(self.handle)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def stop(self):
        self.server.clear()
        self.server.stop()

    # -- test controls ---------------------------------------------------------------------------------

    def fail_next(self, status: int, title: str = "Service unavailable"):
        self.fail_with.append((status, title))

    def calls(self, *methods) -> list[tuple[str, str]]:
        return [(c["method"], c["path"]) for c in self.log if not methods or c["method"] in methods]

    def process(self, kind, name) -> Process:
        return self.processes[(kind, name)]

    def trail_of(self, extract: Process) -> str:
        return extract.body["targets"][0]["name"]

    def extract_for_trail(self, trail) -> Process | None:
        return next((p for p in self.processes.values() if p.kind == "extract" and self.trail_of(p) == trail), None)

    # -- the simulation --------------------------------------------------------------------------------

    def tick(self):
        for p in self.processes.values():
            if p.status == "starting":
                p.status = "abended" if p.abend_on_start else "running"
        for p in list(self.processes.values()):
            if p.kind == "extract" and p.status == "running" and self.app_writing:
                p.position += self.write_per_tick
        for p in self.processes.values():
            if p.kind == "replicat" and p.status == "running":
                source = self.extract_for_trail(p.body["source"]["name"])
                end = source.position if source else p.position
                p.position = min(end, p.position + self.apply_per_tick)

    # -- HTTP ------------------------------------------------------------------------------------------

    def answer(self, status: int, response=None, messages=(), schema=None):
        body = {"$schema": "api:standardResponse", "links": [], "messages": [
            {"$schema": "ogg:message", "title": t, "code": c, "severity": s, "issued": "2026-11-26T12:00:00Z",
             "type": f"http://docs.oracle.com/goldengate/c2300/gg-winux/GMESG/oggus.htm#{c}"} for c, s, t in messages]}
        if response is not None:
            body["response"] = {"$schema": schema, **response} if schema else response
        return Response(json.dumps(body), status=status, content_type="application/json")

    def error(self, status: int, code: str, title: str):
        return self.answer(status, messages=[(code, "ERROR", title)])

    def handle(self, request):
        body = None
        if request.data:
            try:
                body = json.loads(request.data)
            except ValueError:
                return self.error(400, "OGG-12029", "The request body is not valid JSON")
        self.log.append({"method": request.method, "path": request.path, "body": body})
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response("", status=401, headers={"WWW-Authenticate": 'Basic realm="OGG"'})
        if self.fail_with:
            status, title = self.fail_with.pop(0)
            return self.error(status, "OGG-12000", title)
        self.tick()
        parts = request.path.strip("/").split("/")
        if parts[:2] != ["services", "v2"]:
            return self.error(404, "OGG-12004", f"No resource {request.path}")
        parts = parts[2:]
        if parts and parts[0] == "credentials" and len(parts) == 3:
            return self.credential(request.method, parts[1], parts[2], body)
        if parts and parts[0] in ("extracts", "replicats") and len(parts) >= 2:
            kind = parts[0][:-1]
            if not NAME.match(parts[1]):
                return self.error(400, "OGG-12040", f"{parts[1]} is not a valid {kind} name")
            if len(parts) == 2:
                return self.process_resource(request.method, kind, parts[1], body)
            if len(parts) == 4 and parts[2] == "info" and request.method == "GET":
                return self.info(kind, parts[1], parts[3])
        return self.error(404, "OGG-12004", f"No resource {request.method} {request.path}")

    def credential(self, method, domain, alias, body):
        key = (domain, alias)
        if method == "GET":
            if key not in self.credentials:
                return self.error(404, "OGG-15409", f"Alias '{alias}' not found in credential store domain '{domain}'.")
            return self.answer(200, {"userid": self.credentials[key]["userid"]}, schema="ogg:credentials")
        if method == "POST":
            if key in self.credentials:
                return self.error(400, "OGG-15410", f"Alias '{alias}' already exists in domain '{domain}'.")
            if not isinstance(body, dict) or not isinstance(body.get("userid"), str) or not isinstance(body.get("password"), str):
                return self.error(400, "OGG-12030", "userid and password are required")
            self.credentials[key] = dict(body)
            return self.answer(201, messages=[("OGG-15114", "INFO", f"Credential store altered. Alias '{alias}' added.")])
        return self.error(405, "OGG-12001", f"{method} not allowed")

    def _check_credentials(self, body):
        cred = body.get("credentials")
        if not isinstance(cred, dict) or not cred.get("alias"):
            return "credentials {alias[, domain]} required"
        if (cred.get("domain", "OracleGoldenGate"), cred["alias"]) not in self.credentials:
            return f"credential alias {cred['alias']} does not exist"
        return None

    def process_resource(self, method, kind, name, body):
        key = (kind, name)
        proc = self.processes.get(key)
        if method == "GET":
            if proc is None:
                return self.error(404, "OGG-12029", f"The {kind} '{name}' does not exist.")
            return self.answer(200, {**proc.body, "status": proc.status}, schema=f"ogg:{kind}")
        if method == "POST":
            if proc is not None:
                return self.error(400, "OGG-12046", f"The {kind} '{name}' already exists.")
            problem = self._validate(kind, name, body if isinstance(body, dict) else {})
            if problem:
                return self.error(400, "OGG-12030", problem)
            status = body.get("status", "stopped")
            self.processes[key] = Process(kind, name, dict(body), status="starting" if status == "running" else "stopped")
            return self.answer(201, messages=[("OGG-08100", "INFO", f"{kind.upper()} {name} added.")])
        if method == "PATCH":
            if proc is None:
                return self.error(404, "OGG-12029", f"The {kind} '{name}' does not exist.")
            if not isinstance(body, dict) or set(body) != {"status"} or body["status"] not in ("running", "stopped"):
                return self.error(400, "OGG-12030", "this fake accepts only {status: running|stopped}")
            if body["status"] == "running":
                proc.status = "abended" if proc.abend_on_start else "starting"
            else:
                proc.status = "stopped"
            proc.history.append(body["status"])
            return self.answer(200, {**proc.body, "status": proc.status}, schema=f"ogg:{kind}")
        if method == "DELETE":
            if proc is None:
                return self.error(404, "OGG-12029", f"The {kind} '{name}' does not exist.")
            if proc.status in ("running", "starting"):
                return self.error(400, "OGG-08126", f"{kind.upper()} {name} is running; stop it before deleting it.")
            del self.processes[key]
            return self.answer(200, messages=[("OGG-08100", "INFO", f"{kind.upper()} {name} deleted.")])
        return self.error(405, "OGG-12001", f"{method} not allowed")

    def _validate(self, kind, name, body) -> str | None:
        config = body.get("config")
        if not isinstance(config, list) or not config or config[0].split() != [kind.upper(), name]:
            return f"config must be the parameter file, starting with '{kind.upper()} {name}'"
        problem = self._check_credentials(body)
        if problem:
            return problem
        if kind == "extract":
            if body.get("source") not in ("tranlogs", {"tranlogs": "integrated"}):
                return "source must be tranlogs"
            if body.get("begin") != "now":
                return "begin: this fake expects now"
            targets = body.get("targets")
            if not isinstance(targets, list) or len(targets) != 1 or not TRAIL.match(str(targets[0].get("name", ""))):
                return "targets: one trail [{name}] with a two-character name"
            trail = targets[0]["name"]
            if f"EXTTRAIL {trail}" not in config:
                return "the parameter file must name the trail (EXTTRAIL)"
            if self.extract_for_trail(trail):
                return f"trail {trail} is already written by another extract"
        else:
            source = body.get("source")
            if not isinstance(source, dict) or not TRAIL.match(str(source.get("name", ""))):
                return "source {name: trail} required"
            table = (body.get("checkpoint") or {}).get("table") if isinstance(body.get("checkpoint"), dict) else None
            if not table or "." not in table:
                return "checkpoint {table: db.table} required"
            mode = body.get("mode")
            if not isinstance(mode, dict) or mode.get("type") not in ("nonintegrated", "integrated", "coordinated", "parallel"):
                return "mode {type} required"
            if body.get("begin") not in ("now", {"sequence": 0, "offset": 0}):
                return "begin: now or a trail position"
            if not any(line.startswith("MAP ") for line in config):
                return "a Replicat needs MAP statements"
        return None

    def info(self, kind, name, what):
        proc = self.processes.get((kind, name))
        if proc is None:
            return self.error(404, "OGG-12029", f"The {kind} '{name}' does not exist.")
        if what == "status":
            response = {"status": proc.status, "lag": 0, "sinceLagReported": 1, "lastStarted": "2026-11-26T11:00:00.000Z"}
            if kind == "replicat":
                response["position"] = _pos(proc.position, proc.body["source"]["name"])
            return self.answer(200, response, schema=f"ogg:{kind}Status")
        if what == "checkpoints":
            if kind == "extract":
                current = {"input": [{"current": {"sequence": 7, "offset": 1200 + proc.position, "name": "binlog.000007"}}],
                           "output": [{"current": _pos(proc.position, self.trail_of(proc))}]}
            else:
                current = {"input": [{"current": _pos(proc.position, proc.body["source"]["name"]),
                                      "starting": _pos(0, proc.body["source"]["name"])}]}
            return self.answer(200, {"current": current}, schema=f"ogg:{kind}Checkpoints")
        return self.error(404, "OGG-12004", f"No resource info/{what}")
