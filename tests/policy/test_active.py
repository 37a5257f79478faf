"""The active policy: an invalid edit never replaces it; versions are recorded; the CLI checks and previews."""
import copy
import io
import json
import os

import pytest
import yaml
from django.core.management import CommandError, call_command

from cells.models import Cell, Team
from policy import active
from policy.models import PolicyVersion
from tests.helpers import BASE, cand, policy_doc

pytestmark = pytest.mark.django_db

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": 50, "ha": True}


def run(*args) -> str:
    out = io.StringIO()
    call_command("policy", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_activation_records_the_version_and_syncs_the_registry(test_policy):
    policy = active.active_policy()
    row = PolicyVersion.objects.get()
    assert (row.digest, row.version, row.label) == (policy.digest, policy.version, "test-1")
    assert set(Cell.objects.values_list("name", "team__slug")) == {("payments", "payments"), ("catalog", "storefront")}


def test_an_invalid_edit_keeps_the_active_policy_and_reports_why(use_policy):
    path = use_policy()
    good = active.active_policy()
    bad = copy.deepcopy(BASE)
    bad["tiers"]["C0"]["weights"]["cost"] = -1
    path.write_text(yaml.safe_dump(bad))
    os.utime(path, ns=(1, 1))  # a new mtime even within the same clock tick
    assert active.active_policy().digest == good.digest
    assert [str(p) for p in active.last_error().problems] == ["tiers.C0.weights.cost: must be a number >= 0"]


def test_after_a_restart_an_invalid_file_falls_back_to_the_last_good_version(use_policy):
    use_policy()
    good = active.active_policy()
    bad = copy.deepcopy(BASE)
    bad["cells"]["payments"]["bogus"] = True
    use_policy(bad)  # resets the cache: as after a restart
    assert active.active_policy().digest == good.digest
    assert "last good version" in active.active_policy().source


def test_a_valid_edit_becomes_active_and_registers_new_cells(use_policy):
    use_policy()
    active.active_policy()
    doc = policy_doc()
    doc["cells"]["ledger"] = {"team": "finance", "candidates": [cand("oci", "r1", "c1"), cand("aws", "r2", "c2")]}
    use_policy(doc)
    policy = active.active_policy()
    assert "ledger" in policy.spec.cells
    assert Cell.objects.get(name="ledger").team == Team.objects.get(slug="finance")
    assert PolicyVersion.objects.count() == 2


def test_policy_check_validates_a_file(use_policy, tmp_path):
    path = use_policy()
    assert "OK test-1+" in run("check", str(path))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BASE, "tiers": {**BASE["tiers"], "C0": {**BASE["tiers"]["C0"], "weights": {"cost": -1}}}}))
    with pytest.raises(CommandError, match="the active policy is unchanged"):
        run("check", str(bad))


def test_policy_show_prints_the_active_version(test_policy):
    assert f"active policy {active.active_policy().version}" in run("show")


def test_policy_whatif_lists_moves_and_changes_nothing(api, dev, use_policy, tmp_path):
    from cells.models import MySQLClaim
    from scheduler.models import PlacementDecision

    use_policy()
    assert api(dev).post("/api/mysql", MYSQL, format="json").status_code == 201
    candidate = policy_doc()
    candidate["cells"]["payments"]["candidates"][0]["cordoned"] = True
    file = tmp_path / "candidate.yaml"
    file.write_text(yaml.safe_dump(candidate))
    text = run("whatif", str(file))
    assert "1 of 1 placement(s) would change" in text
    assert "payments/prod" in text and "rejected: cordoned" in text
    data = json.loads(run("whatif", str(file), "--json"))
    assert data["placements"][0]["changed"] is True
    assert PlacementDecision.objects.count() == 1
    assert MySQLClaim.objects.get(side="primary").cluster == "oke-iad-1"
