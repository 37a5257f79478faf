"""A replication claim that turns Ready gets its data flow started by the tool's promoter (GoldenGate's Extract and
Replicat); a tool that needs no setup is left alone; a provider error is recorded, never lost."""
import pytest

from cells.models import AuditEvent, ReplicationClaim
from dr import services, tasks
from dr.errors import ProviderError
from tests.dr.helpers import ready_cell

pytestmark = pytest.mark.django_db


class Promoter:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def setup(self, cell_env, source_side, target_side):
        self.calls.append((str(cell_env), source_side, target_side))
        if self.fail:
            raise self.fail
        return {"extract": "running", "replicat": "running"}


def test_a_claim_turning_ready_asks_for_its_replication_to_be_set_up(dev, test_policy, settings, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    asked = []
    monkeypatch.setattr(tasks.setup_replication, "delay", lambda claim_id: asked.append(claim_id))
    with django_capture_on_commit_callbacks(execute=True):
        ready_cell(dev, tier="C0", profile="gold")
    assert asked and set(asked) == {ReplicationClaim.objects.get().pk}


def test_setup_runs_the_tools_promoter_and_records_it(dev, test_policy, settings, monkeypatch):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, tier="C0", profile="gold")
    promoter = Promoter()
    monkeypatch.setattr("dr.providers.data_adapter", lambda *a, **k: promoter)
    out = services.setup_replication(ReplicationClaim.objects.get().pk)
    assert out == {"extract": "running", "replicat": "running"}
    assert promoter.calls == [("payments/prod", "primary", "secondary")]
    assert AuditEvent.objects.filter(action="dr.replication.setup").count() == 1


def test_a_permanent_setup_error_is_recorded_and_a_transient_one_retried(dev, test_policy, settings, monkeypatch):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, tier="C0", profile="gold")
    claim_id = ReplicationClaim.objects.get().pk
    monkeypatch.setattr("dr.providers.data_adapter", lambda *a, **k: Promoter(fail=ProviderError("401 from the deployment")))
    assert services.setup_replication(claim_id) == {"error": "401 from the deployment"}
    assert AuditEvent.objects.get(action="dr.replication.setup_failed").message.endswith("401 from the deployment")
    from dr.errors import TransientProviderError

    monkeypatch.setattr("dr.providers.data_adapter", lambda *a, **k: Promoter(fail=TransientProviderError("503")))
    with pytest.raises(services.TransientSetupError):
        services.setup_replication(claim_id)


def test_the_sandbox_promoter_needs_no_setup(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev, tier="C1", profile="silver")
    assert "needs no setup" in services.setup_replication(ReplicationClaim.objects.get().pk)["skipped"]
