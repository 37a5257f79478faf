"""What each composite resource is made of, per cloud: plain dicts in, plain dicts out (no gRPC here).

`compose(xr, observed, step_input)` returns the desired composed resources, which of them are ready,
the composite's status and its connection details. fn.py wraps it in the Crossplane function SDK; the
control plane's simulator calls the same function, so what the simulator judges is what a cluster gets.

The managed-resource fields set here are checked against our schemas of the providers' CRDs
(tests/platform/schemas/managed/, each naming the provider version it was read from).
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field

GROUP = "platform.idp-multicloud.io"
MYSQL_KIND = "CellMySQLClaim"
REPLICATION_KIND = "ReplicationClaim"
ADMIN_USER = "idpadmin"
MYSQL_PORT = 3306

# Where each managed resource reports the host applications connect to (status.atProvider.<field>).
ENDPOINT_FIELDS = {
    "Instance": "address",              # RDS
    "MysqlDbSystem": "ipAddress",       # OCI MySQL HeatWave
    "FlexibleServer": "fqdn",           # Azure Database for MySQL flexible server
    "DatabaseInstance": "privateIpAddress",  # Cloud SQL (private IP, the cross-cloud path)
}


class InputError(ValueError):
    """The Composition's input or the composite resource cannot be composed (a fatal result)."""


@dataclass
class Composed:
    resources: dict[str, dict] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    connection: dict[str, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------------------

def _condition(obj: dict | None, typ: str) -> str:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c.get("status", "Unknown")
    return "Unknown"


def _mr_ready(observed: dict | None) -> bool:
    return _condition(observed, "Ready") == "True"


def _meta(xr: dict, name: str, **labels) -> dict:
    meta = xr.get("metadata") or {}
    spec = xr.get("spec") or {}
    return {"name": name, "namespace": meta.get("namespace"), "labels": {
        f"{GROUP}/cell": spec.get("cell", ""), f"{GROUP}/environment": spec.get("environment", ""),
        f"{GROUP}/composite": meta.get("name", ""), **labels}}


def _secret(xr: dict, name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(xr, name), "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _secret_value(observed: dict | None, key: str) -> str | None:
    raw = ((observed or {}).get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw else None


def _kept_password(observed: dict | None) -> str:
    """A composed Secret's password: the one already in the cluster, or a new one (functions are stateless)."""
    return _secret_value(observed, "password") or secrets.token_urlsafe(24)


def _provider_config(step_input: dict) -> dict:
    # v2 namespaced managed resources name their ProviderConfig kind.
    ref = step_input.get("providerConfigRef") or {}
    return {"name": ref.get("name", "default"), "kind": ref.get("kind", "ClusterProviderConfig")}


def _setting(step_input: dict, key: str) -> str:
    value = (step_input.get("settings") or {}).get(key)
    if value in (None, ""):
        raise InputError(f"the Composition's input has no settings.{key} (cloud {step_input.get('cloud')})")
    return value


# -- MySQL, per cloud ------------------------------------------------------------------------------

def _aws(spec: dict, inp: dict, size: str, secret: str) -> dict:
    fp = {
        "region": spec["placement"]["region"],
        "engine": "mysql",
        "engineVersion": inp.get("mysqlVersion", "8.0"),
        "instanceClass": size,
        "allocatedStorage": spec["storageGB"],
        "multiAz": bool(spec["ha"]),
        "username": ADMIN_USER,
        "passwordSecretRef": {"name": secret, "key": "password"},
        "storageEncrypted": True,
        "backupRetentionPeriod": int(inp.get("backupRetentionDays", 7)),
        "skipFinalSnapshot": False,
        "finalSnapshotIdentifier": f"{spec['cell']}-{spec['environment']}-{spec['side']}-final",
        "publiclyAccessible": False,
        "dbSubnetGroupName": _setting(inp, "dbSubnetGroupName"),
    }
    return {"apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "Instance", "spec": {"forProvider": fp}}


def _oci(spec: dict, inp: dict, size: str, secret: str) -> dict:
    fp = {
        "compartmentId": _setting(inp, "compartmentId"),
        "availabilityDomain": _setting(inp, "availabilityDomain"),
        "subnetId": _setting(inp, "subnetId"),
        "shapeName": size,
        "dataStorageSizeInGb": spec["storageGB"],
        "isHighlyAvailable": bool(spec["ha"]),
        "mysqlVersion": inp.get("mysqlVersion", "8.4.0"),
        "displayName": f"{spec['cell']}-{spec['environment']}-{spec['side']}",
        "adminUsername": ADMIN_USER,
        "adminPasswordSecretRef": {"name": secret, "key": "password"},
    }
    return {"apiVersion": "mysql.oci.m.upbound.io/v1alpha1", "kind": "MysqlDbSystem", "spec": {"forProvider": fp}}


def _azure(spec: dict, inp: dict, size: str, secret: str) -> dict:
    fp = {
        "location": spec["placement"]["region"],
        "resourceGroupName": _setting(inp, "resourceGroupName"),
        "skuName": size,
        "version": inp.get("mysqlVersion", "8.0.21"),
        "storage": {"sizeGb": spec["storageGB"], "autoGrowEnabled": False},
        "administratorLogin": ADMIN_USER,
        "administratorPasswordSecretRef": {"name": secret, "key": "password"},
        "backupRetentionDays": int(inp.get("backupRetentionDays", 7)),
    }
    if spec["ha"]:
        fp["highAvailability"] = {"mode": "ZoneRedundant"}
    return {"apiVersion": "dbformysql.azure.m.upbound.io/v1beta1", "kind": "FlexibleServer", "spec": {"forProvider": fp}}


def _gcp(spec: dict, inp: dict, size: str, secret: str) -> dict:
    fp = {
        "region": spec["placement"]["region"],
        "databaseVersion": inp.get("mysqlVersion", "MYSQL_8_0"),
        "deletionProtection": True,
        "settings": {
            "tier": size,
            "diskSize": spec["storageGB"],
            "availabilityType": "REGIONAL" if spec["ha"] else "ZONAL",
            "backupConfiguration": {"enabled": True, "binaryLogEnabled": True},
        },
    }
    return {"apiVersion": "sql.gcp.m.upbound.io/v1beta1", "kind": "DatabaseInstance", "spec": {"forProvider": fp}}


DATABASES = {"aws": _aws, "oci": _oci, "azure": _azure, "gcp": _gcp}


def compose_mysql(xr: dict, observed: dict[str, dict], inp: dict) -> Composed:
    spec = xr.get("spec") or {}
    name = (xr.get("metadata") or {})["name"]
    cloud = inp.get("cloud")
    if cloud not in DATABASES:
        raise InputError(f"input.cloud={cloud!r}: expected one of {sorted(DATABASES)}")
    if spec.get("placement", {}).get("cloud") != cloud:
        raise InputError(f"{name} is placed on {spec.get('placement', {}).get('cloud')!r} but this Composition composes {cloud!r}")
    size = (inp.get("sizes") or {}).get(spec.get("size"))
    if not size:
        raise InputError(f"the Composition's input maps no instance size for size {spec.get('size')!r}")

    out = Composed()
    admin = f"{name}-admin"
    password = _kept_password(observed.get("admin-password"))
    out.resources["admin-password"] = _secret(xr, admin, {"username": ADMIN_USER, "password": password})
    db = DATABASES[cloud](spec, inp, size, admin)
    db["metadata"] = _meta(xr, name, **{f"{GROUP}/side": spec.get("side", "")})
    adopt = (spec.get("adopt") or {}).get("externalName")
    if adopt:  # a database restored at failover: manage that one (Crossplane's external-name), do not create another
        db["metadata"]["annotations"] = {"crossplane.io/external-name": adopt}
    db["spec"]["providerConfigRef"] = _provider_config(inp)
    out.resources["database"] = db
    if cloud == "gcp":  # Cloud SQL has no admin password on the instance: a User carries it
        out.resources["admin-user"] = {
            "apiVersion": "sql.gcp.m.upbound.io/v1beta1", "kind": "User", "metadata": _meta(xr, f"{name}-admin"),
            "spec": {"forProvider": {"instance": name, "passwordSecretRef": {"name": admin, "key": "password"}},
                     "providerConfigRef": _provider_config(inp)}}

    out.ready["admin-password"] = "admin-password" in observed
    for key in ("database", "admin-user"):
        if key in out.resources:
            out.ready[key] = _mr_ready(observed.get(key))
    host = (((observed.get("database") or {}).get("status") or {}).get("atProvider") or {}).get(ENDPOINT_FIELDS[db["kind"]])
    if host:
        out.connection = {"username": ADMIN_USER, "password": password, "endpoint": host, "port": str(MYSQL_PORT)}
        out.resources["connection"] = _secret(xr, f"{name}-conn", out.connection)
        out.ready["connection"] = "connection" in observed
        out.status = {"endpoint": host, "port": MYSQL_PORT, "connectionSecret": f"{name}-conn"}
    else:
        out.messages.append(f"waiting for the {db['kind']} to report its {ENDPOINT_FIELDS[db['kind']]}")
    return out


# -- replication, per tool -------------------------------------------------------------------------

def _repl_user(cell: str, environment: str) -> str:
    # MySQL user names hold 32 characters: a stable, short name per cell environment.
    return "repl_" + hashlib.sha256(f"{cell}/{environment}".encode()).hexdigest()[:12]


def _gg_connection(xr: dict, inp: dict, which: str, end: dict) -> dict:
    spec = xr["spec"]
    name = xr["metadata"]["name"]
    technology = (inp.get("technologyByCloud") or {}).get(end["cloud"], "MYSQL_SERVER")
    return {"apiVersion": "goldengate.oci.m.upbound.io/v1alpha1", "kind": "Connection",
            "metadata": _meta(xr, f"{name}-gg-{which}"),
            "spec": {"forProvider": {
                "connectionType": "MYSQL", "technologyType": technology,
                "displayName": f"{name}-{which}", "compartmentId": _setting(inp, "compartmentId"),
                "host": end["endpoint"], "port": int(end.get("port", MYSQL_PORT)),
                "databaseName": spec["cell"].replace("-", "_"), "username": "ggadmin",
                "passwordSecretRef": {"name": f"{name}-ggadmin", "key": "password"},
                "securityProtocol": "TLS", "sslMode": "REQUIRED", "routingMethod": "SHARED_DEPLOYMENT_ENDPOINT"},
                "providerConfigRef": _provider_config(inp)}}


def compose_replication(xr: dict, observed: dict[str, dict], inp: dict) -> Composed:
    spec = xr.get("spec") or {}
    name = (xr.get("metadata") or {})["name"]
    tool = inp.get("tool")
    if spec.get("tool") != tool:
        raise InputError(f"{name} asks for tool {spec.get('tool')!r} but this Composition composes {tool!r}")
    out = Composed()
    if tool == "mysql-replication":
        user = _repl_user(spec["cell"], spec["environment"])
        password = _kept_password(observed.get("replication-user"))
        out.resources["replication-user"] = _secret(xr, f"{name}-repl", {"username": user, "password": password})
        out.ready["replication-user"] = "replication-user" in observed
        out.status = {"replicationUserSecret": f"{name}-repl"}
    elif tool == "oci-goldengate":
        ends = {w: spec.get(s) or {} for w, s in (("src", "source"), ("tgt", "target"))}
        missing = [s for w, s in (("src", "source"), ("tgt", "target")) if not ends[w].get("endpoint")]
        if missing:
            out.messages.append(f"waiting for the {' and '.join(missing)} database endpoint (set by the control plane once ready)")
            return out
        deployment = (spec.get("goldengate") or {}).get("deploymentId") or _setting(inp, "deploymentId")
        # GoldenGate connects to both databases as ggadmin with this password (the user is created in each
        # database when the replication is set up through the deployment's REST API).
        password = _kept_password(observed.get("ggadmin-password"))
        out.resources["ggadmin-password"] = _secret(xr, f"{name}-ggadmin", {"username": "ggadmin", "password": password})
        for which in ("src", "tgt"):
            out.resources[f"gg-{which}"] = _gg_connection(xr, inp, which, ends[which])
            out.resources[f"gg-{which}-assignment"] = {
                "apiVersion": "goldengate.oci.m.upbound.io/v1alpha1", "kind": "ConnectionAssignment",
                "metadata": _meta(xr, f"{name}-gg-{which}"),
                "spec": {"forProvider": {"deploymentId": deployment,
                                         "connectionIdRef": {"name": f"{name}-gg-{which}"}},
                         "providerConfigRef": _provider_config(inp)}}
        for key in out.resources:
            out.ready[key] = key in observed if key == "ggadmin-password" else _mr_ready(observed.get(key))
        out.status = {"goldengate": {"deploymentId": deployment}}
    elif tool == "backup-restore":
        out.status = {"backups": "the databases' own automated backups (point-in-time restore into the secondary)"}
    else:
        raise InputError(f"input.tool={tool!r}: expected oci-goldengate, mysql-replication or backup-restore")
    return out


def compose(xr: dict, observed: dict[str, dict], step_input: dict) -> Composed:
    kind = xr.get("kind")
    if kind == MYSQL_KIND:
        return compose_mysql(xr, observed, step_input)
    if kind == REPLICATION_KIND:
        return compose_replication(xr, observed, step_input)
    raise InputError(f"this function composes {MYSQL_KIND} and {REPLICATION_KIND}, not {kind!r}")


def composite_ready(composed: Composed) -> bool:
    """Crossplane's rule: the composite is Ready when every composed resource is (and it composes something
    it waits for only once the messages say nothing is pending)."""
    return not composed.messages and all(composed.ready.get(k, False) for k in composed.resources)
