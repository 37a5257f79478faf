"""Backup-restore (bronze): the promoter restores into the secondary and the runbook points the cell at it: the
secondary's claim adopts the restored database (a new revision, delivered with spec.adopt)."""
import pytest
import yaml

from cells.models import AuditEvent, MySQLClaim
from dr import services
from dr.replication.sandbox import SandboxReplication
from tests.dr.helpers import drive, ready_cell

pytestmark = pytest.mark.django_db


def test_a_backup_restore_failover_points_the_cell_at_the_restored_database(dev, ops, test_policy, settings, monkeypatch):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, tier="C2", profile="bronze")
    before = MySQLClaim.objects.get(side="secondary").revision
    promote = SandboxReplication.promote

    def restoring(self, cell_env, side, epoch):  # what dr.replication.backup answers after a restore
        return {**promote(self, cell_env, side, epoch), "restored": {"externalName": "bronze-restored-1"}}

    monkeypatch.setattr(SandboxReplication, "promote", restoring)
    run = drive(services.start_run(ops, cell="payments", environment="prod", force=True, reason="region down"))
    assert run.state == "succeeded", run.error
    claim = MySQLClaim.objects.get(side="secondary")
    assert (claim.adopted_external_name, claim.revision) == ("bronze-restored-1", before + 1)
    assert claim.delivered_revision == claim.revision  # delivered by the run's settle
    (ref,) = claim.delivered_refs
    obj = yaml.safe_load((settings.IDP_GITOPS_REPO / f"clusters/{ref['cluster']}/{ref['namespace']}/"
                                                     f"cellmysqlclaim-{ref['name']}.yaml").read_text())
    assert obj["spec"]["adopt"] == {"externalName": "bronze-restored-1"}
    assert AuditEvent.objects.filter(action="cells.mysql.restored").count() == 1
    step = run.steps.get(name="promote")
    assert step.output["adoptedBy"]["claim"] == "payments-prod-mysql-secondary"


@pytest.mark.parametrize("answer,external", [({"instanceId": "db-secondary", "endpoint": {"host": "h"}}, "db-secondary"),
                                             ({"dbSystemId": "ocid1.mysqldbsystem.oc1..r"}, "ocid1.mysqldbsystem.oc1..r")])
def test_the_backup_promoter_names_what_it_restored_for_either_cloud(monkeypatch, answer, external):
    from dr.replication.backup import BackupRestore

    class Flavour:
        def promote(self, cell_env, side, epoch):
            return dict(answer)

    monkeypatch.setattr(BackupRestore, "_for", lambda self, ce, side: Flavour())
    assert BackupRestore().promote(None, "secondary", 3)["restored"]["externalName"] == external
