"""Which adapter acts on which database: the side's candidate's `database`, else its cloud's; a replication tool's
`database` role resolves per side, and GoldenGate promotes through the promoted side's own database adapter."""
import copy

import pytest

from cells import services
from dr import providers
from dr.errors import ProviderError
from dr.replication.goldengate_promoter import SideDatabase
from policy.active import active_policy
from tests.helpers import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture
def managed_policy(use_policy):
    doc = copy.deepcopy(BASE)
    doc["providers"]["oci"]["database"] = "heatwave"
    doc["providers"]["aws"]["database"] = "rds"
    use_policy(doc)


@pytest.fixture
def cell_env(dev, managed_policy):
    # C0/gold: primary on OCI, secondary on AWS (the test policy's cross-cloud rule)
    return services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold", ha=True).cell_env


def test_each_side_uses_its_clouds_database_adapter(cell_env):
    policy = active_policy()
    assert (cell_env.placement.site("primary")["cloud"], cell_env.placement.site("secondary")["cloud"]) == ("oci", "aws")
    assert providers.database_of(policy, cell_env, "primary") == "heatwave"
    assert providers.database_of(policy, cell_env, "secondary") == "rds"


def test_the_tools_database_role_resolves_per_side_to_real_adapters(cell_env, settings):
    settings.IDP_SANDBOX_PROVIDERS = []
    policy = active_policy()
    fence = providers.data_adapter(policy, cell_env, "fence", "database", "primary")
    promoter = providers.data_adapter(policy, cell_env, "promoter", "database", "secondary")
    assert (type(fence).__name__, type(promoter).__name__) == ("HeatWaveFence", "RdsReplication")
    # Without credentials a real adapter says what is missing (never "no adapter").
    with pytest.raises(ProviderError, match="no usable OCI credentials"):
        providers.data_adapter(policy, cell_env, "probe", "goldengate", "secondary")


def test_goldengate_promotes_through_the_promoted_sides_database(cell_env, monkeypatch):
    seen = []

    class Recorder:
        def promote(self, ce, side, epoch):
            seen.append((side, epoch))
            return {"adapter": "rds", "writable": True}

    monkeypatch.setattr(providers, "data_adapter", lambda policy, ce, role, name, side: seen.append((role, name, side)) or Recorder())
    assert SideDatabase().promote(cell_env, "secondary", 3) == {"adapter": "rds", "writable": True}
    assert seen == [("promoter", "database", "secondary"), ("secondary", 3)]


def test_a_candidates_own_database_overrides_its_clouds(dev, use_policy):
    doc = copy.deepcopy(BASE)
    doc["providers"]["aws"]["database"] = "rds"
    for cand in doc["cells"]["payments"]["candidates"]:
        if cand["cloud"] == "aws":
            cand["database"] = "mysql"  # self-managed MySQL on EC2
    use_policy(doc)
    ce = services.request_mysql(dev, cell="payments", environment="prod", tier="C0", dr_profile="gold", ha=True).cell_env
    assert providers.database_of(active_policy(), ce, "secondary") == "mysql"
