"""A real HTTP server on 127.0.0.1 that plays Cloudflare's v4 API for contract tests: it answers with
Cloudflare's envelope ({"success", "errors", "messages", "result"[, "result_info"]}), keeps the zone's
records and the load balancer pools, and logs every request (method, path, query, Bearer token, body).

`failures` makes the next requests fail; `frozen = True` makes writes answer 200 and change nothing
(a switch that does not take effect); `frozen_names` does that for the records of some names only. Two zones:
example.com (ZONE) and example.org (ZONE2); a record belongs to the zone its name ends with.
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "cf-test-token-8d1b6f0e2a"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
ZONE2 = "9a7806061c88ada191ed06f989cc3dac"
ACCOUNT = "01a7362d577a6c3019a474fd6f485823"


def envelope(result, status=200, errors=None, result_info=None):
    body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return Response(json.dumps(body), status=status, content_type="application/json")


class CloudflareFake:
    def __init__(self):
        self.reset()
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        self.server.start()

    def reset(self):
        self.requests: list[dict] = []
        self.records: dict[str, dict] = {}
        self.pools: dict[str, dict] = {}
        self.zones = {"example.com": ZONE, "example.org": ZONE2}
        self.failures: list[tuple[int, dict]] = []
        self.frozen = False
        self.frozen_names: set[str] = set()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.port}/client/v4"

    def add_record(self, name, rtype, content, ttl=60, proxied=False):
        rid = f"rec{len(self.records) + 1:029d}"
        zone = max((z for z in self.zones if name == z or name.endswith("." + z)), key=len, default="example.com")
        self.records[rid] = {"id": rid, "zone_id": self.zones[zone], "zone_name": zone, "name": name, "type": rtype,
                             "content": content, "ttl": ttl, "proxied": proxied, "proxiable": True,
                             "comment": None, "tags": [], "settings": {}, "meta": {},
                             "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z"}
        return rid

    def add_pool(self, pool_id, name, address, enabled):
        self.pools[pool_id] = {"id": pool_id, "name": name, "enabled": enabled, "minimum_origins": 1,
                               "origins": [{"name": f"{name}-origin", "address": address, "enabled": True, "weight": 1}]}

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        entry = {"method": request.method, "path": request.path,
                 "query": {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()},
                 "auth": request.headers.get("Authorization"), "headers": dict(request.headers),
                 "body": json.loads(body) if body else None}
        self.requests.append(entry)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}" or request.headers.get("X-Auth-Key"):
            return envelope(None, 403, [{"code": 9109, "message": "Invalid access token"}])
        if self.failures:
            status, error = self.failures.pop(0)
            return envelope(None, status, [error])
        path, q, data = request.path, entry["query"], entry["body"] or {}
        if path == "/client/v4/zones" and request.method == "GET":
            found = [{"id": zid, "name": name, "status": "active"} for name, zid in self.zones.items() if name == q.get("name")]
            return envelope(found, result_info={"page": 1, "per_page": 5, "count": len(found), "total_count": len(found)})
        if m := re.fullmatch(r"/client/v4/zones/(\w+)/dns_records", path):
            if m.group(1) not in self.zones.values():
                return envelope(None, 404, [{"code": 7003, "message": "Could not route to /zones/x/dns_records"}])
            found = [r for r in self.records.values() if r["zone_id"] == m.group(1)
                     and r["name"] == q.get("name.exact", r["name"]) and r["type"] == q.get("type", r["type"])]
            return envelope(found, result_info={"page": 1, "per_page": 100, "count": len(found), "total_count": len(found)})
        if (m := re.fullmatch(r"/client/v4/zones/(\w+)/dns_records/batch", path)) and request.method == "POST":
            ids = [d["id"] for d in data.get("deletes", [])] + [p["id"] for p in data.get("patches", [])]
            strangers = [i for i in ids if self.records.get(i, {}).get("zone_id") != m.group(1)]
            if strangers:  # one transaction: nothing applied
                return envelope(None, 400, [{"code": 81044, "message": f"Record {strangers[0]} does not exist in this zone."}])
            if len(ids) > 200:
                return envelope(None, 400, [{"code": 81058, "message": "Batch size exceeds the plan's limit of 200."}])
            kept = lambda rid: not self.frozen and self.records[rid]["name"] not in self.frozen_names  # noqa: E731
            for d in data.get("deletes", []):
                if kept(d["id"]):
                    self.records.pop(d["id"], None)
            for p in data.get("patches", []):
                if kept(p["id"]):
                    self.records[p["id"]].update({k: v for k, v in p.items() if k != "id"})
            return envelope({"deletes": [], "patches": [self.records[p["id"]] for p in data.get("patches", [])]})
        if m := re.fullmatch(r"/client/v4/zones/(\w+)/dns_records/(\w+)", path):
            record = self.records.get(m.group(2))
            if record is None:
                return envelope(None, 404, [{"code": 81044, "message": "Record does not exist."}])
            if request.method == "PATCH" and not self.frozen and record["name"] not in self.frozen_names:
                record.update({k: v for k, v in data.items() if k in ("name", "type", "content", "ttl", "proxied")})
            return envelope(record)
        if m := re.fullmatch(r"/client/v4/accounts/(\w+)/load_balancers/pools/(\w+)", path):
            pool = self.pools.get(m.group(2))
            if m.group(1) != ACCOUNT or pool is None:
                return envelope(None, 404, [{"code": 1002, "message": "pool not found"}])
            if request.method == "PATCH" and not self.frozen:
                pool.update(data)
            return envelope(pool)
        return envelope(None, 404, [{"code": 7000, "message": f"No route for {request.method} {path}"}])

    def calls(self, method):
        return [r for r in self.requests if r["method"] == method]
