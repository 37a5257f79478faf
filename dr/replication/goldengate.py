"""GoldenGate replication probe (`goldengate`, role probe): the lag the RPO gate trusts.

Source of truth: the OCI Monitoring service (namespace ``oci_goldengate``), read with the `oci` SDK's
``MonitoringClient.summarize_metrics_data``:

    ReplicatLag[1m]{deploymentId = "<deployment OCID>", ReplicatName = "R…"}.max()
    ExtractLag[1m]{deploymentId = "<deployment OCID>", ExtractName = "E…"}.max()

Why Monitoring, not the deployment's REST API, by default:
- It is the service's own published measurement, authenticated with the same OCI IAM principal as
  every other call (instance/resource principal or config file). The REST API needs a GoldenGate
  user and password and a network path into the deployment's (usually private) endpoint, which the
  control plane often does not have, and which is gone exactly when its region is.
- Its datapoints carry timestamps, so "no recent measurement" is detectable: a missing or stale
  datapoint (older than IDP_GOLDENGATE_STALE_SECONDS, default 180) is UNKNOWN lag, never zero,
  and unknown lag fails the RPO gate unless an operator forces the run.
- Both the Replicat's and the Extract's lag are read and the larger one counts: a Replicat that has
  applied everything in its trail reports ~0 even when the Extract has stopped or fallen behind, so
  ReplicatLag alone can under-report the data-loss window. The maximum of the two is never below
  what either process measures; an Extract with no datapoint makes the lag unknown.
- The ``max()`` of each 1-minute interval is used (the worst moment, not the average).

Optional exact check (the deployment's REST API), when IDP_GOLDENGATE_USER is set:
``GET /services/v2/replicats/{R}/info/status`` and ``…/extracts/{E}/info/status`` (``status``,
``lag`` in seconds, ``sinceLagReported``). When it answers, it is the live value the reading uses
(Monitoring lags it by a minute or two, which matters when the runbook waits for the lag to drain
to 0 after fencing); a process that is not ``running``, or a lag reported longer ago than the stale
limit, makes the lag unknown. When it cannot be reached, the Monitoring reading stands and the
detail says why.

Errors: 429 from Monitoring is transient (the runbook retries); refused credentials or a wrong
compartment are ProviderError; Monitoring unreachable or 5xx gives an unknown reading (so a forced
failover during an OCI outage can still proceed, with the unknown lag on record).

Names: cells.rendering.goldengate_pair(cell, env, source side) -> (Extract, Replicat): the forward pair's
names are the ones the ReplicationClaim carries; after a reprotect the reverse pair replicates. deploymentId and
compartmentId are non-secret OCIDs from the policy (replicationTools.<tool>.settings; the tool is
IDP_GOLDENGATE_TOOL if set, else the cell's ReplicationClaim tool, else oci-goldengate). Credentials:
OCI as in dr.traffic.providers.oci_dns.oci_auth (OCI_CONFIG_FILE/OCI_CONFIG_PROFILE or IDP_OCI_AUTH);
REST: IDP_GOLDENGATE_USER + IDP_GOLDENGATE_PASSWORD_FILE (a mounted secret) or IDP_GOLDENGATE_PASSWORD,
IDP_GOLDENGATE_URL (default: the deployment's deploymentUrl from GoldenGateClient.get_deployment),
IDP_GOLDENGATE_CA_BUNDLE (optional).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import oci

from cells.rendering import goldengate_pair
from dr.errors import ProviderError, TransientProviderError
from dr.replication.base import LagReading
from dr.secrets import read_secret_file
from dr.traffic.providers.oci_dns import oci_client

NAMESPACE = "oci_goldengate"
DEFAULT_TOOL = "oci-goldengate"
METRICS = (("ReplicatLag", "ReplicatName", "replicat"), ("ExtractLag", "ExtractName", "extract"))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


class GoldenGateRest:
    """The deployment's own REST API (Administration Service), basic auth."""

    def __init__(self, url: str | None, user: str, password: str, *, verify: bool | str = True, timeout: float = 10.0,
                 resolve_url=None):
        self.url = url.rstrip("/") if url else None
        self.user, self.password = user, password
        self.verify, self.timeout = verify, timeout
        self.resolve_url = resolve_url  # deployment_id -> deploymentUrl, when no URL is configured

    @classmethod
    def from_env(cls, resolve_url=None):
        user = os.environ.get("IDP_GOLDENGATE_USER", "").strip()
        if not user:
            return None
        password = os.environ.get("IDP_GOLDENGATE_PASSWORD", "")
        path = os.environ.get("IDP_GOLDENGATE_PASSWORD_FILE", "").strip()
        if path:
            password = read_secret_file(path, "goldengate", "IDP_GOLDENGATE_PASSWORD_FILE")
        if not password:
            raise ProviderError("goldengate: IDP_GOLDENGATE_USER is set but no IDP_GOLDENGATE_PASSWORD(_FILE)")
        return cls(os.environ.get("IDP_GOLDENGATE_URL") or None, user, password,
                   verify=os.environ.get("IDP_GOLDENGATE_CA_BUNDLE") or True, resolve_url=resolve_url)

    def status(self, deployment_id: str, kind: str, name: str) -> dict:
        """The `response` of GET /services/v2/{kind}s/{name}/info/status. Raises on any failure."""
        import requests

        url = self.url or (self.resolve_url(deployment_id).rstrip("/") if self.resolve_url else None)
        if not url:
            raise ProviderError("no deployment URL (set IDP_GOLDENGATE_URL)")
        resp = requests.get(f"{url}/services/v2/{kind}s/{name}/info/status", auth=(self.user, self.password),
                            headers={"Accept": "application/json"}, timeout=self.timeout, verify=self.verify)
        if resp.status_code != 200:
            raise ProviderError(f"HTTP {resp.status_code} from {kind} {name} status")
        body = resp.json()
        return body.get("response", body) if isinstance(body, dict) else {}


class GoldenGateProbe:
    name = "goldengate"

    def __init__(self, monitoring, *, deployment_id: str | None = None, compartment_id: str | None = None,
                 tool: str | None = None, stale_seconds: float = 180.0, window_seconds: float = 600.0,
                 rest: GoldenGateRest | None = None, clock=_utcnow):
        self.monitoring = monitoring
        self.deployment_id, self.compartment_id, self.tool = deployment_id, compartment_id, tool
        self.stale_seconds, self.window_seconds = stale_seconds, window_seconds
        self.rest = rest
        self.clock = clock

    @classmethod
    def from_settings(cls):
        monitoring = oci_client(oci.monitoring.MonitoringClient)

        def deployment_url(deployment_id: str) -> str:
            client = oci_client(oci.golden_gate.GoldenGateClient)
            return client.get_deployment(deployment_id).data.deployment_url

        return cls(monitoring, tool=os.environ.get("IDP_GOLDENGATE_TOOL") or None,
                   stale_seconds=float(os.environ.get("IDP_GOLDENGATE_STALE_SECONDS", "180")),
                   rest=GoldenGateRest.from_env(resolve_url=deployment_url))

    # -- settings --------------------------------------------------------------------------------

    def _ids(self, cell_env) -> tuple[str, str]:
        if self.deployment_id and self.compartment_id:
            return self.deployment_id, self.compartment_id
        from policy.active import active_policy

        tools = active_policy().spec.replication_tools
        name = self.tool
        if name is None:
            claims = getattr(cell_env, "replicationclaims", None)
            claim = claims.first() if claims is not None else None
            name = claim.tool if claim is not None and claim.tool in tools else None
        if name is None:
            name = DEFAULT_TOOL if DEFAULT_TOOL in tools else next(
                (n for n, t in tools.items() if t.adapters.probe == self.name), None)
        tool = tools.get(name) if name else None
        if tool is None:
            raise ProviderError(f"goldengate: no replication tool {name or DEFAULT_TOOL!r} in the active policy")
        settings = tool.settings
        missing = [k for k in ("deploymentId", "compartmentId") if not settings.get(k)]
        if missing:
            raise ProviderError(f"goldengate: policy replicationTools.{name}.settings lacks {', '.join(missing)}")
        return self.deployment_id or settings["deploymentId"], self.compartment_id or settings["compartmentId"]

    # -- Monitoring ------------------------------------------------------------------------------

    def _metric(self, now: datetime, compartment_id: str, deployment_id: str, metric: str, dimension: str,
                process: str) -> dict:
        query = f'{metric}[1m]{{deploymentId = "{deployment_id}", {dimension} = "{process}"}}.max()'
        details = oci.monitoring.models.SummarizeMetricsDataDetails(
            namespace=NAMESPACE, query=query, resolution="1m",
            start_time=now - timedelta(seconds=self.window_seconds), end_time=now)
        try:
            series = self.monitoring.summarize_metrics_data(compartment_id, details).data or []
        except oci.exceptions.ServiceError as exc:
            if exc.status == 429:
                raise TransientProviderError(f"goldengate: Monitoring throttled the {metric} query (429)") from exc
            if exc.status >= 500:
                return {"query": query, "unknown": f"Monitoring answered {exc.status} {exc.code}"}
            raise ProviderError(f"goldengate: Monitoring refused the {metric} query: {exc.status} {exc.code}: "
                                f"{exc.message}") from exc
        except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
            return {"query": query, "unknown": f"Monitoring unreachable ({type(exc).__name__})"}
        except oci.exceptions.ClientError as exc:
            raise ProviderError(f"goldengate: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - e.g. the SDK's circuit breaker
            if type(exc).__name__ == "CircuitBreakerError":
                return {"query": query, "unknown": "Monitoring circuit breaker open"}
            raise
        points = [(_as_utc(p.timestamp), p.value) for s in series for p in (s.aggregated_datapoints or [])
                  if p.timestamp is not None and p.value is not None]
        if not points:
            return {"query": query, "unknown": f"no {metric} datapoint for {process} in the last {self.window_seconds:g}s"}
        ts, value = max(points)
        age = max(0.0, (now - ts).total_seconds())
        if age > self.stale_seconds:
            return {"query": query, "at": ts.isoformat(), "ageSeconds": age, "lastValue": value,
                    "unknown": f"{metric} for {process} is stale: last datapoint {age:.0f}s old (limit {self.stale_seconds:g}s)"}
        return {"query": query, "value": float(value), "at": ts.isoformat(), "ageSeconds": age}

    # -- REST exact check -----------------------------------------------------------------------

    def _rest(self, now: datetime, deployment_id: str, names: dict[str, str]) -> dict:
        out: dict = {}
        try:
            for kind, name in names.items():
                status = self.rest.status(deployment_id, kind, name)
                state = str(status.get("status", "")).lower()
                entry = {"status": state}
                try:
                    entry["lag"] = float(status.get("lag"))
                    entry["sinceLagReported"] = float(status.get("sinceLagReported", 0) or 0)
                except (TypeError, ValueError):
                    entry["lag"] = None
                out[kind] = entry
        except Exception as exc:  # noqa: BLE001 - the check is optional: say why and keep Monitoring's value
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}
        problems = []
        for kind, entry in out.items():
            if entry["status"] != "running":
                problems.append(f"{kind} {names[kind]} is {entry['status'] or 'in an unknown state'}")
            elif entry["lag"] is None:
                problems.append(f"{kind} {names[kind]} reports no lag")
            elif entry["sinceLagReported"] > self.stale_seconds:
                problems.append(f"{kind} {names[kind]} last reported its lag {entry['sinceLagReported']:.0f}s ago")
        if problems:
            out["unknown"] = "; ".join(problems)
        else:
            entries = list(out.values())
            out["value"] = max(e["lag"] for e in entries)
            out["at"] = (now - timedelta(seconds=max(e["sinceLagReported"] for e in entries))).isoformat()
        return out

    # -- the interface ---------------------------------------------------------------------------

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        deployment_id, compartment_id = self._ids(cell_env)
        # The pair replicating from the current source: after a reprotect that is the reverse pair.
        extract, replicat = goldengate_pair(cell_env.cell.name, cell_env.environment, source_side)
        now = self.clock()
        readings = {process_kind: self._metric(now, compartment_id, deployment_id, metric, dimension,
                                               extract if process_kind == "extract" else replicat)
                    for metric, dimension, process_kind in METRICS}
        detail: dict = {"adapter": self.name, "deploymentId": deployment_id, "extract": extract, "replicat": replicat,
                        "sourceSide": source_side, "targetSide": target_side, "staleSeconds": self.stale_seconds,
                        "monitoring": {"ReplicatLag": readings["replicat"], "ExtractLag": readings["extract"]}}
        unknown = [r["unknown"] for r in readings.values() if "unknown" in r]
        seconds = None if unknown else max(r["value"] for r in readings.values())
        measured_at = min((datetime.fromisoformat(r["at"]) for r in readings.values() if "at" in r), default=now)
        detail["source"] = "monitoring"
        if unknown:
            detail["unknown"] = "; ".join(unknown)
        if self.rest is not None:
            rest = self._rest(now, deployment_id, {"extract": extract, "replicat": replicat})
            detail["rest"] = rest
            if "value" in rest:
                seconds, measured_at, detail["source"] = rest["value"], datetime.fromisoformat(rest["at"]), "rest"
                detail.pop("unknown", None)
            elif "unknown" in rest:
                seconds, detail["source"], detail["unknown"] = None, "rest", rest["unknown"]
        return LagReading(seconds, measured_at, detail)
