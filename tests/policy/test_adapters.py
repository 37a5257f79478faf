"""One registry of adapters: the policy check refuses a name this installation does not have, naming the path;
managed MySQL services whose failover is not supported yet are refused unless cordoned; every adapter the shipped
policy names resolves to a real class when nothing is sandboxed."""
import copy

import pytest
from django.utils.module_loading import import_string

from policy import adapters
from policy.loader import load_policy_file
from tests.helpers import policy_doc, policy_problems as problems


@pytest.mark.parametrize("path,set_value,expected", [
    (("replicationTools", "backup-restore", "adapters", "probe"), "backupz",
     "replicationTools.backup-restore.adapters.probe: unknown probe adapter 'backupz'"),
    (("replicationTools", "oci-goldengate", "adapters", "fence"), "nofence",
     "replicationTools.oci-goldengate.adapters.fence: unknown fence adapter 'nofence'"),
    (("defaults", "trafficProvider"), "bind9", "defaults.trafficProvider: unknown traffic provider 'bind9'"),
    (("failover", "computeActivator"), "flux", "failover.computeActivator: unknown compute activator 'flux'"),
    (("providers", "aws", "database"), "aurora", "providers.aws.database: unknown database adapter 'aurora'"),
])
def test_a_name_this_installation_does_not_have_fails_the_check_naming_the_path(path, set_value, expected):
    doc = copy.deepcopy(policy_doc())
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = set_value
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_an_unsupported_managed_mysql_is_refused_unless_its_candidates_are_cordoned():
    doc = copy.deepcopy(policy_doc())
    doc["providers"]["gcp"]["database"] = "cloud-sql-mysql"
    found = problems(doc)
    assert any("failover of Cloud SQL for MySQL is not supported yet" in p for p in found), found
    for cell in doc["cells"].values():
        for cand in cell["candidates"]:
            if cand["cloud"] == "gcp":
                cand["cordoned"], cand["cordonReason"] = True, "not supported yet"
    assert problems(doc) == []


def test_the_shipped_policy_passes_and_every_adapter_it_names_is_real(settings):
    from django.conf import settings as conf

    policy = load_policy_file(conf.IDP_POLICY_FILE)
    settings.IDP_SANDBOX_PROVIDERS = []
    spec = policy.spec
    wanted = {("traffic", spec.defaults.traffic_provider), ("compute", spec.failover.compute_activator)}
    wanted |= {("traffic", c.traffic_provider) for c in spec.cells.values() if c.traffic_provider}
    databases = {p.database for p in spec.providers.values()} | {
        c.database for cell in spec.cells.values() for c in cell.candidates if c.database}
    for tool in spec.replication_tools.values():
        for role in adapters.DATABASE_ROLES:
            name = getattr(tool.adapters, role)
            for real in (databases - set(adapters.NOT_SUPPORTED_YET)) if name == adapters.DATABASE else {name}:
                wanted.add((role, real))
    for role, name in sorted(wanted):
        cls = import_string(adapters.ADAPTERS[role][name])  # a real module and class, not "no adapter"
        assert cls.__name__ and name != adapters.SANDBOX


def test_every_registered_adapter_imports():
    for role, table in adapters.ADAPTERS.items():
        for name, path in table.items():
            assert import_string(path), (role, name)
