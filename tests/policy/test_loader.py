"""The policy file's schema: clear errors with paths, unknown keys refused, versions by content."""
import copy

import pytest
import yaml

from policy.loader import PolicyError, load_policy_file, parse_policy
from tests.helpers import BASE, make_policy


def problems_of(doc) -> list[str]:
    with pytest.raises(PolicyError) as exc:
        parse_policy(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return [str(p) for p in exc.value.problems]


def bent(mutate):
    doc = copy.deepcopy(BASE)
    mutate(doc)
    return doc


def test_shipped_policy_registers_at_least_six_cells_on_at_least_three_clouds():
    policy = load_policy_file()
    spec = policy.spec
    assert len(spec.cells) >= 6
    clouds = {c.cloud for cell in spec.cells.values() for c in cell.candidates}
    assert len(clouds) >= 3
    assert spec.defaults.traffic_provider == "oci-dns"
    assert set(spec.tiers) == {"C0", "C1", "C2"}
    assert set(spec.dr_profiles) == {"gold", "silver", "bronze"}


def test_negative_weight_names_the_path_and_the_problem():
    assert problems_of(bent(lambda d: d["tiers"]["C0"]["weights"].update(cost=-1))) == [
        "tiers.C0.weights.cost: must be a number >= 0"
    ]


def test_non_numeric_weight_is_refused():
    assert problems_of(bent(lambda d: d["tiers"]["C1"]["weights"].update(latency="high"))) == [
        "tiers.C1.weights.latency: must be a number"
    ]


def test_unknown_keys_are_errors_not_ignored():
    found = problems_of(bent(lambda d: (d["tiers"]["C0"].update(wieghts={}), d["cells"]["payments"]["candidates"][0].update(zone="a"))))
    assert "tiers.C0.wieghts: unknown key" in found
    assert "cells.payments.candidates[0].zone: unknown key" in found


def test_missing_required_field_is_reported():
    assert "drProfiles.gold.rpoSeconds: is required" in problems_of(bent(lambda d: d["drProfiles"]["gold"].pop("rpoSeconds")))


def test_references_to_undefined_names_are_errors():
    found = problems_of(bent(lambda d: (
        d["cells"]["payments"]["candidates"][1].update(cloud="ibm"),
        d["tiers"]["C0"].update(allowedDrProfiles=["platinum"]),
        d["defaults"].update(trafficProvider="akamai"),
    )))
    assert any(p.startswith("cells.payments.candidates[1].cloud: unknown cloud 'ibm'") for p in found)
    assert any(p.startswith("tiers.C0.allowedDrProfiles[0]: unknown DR profile 'platinum'") for p in found)
    assert any(p.startswith("defaults.trafficProvider: unknown traffic provider 'akamai'") for p in found)


def test_wrong_enum_value_lists_the_allowed_ones():
    found = problems_of(bent(lambda d: d["drProfiles"]["gold"].update(computeMode="hot")))
    assert found == ["drProfiles.gold.computeMode: must be one of 'warm', 'pilot' or 'cold'"]


def test_duplicate_candidates_are_refused():
    found = problems_of(bent(lambda d: d["cells"]["payments"]["candidates"].append(dict(d["cells"]["payments"]["candidates"][0]))))
    assert found == ["cells.payments.candidates[4]: duplicates candidates[0] (oci/us-ashburn-1/oke-iad-1)"]


def test_tier_that_requires_ha_cannot_default_to_no_ha():
    assert "tiers.C0.defaults.ha: must be true: the tier's gates require HA" in problems_of(
        bent(lambda d: d["tiers"]["C0"]["defaults"].update(ha=False)))


def test_yaml_syntax_errors_say_where():
    (problem,) = problems_of("tiers: [unclosed\n")
    assert problem.startswith("not valid YAML: line")


def test_version_is_label_plus_content_hash_and_ignores_formatting():
    a = make_policy()
    reformatted = parse_policy("# a comment\n" + yaml.safe_dump(BASE, sort_keys=True, indent=4))
    assert a.version == f"test-1+{a.digest[:12]}"
    assert reformatted.digest == a.digest
    changed = make_policy(bent(lambda d: d["tiers"]["C0"]["weights"].update(cost=0.25)))
    assert changed.digest != a.digest


def test_version_without_label_is_the_hash():
    doc = copy.deepcopy(BASE)
    del doc["version"]
    policy = make_policy(doc)
    assert policy.version == policy.digest[:12]
