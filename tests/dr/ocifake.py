"""A real HTTP server on 127.0.0.1 that plays the parts of OCI DNS and OCI Monitoring the adapters call,
for contract tests: the `oci` SDK sends its real, signed requests to it (its vendored `requests` is not
intercepted by `responses`/`requests-mock`, so nothing is mocked in-process).

- `make_config()` generates an RSA key pair in the test and returns an SDK config dict (fingerprint
  00:…:00 passes the SDK's validation) plus the public key.
- `OciFake(public_key)` starts the server. Every request is logged (method, path, query, headers,
  JSON body) and its `authorization` header is checked: present, keyId tenancy/user/fingerprint,
  and the RSA-SHA256 signature over the signed headers verified with the test's public key (plus
  `x-content-sha256` against the body). Unsigned or badly signed requests get 401, as OCI answers.
- DNS (base path /20180115): zones and records (GET …/zones/{zone}, GET …/zones/{zone}/records,
  GET …/records/{domain}/{rtype}, PATCH …/zones/{zone}/records with REQUIRE/PROHIBIT/REMOVE/ADD
  applied atomically and a CNAME-exclusivity check), steering policies and attachments
  (GET/PUT …/steeringPolicies/{id} with ETag/If-Match, GET …/steeringPolicyAttachments).
- Monitoring (base path /20180401): POST …/metrics/actions/summarizeMetricsData answers from
  `series` whose name and dimensions match the MQL query.
- `fail(status, code, times=1, path_contains="")` makes the next matching requests fail; `frozen = True`
  makes writes answer 200 and change nothing (a switch that does not take effect); `frozen_domains` does
  that for the record operations on some names only (the rest of the PATCH applies).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TENANCY = "ocid1.tenancy.oc1..aaaatesttenancy"
USER = "ocid1.user.oc1..aaaatestuser"
FINGERPRINT = ":".join(["00"] * 16)


def make_config(region: str = "us-ashburn-1"):
    """(config dict for the SDK, public key) with an RSA key generated here."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    config = {"user": USER, "tenancy": TENANCY, "fingerprint": FINGERPRINT, "region": region, "key_content": pem}
    return config, key.public_key()


def write_config_file(path, config: dict, profile: str = "DEFAULT") -> None:
    """An ~/.oci/config style file (key in a separate PEM file) for from_settings() tests."""
    key_file = path.parent / (path.name + ".pem")
    key_file.write_text(config["key_content"])
    key_file.chmod(0o600)
    path.write_text(f"[{profile}]\nuser={config['user']}\ntenancy={config['tenancy']}\n"
                    f"fingerprint={config['fingerprint']}\nregion={config['region']}\nkey_file={key_file}\n")


def _json(data, status=200, headers=None):
    return Response(json.dumps(data), status=status, content_type="application/json", headers=headers or {})


def _error(status, code, message):
    return _json({"code": code, "message": message}, status=status)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


class OciFake:
    def __init__(self, public_key):
        self.public_key = public_key
        self._lock = threading.Lock()
        self.reset()
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.server.start()

    def reset(self):
        """Forget every zone, policy, series, failure and logged request (one server per test module)."""
        self.requests: list[dict] = []
        self.zones: dict[str, list[dict]] = {}          # zone name -> records (wire format dicts)
        self.steering: dict[str, dict] = {}             # policy id -> policy (wire format)
        self.etags: dict[str, int] = {}
        self.attachments: list[dict] = []
        self.series: list[dict] = []                    # {"name", "dimensions", "datapoints": [(datetime, value)]}
        self._failures: list[dict] = []
        self.frozen = False                             # True: PATCH/PUT answer 200 but change nothing
        self.frozen_domains: set[str] = set()           # PATCH operations on these names are ignored

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def stop(self):
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    # -- set-up ------------------------------------------------------------------------------

    def add_zone(self, zone: str):
        self.zones.setdefault(_norm(zone), [])

    def add_record(self, zone: str, domain: str, rtype: str, rdata: str, ttl: int = 30):
        records = self.zones.setdefault(_norm(zone), [])
        records.append(self._record(domain, rtype, rdata, ttl))

    def add_steering_policy(self, policy_id: str, domain: str, zone_id: str, compartment_id: str, answers, rules):
        self.steering[policy_id] = {"id": policy_id, "compartmentId": compartment_id, "displayName": f"{domain} failover",
                                    "ttl": 30, "template": "FAILOVER", "healthCheckMonitorId": "ocid1.httpmonitor.oc1..hc",
                                    "freeformTags": {}, "definedTags": {}, "answers": answers, "rules": rules,
                                    "self": f"{self.endpoint}/20180115/steeringPolicies/{policy_id}",
                                    "timeCreated": "2026-01-01T00:00:00.000Z", "lifecycleState": "ACTIVE"}
        self.etags[policy_id] = 1
        self.attachments.append({"id": f"ocid1.dnssteeringattachment.oc1..{len(self.attachments)}",
                                 "steeringPolicyId": policy_id, "zoneId": zone_id, "domainName": domain,
                                 "displayName": domain, "rtypes": ["A", "AAAA", "CNAME"], "compartmentId": compartment_id,
                                 "self": "x", "timeCreated": "2026-01-01T00:00:00.000Z", "lifecycleState": "ACTIVE"})

    def add_series(self, name: str, dimensions: dict, datapoints):
        self.series.append({"name": name, "dimensions": dict(dimensions), "datapoints": list(datapoints)})

    def fail(self, status: int, code: str, times: int = 1, path_contains: str = "", method: str = ""):
        self._failures.append({"status": status, "code": code, "times": times, "path": path_contains, "method": method})

    def values(self, zone: str, domain: str) -> list[tuple[str, str]]:
        return sorted((r["rtype"], r["rdata"]) for r in self.zones[_norm(zone)] if _norm(r["domain"]) == _norm(domain))

    def calls(self, method: str | None = None, path_contains: str = "") -> list[dict]:
        return [r for r in self.requests if (method is None or r["method"] == method) and path_contains in r["path"]]

    # -- signature ---------------------------------------------------------------------------

    def _check_signature(self, request: Request) -> str | None:
        """None when the request is signed by the test key; otherwise why not."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Signature "):
            return "no OCI Signature authorization header"
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
            return f"unexpected signature parameters {params.get('version')}/{params.get('algorithm')}"
        if params.get("keyId") != f"{TENANCY}/{USER}/{FINGERPRINT}":
            return f"unexpected keyId {params.get('keyId')}"
        names = params.get("headers", "").split()
        needed = {"date", "(request-target)", "host"}
        if request.method in ("POST", "PUT", "PATCH"):
            needed |= {"content-length", "content-type", "x-content-sha256"}
        if not needed <= set(names):
            return f"signed headers {names} miss {sorted(needed - set(names))}"
        body = request.get_data()
        if "x-content-sha256" in names:
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if request.headers.get("x-content-sha256") != digest:
                return "x-content-sha256 does not match the body"
        target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        lines = []
        for name in names:
            if name == "(request-target)":
                lines.append(f"(request-target): {request.method.lower()} {target}")
            else:
                lines.append(f"{name}: {request.headers.get(name, '')}")
        try:
            self.public_key.verify(base64.b64decode(params.get("signature", "")), "\n".join(lines).encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature does not verify with the test key"
        return None

    # -- dispatch ----------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        problem = self._check_signature(request)
        entry = {"method": request.method, "path": request.path, "query": {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()},
                 "headers": dict(request.headers), "body": parsed, "signed": problem is None, "signatureProblem": problem}
        with self._lock:
            self.requests.append(entry)
            if problem:
                return _error(401, "NotAuthenticated", problem)
            for failure in self._failures:
                if failure["times"] > 0 and failure["path"] in request.path and failure["method"] in ("", request.method):
                    failure["times"] -= 1
                    return _error(failure["status"], failure["code"], f"injected {failure['status']} {failure['code']}")
            return self._route(request, parsed)

    def _route(self, request: Request, body) -> Response:
        path, method = unquote(request.path), request.method
        q = {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()}
        if m := re.fullmatch(r"/20180115/zones/([^/]+)", path):
            return self._get_zone(m.group(1)) if method == "GET" else _error(405, "MethodNotAllowed", method)
        if m := re.fullmatch(r"/20180115/zones/([^/]+)/records", path):
            if method == "GET":
                return self._get_records(m.group(1), q)
            if method == "PATCH":
                return self._patch_records(m.group(1), body or {})
        if m := re.fullmatch(r"/20180115/zones/([^/]+)/records/([^/]+)/([^/]+)", path):
            if method == "GET":
                return self._get_records(m.group(1), {"domain": m.group(2), "rtype": m.group(3)}, rrset=True)
        if path == "/20180115/steeringPolicyAttachments" and method == "GET":
            found = [a for a in self.attachments if a["compartmentId"] == q.get("compartmentId")
                     and ("domain" not in q or _norm(a["domainName"]) == _norm(q["domain"]))]
            return _json(found)
        if m := re.fullmatch(r"/20180115/steeringPolicies/([^/]+)", path):
            pid = m.group(1)
            if pid not in self.steering:
                return _error(404, "NotAuthorizedOrNotFound", f"steering policy {pid}")
            if method == "GET":
                return _json(self.steering[pid], headers={"etag": str(self.etags[pid])})
            if method == "PUT":
                if request.headers.get("if-match") not in (None, str(self.etags[pid])):
                    return _error(412, "PreconditionFailed", "etag mismatch")
                if self.frozen:
                    return _json(self.steering[pid], headers={"etag": str(self.etags[pid])})
                self.steering[pid].update({k: v for k, v in (body or {}).items() if v is not None})
                self.etags[pid] += 1
                return _json(self.steering[pid], headers={"etag": str(self.etags[pid])})
        if path == "/20180401/metrics/actions/summarizeMetricsData" and method == "POST":
            return self._summarize(q, body or {})
        return _error(404, "NotAuthorizedOrNotFound", f"{method} {path} is not part of this fake")

    # -- DNS ---------------------------------------------------------------------------------

    @staticmethod
    def _record(domain, rtype, rdata, ttl):
        if rtype == "CNAME" and not rdata.endswith("."):
            rdata += "."  # OCI normalizes rdata: a CNAME target comes back fully qualified
        return {"domain": _norm(domain), "rtype": rtype, "rdata": rdata, "ttl": ttl, "isProtected": False,
                "recordHash": hashlib.md5(f"{_norm(domain)}|{rtype}|{rdata}".encode()).hexdigest(), "rrsetVersion": "1"}

    def _get_zone(self, zone):
        if _norm(zone) not in self.zones:
            return _error(404, "NotAuthorizedOrNotFound", f"zone {zone} not found")
        return _json({"name": _norm(zone), "zoneType": "PRIMARY", "compartmentId": "ocid1.compartment.oc1..dns",
                      "scope": "GLOBAL", "id": f"ocid1.dns-zone.oc1..{_norm(zone)}", "self": "x", "version": "1",
                      "serial": 1, "lifecycleState": "ACTIVE", "isProtected": False, "timeCreated": "2026-01-01T00:00:00Z",
                      "externalMasters": [], "externalDownstreams": [], "nameservers": []})

    def _get_records(self, zone, q, rrset=False):
        if _norm(zone) not in self.zones:
            return _error(404, "NotAuthorizedOrNotFound", f"zone {zone} not found")
        items = [r for r in self.zones[_norm(zone)]
                 if ("domain" not in q or _norm(r["domain"]) == _norm(q["domain"]))
                 and ("rtype" not in q or r["rtype"] == q["rtype"].upper())]
        return _json({"items": items}, headers={"opc-total-items": str(len(items)), "etag": "zone-etag"})

    @staticmethod
    def _matches(record, op):
        if _norm(record["domain"]) != _norm(op["domain"]):
            return False
        if op.get("rtype") and record["rtype"] != op["rtype"]:
            return False
        if op.get("rdata") is not None:
            want = op["rdata"] + "." if record["rtype"] == "CNAME" and not op["rdata"].endswith(".") else op["rdata"]
            if record["rdata"].lower() != want.lower():
                return False
        if op.get("ttl") is not None and op.get("operation") in ("REQUIRE", "PROHIBIT") and record["ttl"] != op["ttl"]:
            return False
        return True

    def _patch_records(self, zone, body):
        if _norm(zone) not in self.zones:
            return _error(404, "NotAuthorizedOrNotFound", f"zone {zone} not found")
        if self.frozen:
            return _json({"items": self.zones[_norm(zone)]})
        records = [dict(r) for r in self.zones[_norm(zone)]]
        for op in body.get("items", []):
            if _norm(op.get("domain", "")) in self.frozen_domains:
                continue
            kind = op.get("operation")
            if kind == "REQUIRE" and not any(self._matches(r, op) for r in records):
                return _error(409, "Conflict", f"REQUIRE failed: no record {op.get('domain')} {op.get('rtype')} {op.get('rdata')}")
            if kind == "PROHIBIT" and any(self._matches(r, op) for r in records):
                return _error(409, "Conflict", f"PROHIBIT failed: {op.get('domain')} {op.get('rtype')} exists")
            if kind == "REMOVE":
                records = [r for r in records if not self._matches(r, op)]
            if kind == "ADD":
                if not op.get("rtype") or op.get("rdata") is None:
                    return _error(400, "InvalidParameter", "ADD needs rtype and rdata")
                records = [r for r in records if not self._matches(r, {**op, "operation": "REMOVE"})]
                records.append(self._record(op["domain"], op["rtype"], op["rdata"], op.get("ttl") or 86400))
        by_domain: dict[str, set] = {}
        for r in records:
            by_domain.setdefault(_norm(r["domain"]), set()).add(r["rtype"])
        for domain, types in by_domain.items():
            if "CNAME" in types and len(types) > 1:
                return _error(400, "InvalidParameter", f"CNAME at {domain} cannot coexist with {sorted(types - {'CNAME'})}")
        self.zones[_norm(zone)] = records
        return _json({"items": records}, headers={"etag": "zone-etag-2"})

    # -- Monitoring ----------------------------------------------------------------------------

    def _summarize(self, q, body):
        if not q.get("compartmentId"):
            return _error(400, "InvalidParameter", "compartmentId is required")
        query = body.get("query", "")
        m = re.match(r"^\s*(\w+)\[(\w+)\]\s*\{([^}]*)\}\s*\.(\w+)\(\)\s*$", query)
        if not m:
            return _error(400, "InvalidParameter", f"cannot parse query {query!r}")
        name, _interval, dims_text, _stat = m.groups()
        wanted = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', dims_text))
        start = datetime.fromisoformat(body["startTime"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(body["endTime"].replace("Z", "+00:00"))
        out = []
        for s in self.series:
            if s["name"] != name or body.get("namespace") != "oci_goldengate":
                continue
            if any(s["dimensions"].get(k) != v for k, v in wanted.items()):
                continue
            points = [{"timestamp": ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), "value": v}
                      for ts, v in s["datapoints"] if start <= ts <= end]
            if points:
                out.append({"namespace": "oci_goldengate", "compartmentId": q["compartmentId"], "name": name,
                            "dimensions": s["dimensions"], "metadata": {"unit": "seconds"}, "resolution": "1m",
                            "aggregatedDatapoints": points})
        return _json(out)
