"""Amazon RDS for MySQL: the AWS side shared by the rds fence, the rds promoter and the backup restorer.

RDS gives no SUPER: `SET GLOBAL read_only` / `super_read_only` and `CHANGE REPLICATION SOURCE` are refused.
`read_only` is a parameter of the instance's DB parameter group instead: it is set with
modify_db_parameter_group (a dynamic parameter, ApplyMethod=immediate) and read back over SQL until the
server shows it. Consequences this module enforces:

- The instance must use a custom parameter group: a `default.*` group cannot be modified.
- The group must be the instance's own. A parameter group applies to every instance that uses it, and a
  same-region read replica gets its source's group unless it was given another one afterwards: flipping
  read_only on a shared group would fence the new writer or unfence the old one. Refused before anything
  changes, naming the other instances.
- A parameter group change outlives a restart: a fenced instance that comes back is still read-only.

Clients: one boto3 `rds` client per region, credentials from the standard AWS chain only (AWS_PROFILE,
environment, web identity / IRSA, ECS/EC2 roles), never from the policy, the connections file or our database.

Settings (Django settings first, then the environment, then the default):
  IDP_AWS_ENDPOINT_URL        an endpoint override for every AWS client (tests, a local emulator); default none
  IDP_RDS_READ_ONLY_TIMEOUT   seconds to wait for a parameter group change to show over SQL (default 120)
  IDP_RDS_WAIT_TIMEOUT        seconds to wait for a promotion / restore to become available (default 1800)
  IDP_RDS_POLL_INTERVAL       seconds between polls (default 5)
"""
from __future__ import annotations

import os
import time

from django.conf import settings

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError
except ImportError:  # pragma: no cover - reported when a client is built
    boto3 = None

from dr import awserrors
from dr.errors import ProviderError, TransientProviderError
from dr.mysqlconn import Database, one

# Instance states in which a promotion or a restore is still under way (describe_db_instances DBInstanceStatus).
BUSY_STATES = {"creating", "modifying", "rebooting", "backing-up", "configuring-enhanced-monitoring",
               "configuring-log-exports", "upgrading", "renaming", "resetting-master-credentials", "starting",
               "maintenance", "converting-to-vpc", "moving-to-vpc", "storage-optimization"}


def setting(name: str, default):
    value = getattr(settings, name, None)
    if value in (None, ""):
        value = os.environ.get(name, "")
    if value in (None, ""):
        return default
    return type(default)(value) if default is not None else value


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def aws_error(exc: Exception, what: str) -> ProviderError:
    if isinstance(exc, NoRegionError):
        return ProviderError(f"{what}: no AWS region (set rds.region for the database in IDP_MYSQL_CONNECTIONS)")
    return awserrors.aws_error(exc, what, "RDS", "rds")


class RdsApi:
    """The RDS control-plane calls the adapters make, with clear errors and bounded waits."""

    def __init__(self, *, endpoint_url: str | None = None, read_only_timeout: float = 120, wait_timeout: float = 1800,
                 poll: float = 5, attempts: int = 5, session=None):
        self.endpoint_url = endpoint_url or None
        self.read_only_timeout = read_only_timeout
        self.wait_timeout = wait_timeout
        self.poll = poll
        self.attempts = attempts
        self._session = session
        self._clients: dict[str, object] = {}

    @classmethod
    def from_settings(cls) -> "RdsApi":
        return cls(endpoint_url=setting("IDP_AWS_ENDPOINT_URL", None),
                   read_only_timeout=setting("IDP_RDS_READ_ONLY_TIMEOUT", 120.0),
                   wait_timeout=setting("IDP_RDS_WAIT_TIMEOUT", 1800.0),
                   poll=setting("IDP_RDS_POLL_INTERVAL", 5.0))

    # -- clients and calls ----------------------------------------------------------------------

    def client(self, region: str):
        if boto3 is None:
            raise ProviderError("rds: boto3 is not installed in this deployment")
        if region not in self._clients:
            config = Config(retries={"mode": "standard", "max_attempts": self.attempts}, connect_timeout=5, read_timeout=30)
            try:
                session = self._session or boto3.session.Session()
                self._clients[region] = session.client("rds", region_name=region, endpoint_url=self.endpoint_url,
                                                       config=config)
            except Exception as exc:  # noqa: BLE001 - e.g. an unknown AWS_PROFILE
                raise ProviderError(f"rds: cannot build the AWS client for {region}: {exc}") from exc
        return self._clients[region]

    def call(self, region: str, op: str, what: str, **params):
        try:
            return getattr(self.client(region), op)(**params)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to our errors
            raise aws_error(exc, what) from None

    @staticmethod
    def where(db: Database) -> tuple[str, str]:
        return db.option("region"), db.option("instanceId")

    def instance(self, db: Database) -> dict:
        region, instance_id = self.where(db)
        return self.describe(region, instance_id, f"{db.name} ({instance_id})")

    def describe(self, region: str, instance_id: str, what: str) -> dict:
        out = self.call(region, "describe_db_instances", what, DBInstanceIdentifier=instance_id)
        return out["DBInstances"][0]

    def find(self, region: str, instance_id: str, what: str) -> dict | None:
        try:
            return self.describe(region, instance_id, what)
        except ProviderError as exc:
            if "DBInstanceNotFound" in str(exc):
                return None
            raise

    # -- read_only in the parameter group ---------------------------------------------------------

    def own_parameter_group(self, db: Database, inst: dict) -> str:
        """The instance's custom parameter group, checked: not a default.* group, not shared, as configured."""
        region, instance_id = self.where(db)
        groups = [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", [])]
        if not groups:
            raise ProviderError(f"{db.name}: RDS instance {instance_id} reports no DB parameter group")
        group = groups[0]
        configured = db.options.get("parameterGroup")
        if configured and configured != group:
            raise ProviderError(f"{db.name}: IDP_MYSQL_CONNECTIONS says parameter group {configured}, but RDS instance "
                                f"{instance_id} uses {group}; fix the configuration or the instance")
        if group.startswith("default."):
            raise ProviderError(f"{db.name}: RDS instance {instance_id} uses the default parameter group {group}, which "
                                f"cannot be modified, so read_only cannot be set: give the instance its own custom DB "
                                f"parameter group (create_db_parameter_group, modify_db_instance DBParameterGroupName=..., "
                                f"then reboot it)")
        others = self.instances_using(region, group, exclude=instance_id, what=db.name)
        if others:
            raise ProviderError(f"{db.name}: parameter group {group} of RDS instance {instance_id} is shared with "
                                f"{', '.join(sorted(others))}: read_only would change on them too (a same-region read "
                                f"replica keeps its source's group); give each instance its own custom parameter group")
        return group

    def instances_using(self, region: str, group: str, *, exclude: str, what: str) -> list[str]:
        found = []
        marker = None
        while True:
            page = self.call(region, "describe_db_instances", f"{what}: list instances in {region}",
                             **({"Marker": marker} if marker else {}))
            for inst in page.get("DBInstances", []):
                if inst["DBInstanceIdentifier"] == exclude:
                    continue
                if any(g.get("DBParameterGroupName") == group for g in inst.get("DBParameterGroups", [])):
                    found.append(inst["DBInstanceIdentifier"])
            marker = page.get("Marker")
            if not marker:
                return found

    def group_read_only(self, region: str, group: str, what: str) -> str | None:
        """The value the group sets for read_only ("1", "0", "{TrueIfReplica}"...), None when it is not set."""
        marker = None
        while True:
            page = self.call(region, "describe_db_parameters", f"{what}: read parameter group {group}",
                             DBParameterGroupName=group, Source="user", **({"Marker": marker} if marker else {}))
            for p in page.get("Parameters", []):
                if p.get("ParameterName") == "read_only":
                    return p.get("ParameterValue")
            marker = page.get("Marker")
            if not marker:
                return None

    def set_group_read_only(self, db: Database, group: str, on: bool) -> bool:
        """Set read_only in the group; False when it already had that value (nothing sent)."""
        region = db.option("region")
        value = "1" if on else "0"
        if self.group_read_only(region, group, db.name) == value:
            return False
        self.call(region, "modify_db_parameter_group", f"{db.name}: set read_only={value} in parameter group {group}",
                  DBParameterGroupName=group,
                  Parameters=[{"ParameterName": "read_only", "ParameterValue": value, "ApplyMethod": "immediate"}])
        return True

    def wait_sql_read_only(self, conn, db: Database, on: bool) -> tuple[float, int]:
        """Poll `SELECT @@global.read_only` until the server shows the group's value: (seconds, reads)."""
        start, reads = time.monotonic(), 0
        while True:
            reads += 1
            if sql_read_only(conn) == on:
                return round(time.monotonic() - start, 3), reads
            if time.monotonic() - start >= self.read_only_timeout:
                raise TransientProviderError(
                    f"{db.name}: read_only={'1' if on else '0'} is set in the parameter group but the server still shows "
                    f"{'0' if on else '1'} after {self.read_only_timeout:g}s")
            time.sleep(self.poll)

    # -- waiting for the instance -------------------------------------------------------------------

    def wait_for(self, region: str, instance_id: str, what: str, done) -> dict:
        """Poll describe_db_instances until done(instance) holds; a failed state is a ProviderError."""
        start = time.monotonic()
        while True:
            inst = self.describe(region, instance_id, what)
            status = inst.get("DBInstanceStatus", "")
            if status in {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
                          "inaccessible-encryption-credentials", "storage-full", "deleting"}:
                raise ProviderError(f"{what}: RDS instance {instance_id} is {status}")
            if done(inst):
                return inst
            if time.monotonic() - start >= self.wait_timeout:
                raise TransientProviderError(f"{what}: RDS instance {instance_id} still {status or 'busy'} after "
                                             f"{self.wait_timeout:g}s; run the step again to keep waiting")
            time.sleep(self.poll)


def sql_read_only(conn) -> bool:
    """RDS has no super_read_only in play: the server's read_only (set from the parameter group) is the fence."""
    return bool(int(one(conn, "SELECT @@global.read_only AS ro")["ro"]))


def server_version(conn) -> tuple[int, int]:
    raw = str(one(conn, "SELECT @@version AS v")["v"])
    parts = (raw.split("-")[0].split(".") + ["0", "0"])[:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise ProviderError(f"cannot read the MySQL version from {raw!r}") from None


def procedures(version: tuple[int, int]) -> dict[str, str]:
    """RDS renamed its replication procedures in MySQL 8.4 (`source`); 8.0 and lower keep `master`."""
    if version >= (8, 4):
        return {"set": "mysql.rds_set_external_source_with_auto_position", "reset": "mysql.rds_reset_external_source"}
    return {"set": "mysql.rds_set_external_master_with_auto_position", "reset": "mysql.rds_reset_external_master"}


def endpoint(inst: dict) -> dict:
    ep = inst.get("Endpoint") or {}
    return {"host": ep.get("Address"), "port": ep.get("Port")}
