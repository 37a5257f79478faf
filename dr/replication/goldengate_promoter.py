"""GoldenGate promoter (`goldengate`, role promoter): the data side of a failover when OCI GoldenGate carries
the changes between the two MySQL databases.

- setup(cell_env): at provisioning, credential aliases for both databases, the Extract on the primary and
  the Replicat on the secondary, started and confirmed running.
- promote(cell_env, side, epoch): the old writer (the other side) is fenced already; stop its Extract, let
  the Replicat apply the rest of the trail, stop it (GoldenGateProcesses.cutover); then make `side`'s
  database writable through that side's database promoter (SideDatabase: heatwave, rds or mysql); then
  start capturing on the new writer at once (the reverse Extract, trail of this epoch), so the writes it
  takes before reprotect are in the trail the reverse Replicat will apply.
- reprotect(cell_env, source_side, target_side): the reverse Replicat into the old writer, both running,
  and the old pair deleted (GoldenGateProcesses.reverse).

Every answer records each REST call made (method, path, outcome). Settings: see goldengate_processes and
the probe (dr/replication/goldengate.py): the same user, password secret, URL and deployment OCID.
"""
from __future__ import annotations

import os

from dr.errors import ProviderError
from dr.replication.goldengate import DEFAULT_TOOL, GoldenGateProbe, GoldenGateRest
from dr.replication.goldengate_processes import GoldenGateApi, GoldenGateProcesses, other_side


class SideDatabase:
    """The promoter of the database being promoted: its candidate's or cloud's database adapter (heatwave on
    OCI, rds on AWS, mysql for self-managed), as the policy says (providers.<cloud>.database)."""

    @staticmethod
    def _adapter(cell_env, side: str):
        from dr import providers
        from policy.active import active_policy
        from policy.adapters import DATABASE

        return providers.data_adapter(active_policy(), cell_env, "promoter", DATABASE, side)

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        return self._adapter(cell_env, side).promote(cell_env, side, epoch)

    def open_for_replicat(self, cell_env, side: str) -> dict:
        adapter = self._adapter(cell_env, side)
        if not hasattr(adapter, "open_for_replicat"):
            raise ProviderError(
                f"goldengate: the {side} database ({getattr(adapter, 'name', adapter)}) stays read-only after its "
                "fence, which refuses the reverse Replicat's writes too; a GoldenGate reprotect into it is not "
                "supported yet (self-managed MySQL/MariaDB, RDS and HeatWave are)")
        return adapter.open_for_replicat(cell_env, side)


class GoldenGatePromoter:
    name = "goldengate"

    def __init__(self, rest: GoldenGateRest | None, database_promoter=None, *, deployment_id: str | None = None,
                 tool: str | None = None, **process_options):
        self.rest = rest
        if database_promoter is None:
            from dr.replication.mysql import MySQLReplication

            database_promoter = MySQLReplication()
        self.database_promoter = database_promoter
        self.deployment_id, self.tool = deployment_id, tool
        self.process_options = process_options

    @classmethod
    def from_settings(cls) -> "GoldenGatePromoter":
        import oci

        from dr.traffic.providers.oci_dns import oci_client

        def deployment_url(deployment_id: str) -> str:
            client = oci_client(oci.golden_gate.GoldenGateClient)
            return client.get_deployment(deployment_id).data.deployment_url

        rest = GoldenGateRest.from_env(resolve_url=deployment_url)
        options = {}
        for key, env in (("poll_interval", "IDP_GOLDENGATE_POLL_SECONDS"), ("start_timeout", "IDP_GOLDENGATE_START_TIMEOUT"),
                         ("drain_timeout", "IDP_GOLDENGATE_DRAIN_TIMEOUT")):
            if os.environ.get(env):
                options[key] = float(os.environ[env])
        return cls(rest, SideDatabase(), tool=os.environ.get("IDP_GOLDENGATE_TOOL") or None, **options)

    # -- the deployment ------------------------------------------------------------------------------

    def _deployment_id(self, cell_env) -> str | None:
        if self.deployment_id:
            return self.deployment_id
        if self.rest is not None and self.rest.url:
            return None  # a configured URL needs no OCID
        # The probe's lookup: the tool's settings in the active policy (deploymentId, compartmentId).
        probe = GoldenGateProbe(None, tool=self.tool, deployment_id=None, compartment_id=None)
        return probe._ids(cell_env)[0]

    def processes(self, cell_env) -> GoldenGateProcesses:
        if self.rest is None:
            raise ProviderError("goldengate promoter: set IDP_GOLDENGATE_USER and IDP_GOLDENGATE_PASSWORD_FILE "
                                "(a GoldenGate Administrator of the deployment) to drive its processes")
        api = GoldenGateApi.from_rest(self.rest, self._deployment_id(cell_env))
        return GoldenGateProcesses(api, **self.process_options)

    # -- the Promoter protocol -----------------------------------------------------------------------

    def setup(self, cell_env, source_side: str = "primary", target_side: str = "secondary") -> dict:
        return self.processes(cell_env).setup(cell_env, source_side, target_side)

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        writer = other_side(side)
        procs = self.processes(cell_env)
        cutover = procs.cutover(cell_env, writer, side)
        database = self.database_promoter.promote(cell_env, side, epoch)
        capture = procs.ensure_capture(cell_env, side, generation=epoch)
        out = {k: v for k, v in database.items() if k != "adapter"}
        return {**out, "adapter": self.name, "databaseAdapter": database.get("adapter"), "epoch": epoch,
                "writable": database.get("writable", True), "goldengate": {"cutover": cutover, "capture": capture},
                "calls": cutover["calls"] + capture["calls"]}

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        # The old writer is fenced read-only; the reverse Replicat must write there while the application may not.
        opened = self.database_promoter.open_for_replicat(cell_env, target_side) \
            if hasattr(self.database_promoter, "open_for_replicat") else None
        out = self.processes(cell_env).reverse(cell_env, source_side, target_side)
        return {**out, "targetOpenedForReplicat": opened} if opened is not None else out


__all__ = ["GoldenGatePromoter", "DEFAULT_TOOL"]
