"""OCI MySQL HeatWave plumbing shared by the `heatwave` fence, replication and backup/restore adapters.

Facts this module relies on (oci Python SDK 2.189.0, API version 20190415; OCI docs, mysql-database/doc):

- Read-only is a DB system property, not SQL: ``DbSystemClient.update_db_system(id,
  UpdateDbSystemDetails(database_mode="READ_ONLY"|"READ_WRITE"))`` (``PUT /20190415/dbSystems/{id}``);
  ``DbSystem.database_mode`` reads it back. "Database and Access Modes": with READ_ONLY "MySQL HeatWave
  sets the SUPER_READ_ONLY system variable to ON"; replicated writes (the inbound channel) still apply.
  The same page: Health Monitor sets super_read_only ON during a disk-space shortage and back OFF after
  it, "regardless of the database mode" (a restart restores the mode) — so the adapters read
  ``@@global.super_read_only`` back over SQL as well.
- ``SET GLOBAL/PERSIST super_read_only`` is not available to the DB system's administrator: "Default
  MySQL Privileges" lists the admin's dynamic privileges (APPLICATION_PASSWORD_ADMIN, AUDIT_ADMIN,
  BACKUP_ADMIN, CONNECTION_ADMIN, FLUSH_*, REPLICATION_APPLIER, ROLE_ADMIN, SET_ANY_DEFINER, SHOW_ROUTINE,
  TRANSACTION_GTID_TAG, XA_RECOVER_ADMIN, ...): no SUPER and no SYSTEM_VARIABLES_ADMIN, which MySQL
  requires to set a global variable. The adapters never send it.
- The update is asynchronous (``opc-work-request-id``; the DB system goes UPDATING then ACTIVE): every
  change is waited for and read back.

OCI credentials as every OCI adapter here (dr.traffic.providers.oci_dns.oci_auth: OCI_CONFIG_FILE /
OCI_CONFIG_PROFILE or IDP_OCI_AUTH=instance_principal|resource_principal|workload_identity). The DB
system's region is its `heatwave.region` option in IDP_MYSQL_CONNECTIONS (default: the OCI config's).

Settings (environment): IDP_HEATWAVE_WAIT_SECONDS (600: a DB system or channel reaching the state asked
for), IDP_HEATWAVE_POLL_SECONDS (5), IDP_HEATWAVE_DRAIN_SECONDS (300: a channel applying what it
received before promotion), IDP_HEATWAVE_STATUS_STALE_SECONDS (120: an older channel status is
regenerated), IDP_HEATWAVE_RESTORE_SECONDS (3600: a DB system restored from a backup becoming ACTIVE).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import oci

from dr import mysqlconn
from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.mysqlconn import Database, one
from dr.traffic.providers.oci_dns import bounded_retry_strategy, oci_auth, oci_error

READ_ONLY, READ_WRITE = "READ_ONLY", "READ_WRITE"
ACTIVE, INACTIVE, UPDATING, CREATING = "ACTIVE", "INACTIVE", "UPDATING", "CREATING"
NEEDS_ATTENTION, FAILED, DELETING, DELETED = "NEEDS_ATTENTION", "FAILED", "DELETING", "DELETED"
GONE = (DELETING, DELETED, FAILED)
SSL_REQUIRED = "REQUIRED"
# Freeform tags the adapters put on what they create or change (never secrets).
TAG_CELL = "idp-dr-cell"
TAG_DRAINED = "idp-dr-drained-epoch"   # on a channel: disabled by a promotion after it applied what it received
TAG_RESTORE = "idp-dr-restore"          # on a DB system restored by heatwave-backup: the claim it stands for


@dataclass
class Clients:
    db_systems: object   # oci.mysql.DbSystemClient
    channels: object     # oci.mysql.ChannelsClient
    backups: object      # oci.mysql.DbBackupsClient


def oci_clients(region: str | None) -> Clients:
    """Real SDK clients for one region, from the environment's OCI credentials."""
    config, signer = oci_auth()
    if region:
        config = {**config, "region": region}
    kwargs: dict = {"retry_strategy": bounded_retry_strategy(), "timeout": (5, 30)}
    if signer is not None:
        kwargs["signer"] = signer
    try:
        return Clients(oci.mysql.DbSystemClient(config, **kwargs), oci.mysql.ChannelsClient(config, **kwargs),
                       oci.mysql.DbBackupsClient(config, **kwargs))
    except (oci.exceptions.ClientError, ValueError) as exc:
        raise ProviderError(f"cannot build the OCI MySQL clients: {exc}") from None


def scrub(text: str, secrets) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_duration(value) -> float | None:
    """Seconds from a channel status lagDuration (documented only as a string): ISO 8601 (PT1M5.5S),
    [D day(s), ]HH:MM:SS[.f], or a plain number of seconds. None when it cannot be read."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    m = re.fullmatch(r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if m and text not in ("P", "PT"):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    m = re.fullmatch(r"(?:(\d+) days?,\s*)?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    if m:
        d, h, mi, s = m.groups()
        return int(d or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + float(s)
    try:
        return float(text)
    except ValueError:
        return None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)



def _or_none(read, *args):
    """An OCI read's data, or None when the object is not there (404)."""
    try:
        return read(*args).data
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return None
        raise

class HeatWave:
    """The OCI MySQL API for the adapters: clients per region, mapped errors, waits and read-backs."""

    def __init__(self, clients=oci_clients, *, wait_seconds: float = 600, poll_seconds: float = 5,
                 drain_seconds: float = 300, status_stale_seconds: float = 120, restore_seconds: float = 3600,
                 sleep=time.sleep, monotonic=time.monotonic, clock=_utcnow):
        self._factory = clients
        self._clients: dict = {}
        self.wait_seconds, self.poll_seconds, self.drain_seconds = wait_seconds, poll_seconds, drain_seconds
        self.status_stale_seconds, self.restore_seconds = status_stale_seconds, restore_seconds
        self.sleep, self.monotonic, self.clock = sleep, monotonic, clock
        self.secrets: set[str] = set()

    @classmethod
    def from_settings(cls) -> "HeatWave":
        env = os.environ.get
        return cls(wait_seconds=float(env("IDP_HEATWAVE_WAIT_SECONDS", "600")),
                   poll_seconds=float(env("IDP_HEATWAVE_POLL_SECONDS", "5")),
                   drain_seconds=float(env("IDP_HEATWAVE_DRAIN_SECONDS", "300")),
                   status_stale_seconds=float(env("IDP_HEATWAVE_STATUS_STALE_SECONDS", "120")),
                   restore_seconds=float(env("IDP_HEATWAVE_RESTORE_SECONDS", "3600")))

    # -- plumbing ----------------------------------------------------------------------------------

    def clients(self, db: Database) -> Clients:
        region = db.options.get("region") or None
        if region not in self._clients:
            self._clients[region] = self._factory(region)
        return self._clients[region]

    def remember_secret(self, *secrets: str) -> None:
        """Passwords this adapter handles: scrubbed from every message it raises or returns."""
        self.secrets.update(s for s in secrets if s)

    def clean(self, text) -> str:
        return scrub(str(text), self.secrets)

    def call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - mapped to our errors below
            failure = exc
        # Raised outside the except block: the SDK's exception (which may echo a request's values) is
        # neither chained nor kept as context; the message is scrubbed of every secret this adapter handles.
        if isinstance(failure, oci.exceptions.ServiceError) and failure.status == 409:
            mapped: ProviderError = TransientProviderError(
                f"{what}: OCI 409 {failure.code}: {failure.message} (another operation is under way; retry)")
        else:
            mapped = oci_error(failure, what)
        del failure
        raise type(mapped)(self.clean(mapped))

    def wait(self, what: str, get, done, *, fail=None, timeout: float | None = None):
        """Poll get() until done(obj); fail(obj) -> a reason stops early. Returns the last object."""
        deadline = self.monotonic() + (self.wait_seconds if timeout is None else timeout)
        while True:
            obj = get()
            if done(obj):
                return obj
            reason = fail(obj) if fail else None
            if reason:
                raise ProviderError(self.clean(f"{what}: {reason}"))
            if self.monotonic() >= deadline:
                state = getattr(obj, "lifecycle_state", None)
                raise TransientProviderError(self.clean(f"{what}: not done within {timeout or self.wait_seconds:g}s"
                                                        + (f" (still {state})" if state else "")
                                                        + "; the step can be resumed"))
            self.sleep(self.poll_seconds)

    # -- DB systems ----------------------------------------------------------------------------------

    def get_db_system(self, db: Database, db_system_id: str | None = None):
        db_system_id = db_system_id or db.option("dbSystemId")
        return self.call(f"heatwave: reading DB system {db_system_id} ({db.name})",
                         self.clients(db).db_systems.get_db_system, db_system_id).data

    def usable_db_system(self, db: Database):
        """The DB system once it is ACTIVE (waits through CREATING/UPDATING). A stopped, failed or
        deleted DB system cannot be changed: Unreachable."""
        def fail(ds):
            if ds.lifecycle_state in (INACTIVE, *GONE):
                return f"DB system is {ds.lifecycle_state}"
            return None

        ds = self.get_db_system(db)
        if ds.lifecycle_state in (INACTIVE, *GONE):
            raise Unreachable(f"{db.name}: DB system {ds.id} is {ds.lifecycle_state} "
                              f"({ds.lifecycle_details or 'no details'}): it takes no change through the API")
        if ds.lifecycle_state == ACTIVE:
            return ds
        return self.wait(f"heatwave: DB system {ds.id} ({db.name}) becoming ACTIVE", lambda: self.get_db_system(db),
                         lambda d: d.lifecycle_state == ACTIVE, fail=fail)

    def set_database_mode(self, db: Database, mode: str) -> dict:
        """Make the DB system READ_ONLY or READ_WRITE the supported way and wait until the API reads it back."""
        ds = self.usable_db_system(db)
        out = {"dbSystemId": ds.id, "databaseModeBefore": ds.database_mode}
        if ds.database_mode == mode:
            return {**out, "databaseMode": mode, "changed": False}
        resp = self.call(f"heatwave: setting DB system {ds.id} ({db.name}) {mode}", self.clients(db).db_systems.update_db_system,
                         ds.id, oci.mysql.models.UpdateDbSystemDetails(database_mode=mode))
        after = self.wait(f"heatwave: DB system {ds.id} ({db.name}) becoming {mode}", lambda: self.get_db_system(db),
                          lambda d: d.lifecycle_state == ACTIVE and d.database_mode == mode,
                          fail=lambda d: f"DB system is {d.lifecycle_state}" if d.lifecycle_state in (INACTIVE, *GONE) else None)
        return {**out, "databaseMode": after.database_mode, "changed": True,
                "workRequestId": resp.headers.get("opc-work-request-id")}

    # -- channels ----------------------------------------------------------------------------------

    def get_channel(self, db: Database, channel_id: str):
        return self.call(f"heatwave: reading channel {channel_id} ({db.name})", self.clients(db).channels.get_channel,
                         channel_id).data

    def inbound_channel(self, db: Database):
        """The DB system's inbound channel: `heatwave.channelId` if set, else the one channel OCI lists with
        the DB system as target (not deleted). None when there is none."""
        channel_id = db.options.get("channelId")
        if channel_id:
            channel = self.call(f"heatwave: reading channel {channel_id} ({db.name})", _or_none,
                                self.clients(db).channels.get_channel, channel_id)
            if channel is None:
                return None
            return None if channel.lifecycle_state in (DELETING, DELETED) else channel
        db_system_id = db.option("dbSystemId")
        listed = self.call(f"heatwave: listing the channels of DB system {db_system_id} ({db.name})",
                           oci.pagination.list_call_get_all_results, self.clients(db).channels.list_channels,
                           db.option("compartmentId"), db_system_id=db_system_id).data
        alive = [c for c in listed if c.lifecycle_state not in (DELETING, DELETED)]
        if len(alive) > 1:
            raise ProviderError(f"{db.name}: DB system {db_system_id} has {len(alive)} inbound channels "
                                f"({', '.join(c.id for c in alive)}): set heatwave.channelId")
        return self.get_channel(db, alive[0].id) if alive else None

    def channel_status(self, db: Database, channel_id: str, *, fresh: bool):
        """The channel's status (ChannelStatus). fresh: generate a new one and wait for it; otherwise the
        current one if younger than the stale limit, else a new one."""
        channels = self.clients(db).channels

        def current():
            return self.call(f"heatwave: reading the status of channel {channel_id}", _or_none,
                             channels.get_channel_status, channel_id)
        before = current()
        if before is not None and not fresh:
            age = (self.clock() - as_utc(before.time_updated)).total_seconds()
            if age <= self.status_stale_seconds:
                return before
        self.call(f"heatwave: generating the status of channel {channel_id}", channels.generate_channel_status, channel_id)
        seen = as_utc(before.time_updated) if before is not None else None
        return self.wait(f"heatwave: status of channel {channel_id}",
                         current,
                         lambda s: s is not None and (seen is None or as_utc(s.time_updated) > seen),
                         timeout=min(self.wait_seconds, 120))

    def wait_channel(self, db: Database, channel_id: str, what: str, done, *, need_active: bool = False):
        def fail(c):
            if c.lifecycle_state in GONE:
                return f"channel is {c.lifecycle_state}"
            if need_active and c.lifecycle_state == NEEDS_ATTENTION:
                return f"channel needs attention: {c.lifecycle_details or 'no details'}"
            return None
        return self.wait(f"heatwave: channel {channel_id} ({db.name}) {what}", lambda: self.get_channel(db, channel_id),
                         done, fail=fail)

    # -- SQL read-back ------------------------------------------------------------------------------

    def sql_state(self, db: Database, *, why: str) -> dict:
        """@@global.read_only / super_read_only and gtid_executed over SQL (the admin user of the connection file)."""
        try:
            with mysqlconn.connect(db, timeout=3) as conn:
                row = one(conn, "SELECT @@global.read_only AS ro, @@global.super_read_only AS sro")
                gtid = one(conn, "SELECT @@global.gtid_executed AS gtid")
        except Unreachable as exc:
            raise Unreachable(self.clean(f"{db.name}: {why}, but it cannot be read back over SQL: {exc}")) from None
        return {"readOnly": bool(row["ro"]), "superReadOnly": bool(row["sro"]), "gtidExecuted": (gtid or {}).get("gtid") or ""}
